"""core.clock: the one local-time ↔ UTC conversion, strict about daylight saving time."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from booking import spoken_time
from core.clock import NonexistentLocalTime, local_day_bounds, local_to_utc, to_local

UTC = timezone.utc
BERLIN = "Europe/Berlin"


def test_a_time_skipped_by_the_spring_change_is_refused_with_a_clear_message():
    with pytest.raises(NonexistentLocalTime, match="2026-03-29 02:30 does not exist in Europe/Berlin"):
        local_to_utc(datetime(2026, 3, 29, 2, 30), BERLIN)
    assert local_to_utc(datetime(2026, 3, 29, 3, 0), BERLIN) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_a_time_that_happens_twice_is_always_the_first_unless_an_offset_says_otherwise():
    first = local_to_utc(datetime(2026, 10, 25, 2, 30), BERLIN)
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # CEST, +02:00
    second = local_to_utc(datetime.fromisoformat("2026-10-25T02:30+01:00"), BERLIN)
    assert second - first == timedelta(hours=1)
    assert to_local(second, BERLIN).replace(tzinfo=None) == datetime(2026, 10, 25, 2, 30)


def test_day_bounds_follow_the_clock_changes_even_when_midnight_is_skipped():
    start, end = local_day_bounds(date(2026, 3, 29), BERLIN)
    assert end - start == timedelta(hours=23)
    # Chile skips 00:00–01:00 when its summer time begins (2026-09-06).
    start, end = local_day_bounds(date(2026, 9, 6), "America/Santiago")
    assert to_local(start, "America/Santiago").replace(tzinfo=None) == datetime(2026, 9, 6, 1, 0)
    assert end - start == timedelta(hours=23)


def test_the_voice_agent_uses_the_same_rules():
    assert spoken_time.local_day_bounds is local_day_bounds
    with pytest.raises(spoken_time.NonexistentTime):
        spoken_time.local_to_utc(date(2026, 3, 29), datetime(2026, 3, 29, 2, 30).time(), BERLIN)


def test_opening_hours_are_read_in_one_place_for_booking_and_demo_data(app):
    from core import opening_hours, seed
    from core.models import Branch

    hours = {"1": [["09:00", "13:00"], ["14:00", "18:00"]], "2": [["09:00", "18:00"]]}
    branch = Branch(name="x", timezone=BERLIN, opening_hours=hours)
    monday = date(2026, 12, 7)
    assert seed._opening_window(branch, monday) == opening_hours.open_intervals(hours, monday, BERLIN)[0]
    assert opening_hours.weekly_schedule(hours) == [(0, 0, [((9, 0), (13, 0)), ((14, 0), (18, 0))]),
                                                   (1, 1, [((9, 0), (18, 0))])]
