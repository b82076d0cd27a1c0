"""German spoken times and DST-safe parsing in the branch's zone."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest

from booking.phrases import opening_hours as spoken_opening_hours
from booking.phrases import spoken_datetime
from booking.spoken_time import (
    NonexistentTime,
    UnparseableDate,
    UnparseableTime,
    local_day_bounds,
    local_iso,
    local_to_utc,
    parse_clock,
    parse_date,
    parse_requested,
)
from core.opening_hours import is_open, open_intervals
from core.phones import country_code_of, to_e164

BERLIN = "Europe/Berlin"
UTC = timezone.utc
MONDAY = date(2026, 12, 7)


def test_spoken_like_a_person_says_it():
    assert spoken_datetime(datetime(2025, 12, 2, 9, 30, tzinfo=UTC), BERLIN) == "Dienstag, 2. Dezember, um 10:30 Uhr"
    assert spoken_datetime(datetime(2026, 3, 2, 8, 0, tzinfo=UTC), BERLIN) == "Montag, 2. März, um 9:00 Uhr"


def test_iso_carries_the_branch_offset_summer_and_winter():
    assert local_iso(datetime(2026, 12, 8, 9, 0, tzinfo=UTC), BERLIN) == "2026-12-08T10:00:00+01:00"
    assert local_iso(datetime(2026, 7, 8, 8, 0, tzinfo=UTC), BERLIN) == "2026-07-08T10:00:00+02:00"


@pytest.mark.parametrize("said, expected", [
    ("2026-12-08", date(2026, 12, 8)),
    ("8.12.2026", date(2026, 12, 8)),
    ("08.12.26", date(2026, 12, 8)),
    ("8.12.", date(2026, 12, 8)),
    ("8. Dezember", date(2026, 12, 8)),
    ("Dienstag, 8. Dezember", date(2026, 12, 8)),
    ("3. Januar", date(2027, 1, 3)),  # no year: the next one
    ("heute", MONDAY),
    ("morgen", date(2026, 12, 8)),
    ("übermorgen", date(2026, 12, 9)),
    ("Dienstag", date(2026, 12, 8)),
    ("am Montag", MONDAY),
    ("nächsten Freitag", date(2026, 12, 11)),
])
def test_dates_as_the_agent_writes_them(said, expected):
    assert parse_date(said, MONDAY) == expected


@pytest.mark.parametrize("said", ["", "bald", "31.02.2027", "2026-13-01", "32. Dezember", "irgendwann"])
def test_nonsense_dates_are_refused(said):
    with pytest.raises(UnparseableDate):
        parse_date(said, MONDAY)


@pytest.mark.parametrize("said, expected", [
    ("10:30", time(10, 30)), ("10.30", time(10, 30)), ("10 Uhr", time(10)), ("10:30 Uhr", time(10, 30)),
    ("9", time(9)), ("14h", time(14)), ("10:30:00", time(10, 30)),
])
def test_clock_times(said, expected):
    assert parse_clock(said) == expected


@pytest.mark.parametrize("said", ["25:00", "10:75", "halb elf", "abends", ""])
def test_nonsense_times_are_refused(said):
    with pytest.raises(UnparseableTime):
        parse_clock(said)


def test_the_same_wall_clock_time_maps_to_different_utc_across_the_autumn_change():
    # Clocks go back at 03:00 on Sunday 2026-10-25: CEST (+2) before, CET (+1) after.
    assert local_to_utc(date(2026, 10, 24), time(10), BERLIN) == datetime(2026, 10, 24, 8, tzinfo=UTC)
    assert local_to_utc(date(2026, 10, 25), time(10), BERLIN) == datetime(2026, 10, 25, 9, tzinfo=UTC)
    start, end = local_day_bounds(date(2026, 10, 25), BERLIN)
    assert (end - start).total_seconds() == 25 * 3600


def test_spring_change_day_is_23_hours_and_the_skipped_hour_does_not_exist():
    start, end = local_day_bounds(date(2026, 3, 29), BERLIN)
    assert (end - start).total_seconds() == 23 * 3600
    with pytest.raises(NonexistentTime):
        local_to_utc(date(2026, 3, 29), time(2, 30), BERLIN)
    assert local_to_utc(date(2026, 3, 29), time(10), BERLIN) == datetime(2026, 3, 29, 8, tzinfo=UTC)


def test_ambiguous_autumn_hour_takes_the_first_instant():
    assert local_to_utc(date(2026, 10, 25), time(2, 30), BERLIN) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_iso_datetime_naive_is_local_and_offsets_are_respected():
    now = datetime(2026, 12, 7, 8, tzinfo=UTC)
    naive = parse_requested(date_text=None, time_text=None, datetime_text="2026-12-08T10:00", tz_name=BERLIN, now=now)
    assert naive.start == datetime(2026, 12, 8, 9, tzinfo=UTC)
    offset = parse_requested(date_text=None, time_text=None, datetime_text="2026-12-08T10:00:00+01:00",
                             tz_name=BERLIN, now=now)
    assert offset.start == naive.start and offset.day == date(2026, 12, 8)
    zulu = parse_requested(date_text=None, time_text=None, datetime_text="2026-12-08T09:00:00Z", tz_name=BERLIN,
                           now=now)
    assert zulu.start == naive.start


def test_opening_hours_follow_the_zone_on_dst_days():
    hours = {"6": [["09:00", "14:00"]], "7": [["10:00", "12:00"]]}
    assert open_intervals(hours, date(2026, 10, 24), BERLIN) == [
        (datetime(2026, 10, 24, 7, tzinfo=UTC), datetime(2026, 10, 24, 12, tzinfo=UTC))]
    assert open_intervals(hours, date(2026, 10, 25), BERLIN) == [
        (datetime(2026, 10, 25, 9, tzinfo=UTC), datetime(2026, 10, 25, 11, tzinfo=UTC))]
    assert is_open(hours, BERLIN, datetime(2026, 10, 25, 9, tzinfo=UTC), datetime(2026, 10, 25, 9, 30, tzinfo=UTC))
    assert not is_open(hours, BERLIN, datetime(2026, 10, 25, 8, tzinfo=UTC), datetime(2026, 10, 25, 8, 30, tzinfo=UTC))
    assert open_intervals(hours, date(2026, 10, 26), BERLIN) == []


def test_opening_hours_are_spoken_grouped():
    hours = {str(d): [["09:00", "18:00"]] for d in range(1, 6)} | {"6": [["09:00", "14:30"]]}
    assert spoken_opening_hours(hours) == "Montag bis Freitag von 9 bis 18 Uhr und Samstag von 9 bis 14:30 Uhr"


@pytest.mark.parametrize("raw, expected", [
    ("+49 151 12345678", "+4915112345678"),
    ("0151 12345678", "+4915112345678"),
    ("(0151) 123-456-78", "+4915112345678"),
    ("0049 151 12345678", "+4915112345678"),
    ("+43 660 1234567", "+436601234567"),
])
def test_phone_numbers_become_e164(raw, expected):
    assert to_e164(raw) == expected


@pytest.mark.parametrize("raw", ["", "anonymous", "12345", "15112345678", "+49 151 1234 5678 9999 99", "0800-TAXI"])
def test_implausible_phone_numbers_are_refused(raw):
    assert to_e164(raw) is None


def test_national_numbers_take_the_branch_country():
    assert country_code_of("+4930901820") == "49"
    assert to_e164("0660 1234567", country_code=country_code_of("+43155501")) == "+436601234567"
