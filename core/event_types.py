"""Which Cal.com event types stand for which service and staff member.

Cal.com keeps a host busy across every event type they host: a booking of Anna in
one event type takes her slots in all the others. So whoever learns that Anna's
calendar changed must forget cached slots of all her event types
(`event_types_of_staff`).
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Service, ServiceSegment, staff_services


def event_types_of_staff(session: Session, staff_ids: Iterable[int]) -> set[int]:
    """Every Cal.com event type these staff members take part in (one query)."""
    staff_ids = [int(s) for s in staff_ids if s is not None]
    if not staff_ids:
        return set()
    rows = session.execute(
        select(Service.calcom_event_type_id, ServiceSegment.calcom_event_type_id)
        .select_from(staff_services)
        .join(Service, Service.id == staff_services.c.service_id)
        .outerjoin(ServiceSegment, ServiceSegment.service_id == Service.id)
        .where(staff_services.c.staff_id.in_(staff_ids))
    )
    return {event_type_id for row in rows for event_type_id in row if event_type_id is not None}


__all__ = ["event_types_of_staff"]
