"""Short-lived slot holds in Redis: "this call is about to book this staff member then".

Key scheme — one key per staff member and 5-minute cell of time:

    slotguard:hold:<staff_id>:<YYYYmmddHHMM of the cell start, UTC>  →  <call_id>   (PX = hold TTL)

A hold over [start, end) owns every cell that the interval touches (rounded outward
to the grid, so an off-grid time errs on the safe side). Two holds overlap exactly
when they share a cell, so "does another call hold anything overlapping these
intervals?" is one `MGET` of the interval's cells — one round trip, no scan, however
many holds exist — and a composite service simply owns the cells of each busy step
(its processing gap stays free for other callers). Each cell is an ordinary
`SET key owner NX PX ttl` key, so Redis expires holds by itself; a forgotten hold
cannot block a slot for longer than the TTL.

Taking a hold on several cells must be all-or-nothing, so it runs as one Lua script
(atomic on the server): check every cell is free or already ours, then `SET NX PX`
the free ones and `PEXPIRE` the ones this call already owns (asking again for a slot
you hold extends it). The script accepts several options (the same slot with
different staff members) and takes the first one that is free — still one round
trip. Release and extend compare the owner inside Lua as well, so a call can never
release or prolong a hold that expired and was taken by another call.

A hold only improves the caller's experience; the database guard
(`core.booking_guard`) is what makes double bookings impossible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence

import redis

from core.booking_guard import Interval
from core.prom import SLOT_HOLDS

GRID = timedelta(minutes=5)
KEY_PREFIX = "slotguard:hold"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class HoldsUnavailable(Exception):
    """Redis did not answer; callers carry on without holds (the guard still protects)."""


# KEYS: the cells of every option, concatenated. ARGV[1] owner, ARGV[2] ttl in ms,
# ARGV[3..] the number of cells of each option, in order of preference.
# Returns the 1-based number of the option now held by `owner`, or 0.
_ACQUIRE = """
local owner, ttl = ARGV[1], ARGV[2]
local first = 1
for option = 3, #ARGV do
  local last = first + tonumber(ARGV[option]) - 1
  local free = true
  for i = first, last do
    local holder = redis.call('GET', KEYS[i])
    if holder and holder ~= owner then free = false; break end
  end
  if free then
    for i = first, last do
      if not redis.call('SET', KEYS[i], owner, 'NX', 'PX', ttl) then
        redis.call('PEXPIRE', KEYS[i], ttl)
      end
    end
    return option - 2
  end
  first = last + 1
end
return 0
"""

# Compare-and-extend: all cells still owned by ARGV[1] → prolong them all, return 1.
_EXTEND = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then return 0 end
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
"""

# Compare-and-release: delete only the cells ARGV[1] still owns; returns how many.
_RELEASE = """
local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released
"""


def _floor(moment: datetime) -> datetime:
    steps = (moment - _EPOCH) // GRID
    return _EPOCH + steps * GRID


def cell_keys(staff_id: int, intervals: Sequence[Interval]) -> list[str]:
    """The keys of every grid cell the intervals touch, in time order, without repeats."""
    keys: list[str] = []
    for interval in sorted(intervals, key=lambda i: i.starts_at):
        cursor = _floor(interval.starts_at.astimezone(timezone.utc))
        while cursor < interval.ends_at:
            key = f"{KEY_PREFIX}:{staff_id}:{cursor:%Y%m%d%H%M}"
            if not keys or keys[-1] != key:
                keys.append(key)
            cursor += GRID
    return keys


# --- lock keys: what the agent carries from check_availability to start_booking ----

_LOCK_KEY = re.compile(r"h1-(\d+)-(\d+)-(\d{8}T\d{4}Z)")


@dataclass(frozen=True)
class LockRef:
    """A hold as named by its lock key: which staff, which service, which start."""

    staff_id: int
    service_id: int
    start: datetime


def lock_key_for(staff_id: int, service_id: int, start: datetime) -> str:
    """`h1-<staff>-<service>-<start UTC>`: enough to recompute the hold's cells."""
    return f"h1-{staff_id}-{service_id}-{start.astimezone(timezone.utc):%Y%m%dT%H%MZ}"


def parse_lock_key(text: str) -> LockRef | None:
    match = _LOCK_KEY.fullmatch(text.strip())
    if match is None:
        return None
    start = datetime.strptime(match.group(3), "%Y%m%dT%H%MZ").replace(tzinfo=timezone.utc)
    return LockRef(int(match.group(1)), int(match.group(2)), start)


# --- the holds ---------------------------------------------------------------------


class SlotHolds:
    """Holds in one Redis, owned by call ids, lasting `ttl_seconds` unless extended."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.redis = client
        self.ttl_ms = int(ttl_seconds * 1000)
        self._acquire = client.register_script(_ACQUIRE)
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)

    def acquire_first(self, owner: str, options: Sequence[Sequence[str]]) -> int | None:
        """Hold the first option (a list of cell keys) that no other call holds.

        Returns its index, or None when every option is held by someone else.
        """
        options = [list(cells) for cells in options if cells]
        if not options:
            return None
        keys = [key for cells in options for key in cells]
        args = [owner, self.ttl_ms, *[len(cells) for cells in options]]
        try:
            chosen = int(self._acquire(keys=keys, args=args))
        except redis.RedisError as exc:
            SLOT_HOLDS.labels("redis_down").inc()
            raise HoldsUnavailable(str(exc)) from exc
        SLOT_HOLDS.labels("acquired" if chosen else "refused").inc()
        return chosen - 1 if chosen else None

    def held_by_others(self, owner: str, keys: Sequence[str]) -> set[str]:
        """Which of `keys` another call holds right now (one MGET)."""
        if not keys:
            return set()
        try:
            holders = self.redis.mget(list(keys))
        except redis.RedisError as exc:
            raise HoldsUnavailable(str(exc)) from exc
        mine = owner.encode() if owner else None
        return {key for key, holder in zip(keys, holders) if holder is not None and holder != mine}

    def extend(self, owner: str, keys: Sequence[str]) -> bool:
        """Prolong the hold when every cell is still `owner`'s; False when any expired
        or belongs to another call now."""
        if not keys:
            return False
        try:
            extended = bool(self._extend(keys=list(keys), args=[owner, self.ttl_ms]))
        except redis.RedisError as exc:
            SLOT_HOLDS.labels("redis_down").inc()
            raise HoldsUnavailable(str(exc)) from exc
        # A hold that ran out (or another call took over) when its booking came.
        SLOT_HOLDS.labels("extended" if extended else "expired").inc()
        return extended

    def release(self, owner: str, keys: Sequence[str]) -> int:
        """Give up `owner`'s cells among `keys`; another call's cells are left alone."""
        if not keys:
            return 0
        try:
            released = int(self._release(keys=list(keys), args=[owner]))
        except redis.RedisError as exc:
            SLOT_HOLDS.labels("redis_down").inc()
            raise HoldsUnavailable(str(exc)) from exc
        if released:
            SLOT_HOLDS.labels("released").inc()
        return released


__all__ = [
    "GRID",
    "HoldsUnavailable",
    "LockRef",
    "SlotHolds",
    "cell_keys",
    "lock_key_for",
    "parse_lock_key",
]
