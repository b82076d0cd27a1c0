"""When a service keeps its staff member busy: the one definition of busy intervals.

A regular service keeps the staff member busy for its whole duration. A composite
service is a row of steps, and only the steps marked `staff_busy` block the staff
member (the 40-minute "Einwirkzeit" of a colouring is free for someone else).

Availability (is this slot free?), booking (which segments to write), the Cal.com
webhook (what an imported booking blocks) and the sync worker (which step a segment
is) all ask here, so they cannot disagree about what "busy" means.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping

from sqlalchemy.orm import Session

from core.booking_guard import Interval
from core.event_types import as_booked_by
from core.models import Service, Staff


def busy_intervals(service: Service, start: datetime) -> list[Interval]:
    """The intervals a service keeps its staff busy when it starts at `start`, each with
    the event type it is booked as by default (the step's own, else the service's)."""
    if not service.segments:
        return [Interval(start, start + timedelta(minutes=service.duration_minutes), service.calcom_event_type_id)]
    intervals, cursor = [], start
    for step in service.segments:  # gaps move the cursor too
        end = cursor + timedelta(minutes=step.duration_minutes)
        if step.staff_busy:
            intervals.append(Interval(cursor, end, step.calcom_event_type_id or service.calcom_event_type_id))
        cursor = end
    return intervals


def busy_for(session: Session, service: Service, staff: Staff, start: datetime, *,
             personal: Mapping[int, int] | None = None) -> list[Interval]:
    """`busy_intervals` as `staff` is booked for them: each interval carries the event
    type it is asked about and booked as (their own event type when one is mapped)."""
    return as_booked_by(session, service, staff, busy_intervals(service, start), personal=personal)


__all__ = ["busy_for", "busy_intervals"]
