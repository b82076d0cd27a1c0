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
