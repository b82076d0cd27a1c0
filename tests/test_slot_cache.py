"""The Cal.com slot cache (`calcom.slot_cache`) on a real Redis: fresh entries are
served, invalidated ones never come back — not even from a fetch that was under way."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from calcom import slot_cache
from core.redis_client import get_redis

TEN = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)
TUESDAY = TEN.date()
SLOTS = {TUESDAY: [(TEN, TEN + timedelta(minutes=30))]}
ENTRY = (1001, 100, "Europe/Berlin", TUESDAY)


def test_a_fetch_that_started_before_an_invalidation_is_not_served(app, clock):
    redis = get_redis(app)
    started = slot_cache.now_ms()  # a slow Cal.com request begins …
    clock.advance(timedelta(milliseconds=300))
    slot_cache.invalidate(1001, TEN, client=redis)  # … a booking's webhook arrives meanwhile …
    clock.advance(timedelta(milliseconds=200))
    slot_cache.write(redis, 1001, 100, "Europe/Berlin", SLOTS, 30, fetched_at_ms=started)  # … then it answers

    assert slot_cache.read(redis, [ENTRY], 30) == {}

    clock.advance(timedelta(seconds=1))
    slot_cache.write(redis, 1001, 100, "Europe/Berlin", SLOTS, 30, fetched_at_ms=slot_cache.now_ms())
    assert slot_cache.read(redis, [ENTRY], 30) == {ENTRY: SLOTS[TUESDAY]}


def test_invalidate_many_drops_the_days_around_each_moment_for_every_event_type(app, clock):
    redis = get_redis(app)
    days = [TUESDAY + timedelta(days=n) for n in range(-2, 4)]
    for event_type_id in (1001, 1002, 1003):
        slot_cache.write(redis, event_type_id, None, "Europe/Berlin", {d: [] for d in days}, 30)

    slot_cache.invalidate_many([1001, 1003], [TEN], client=redis)

    entries = [(e, None, "Europe/Berlin", d) for e in (1001, 1002, 1003) for d in days]
    left = sorted((e, d) for e, _, _, d in slot_cache.read(redis, entries, 30))
    kept_days = [d for d in days if abs((d - TUESDAY).days) > 1]
    assert left == sorted([(1002, d) for d in days] + [(e, d) for e in (1001, 1003) for d in kept_days])


def test_invalidate_quietly_survives_a_dead_redis(app, caplog):
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    assert slot_cache.invalidate_quietly([1001], [TEN], why="a test", client=dead) is None
    assert "slot cache not invalidated after a test" in caplog.text
    assert slot_cache.invalidate_quietly([], [date(2026, 12, 8)], why="nothing to do", client=dead) == 0
