"""The one source of "now", and the one conversion between UTC and local time.

Everything stored is UTC. Code asks `utcnow()` instead of `datetime.now()` so that
tests can freeze and move time without sleeping (`frozen_at`, `advance`). A stored
time becomes text for people through `format_local` / `format_span`.

Local wall-clock time → UTC (`local_to_utc`) is strict about daylight saving time,
the same for the voice agent, opening hours, the dashboard and the seed data:

* a time skipped when the clocks jump forward (02:30 on 2026-03-29 in Berlin) does
  not exist: `NonexistentLocalTime`, with a message saying so — never silently moved;
* a time that happens twice when the clocks go back (02:30 on 2026-10-25 in
  Berlin) is always the FIRST of the two instants (still summer time, `fold=0`),
  so the same words always mean the same moment. Whoever means the second one
  gives the UTC offset (`2026-10-25T02:30+01:00`); an aware time is taken as it is.

A local day's bounds (`local_day_bounds`) are 23 or 25 hours long on those days; a
day whose midnight is skipped (some zones change at 00:00) starts when the clock
jumps.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo

UTC = timezone.utc

_frozen: datetime | None = None


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (or the frozen time in tests)."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC)


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    """Freeze `utcnow()` at `moment` for the duration of the block."""
    global _frozen
    previous = _frozen
    _frozen = ensure_utc(moment)
    try:
        yield
    finally:
        _frozen = previous


def advance(delta: timedelta) -> datetime:
    """Move a frozen clock forward; only meaningful inside `frozen_at`."""
    global _frozen
    if _frozen is None:
        raise RuntimeError("advance() needs a frozen clock (use frozen_at)")
    _frozen = _frozen + delta
    return _frozen


def sleep(seconds: float) -> None:
    """Wait: on the real clock, or — when the clock is frozen (tests) — by moving it on,
    so code that paces itself (a rate budget) runs at once and stays exact."""
    if seconds <= 0:
        return
    if _frozen is not None:
        advance(timedelta(seconds=seconds))
        return
    import time

    time.sleep(seconds)


def ensure_utc(moment: datetime) -> datetime:
    """Return `moment` in UTC; a naive value is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_local(moment: datetime, tz_name: str) -> datetime:
    """Show a stored UTC time in a branch's time zone."""
    return ensure_utc(moment).astimezone(ZoneInfo(tz_name))


# How a person reads a moment: weekday, date, time (24 h), e.g. "Tue 08.12.2026 10:00".
HUMAN_FORMAT = "%a %d.%m.%Y %H:%M"
# How the zone is said after it: "CET" (`abbreviation`, what a wall clock shows),
# "(Europe/Berlin)" (`name`, unambiguous in stored texts) or not at all (None).
ZONE_STYLES = ("abbreviation", "name", None)


def _zone_suffix(local: datetime, tz_name: str, zone: str | None) -> str:
    if zone not in ZONE_STYLES:
        raise ValueError(f"zone must be one of {ZONE_STYLES}, got {zone!r}")
    if zone == "abbreviation":
        return f" {local.tzname()}"
    if zone == "name":
        return f" ({tz_name})"
    return ""


def format_local(moment: datetime, tz_name: str, fmt: str = HUMAN_FORMAT, *, zone: str | None = "abbreviation") -> str:
    """A stored UTC time as a person in `tz_name` reads it: "Tue 08.12.2026 10:00 CET".

    The one place that turns a stored time into text for people: the dashboard, the
    alert notifiers and the digest, and the reasons written for operators.
    """
    local = to_local(moment, tz_name)
    return local.strftime(fmt) + _zone_suffix(local, tz_name, zone)


def format_span(start: datetime, end: datetime, tz_name: str, fmt: str = HUMAN_FORMAT, *,
                zone: str | None = "abbreviation") -> str:
    """From `start` to `end` in `tz_name`: "Tue 08.12.2026 10:00–10:30 CET" on one day,
    "Sun 06.12.2026 09:00 – Mon 07.12.2026 09:00 CET" across days."""
    local_start, local_end = to_local(start, tz_name), to_local(end, tz_name)
    if local_start.date() == local_end.date():
        text = f"{local_start.strftime(fmt)}–{local_end:%H:%M}"
    else:
        text = f"{local_start.strftime(fmt)} – {local_end.strftime(fmt)}"
    return text + _zone_suffix(local_end, tz_name, zone)


class NonexistentLocalTime(ValueError):
    """A local wall-clock time that a daylight-saving change skips."""


def local_to_utc(local: datetime, tz_name: str) -> datetime:
    """The UTC instant of wall-clock time `local` in `tz_name` (strict, see above).

    Raises `NonexistentLocalTime` for a time in a spring-forward gap; an ambiguous
    autumn time is its first instant. An aware `local` is only converted.
    """
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    zone = ZoneInfo(tz_name)
    instant = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    # zoneinfo maps a skipped time to a real instant with another wall-clock time;
    # the round trip shows it.
    if instant.astimezone(zone).replace(tzinfo=None) != local:
        raise NonexistentLocalTime(
            f"{local:%Y-%m-%d %H:%M} does not exist in {tz_name}: the clocks skip it when daylight saving time begins"
        )
    return instant


def local_day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    """The UTC instants at which local `day` starts and the next day starts."""
    return _day_start(day, tz_name), _day_start(day + timedelta(days=1), tz_name)


def _day_start(day: date, tz_name: str) -> datetime:
    midnight = datetime.combine(day, time(0, 0))
    try:
        return local_to_utc(midnight, tz_name)
    except NonexistentLocalTime:
        # Midnight is skipped: the day starts at the jump, which is where zoneinfo's
        # fold=0 reading of the skipped midnight lands (the offset before the change).
        return midnight.replace(tzinfo=ZoneInfo(tz_name), fold=0).astimezone(UTC)


def is_valid_timezone(tz_name: str) -> bool:
    try:
        ZoneInfo(tz_name)
    except Exception:
        return False
    return True
