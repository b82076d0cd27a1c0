"""The caller's own appointments: list, cancel, reschedule.

"Own" means: booked at the branch the call is for (and so its company), for a
customer of that company whose phone number is the one the caller calls from
(`call.from_number`, matched exactly in E.164). An appointment id that belongs to
someone else — another caller, another branch, another company — is answered exactly
like one that does not exist, so nobody learns about other people's appointments by
guessing ids. Times are spoken and read in that branch's time zone.

Rescheduling keeps the old slot until the new one is secured: the new time is checked
like a new booking (Cal.com, local, holds — the appointment's own time counts as free
so it can move by 15 minutes) and then moved in one guarded transaction
(`core.booking_guard.move_appointment`); if the database refuses, the appointment
stays where it was. The Cal.com reschedule / cancel is queued after the commit.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from booking import phrases
from booking.availability import CalendarUnavailable, Checker
from booking.booking_flow import fresh_alternatives, queue_sync, slot_taken
from booking.errors import CallerError
from booking.holds import HoldsUnavailable, cell_keys
from core.booking_guard import SlotTaken, guarded_transaction, lock_appointment, move_appointment, release_appointment
from core.clock import local_day_bounds
from core.models import ACTIVE_STATUSES, Appointment, AppointmentStatus, Branch, Customer, SyncAction

logger = logging.getLogger(__name__)

MAX_LISTED = 5


def describe(appointment: Appointment) -> str:
    """`Herrenhaarschnitt am Dienstag, 8. Dezember, um 10:00 Uhr bei Anna Becker`"""
    return phrases.appointment_line(
        appointment.service.name, phrases.spoken_datetime(appointment.starts_at, appointment.branch.timezone),
        appointment.staff.name,
    )


def _own(branch: Branch, phone: str):
    return (
        select(Appointment)
        .join(Customer, Customer.id == Appointment.customer_id)
        .where(
            Appointment.branch_id == branch.id,
            Appointment.company_id == branch.company_id,
            Customer.company_id == branch.company_id,
            Customer.phone == phone,
        )
    )


def upcoming(session: Session, branch: Branch, phone: str, now: datetime, *, limit: int = MAX_LISTED) -> list[Appointment]:
    """The caller's active appointments at this branch from now on, soonest first."""
    return list(
        session.scalars(
            _own(branch, phone)
            .where(Appointment.status.in_(ACTIVE_STATUSES), Appointment.starts_at >= now)
            .order_by(Appointment.starts_at)
            .limit(limit)
        )
    )


def find_own(
    session: Session,
    branch: Branch,
    phone: str,
    now: datetime,
    *,
    appointment_id: int | None,
    day: date | None,
    start: datetime | None,
) -> Appointment:
    """One of the caller's appointments at this branch, by id or by local day (and
    time). Raises `CallerError` not_found / ambiguous_appointment / appointment_missing."""
    if appointment_id is not None:
        appointment = session.scalar(_own(branch, phone).where(Appointment.id == appointment_id))
        if appointment is None:
            raise CallerError("not_found", phrases.APPOINTMENT_NOT_FOUND)
        return appointment
    if day is None:
        raise CallerError("invalid_argument", phrases.APPOINTMENT_REFERENCE_MISSING)
    if start is not None:
        matches = list(
            session.scalars(
                _own(branch, phone).where(Appointment.starts_at == start).order_by(Appointment.id.desc())
            )
        )
        active = [a for a in matches if a.is_active]
        if active or matches:
            return (active or matches)[0]
        raise CallerError("not_found", phrases.APPOINTMENT_NOT_FOUND)
    day_start, day_end = local_day_bounds(day, branch.timezone)
    on_day = list(
        session.scalars(
            _own(branch, phone)
            .where(
                Appointment.status.in_(ACTIVE_STATUSES),
                Appointment.starts_at >= max(day_start, now),
                Appointment.starts_at < day_end,
            )
            .order_by(Appointment.starts_at)
            .limit(MAX_LISTED)
        )
    )
    if not on_day:
        raise CallerError("not_found", phrases.APPOINTMENT_NOT_FOUND)
    if len(on_day) > 1:
        raise CallerError("ambiguous_appointment", phrases.which_appointment([describe(a) for a in on_day]))
    return on_day[0]


def cancel(session: Session, appointment: Appointment, now: datetime, *, reason: str) -> bool:
    """Cancel and queue the Cal.com cancel. False when it was cancelled already (a retry)."""
    if appointment.status == AppointmentStatus.CANCELLED:
        return False
    if not appointment.is_active or appointment.starts_at <= now:
        raise CallerError("past_appointment", phrases.APPOINTMENT_IN_PAST)
    appointment_id = appointment.id
    with guarded_transaction(session):
        current = lock_appointment(session, appointment_id)
        if current is None or current.status == AppointmentStatus.CANCELLED:
            return False
        if not current.is_active:  # completed or no-show meanwhile
            raise CallerError("past_appointment", phrases.APPOINTMENT_IN_PAST)
        release_appointment(current, reason=reason, request=SyncAction.CANCEL)
    queue_sync(current, SyncAction.CANCEL.value)
    logger.info("appointment %s cancelled by the caller", appointment_id)
    return True


def reschedule(session: Session, checker: Checker, appointment: Appointment, new_start: datetime) -> bool:
    """Move the appointment to `new_start` (same staff member). False when it is there
    already (a retry). Raises `CallerError` slot_taken (with alternatives),
    calendar_unavailable or past_appointment."""
    if not appointment.is_active or appointment.starts_at <= checker.now:
        raise CallerError("past_appointment", phrases.APPOINTMENT_IN_PAST)
    if appointment.starts_at == new_start:
        return False
    try:
        result = checker.check(new_start)
    except CalendarUnavailable:
        raise CallerError("calendar_unavailable", phrases.CALENDAR_UNAVAILABLE) from None
    if not result.available:
        raise slot_taken(checker, result.alternatives, new_start)
    cells = cell_keys(result.slot.staff_id, result.slot.busy) if result.lock_key else []
    try:
        moved = move_appointment(
            session, appointment.id, list(result.slot.busy), starts_at=result.slot.start, ends_at=result.slot.end,
            request=SyncAction.RESCHEDULE,
        )
    except SlotTaken:
        raise slot_taken(checker, fresh_alternatives(checker, new_start), new_start) from None
    finally:
        if cells and checker.holds is not None and checker.owner:
            try:
                checker.holds.release(checker.owner, cells)
            except HoldsUnavailable:
                pass
    queue_sync(moved, SyncAction.RESCHEDULE.value)
    logger.info("appointment %s rescheduled by the caller", moved.id)
    return True


__all__ = ["cancel", "describe", "find_own", "reschedule", "upcoming", "MAX_LISTED"]
