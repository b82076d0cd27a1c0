"""A Cal.com that answers instantly: the slots fetch is short-circuited so that only
Slotguard's own work is measured. Everything else of the request runs for real.

What is replaced is `CalcomSlots._fetch_all` — asking Cal.com for the missing
(event type, host, days): the HTTP requests, their parallel fan-out in a thread pool
and the parsing of the answers. It returns what an empty Cal.com calendar offers:
every half-hour start within opening hours. Local appointments, holds, the cache
lookup (when on) and everything around them run as in production."""

from __future__ import annotations

import bisect
from contextlib import contextmanager
from datetime import datetime, time, timedelta, timezone
from typing import Iterator

from calcom.client import Slot

from bench import world


class InstantSlots:
    """Every half-hour start in opening hours for the next weeks, per event type —
    what an empty Cal.com calendar offers (local appointments block the rest)."""

    def __init__(self, p: world.Plan, days: int = 40) -> None:
        today = datetime.now(timezone.utc).astimezone(world.TZ).date() - timedelta(days=1)
        self.slots: dict[int, tuple[list[datetime], list[Slot]]] = {}
        self.by_day: dict[int, dict] = {}
        for company in p.companies:
            for k, event_type_id in enumerate(company.event_type_ids):
                length = timedelta(minutes=world.SERVICES[k][1])
                found = []
                for offset in range(days):
                    day = today + timedelta(days=offset)
                    hours = world.OPENING_HOURS.get(str(day.isoweekday()))
                    if not hours:
                        continue
                    opens = datetime.combine(day, time.fromisoformat(hours[0][0]), world.TZ)
                    closes = datetime.combine(day, time.fromisoformat(hours[0][1]), world.TZ)
                    cursor = opens
                    while cursor + length <= closes:
                        start = cursor.astimezone(timezone.utc)
                        found.append(Slot(start, start + length))
                        cursor += timedelta(minutes=30)
                self.slots[event_type_id] = ([s.start for s in found], found)
                per_day = self.by_day.setdefault(event_type_id, {})
                for slot in found:
                    per_day.setdefault(slot.start.astimezone(world.TZ).date(), []).append((slot.start, slot.end))

    def get_slots(self, event_type_id, start, end, time_zone, *, host_user_id=None, **_ignored) -> list[Slot]:
        starts, slots = self.slots.get(int(event_type_id), ([], []))
        return slots[bisect.bisect_left(starts, start):bisect.bisect_left(starts, end)]

    def fetch_all(self, calendar, missing) -> dict:
        """`CalcomSlots._fetch_all`'s answer: {query: {local day: [(start, end), …]}},
        looked up in what was prepared (the Cal.com side costs next to nothing)."""
        return {query: {day: list(self.by_day.get(query.event_type_id, {}).get(day, ())) for day in days}
                for query, days in missing.items()}


@contextmanager
def instant_calcom(p: world.Plan) -> Iterator[InstantSlots]:
    """Replace the Cal.com slots fetch of `booking.calcom_slots.CalcomSlots` only."""
    from booking.calcom_slots import CalcomSlots

    stub = InstantSlots(p)
    original = CalcomSlots._fetch_all
    CalcomSlots._fetch_all = lambda calendar, missing: stub.fetch_all(calendar, missing)
    try:
        yield stub
    finally:
        CalcomSlots._fetch_all = original
