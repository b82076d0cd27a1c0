"""Which Cal.com event type stands for a service done by a staff member — the one rule
everybody uses (availability, booking, sync worker, webhook, emulator world).

Cal.com's `POST /v2/bookings` has no host field. For a team (round-robin) event type
Cal.com gives the booking to the first free host, so a booking for Anna can land on
Jonas's calendar. The Cal.com set-up that books one specific person is an event type
of that person: a personal event type owned by them, or a team event type with them
as its only fixed host. `staff_services.calcom_event_type_id` names it per staff
member and service; `event_type_for` applies it:

1. a busy step of a composite service with an event type of its own (not the
   service's) keeps that event type — steps are not mapped per person;
2. otherwise the staff member's own event type for the service, when mapped;
3. otherwise the service's event type (the team event type: availability then asks
   Cal.com about that host with `rrHostSubsetIds`, and the sync worker checks the
   host Cal.com chose afterwards and warns when it is someone else).

Cal.com keeps a host busy across every event type they host: a booking of Anna in one
event type takes her slots in all the others, so whoever learns that Anna's calendar
changed forgets the cached slots of all her event types (`event_types_of_staff`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Mapping, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.booking_guard import Interval
from core.models import Service, ServiceSegment, Staff, staff_services


class HasEventType(Protocol):
    """A busy step of a service: a `ServiceSegment`, or a `booking_guard.Interval` from
    `busy_intervals` (whose event type is the step's own or the service's)."""

    calcom_event_type_id: int | None


def personal_event_types(session: Session, service_id: int, staff_ids: Iterable[int]) -> dict[int, int]:
    """Staff id → their own Cal.com event type for the service, for the mapped ones (one query)."""
    staff_ids = [int(s) for s in staff_ids]
    if not staff_ids:
        return {}
    rows = session.execute(
        select(staff_services.c.staff_id, staff_services.c.calcom_event_type_id).where(
            staff_services.c.service_id == service_id,
            staff_services.c.staff_id.in_(staff_ids),
            staff_services.c.calcom_event_type_id.is_not(None),
        )
    )
    return {staff_id: event_type_id for staff_id, event_type_id in rows}


def event_type_for(
    session: Session,
    service: Service,
    staff: Staff,
    segment: HasEventType | None = None,
    *,
    personal: Mapping[int, int] | None = None,
) -> int | None:
    """The Cal.com event type to ask about and book for `staff` doing `service` (or one
    busy `segment` of it); None for a service Cal.com does not know.

    `personal` is `personal_event_types(...)` when the caller already loaded it for
    several staff members (then no query is made).
    """
    step_own = getattr(segment, "calcom_event_type_id", None) if segment is not None else None
    if step_own is not None and step_own != service.calcom_event_type_id:
        return step_own
    if personal is None:
        personal = personal_event_types(session, service.id, [staff.id])
    return personal.get(staff.id) or service.calcom_event_type_id


def as_booked_by(session: Session, service: Service, staff: Staff, intervals: Iterable[Interval], *,
                 personal: Mapping[int, int] | None = None) -> list[Interval]:
    """The service's busy `intervals` (from `core.busy.busy_intervals`), each carrying the
    event type it is asked about and booked as when `staff` does it — what a new
    appointment records in `AppointmentSegment.calcom_event_type_id`."""
    if personal is None:
        personal = personal_event_types(session, service.id, [staff.id])
    return [replace(interval, calcom_event_type_id=event_type_for(session, service, staff, interval,
                                                                  personal=personal))
            for interval in intervals]


def event_types_of_segments(session: Session, service: Service, staff: Staff, count: int, *,
                            personal: Mapping[int, int] | None = None) -> list[int | None]:
    """The event type of each of an appointment's `count` busy segments (in time order)
    when `staff` does `service`: the n-th busy segment is the service's n-th busy step."""
    steps = service.busy_steps
    if personal is None:
        personal = personal_event_types(session, service.id, [staff.id])
    return [event_type_for(session, service, staff, steps[rank] if rank < len(steps) else None, personal=personal)
            for rank in range(count)]


def set_staff_event_type(session: Session, staff_id: int, service_id: int, event_type_id: int | None) -> None:
    """Map (or with None unmap) a staff member's own event type for a service they offer.

    Raises LookupError when the staff member does not offer the service. Not committed.
    """
    result = session.execute(
        update(staff_services)
        .where(staff_services.c.staff_id == staff_id, staff_services.c.service_id == service_id)
        .values(calcom_event_type_id=event_type_id)
    )
    if result.rowcount != 1:
        raise LookupError(f"staff member {staff_id} does not offer service {service_id}")


def staff_event_type_mappings(session: Session) -> dict[tuple[int, int], int]:
    """(staff id, service id) → that staff member's own event type, for every mapped pair."""
    rows = session.execute(select(staff_services.c.staff_id, staff_services.c.service_id,
                                  staff_services.c.calcom_event_type_id)
                           .where(staff_services.c.calcom_event_type_id.is_not(None)))
    return {(staff_id, service_id): event_type_id for staff_id, service_id, event_type_id in rows}


def owner_of_event_type(session: Session, event_type_id: int | None) -> tuple[Staff, Service] | None:
    """The staff member and service whose own event type this is; None for any other
    (a team event type, or one Slotguard does not know)."""
    if event_type_id is None:
        return None
    row = session.execute(
        select(Staff, Service)
        .join(staff_services, staff_services.c.staff_id == Staff.id)
        .join(Service, Service.id == staff_services.c.service_id)
        .where(staff_services.c.calcom_event_type_id == event_type_id)
    ).first()
    return (row[0], row[1]) if row is not None else None


def event_types_of_staff(session: Session, staff_ids: Iterable[int]) -> set[int]:
    """Every Cal.com event type these staff members take part in (one query): the
    services they offer, their steps' own event types and their personal ones."""
    staff_ids = [int(s) for s in staff_ids if s is not None]
    if not staff_ids:
        return set()
    rows = session.execute(
        select(staff_services.c.calcom_event_type_id, Service.calcom_event_type_id,
               ServiceSegment.calcom_event_type_id)
        .select_from(staff_services)
        .join(Service, Service.id == staff_services.c.service_id)
        .outerjoin(ServiceSegment, ServiceSegment.service_id == Service.id)
        .where(staff_services.c.staff_id.in_(staff_ids))
    )
    return {event_type_id for row in rows for event_type_id in row if event_type_id is not None}


__all__ = [
    "as_booked_by",
    "event_type_for",
    "event_types_of_segments",
    "event_types_of_staff",
    "owner_of_event_type",
    "personal_event_types",
    "set_staff_event_type",
    "staff_event_type_mappings",
]
