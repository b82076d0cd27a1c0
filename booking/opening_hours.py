"""A branch's opening hours: which UTC intervals of a day are open, and how to say them.

`Branch.opening_hours` is `{"1": [["09:00", "18:00"]], …}` by ISO weekday in local
time; a missing day is closed. Each day is converted on its own through the zone, so a
DST weekend gets the right UTC hours.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping

from booking.spoken_time import TimeParseError, WEEKDAYS, local_to_utc, to_local

logger = logging.getLogger(__name__)


def _parse_hhmm(text: str) -> tuple[int, int]:
    hours, minutes = text.split(":")
    hour, minute = int(hours), int(minutes)
    if not (0 <= hour <= 24 and 0 <= minute <= 59) or (hour == 24 and minute):
        raise ValueError(text)
    return hour, minute


def _local_ranges(hours: Mapping[str, Any] | None, day: date) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    ranges = []
    for pair in (hours or {}).get(str(day.isoweekday())) or []:
        try:
            opens, closes = _parse_hhmm(pair[0]), _parse_hhmm(pair[1])
        except (TypeError, ValueError, IndexError):
            logger.error("ignoring malformed opening hours %r", pair)
            continue
        if closes > opens:
            ranges.append((opens, closes))
    return sorted(ranges)


def _instant(day: date, hour_minute: tuple[int, int], tz_name: str) -> datetime:
    hour, minute = hour_minute
    if hour == 24:
        return local_to_utc(day + timedelta(days=1), time(0, 0), tz_name)
    try:
        return local_to_utc(day, time(hour, minute), tz_name)
    except TimeParseError:
        # Opening inside a DST gap (02:30 on the spring Sunday): open from the end of the gap.
        return local_to_utc(day, time(hour + 1, 0), tz_name) if hour < 23 else local_to_utc(
            day + timedelta(days=1), time(0, 0), tz_name
        )


def open_intervals(hours: Mapping[str, Any] | None, day: date, tz_name: str) -> list[tuple[datetime, datetime]]:
    """The UTC intervals during which the branch is open on local `day`."""
    return [
        (_instant(day, opens, tz_name), _instant(day, closes, tz_name)) for opens, closes in _local_ranges(hours, day)
    ]


def is_open(hours: Mapping[str, Any] | None, tz_name: str, start: datetime, end: datetime) -> bool:
    """True when the whole of [start, end) lies inside one opening interval of its day."""
    day = to_local(start, tz_name).date()
    return any(opens <= start and end <= closes for opens, closes in open_intervals(hours, day, tz_name))


def _spoken_hour(hour_minute: tuple[int, int]) -> str:
    hour, minute = hour_minute
    return f"{hour}" if minute == 0 else f"{hour}:{minute:02d}"


def spoken_opening_hours(hours: Mapping[str, Any] | None) -> str:
    """`Montag bis Freitag von 9 bis 18 Uhr und Samstag von 9 bis 14 Uhr`."""
    reference = date(2024, 1, 1)  # a Monday; only weekdays matter here
    per_day = []
    for offset in range(7):
        ranges = _local_ranges(hours, reference + timedelta(days=offset))
        spoken = " und ".join(f"von {_spoken_hour(a)} bis {_spoken_hour(b)} Uhr" for a, b in ranges)
        per_day.append(spoken)
    groups: list[tuple[int, int, str]] = []
    for index, spoken in enumerate(per_day):
        if not spoken:
            continue
        if groups and groups[-1][1] == index - 1 and groups[-1][2] == spoken:
            groups[-1] = (groups[-1][0], index, spoken)
        else:
            groups.append((index, index, spoken))
    if not groups:
        return ""
    parts = []
    for first, last, spoken in groups:
        if first == last:
            days = WEEKDAYS[first]
        elif last == first + 1:
            days = f"{WEEKDAYS[first]} und {WEEKDAYS[last]}"
        else:
            days = f"{WEEKDAYS[first]} bis {WEEKDAYS[last]}"
        parts.append(f"{days} {spoken}")
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " und " + parts[-1]


__all__ = ["open_intervals", "is_open", "spoken_opening_hours"]
