"""The one source of "now", and conversions between UTC and business time.

Everything stored is UTC. Code asks `utcnow()` instead of `datetime.now()` so that
tests can freeze and move time without sleeping (`frozen_at`, `advance`).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
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


def local_to_utc(local: datetime, tz_name: str) -> datetime:
    """Interpret a wall-clock time in `tz_name` and convert it to UTC.

    A naive `local` is placed in the zone with `fold=0`, which picks the first of two
    instants on the autumn DST change and the instant after the gap in spring, so a
    spoken "02:30" always maps to a real moment.
    """
    zone = ZoneInfo(tz_name)
    if local.tzinfo is None:
        aware = local.replace(tzinfo=zone)
        # Round-trip through UTC: a time inside the spring-forward gap does not
        # exist; normalising moves it forward by the gap like a wall clock would.
        return aware.astimezone(UTC)
    return local.astimezone(UTC)


def is_valid_timezone(tz_name: str) -> bool:
    try:
        ZoneInfo(tz_name)
    except Exception:
        return False
    return True
