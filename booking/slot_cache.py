"""A short-lived cache of Cal.com's offered slots, per event type and local day.

A warm answer to "is Tuesday 10:00 free?" then does not wait 200–500 ms on Cal.com.
The cache only ever makes Slotguard say "not free" more or "free" a few seconds
longer than Cal.com would: local appointments and holds are checked live on every
request, the database guard refuses overlaps, and a booking made directly in Cal.com
arrives through the webhook, which calls `invalidate(...)`.

Layout — one Redis hash per event type and day, one field per host and time zone:

    slotguard:slots:<event_type_id>:<YYYY-MM-DD>   field "<host user id or *>|<tz>"
        → {"at": <epoch ms fetched>, "slots": [["<start ISO>", "<end ISO>"], …]}

so a day's entries for all staff come back with one HMGET, and dropping an event
type's day is one DEL. Each field remembers when it was fetched and is ignored once
older than the TTL (the key itself expires a little later).
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


def cache_key(event_type_id: int, day: date) -> str:
    return f"{KEY_PREFIX}:{int(event_type_id)}:{day.isoformat()}"


def cache_field(host_user_id: int | None, tz_name: str) -> str:
    return f"{host_user_id if host_user_id is not None else '*'}|{tz_name}"


def _now_ms() -> int:
    return int(utcnow().timestamp() * 1000)


def read(
    client: redis.Redis, entries: Sequence[tuple[int, int | None, str, date]], ttl_seconds: int
) -> dict[tuple[int, int | None, str, date], list[tuple[datetime, datetime]]]:
    """Fresh cached slots for (event type, host, tz, day) entries; misses are left out.

    One round trip (a pipeline of HGETs). Redis errors count as misses.
    """
    if ttl_seconds <= 0 or not entries:
        return {}
    try:
        pipe = client.pipeline(transaction=False)
        for event_type_id, host, tz_name, day in entries:
            pipe.hget(cache_key(event_type_id, day), cache_field(host, tz_name))
        raw_values = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("slot cache unreadable, asking Cal.com: %s", exc)
        return {}
    oldest = _now_ms() - ttl_seconds * 1000
    found = {}
    for entry, raw in zip(entries, raw_values):
        if raw is None:
            continue
        try:
            value = json.loads(raw)
            if int(value["at"]) < oldest or int(value["at"]) > _now_ms() + 1000:
                continue
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
) -> None:
    """Store a fetch (days without slots are stored as empty: "known to be full")."""
    if ttl_seconds <= 0 or not slots_by_day:
        return
    at = _now_ms()
    try:
        pipe = client.pipeline(transaction=False)
        for day, slots in slots_by_day.items():
            key = cache_key(event_type_id, day)
            value = {"at": at, "slots": [[start.isoformat(), end.isoformat()] for start, end in slots]}
            pipe.hset(key, cache_field(host, tz_name), json.dumps(value, separators=(",", ":")))
            # The key outlives its freshest field a little; stale fields are ignored on read.
            pipe.expire(key, ttl_seconds * 2)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("slot cache not written: %s", exc)


def invalidate(
    event_type_id: int | None = None,
    day: date | datetime | Iterable[date | datetime] | None = None,
    *,
    client: redis.Redis | None = None,
) -> int:
    """Forget cached slots — call it when Cal.com's calendar changed (webhook).

    * `invalidate(1001, booking_start)` — the day of that time for event type 1001
      (the neighbouring days too, since a UTC time can fall on another local date);
    * `invalidate(1001)` — every cached day of event type 1001;
    * `invalidate()` — everything.

    `day` may be a date, an aware datetime, or several of them. Returns the number of
    keys removed. Needs an app context unless `client` is given.
    """
    if client is None:
        from core.redis_client import get_redis

        client = get_redis(current_app._get_current_object())
    if event_type_id is None or day is None:
        pattern = f"{KEY_PREFIX}:*" if event_type_id is None else f"{KEY_PREFIX}:{int(event_type_id)}:*"
        keys = list(client.scan_iter(match=pattern, count=500))
    else:
        days = [day] if isinstance(day, (date, datetime)) else list(day)
        keys = []
        for item in days:
            base = item.astimezone(timezone.utc).date() if isinstance(item, datetime) else item
            keys += [cache_key(event_type_id, base + timedelta(days=offset)) for offset in (-1, 0, 1)]
    if not keys:
        return 0
    return int(client.delete(*keys))


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


__all__ = ["invalidate", "read", "write", "cache_key", "cache_field"]
