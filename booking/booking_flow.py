"""start_booking: turn a checked (ideally held) slot into an appointment, exactly once.

Order of events, each step for a reason:

1. A retry of the same call for the same slot (Retell retries on timeouts) finds the
   appointment it already made and answers the same — before the hold is looked at,
   because the first attempt released it.
2. With a lock key the hold must still belong to this call (Lua compare-and-extend);
   otherwise `lock_expired`. Without one (older agent flows) the slot is checked now,
   exactly like check_availability, and held for the moment of the insert.
3. One guarded transaction (`core.booking_guard`): the call is serialised
   (PostgreSQL advisory lock on the call id; SQLite's BEGIN IMMEDIATE already
   serialises writers), the retry check is repeated inside it, the customer is found
   or created, and the appointment with its busy segments is inserted. The database
   refuses an overlap (`SlotTaken`) and then nothing is written.
4. After the commit the hold is released and the Cal.com sync is queued — or, with
   FEATURE_ASYNC_BOOKING=false, made before answering (`sync_booking`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from booking import phrases, responses
from booking.availability import CalendarUnavailable, Checker, SlotOption
from booking.errors import CallerError
from booking.holds import HoldsUnavailable, LockRef, cell_keys
from calcom.slot_cache import invalidate_quietly as invalidate_slot_cache
from booking.sync_booking import CalendarFailed, CalendarRefused, create_in_calcom_now
from core.booking_guard import NewAppointment, SlotTaken, add_appointment, guarded_transaction
from core.customers import find_or_create_customer
from core.models import ACTIVE_STATUSES, Appointment, AppointmentSource, Service, SyncStatus
from core.queues import enqueue_sync_quietly

logger = logging.getLogger(__name__)


@dataclass
class BookingRequest:
    service: Service
    start: datetime
    name: str
    phone: str  # E.164
    email: str | None
    notes: str | None
    call_id: str
    lock: LockRef | None  # from a lock key, already checked to match service and start


@dataclass(frozen=True)
class Booked:
    """What the caller is told, taken from the rows before the commit expired them (so
    the answer costs no further queries)."""

    appointment_id: int
    starts_at: datetime
    service_name: str
    staff_name: str
    customer_name: str
    repeated: bool = False  # a retry: the appointment was made by an earlier request

    @classmethod
    def of(cls, appointment: Appointment, *, repeated: bool) -> "Booked":
        return cls(appointment.id, appointment.starts_at, appointment.service.name, appointment.staff.name,
                   appointment.customer.name, repeated=repeated)


def start_booking(session: Session, checker: Checker, request: BookingRequest, *, async_booking: bool) -> Booked:
    """Book the slot or raise `CallerError` (lock_expired, slot_taken, calendar_unavailable,
    booking_failed); on any error nothing is left written."""
    repeat = find_repeat(session, request)
    if repeat is not None:
        return Booked.of(repeat, repeated=True)

    option, hold_cells = _secure_slot(checker, request)
    try:
        booked, sync_version = _insert(session, checker, request, option)
    except SlotTaken:
        _release(checker, request.call_id, hold_cells)
        repeat = find_repeat(session, request)
        if repeat is not None:
            return Booked.of(repeat, repeated=True)
        raise slot_taken(checker, fresh_alternatives(checker, request.start), request.start) from None
    _release(checker, request.call_id, hold_cells)
    if booked.repeated:
        return booked

    if async_booking:
        # A new appointment's first change: no job of that id can exist yet.
        enqueue_sync_quietly(booked.appointment_id, "create", sync_version, new_job=True)
        return booked
    try:
        create_in_calcom_now(session, session.get(Appointment, booked.appointment_id))
    except CalendarRefused:
        # Cal.com knows something our cached view of it did not.
        invalidate_slot_cache({i.calcom_event_type_id for i in option.busy} | {request.service.calcom_event_type_id},
                              [request.start], why="Cal.com refused a booking")
        raise slot_taken(checker, fresh_alternatives(checker, request.start), request.start) from None
    except CalendarFailed:
        raise CallerError("booking_failed", phrases.BOOKING_FAILED) from None
    return booked


def find_repeat(session: Session, request: BookingRequest, service_id: int | None = None) -> Appointment | None:
    """This call's active appointment for the same service and start, if any (pass
    `service_id` when `request.service` may be expired, to not reload it for its id)."""
    return session.scalar(
        select(Appointment)
        .where(
            Appointment.call_id == request.call_id,
            Appointment.service_id == (request.service.id if service_id is None else service_id),
            Appointment.starts_at == request.start,
            Appointment.status.in_(ACTIVE_STATUSES),
        )
        .limit(1)
    )


def _secure_slot(checker: Checker, request: BookingRequest) -> tuple[SlotOption, list[str]]:
    """The slot to insert and the hold cells to release afterwards."""
    if request.lock is not None and checker.holds is not None:
        member = checker.staff_by_id(request.lock.staff_id)
        option = checker.option(member, request.start)
        if option is None:  # past or outside opening hours by now
            raise CallerError("lock_expired", phrases.LOCK_EXPIRED)
        cells = cell_keys(member.id, option.busy)
        try:
            still_ours = checker.holds.extend(request.call_id, cells)
        except HoldsUnavailable as exc:
            logger.warning("cannot verify hold %s (Redis: %s); the database guard decides", request.lock, exc)
            return option, []
        if not still_ours:
            logger.info("hold of call %s for %s expired or taken", request.call_id, request.lock)
            raise CallerError("lock_expired", phrases.LOCK_EXPIRED)
        return option, cells

    if request.lock is None and checker.holds is not None:  # without holds no lock key can exist
        logger.warning(
            "start_booking without lock_key (call %s): checking the slot now; configure the agent to call "
            "check_availability first and pass its lock_key",
            request.call_id,
        )
    try:
        result = checker.check(request.start)
    except CalendarUnavailable:
        raise CallerError("calendar_unavailable", phrases.CALENDAR_UNAVAILABLE) from None
    if not result.available:
        raise slot_taken(checker, result.alternatives, request.start)
    cells = cell_keys(result.slot.staff_id, result.slot.busy) if result.lock_key else []
    return result.slot, cells


def _insert(
    session: Session, checker: Checker, request: BookingRequest, option: SlotOption
) -> tuple[Booked, int]:
    """The answer and the new appointment's sync version. Everything read from a row is
    read before the commit: the commit expires the rows, and reading one afterwards
    would load it again (on SQLite `guarded_transaction` also ends the read
    transaction first, which expires them as well)."""
    branch = checker.branch
    company_id, branch_id = branch.company_id, branch.id
    service_id, service_name = request.service.id, request.service.name
    staff_name = checker.staff_by_id(option.staff_id).name
    with guarded_transaction(session):
        _serialise_call(session, request.call_id)
        repeat = find_repeat(session, request, service_id)
        if repeat is not None:
            return Booked.of(repeat, repeated=True), repeat.sync_version
        customer = find_or_create_customer(session, company_id, name=request.name, phone=request.phone,
                                           email=request.email)
        appointment = add_appointment(
            session,
            NewAppointment(
                company_id=company_id,
                branch_id=branch_id,
                service_id=service_id,
                staff_id=option.staff_id,
                customer_id=customer.id,
                busy=list(option.busy),
                starts_at=option.start,
                ends_at=option.end,
                source=AppointmentSource.VOICE,
                sync_status=SyncStatus.PENDING,
                call_id=request.call_id,
                notes=request.notes,
            ),
        )
        booked = Booked(appointment.id, option.start, service_name, staff_name, customer.name)
        sync_version = appointment.sync_version
    logger.info("call %s booked appointment %s", request.call_id, booked.appointment_id)
    return booked, sync_version


def _serialise_call(session: Session, call_id: str) -> None:
    """On PostgreSQL, make concurrent requests of one call take turns until commit, so
    a retry arriving while the first attempt is still writing sees its appointment."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already lets one writer in at a time
    digest = hashlib.blake2b(f"slotguard-call:{call_id}".encode(), digest_size=8).digest()
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest, "big", signed=True)})


def _release(checker: Checker, call_id: str, cells: list[str]) -> None:
    if not cells or checker.holds is None:
        return
    try:
        checker.holds.release(call_id, cells)
    except HoldsUnavailable as exc:
        logger.warning("hold not released (it expires by itself): %s", exc)


def queue_sync(appointment: Appointment, action: str) -> None:
    """Queue the Cal.com sync; if Redis is down the appointment stays pending and the
    sync sweeper picks it up, so the caller's booking stands either way."""
    enqueue_sync_quietly(appointment.id, action, appointment.sync_version)


def fresh_alternatives(checker: Checker, near: datetime) -> list[SlotOption]:
    """Alternatives after a lost race, computed from a fresh view of the database."""
    fresh = Checker(
        session=checker.session, branch=checker.branch, service=checker.service, staff=checker.staff,
        slots=checker.slots, holds=checker.holds, owner=checker.owner, now=checker.now, moving=checker.moving,
        personal=checker.personal,
    )
    try:
        fresh.load_days([fresh.local_day(near)])
        return fresh.alternatives(fresh.local_day(near), near=near)
    except CalendarUnavailable:
        return []


def slot_taken(checker: Checker, alternatives: list[SlotOption], near: datetime) -> CallerError:
    tz_name = checker.branch.timezone
    spoken = phrases.spoken_starts([o.start for o in alternatives], tz_name, day=checker.local_day(near))
    offers = responses.alternatives(alternatives, tz_name)
    return CallerError("slot_taken", phrases.slot_taken(spoken), alternatives=offers)


__all__ = ["BookingRequest", "Booked", "start_booking", "queue_sync", "slot_taken"]
