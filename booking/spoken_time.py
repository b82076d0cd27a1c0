"""Times as a German caller says and hears them, in the branch's time zone.

Everything stored is UTC; this module turns a spoken or written local time into UTC
and back through `core.clock` (the one conversion, strict about DST), so the DST
weekends work: 10:00 on the Sunday clocks go back (2026-10-25) is 09:00 UTC, on the
Saturday before it is 08:00 UTC. A wall-clock time that does not exist (02:30 on
2026-03-29 in Berlin) is refused instead of silently moved; one that happens twice
(02:30 on 2026-10-25) is the first of the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from booking.phrases import MONTHS, WEEKDAYS
from core import clock as clock_module
from core.clock import NonexistentLocalTime, local_day_bounds, to_local

UTC = timezone.utc


class TimeParseError(ValueError):
    """Base for a date or time the caller has to say again."""


class UnparseableDate(TimeParseError):
    pass


class UnparseableTime(TimeParseError):
    pass


class NonexistentTime(TimeParseError):
    """A local time skipped by the spring DST change."""


# --- writing ----------------------------------------------------------------------
# (How a time is *said* — "Dienstag, 2. Dezember, um 10:30 Uhr" — is German text the
# caller hears, so it lives in `booking.phrases`: spoken_date, spoken_clock, spoken_datetime.)


def local_iso(moment: datetime, tz_name: str) -> str:
    """ISO 8601 with the branch's offset, e.g. `2026-12-08T10:00:00+01:00`."""
    return to_local(moment, tz_name).isoformat(timespec="seconds")


# --- days -------------------------------------------------------------------------


def local_to_utc(day: date, clock: time, tz_name: str) -> datetime:
    """`core.clock.local_to_utc` for a day and a clock time the caller said;
    `NonexistentTime` (a caller error) inside a DST gap."""
    try:
        return clock_module.local_to_utc(datetime.combine(day, clock), tz_name)
    except NonexistentLocalTime as gap:
        raise NonexistentTime(str(gap)) from None


# --- parsing ----------------------------------------------------------------------

RELATIVE_DAYS = {"heute": 0, "morgen": 1, "übermorgen": 2, "uebermorgen": 2}
_WEEKDAY_NAMES = {name.lower(): index for index, name in enumerate(WEEKDAYS)}
_MONTH_NAMES = {name.lower(): index + 1 for index, name in enumerate(MONTHS)} | {"maerz": 3, "marz": 3}
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_GERMAN_NUMERIC_DATE = re.compile(r"(\d{1,2})\.\s*(\d{1,2})\.?\s*(\d{4}|\d{2})?")
_GERMAN_WORD_DATE = re.compile(r"(\d{1,2})\.?\s*([a-zäöü]+)\s*(\d{4})?")
_CLOCK = re.compile(r"(\d{1,2})(?:\s*[:.h]\s*(\d{2}))?(?::(\d{2}))?\s*(?:uhr|h)?")
_FILLER = re.compile(r"^(am|den|der|nächsten|naechsten|kommenden|diesen)\s+")


def parse_date(value: str, today: date) -> date:
    """A day as the agent may write it: `2026-12-08`, `8.12.2026`, `8.12.`,
    `8. Dezember`, `Dienstag`, `heute`, `morgen`, `übermorgen`.

    Without a year the next such date from `today` is meant; a weekday name is the
    next such day (today included).
    """
    text = " ".join(value.strip().lower().split())
    while True:
        stripped = _FILLER.sub("", text)
        if stripped == text:
            break
        text = stripped
    text = text.rstrip(",")
    if text in RELATIVE_DAYS:
        return today + timedelta(days=RELATIVE_DAYS[text])
    weekday_text = text.split(",")[0].strip()
    if weekday_text in _WEEKDAY_NAMES and "," not in text:
        ahead = (_WEEKDAY_NAMES[weekday_text] - today.weekday()) % 7
        return today + timedelta(days=ahead)
    if "," in text and text.split(",")[0].strip() in _WEEKDAY_NAMES:
        text = text.split(",", 1)[1].strip()  # "dienstag, 8. dezember"
    if match := _ISO_DATE.fullmatch(text):
        return _make_date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if match := _GERMAN_NUMERIC_DATE.fullmatch(text):
        return _with_year(today, int(match.group(2)), int(match.group(1)), match.group(3))
    if match := _GERMAN_WORD_DATE.fullmatch(text):
        month = _MONTH_NAMES.get(match.group(2))
        if month is not None:
            return _with_year(today, month, int(match.group(1)), match.group(3))
    raise UnparseableDate(value)


def parse_clock(value: str) -> time:
    """A time of day: `10:30`, `10.30`, `10 Uhr`, `10:30 Uhr`, `14h`, `10:30:00`."""
    text = value.strip().lower()
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise UnparseableTime(value)
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59) or int(match.group(3) or 0) > 59:
        raise UnparseableTime(value)
    return time(hour, minute)


@dataclass(frozen=True)
class RequestedTime:
    """What the caller asked for: a local day and, when a time was given, its start."""

    day: date
    start: datetime | None  # aware UTC


def parse_requested(
    *, date_text: str | None, time_text: str | None, datetime_text: str | None, tz_name: str, now: datetime
) -> RequestedTime:
    """Combine `datetime` (ISO, local when it has no offset) or `date` + `time`."""
    if datetime_text:
        start = parse_iso_datetime(datetime_text, tz_name)
        return RequestedTime(day=to_local(start, tz_name).date(), start=start)
    if not date_text:
        raise UnparseableDate("")
    today = to_local(now, tz_name).date()
    day = parse_date(date_text, today)
    if not time_text:
        return RequestedTime(day=day, start=None)
    return RequestedTime(day=day, start=local_to_utc(day, parse_clock(time_text), tz_name))


def parse_iso_datetime(value: str, tz_name: str) -> datetime:
    """ISO 8601 (`2026-12-08T10:00`, `…+01:00`, `…Z`) as aware UTC; naive means local."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UnparseableDate(value) from None
    if parsed.tzinfo is None:
        return local_to_utc(parsed.date(), parsed.time().replace(second=0, microsecond=0), tz_name)
    return parsed.astimezone(UTC)


def _make_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise UnparseableDate(f"{year}-{month}-{day}") from None


def _with_year(today: date, month: int, day: int, year_text: str | None) -> date:
    if year_text:
        year = int(year_text)
        return _make_date(year + 2000 if year < 100 else year, month, day)
    # No year: the next such date from today (29 February: the next leap year).
    for year in range(today.year, today.year + 5):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    raise UnparseableDate(f"{day}.{month}.")


__all__ = [
    "TimeParseError",
    "UnparseableDate",
    "UnparseableTime",
    "NonexistentTime",
    "RequestedTime",
    "local_day_bounds",
    "local_iso",
    "local_to_utc",
    "parse_clock",
    "parse_date",
    "parse_iso_datetime",
    "parse_requested",
    "to_local",
]
