"""Give the emulator the same world as Slotguard's database (the demo).

Staff with a Cal.com user id become hosts, working their branch's opening hours in
the branch's time zone. Services (and composite steps with their own event type)
become event types hosted by the staff who offer them (team event types: round robin,
Cal.com picks the host). A staff member's own event type for a service
(`staff_services.calcom_event_type_id`) becomes a personal event type with that user
as its only host, as in a real Cal.com set-up that books one specific person.
Appointments the database
says are synced get their Cal.com booking pre-loaded under the same uid, so that the
demo starts consistent: Cal.com knows exactly what Slotguard believes it knows, and
the appointments still pending or failed are the ones Cal.com has never seen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from calcom.client import phone_only_email
from calcom.emulator_state import CalcomState, EmulatedBooking, EventType, Host
from calcom.metadata import booking_metadata
from core.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentSource,
    AppointmentStatus,
    Service,
    ServiceKind,
    Staff,
    SyncStatus,
)
from core.event_types import event_types_of_segments, staff_event_type_mappings

log = logging.getLogger("calcom.emulator")

# The grid on which slots are offered: Cal.com's "slot interval" option, set like a
# salon or workshop would (every half hour) rather than Cal.com's default of the
# event length, so a 100-minute service can still start at 9:30.
SLOT_INTERVAL_MINUTES = 30


@dataclass
class WorldSummary:
    hosts: int = 0
    event_types: int = 0
    bookings: int = 0


def load_world(state: CalcomState, session: Session, *, preload_bookings: bool = True) -> WorldSummary:
    summary = WorldSummary()
    for staff in session.scalars(select(Staff).where(Staff.calcom_user_id.is_not(None)).order_by(Staff.id)):
        if staff.calcom_user_id in state.hosts:
            log.warning("Cal.com user %s is used by more than one staff member; keeping the first",
                        staff.calcom_user_id)
            continue
        username = staff.calcom_username or f"user-{staff.calcom_user_id}"
        state.add_host(Host(
            id=staff.calcom_user_id, name=staff.name, email=staff.email or f"{username}@example.com",
            username=username, time_zone=staff.branch.timezone,
            working_hours={day: [list(w) for w in windows] for day, windows in (staff.branch.opening_hours or {}).items()},
        ))
        summary.hosts += 1
    for service in session.scalars(select(Service).where(Service.calcom_event_type_id.is_not(None)).order_by(Service.id)):
        summary.event_types += _add_event_types(state, service)
    personal = staff_event_type_mappings(session)
    for (staff_id, service_id), event_type_id in sorted(personal.items(), key=lambda item: item[1]):
        summary.event_types += _add_personal_event_type(state, session.get(Staff, staff_id),
                                                        session.get(Service, service_id), event_type_id)
    if preload_bookings:
        summary.bookings = _preload_bookings(state, session, personal)
    return summary


def _add_personal_event_type(state: CalcomState, staff: Staff, service: Service, event_type_id: int) -> int:
    """A personal event type: the service as one person's own, that user its only host."""
    if not staff.active or staff.calcom_user_id not in state.hosts:
        log.warning("event type %s (%s of %s) has no active host with a Cal.com user id; not emulated",
                    event_type_id, service.name, staff.name)
        return 0
    host = state.hosts[staff.calcom_user_id]
    state.add_event_type(EventType(
        id=event_type_id, slug=_slug(f"{host.username} {service.name}"), title=f"{service.name} ({staff.name})",
        length_minutes=service.duration_minutes, host_ids=(staff.calcom_user_id,),
        other_lengths=_own_step_lengths(service), slot_interval_minutes=SLOT_INTERVAL_MINUTES,
    ))
    return 1


def _own_step_lengths(service: Service) -> tuple[int, ...]:
    """The lengths a composite service's steps book its own event type with (`lengthInMinutes`)."""
    return tuple(sorted({seg.duration_minutes for seg in service.segments
                         if seg.staff_busy and seg.calcom_event_type_id in (None, service.calcom_event_type_id)}))


def _add_event_types(state: CalcomState, service: Service) -> int:
    hosts = tuple(s.calcom_user_id for s in service.staff if s.active and s.calcom_user_id in state.hosts)
    if not hosts:
        log.warning("service %s (event type %s) has no staff with a Cal.com user id; not emulated",
                    service.name, service.calcom_event_type_id)
        return 0
    state.add_event_type(EventType(
        id=service.calcom_event_type_id, slug=_slug(service.name), title=service.name,
        length_minutes=service.duration_minutes, host_ids=hosts, other_lengths=_own_step_lengths(service),
        slot_interval_minutes=SLOT_INTERVAL_MINUTES,
    ))
    added = 1
    for segment in service.segments:
        if segment.staff_busy and segment.calcom_event_type_id not in (None, service.calcom_event_type_id):
            state.add_event_type(EventType(
                id=segment.calcom_event_type_id, slug=_slug(f"{service.name} {segment.label}"),
                title=f"{service.name}: {segment.label}", length_minutes=segment.duration_minutes, host_ids=hosts,
                slot_interval_minutes=SLOT_INTERVAL_MINUTES,
            ))
            added += 1
    return added


def _preload_bookings(state: CalcomState, session: Session, personal: dict[tuple[int, int], int]) -> int:
    appointments = session.scalars(
        select(Appointment).where(Appointment.sync_status == SyncStatus.SYNCED,
                                  Appointment.calcom_booking_uid.is_not(None)).order_by(Appointment.id)
    )
    count = 0
    for appointment in appointments:
        host_id = appointment.staff.calcom_user_id
        if host_id not in state.hosts:
            continue
        for booking in _bookings_of(session, appointment, host_id, personal):
            if booking.event_type_id not in state.event_types or booking.uid in state.bookings:
                continue
            state.load_booking(booking)
            count += 1
    return count


def _bookings_of(session: Session, appointment: Appointment, host_id: int,
                 personal: dict[tuple[int, int], int]) -> list[EmulatedBooking]:
    """The Cal.com booking(s) of a synced appointment: one for a regular service, one
    per busy step for a composite one (each carrying the step in its metadata), under
    the event type each segment was booked as (else the one it would be booked as)."""
    active = appointment.status in ACTIVE_STATUSES
    customer = appointment.customer
    attendee = {"name": customer.name, "email": customer.email or (
        phone_only_email(customer.phone) if customer.phone else f"customer-{customer.id}@example.com"),
        "timeZone": appointment.branch.timezone, "language": "de"}
    if customer.phone:
        attendee["phoneNumber"] = customer.phone
    common = dict(
        host_id=host_id, attendees=[attendee], created_at=appointment.created_at,
        updated_at=appointment.updated_at or appointment.created_at,
        title=f"{appointment.service.name} between {appointment.staff.name} and {customer.name}",
        status="cancelled" if appointment.status == AppointmentStatus.CANCELLED else "accepted",
        cancellation_reason=appointment.cancellation_reason,
        origin="direct" if appointment.source == AppointmentSource.CALCOM else "api",
    )
    composite = appointment.service.kind == ServiceKind.COMPOSITE
    segments = [s for s in appointment.segments if s.active] if active else [
        s for s in appointment.segments if appointment.starts_at <= s.starts_at and s.ends_at <= appointment.ends_at]
    segments.sort(key=lambda s: s.starts_at)
    own = personal.get((appointment.staff_id, appointment.service_id))
    resolved = event_types_of_segments(session, appointment.service, appointment.staff, max(len(segments), 1),
                                       personal={appointment.staff_id: own} if own else {})
    if not composite or not segments:
        recorded = segments[0].calcom_event_type_id if segments else None
        return [EmulatedBooking(
            id=appointment.calcom_booking_id or 900000 + appointment.id, uid=appointment.calcom_booking_uid,
            event_type_id=recorded or resolved[0], start=appointment.starts_at,
            end=appointment.ends_at, metadata=booking_metadata(appointment.id), **common)]
    bookings = []
    for index, segment in enumerate(segments):
        bookings.append(EmulatedBooking(
            id=segment.calcom_booking_id or 900000 + appointment.id * 10 + index,
            uid=segment.calcom_booking_uid or f"{appointment.calcom_booking_uid}-{index}",
            event_type_id=segment.calcom_event_type_id or resolved[index],
            start=segment.starts_at, end=segment.ends_at,
            metadata=booking_metadata(appointment.id, segment.position), **common))
    return bookings


def _slug(name: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})
    text = name.translate(table).lower()
    return "-".join("".join(ch if ch.isalnum() else " " for ch in text).split())


__all__ = ["load_world", "WorldSummary", "SLOT_INTERVAL_MINUTES"]
