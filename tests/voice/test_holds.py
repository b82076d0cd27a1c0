"""Slot holds in a real Redis: SET NX PX cells, owner compare in Lua, one round trip."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from booking.holds import SlotHolds, cell_keys, lock_key_for, parse_lock_key
from core.booking_guard import Interval
from core.redis_client import get_redis

TEN = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)


def span(start, minutes):
    return [Interval(start, start + timedelta(minutes=minutes))]


@pytest.fixture
def holds(app):
    return SlotHolds(get_redis(app), ttl_seconds=120)


def test_cells_cover_the_interval_rounded_outward():
    assert cell_keys(7, span(TEN, 30)) == [f"slotguard:hold:7:20261208{h}" for h in
                                           ("0900", "0905", "0910", "0915", "0920", "0925")]
    # 10:07–10:12 touches the 10:05 and 10:10 cells.
    assert cell_keys(7, span(TEN + timedelta(minutes=7), 5)) == ["slotguard:hold:7:202612080905",
                                                                 "slotguard:hold:7:202612080910"]


def test_composite_holds_only_its_busy_steps():
    busy = [Interval(TEN, TEN + timedelta(minutes=30)),
            Interval(TEN + timedelta(minutes=70), TEN + timedelta(minutes=100))]
    keys = cell_keys(7, busy)
    assert len(keys) == 12
    assert "slotguard:hold:7:202612080930" not in keys  # the processing gap


def test_first_call_holds_second_call_is_refused_touching_is_fine(holds):
    assert holds.acquire_first("call_A", [cell_keys(1, span(TEN, 30))]) == 0
    assert holds.acquire_first("call_B", [cell_keys(1, span(TEN + timedelta(minutes=15), 30))]) is None
    assert holds.acquire_first("call_B", [cell_keys(1, span(TEN + timedelta(minutes=30), 30))]) == 0
    assert holds.acquire_first("call_B", [cell_keys(2, span(TEN, 30))]) == 0  # other staff


def test_acquire_takes_the_first_free_option_in_one_go(holds, app):
    holds.acquire_first("call_A", [cell_keys(1, span(TEN, 30))])
    options = [cell_keys(1, span(TEN, 30)), cell_keys(2, span(TEN, 30))]
    assert holds.acquire_first("call_B", options) == 1
    # All-or-nothing: the refused option left no cell of call_B behind.
    redis = get_redis(app)
    assert {redis.get(k) for k in options[0]} == {b"call_A"}


def test_same_call_asking_again_extends_its_hold(holds, app):
    redis = get_redis(app)
    keys = cell_keys(1, span(TEN, 30))
    holds.acquire_first("call_A", [keys])
    for key in keys:
        redis.pexpire(key, 5_000)
    assert holds.acquire_first("call_A", [keys]) == 0
    assert all(redis.pttl(key) > 100_000 for key in keys)


def test_extend_and_release_compare_the_owner(holds, app):
    redis = get_redis(app)
    keys = cell_keys(1, span(TEN, 30))
    holds.acquire_first("call_A", [keys])
    assert holds.extend("call_B", keys) is False
    assert holds.release("call_B", keys) == 0
    assert holds.extend("call_A", keys) is True

    # Expiry (TTL in the past = expired now, no sleeping) and theft by another call.
    for key in keys:
        redis.pexpireat(key, 1)
    assert holds.acquire_first("call_B", [keys]) == 0
    assert holds.extend("call_A", keys) is False
    assert holds.release("call_A", keys) == 0
    assert {redis.get(k) for k in keys} == {b"call_B"}
    assert holds.release("call_B", keys) == len(keys)
    assert redis.mget(keys) == [None] * len(keys)


def test_partly_expired_hold_cannot_be_extended(holds, app):
    keys = cell_keys(1, span(TEN, 30))
    holds.acquire_first("call_A", [keys])
    get_redis(app).delete(keys[-1])
    assert holds.extend("call_A", keys) is False


def test_held_by_others_is_one_mget(holds):
    holds.acquire_first("call_A", [cell_keys(1, span(TEN, 30))])
    probe = cell_keys(1, span(TEN + timedelta(minutes=20), 30))
    assert holds.held_by_others("call_B", probe) == set(probe[:2])
    assert holds.held_by_others("call_A", probe) == set()


def test_lock_keys_round_trip():
    key = lock_key_for(12, 3, TEN)
    assert key == "h1-12-3-20261208T0900Z"
    ref = parse_lock_key(key)
    assert (ref.staff_id, ref.service_id, ref.start) == (12, 3, TEN)
    assert parse_lock_key("h1-12-3-2026") is None and parse_lock_key("anything") is None
