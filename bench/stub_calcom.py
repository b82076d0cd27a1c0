"""A Cal.com that answers instantly: the slots fetch is short-circuited so that only
Slotguard's own work is measured. Everything else of the request runs for real."""

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

    def get_slots(self, event_type_id, start, end, time_zone, *, host_user_id=None, **_ignored) -> list[Slot]:
        starts, slots = self.slots.get(int(event_type_id), ([], []))
        return slots[bisect.bisect_left(starts, start):bisect.bisect_left(starts, end)]


@contextmanager
def instant_calcom(p: world.Plan) -> Iterator[InstantSlots]:
    """Replace the Cal.com client of the slots fetch (`booking.calcom_slots`) only."""
    from booking import calcom_slots

    stub = InstantSlots(p)
    original = calcom_slots.get_client
    calcom_slots.get_client = lambda purpose="availability", app=None: stub
    try:
        yield stub
    finally:
        calcom_slots.get_client = original
