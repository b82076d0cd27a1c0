"""Give the emulator the same world as Slotguard's database (the demo).

Staff with a Cal.com user id become hosts, working their branch's opening hours in
the branch's time zone. Services (and composite steps with their own event type)
become event types hosted by the staff who offer them. Appointments the database
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
    if preload_bookings:
        summary.bookings = _preload_bookings(state, session)
    return summary


def _add_event_types(state: CalcomState, service: Service) -> int:
    hosts = tuple(s.calcom_user_id for s in service.staff if s.active and s.calcom_user_id in state.hosts)
    if not hosts:
        log.warning("service %s (event type %s) has no staff with a Cal.com user id; not emulated",
                    service.name, service.calcom_event_type_id)
        return 0
    own_steps = [seg.duration_minutes for seg in service.segments
                 if seg.staff_busy and seg.calcom_event_type_id in (None, service.calcom_event_type_id)]
    state.add_event_type(EventType(
        id=service.calcom_event_type_id, slug=_slug(service.name), title=service.name,
        length_minutes=service.duration_minutes, host_ids=hosts, other_lengths=tuple(sorted(set(own_steps))),
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


def _preload_bookings(state: CalcomState, session: Session) -> int:
    appointments = session.scalars(
        select(Appointment).where(Appointment.sync_status == SyncStatus.SYNCED,
                                  Appointment.calcom_booking_uid.is_not(None)).order_by(Appointment.id)
    )
    count = 0
    for appointment in appointments:
        host_id = appointment.staff.calcom_user_id
        if host_id not in state.hosts:
            continue
        for booking in _bookings_of(appointment, host_id):
            if booking.event_type_id not in state.event_types or booking.uid in state.bookings:
                continue
            state.load_booking(booking)
            count += 1
    return count


def _bookings_of(appointment: Appointment, host_id: int) -> list[EmulatedBooking]:
    """The Cal.com booking(s) of a synced appointment: one for a regular service, one
    per busy step for a composite one (each carrying the step in its metadata)."""
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
    if not composite or not segments:
        return [EmulatedBooking(
            id=appointment.calcom_booking_id or 900000 + appointment.id, uid=appointment.calcom_booking_uid,
            event_type_id=appointment.service.calcom_event_type_id, start=appointment.starts_at,
            end=appointment.ends_at, metadata=booking_metadata(appointment.id), **common)]
    bookings = []
    for index, segment in enumerate(sorted(segments, key=lambda s: s.starts_at)):
        bookings.append(EmulatedBooking(
            id=segment.calcom_booking_id or 900000 + appointment.id * 10 + index,
            uid=segment.calcom_booking_uid or f"{appointment.calcom_booking_uid}-{index}",
            event_type_id=segment.calcom_event_type_id or appointment.service.calcom_event_type_id,
            start=segment.starts_at, end=segment.ends_at,
            metadata=booking_metadata(appointment.id, segment.position), **common))
    return bookings


def _slug(name: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})
    text = name.translate(table).lower()
    return "-".join("".join(ch if ch.isalnum() else " " for ch in text).split())


__all__ = ["load_world", "WorldSummary", "SLOT_INTERVAL_MINUTES"]
