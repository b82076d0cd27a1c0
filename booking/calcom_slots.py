"""What Cal.com offers: free slot ranges per event type, staff member and local day.

This is the one place the voice functions talk to Cal.com about availability. It asks
the slot cache first and Cal.com (client `purpose="availability"`, short timeouts)
for the rest — one request per event type and staff member covering all missing days,
those requests in parallel — and writes what it learnt back to the cache.

When Cal.com cannot answer (timeout, 5xx, 429, garbage) it raises
`CalendarUnavailable`. The caller then hears "please try again in a moment": a slot is
never called free when Cal.com's side is unknown.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Sequence

from flask import Flask, current_app

from calcom import slot_cache
from calcom.client import get_client
from calcom.errors import CalcomError
from core.clock import local_day_bounds, to_local
from core.redis_client import get_redis

logger = logging.getLogger(__name__)

MAX_PARALLEL_REQUESTS = 6


class CalendarUnavailable(Exception):
    """Cal.com could not say which slots are free."""


@dataclass(frozen=True)
class SlotQuery:
    event_type_id: int
    host_user_id: int | None  # a staff member's Cal.com user id; None: any host


Ranges = list[tuple[datetime, datetime]]


class CalcomSlots:
    """Offered slot ranges, cached; built per request from the app's configuration."""

    def __init__(self, app: Flask, tz_name: str) -> None:
        self.app = app
        self.tz_name = tz_name
        self.cache_seconds = int(app.config.get("SLOT_CACHE_SECONDS", 30))
        self.redis = get_redis(app)

    @classmethod
    def for_branch(cls, tz_name: str) -> CalcomSlots:
        return cls(current_app._get_current_object(), tz_name)

    def offered(self, queries: Sequence[SlotQuery], days: Sequence[date]) -> dict[SlotQuery, dict[date, Ranges]]:
        """For each query and local day: the (start, end) ranges Cal.com offers, UTC."""
        queries = list(dict.fromkeys(queries))
        days = sorted(set(days))
        entries = [(q.event_type_id, q.host_user_id, self.tz_name, d) for q in queries for d in days]
        cached = slot_cache.read(self.redis, entries, self.cache_seconds)
        result: dict[SlotQuery, dict[date, Ranges]] = defaultdict(dict)
        missing: dict[SlotQuery, list[date]] = defaultdict(list)
        for query in queries:
            for day in days:
                hit = cached.get((query.event_type_id, query.host_user_id, self.tz_name, day))
                if hit is None:
                    missing[query].append(day)
                else:
                    result[query][day] = hit
        if missing:
            for query, fetched in self._fetch_all(missing).items():
                result[query].update(fetched)
        return dict(result)

    def _fetch_all(self, missing: dict[SlotQuery, list[date]]) -> dict[SlotQuery, dict[date, Ranges]]:
        if len(missing) == 1:
            ((query, days),) = missing.items()
            return {query: self._fetch(query, days)}
        workers = min(MAX_PARALLEL_REQUESTS, len(missing))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="calcom-slots") as pool:
            futures = {query: pool.submit(self._fetch_in_context, query, days) for query, days in missing.items()}
            return {query: future.result() for query, future in futures.items()}

    def _fetch_in_context(self, query: SlotQuery, days: list[date]) -> dict[date, Ranges]:
        with self.app.app_context():
            return self._fetch(query, days)

    def _fetch(self, query: SlotQuery, days: list[date]) -> dict[date, Ranges]:
        """One Cal.com request covering `days` (first to last), split into local days."""
        start, _ = local_day_bounds(days[0], self.tz_name)
        _, end = local_day_bounds(days[-1], self.tz_name)
        client = get_client(purpose="availability", app=self.app)
        fetched_at = slot_cache.now_ms()  # before asking: a change meanwhile invalidates this answer
        try:
            slots = client.get_slots(
                query.event_type_id, start, end, self.tz_name, host_user_id=query.host_user_id
            )
        except CalcomError as exc:
            logger.warning(
                "Cal.com slots for event type %s (host %s) unavailable: %s",
                query.event_type_id, query.host_user_id, exc,
            )
            raise CalendarUnavailable(str(exc)) from exc
        by_day: dict[date, Ranges] = {day: [] for day in days}
        for slot in slots:
            day = to_local(slot.start, self.tz_name).date()
            if day in by_day:
                by_day[day].append((slot.start, slot.end))
        slot_cache.write(self.redis, query.event_type_id, query.host_user_id, self.tz_name, by_day, self.cache_seconds,
                         fetched_at_ms=fetched_at)
        return by_day


__all__ = ["CalcomSlots", "CalendarUnavailable", "SlotQuery", "Ranges"]
