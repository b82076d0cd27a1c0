"""A branch's opening hours — the one module that reads `Branch.opening_hours`.

`Branch.opening_hours` is `{"1": [["09:00", "18:00"]], …}` by ISO weekday in local
time; a missing day is closed. Each day is converted on its own through the zone
(`core.clock`), so a DST weekend gets the right UTC hours. Availability, the voice
agent's "we are closed then" and the demo data all ask here; how the hours are said
in German is `booking.phrases.opening_hours`.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping

from core.clock import NonexistentLocalTime, local_day_bounds, local_to_utc, to_local

logger = logging.getLogger(__name__)


def _parse_hhmm(text: str) -> tuple[int, int]:
    hours, minutes = text.split(":")
    hour, minute = int(hours), int(minutes)
    if not (0 <= hour <= 24 and 0 <= minute <= 59) or (hour == 24 and minute):
        raise ValueError(text)
    return hour, minute


# One opening range of a day: ((open hour, minute), (close hour, minute)), local time.
Range = tuple[tuple[int, int], tuple[int, int]]


def _local_ranges(hours: Mapping[str, Any] | None, day: date) -> list[Range]:
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
        return local_day_bounds(day, tz_name)[1]
    try:
        return local_to_utc(datetime.combine(day, time(hour, minute)), tz_name)
    except NonexistentLocalTime:
        # Opening inside a DST gap (02:30 on the spring Sunday): open from the end of the gap.
        if hour < 23:
            return local_to_utc(datetime.combine(day, time(hour + 1, 0)), tz_name)
        return local_day_bounds(day, tz_name)[1]


def open_intervals(hours: Mapping[str, Any] | None, day: date, tz_name: str) -> list[tuple[datetime, datetime]]:
    """The UTC intervals during which the branch is open on local `day`."""
    return [
        (_instant(day, opens, tz_name), _instant(day, closes, tz_name)) for opens, closes in _local_ranges(hours, day)
    ]


def is_open(hours: Mapping[str, Any] | None, tz_name: str, start: datetime, end: datetime) -> bool:
    """True when the whole of [start, end) lies inside one opening interval of its day."""
    day = to_local(start, tz_name).date()
    return any(opens <= start and end <= closes for opens, closes in open_intervals(hours, day, tz_name))


def weekly_schedule(hours: Mapping[str, Any] | None) -> list[tuple[int, int, list[Range]]]:
    """The week as runs of consecutive days with the same hours, Monday first:
    `[(0, 4, [((9, 0), (18, 0))]), (5, 5, [((9, 0), (14, 30))])]` is Monday to Friday
    9–18 and Saturday 9–14:30 (0 = Monday). Closed days are left out. The German
    sentence is `booking.phrases.opening_hours`."""
    reference = date(2024, 1, 1)  # a Monday; only weekdays matter here
    runs: list[tuple[int, int, list[Range]]] = []
    for index in range(7):
        ranges = _local_ranges(hours, reference + timedelta(days=index))
        if not ranges:
            continue
        if runs and runs[-1][1] == index - 1 and runs[-1][2] == ranges:
            runs[-1] = (runs[-1][0], index, ranges)
        else:
            runs.append((index, index, ranges))
    return runs


__all__ = ["Range", "is_open", "open_intervals", "weekly_schedule"]
