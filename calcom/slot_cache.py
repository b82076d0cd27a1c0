"""A short-lived cache of Cal.com's offered slots, per event type and local day.

A warm answer to "is Tuesday 10:00 free?" then does not wait 200–500 ms on Cal.com.
The cache only ever makes Slotguard say "not free" more or "free" a few seconds
longer than Cal.com would: local appointments and holds are checked live on every
request, the database guard refuses overlaps, and every change to Cal.com's calendar
that Slotguard hears of drops the affected entries — the Cal.com webhook for bookings
made, cancelled or moved in Cal.com, the sync worker for its own — through
`invalidate(...)` / `invalidate_many(...)`. It lives in `calcom/` because it is a
cache of Cal.com's data, used by the voice functions (`booking`) and the sync worker
(`workers`) alike.

Layout — one Redis hash per event type and day, one field per host and time zone:

    slotguard:slots:<event_type_id>:<YYYY-MM-DD>   field "<host user id or *>|<tz>"
        → {"at": <epoch ms the fetch started>, "slots": [["<start ISO>", "<end ISO>"], …]}
                                                   field "!invalidated" → <epoch ms>

so a day's entries for all staff come back in one round trip, and dropping an event
type's day is one pipeline. Each field remembers when its fetch *started* and is
ignored once older than the TTL (the key itself expires a little later). An
invalidation leaves the time it happened in the key, and entries fetched before that
are ignored: a slow fetch that began before a booking and finishes after its webhook
cannot put the stale answer back.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Sequence

import redis
from flask import current_app

from core.clock import utcnow

logger = logging.getLogger(__name__)

KEY_PREFIX = "slotguard:slots"
INVALIDATED_FIELD = "!invalidated"
# How long an invalidation is remembered: far longer than any fetch can take (the
# availability client's timeouts are a few seconds).
INVALIDATION_MEMORY_SECONDS = 120

Moment = date | datetime


def cache_key(event_type_id: int, day: date) -> str:
    return f"{KEY_PREFIX}:{int(event_type_id)}:{day.isoformat()}"


def cache_field(host_user_id: int | None, tz_name: str) -> str:
    return f"{host_user_id if host_user_id is not None else '*'}|{tz_name}"


def now_ms() -> int:
    """The cache's clock (the app's, so frozen test clocks apply)."""
    return int(utcnow().timestamp() * 1000)


def read(
    client: redis.Redis, entries: Sequence[tuple[int, int | None, str, date]], ttl_seconds: int
) -> dict[tuple[int, int | None, str, date], list[tuple[datetime, datetime]]]:
    """Fresh cached slots for (event type, host, tz, day) entries; misses are left out.

    One round trip (a pipeline of HMGETs). Redis errors count as misses.
    """
    if ttl_seconds <= 0 or not entries:
        return {}
    try:
        pipe = client.pipeline(transaction=False)
        for event_type_id, host, tz_name, day in entries:
            pipe.hmget(cache_key(event_type_id, day), [cache_field(host, tz_name), INVALIDATED_FIELD])
        raw_values = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("slot cache unreadable, asking Cal.com: %s", exc)
        return {}
    current = now_ms()
    oldest = current - ttl_seconds * 1000
    found = {}
    for entry, (raw, invalidated) in zip(entries, raw_values):
        if raw is None:
            continue
        try:
            value = json.loads(raw)
            fetched = int(value["at"])
            if fetched < oldest or fetched > current + 1000:
                continue
            if invalidated is not None and fetched <= int(invalidated):
                continue  # fetched before Cal.com's calendar changed
            found[entry] = [(_parse(start), _parse(end)) for start, end in value["slots"]]
        except (ValueError, KeyError, TypeError):
            continue
    return found


def write(
    client: redis.Redis,
    event_type_id: int,
    host: int | None,
    tz_name: str,
    slots_by_day: dict[date, list[tuple[datetime, datetime]]],
    ttl_seconds: int,
    *,
    fetched_at_ms: int | None = None,
) -> None:
    """Store a fetch (days without slots are stored as empty: "known to be full").

    `fetched_at_ms` is when the Cal.com request started (`now_ms()` before asking), so
    an invalidation that happened while it was under way wins.
    """
    if ttl_seconds <= 0 or not slots_by_day:
        return
    at = fetched_at_ms if fetched_at_ms is not None else now_ms()
    try:
        pipe = client.pipeline(transaction=False)
        for day, slots in slots_by_day.items():
            key = cache_key(event_type_id, day)
            value = {"at": at, "slots": [[start.isoformat(), end.isoformat()] for start, end in slots]}
            pipe.hset(key, cache_field(host, tz_name), json.dumps(value, separators=(",", ":")))
            # The key outlives its freshest field (and any invalidation mark) a little;
            # stale fields are ignored on read.
            pipe.expire(key, max(ttl_seconds * 2, INVALIDATION_MEMORY_SECONDS))
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("slot cache not written: %s", exc)


def invalidate(
    event_type_id: int | None = None,
    day: Moment | Iterable[Moment] | None = None,
    *,
    client: redis.Redis | None = None,
) -> int:
    """Forget cached slots — call it when Cal.com's calendar changed.

    * `invalidate(1001, booking_start)` — the day of that time for event type 1001
      (the neighbouring days too, since a UTC time can fall on another local date);
    * `invalidate(1001)` — every cached day of event type 1001;
    * `invalidate()` — everything.

    `day` may be a date, an aware datetime, or several of them. Returns the number of
    keys that held entries. Needs an app context unless `client` is given. Raises
    `redis.RedisError` when Redis is down (see `invalidate_quietly`).
    """
    client = client if client is not None else _app_redis()
    if event_type_id is None or day is None:
        pattern = f"{KEY_PREFIX}:*" if event_type_id is None else f"{KEY_PREFIX}:{int(event_type_id)}:*"
        return _forget(client, list(client.scan_iter(match=pattern, count=500)))
    return invalidate_many([event_type_id], [day] if isinstance(day, (date, datetime)) else list(day),
                           client=client)


def invalidate_many(
    event_type_ids: Iterable[int], moments: Iterable[Moment], *, client: redis.Redis | None = None
) -> int:
    """Forget the cached days around `moments` for every one of `event_type_ids`, in
    one round trip (a booking keeps its host busy in every event type they host)."""
    client = client if client is not None else _app_redis()
    days = sorted({_utc_date(moment) + timedelta(days=offset) for moment in moments for offset in (-1, 0, 1)})
    keys = [cache_key(event_type_id, day) for event_type_id in sorted(set(event_type_ids)) for day in days]
    return _forget(client, keys)


def invalidate_quietly(event_type_ids: Iterable[int], moments: Iterable[Moment], *, why: str,
                       client: redis.Redis | None = None) -> int | None:
    """`invalidate_many` for callers that must not fail because of the cache (a webhook
    already committed, a sync job already done): Redis trouble is logged, the entries
    then simply expire after `SLOT_CACHE_SECONDS`. Returns None when it failed."""
    event_type_ids = [int(e) for e in event_type_ids if e is not None]
    moments = [m for m in moments if m is not None]
    if not event_type_ids or not moments:
        return 0
    try:
        return invalidate_many(event_type_ids, moments, client=client)
    except Exception as exc:  # noqa: BLE001 - the cache is an optimisation; its TTL bounds the damage
        logger.warning("slot cache not invalidated after %s (entries expire by themselves): %s", why, exc)
        return None


def _forget(client: redis.Redis, keys: list) -> int:
    """Drop the keys' entries and leave the time of the invalidation in each."""
    if not keys:
        return 0
    at = now_ms()
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.delete(key)
        pipe.hset(key, INVALIDATED_FIELD, at)
        pipe.expire(key, INVALIDATION_MEMORY_SECONDS)
    results = pipe.execute()
    return sum(int(deleted) for deleted in results[0::3])


def _app_redis() -> redis.Redis:
    from core.redis_client import get_redis

    return get_redis(current_app._get_current_object())


def _utc_date(moment: Moment) -> date:
    return moment.astimezone(timezone.utc).date() if isinstance(moment, datetime) else moment


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


__all__ = [
    "cache_field",
    "cache_key",
    "invalidate",
    "invalidate_many",
    "invalidate_quietly",
    "now_ms",
    "read",
    "write",
]
