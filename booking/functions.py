"""The five Retell custom functions: arguments in, response envelope out.

Each function validates every argument first (a `CallerError` before anything is
written), then calls the module that does the work (`availability`,
`booking_flow`, `manage`) and phrases the answer. `run` turns a `CallerError` into
the 200 `success: false` answer and rolls the session back.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Callable

from flask import current_app
from sqlalchemy.orm import Session

from booking import arguments, manage, phrases, responses
from booking.availability import CalendarUnavailable, Checker
from booking.booking_flow import BookingRequest, start_booking as book_slot
from booking.branch_lookup import find_branch
from booking.calcom_slots import CalcomSlots
from booking.errors import CallerError, ProtocolError
from booking.holds import SlotHolds, parse_lock_key
from booking.retell_request import RetellRequest
from booking.services_lookup import bookable_services, find_staff, staff_for_service, wants_any_staff
from core.clock import utcnow
from core.models import Branch, Service, Staff
from core.opening_hours import is_open
from core.redis_client import get_redis

logger = logging.getLogger(__name__)


# --- shared pieces -------------------------------------------------------------------


def branch_of(session: Session, retell_request: RetellRequest) -> Branch:
    branch = find_branch(session, retell_request)
    if branch is None:
        logger.error(
            "no branch for call %s (to_number %r, configured branch_id %r): set the branch's phone number, or "
            "a branch_id in the call's metadata or dynamic variables",
            retell_request.call_id, retell_request.to_number, retell_request.setting("branch_id"),
        )
        raise CallerError("unknown_branch", phrases.BRANCH_UNKNOWN)
    return branch


def holds() -> SlotHolds | None:
    """The app's slot holds, or None when FEATURE_SLOT_LOCKING is off."""
    app = current_app._get_current_object()
    if not app.config.get("FEATURE_SLOT_LOCKING", True):
        return None
    ttl = int(app.config.get("SLOT_LOCK_TTL", 120))
    cached = app.extensions.get("slotguard_holds")
    if cached is None or cached.ttl_ms != ttl * 1000:
        cached = app.extensions["slotguard_holds"] = SlotHolds(get_redis(app), ttl)
    return cached


def checker_for(
    session: Session, branch: Branch, service: Service, staff: list[Staff], retell_request: RetellRequest, now, *,
    moving=None,
) -> Checker:
    slot_holds = holds()
    if slot_holds is not None and not retell_request.call_id:
        logger.warning("no call id in %s: answering without a slot hold", retell_request.function)
        slot_holds = None
    return Checker(
        session=session, branch=branch, service=service, staff=staff, slots=CalcomSlots.for_branch(branch.timezone),
        holds=slot_holds, owner=retell_request.call_id, now=now, moving=moving,
    )


def require_open(checker: Checker, start) -> None:
    """outside_hours (with the nearest open alternatives) unless the whole appointment
    lies inside the branch's opening hours."""
    branch = checker.branch
    end = start + timedelta(minutes=checker.service.duration_minutes)
    if is_open(branch.opening_hours, branch.timezone, start, end):
        return
    try:
        options = checker.nearest(start)
    except CalendarUnavailable:
        options = []
    spoken = phrases.spoken_starts([o.start for o in options], branch.timezone, day=checker.local_day(start))
    raise CallerError(
        "outside_hours",
        phrases.outside_hours(phrases.opening_hours(branch.opening_hours), spoken),
        alternatives=responses.alternatives(options, branch.timezone),
    )


# --- check_availability -----------------------------------------------------------


def check_availability(session: Session, retell_request: RetellRequest) -> dict:
    args, now = retell_request.args, utcnow()
    branch = branch_of(session, retell_request)
    service = arguments.service(session, branch, args)
    staff = arguments.staff_candidates(session, branch, service, args)
    wanted = arguments.requested_time(args, branch, now, time_required=False)
    checker = checker_for(session, branch, service, staff, retell_request, now)
    tz_name = branch.timezone
    try:
        if wanted.start is None:
            options = checker.day_overview(wanted.day)
            spoken = phrases.spoken_starts([o.start for o in options], tz_name, day=wanted.day)
            return responses.envelope(
                "check_availability", success=True, message=phrases.day_options(phrases.spoken_date(wanted.day), spoken),
                alternatives=responses.alternatives(options, tz_name),
            )
        require_open(checker, wanted.start)
        result = checker.check(wanted.start)
    except CalendarUnavailable:
        raise CallerError("calendar_unavailable", phrases.CALENDAR_UNAVAILABLE) from None
    if result.available:
        chosen = result.slot
        return responses.envelope(
            "check_availability", success=True, available=True, lock_key=result.lock_key,
            slot=responses.option(chosen, tz_name),
            message=phrases.slot_free(phrases.spoken_datetime(chosen.start, tz_name), chosen.staff_name, bool(result.lock_key)),
        )
    spoken = phrases.spoken_starts([o.start for o in result.alternatives], tz_name, day=wanted.day)
    return responses.envelope(
        "check_availability", success=True, available=False,
        alternatives=responses.alternatives(result.alternatives, tz_name),
        message=phrases.slot_not_free(phrases.spoken_datetime(wanted.start, tz_name), spoken),
    )


# --- start_booking ------------------------------------------------------------------


def start_booking(session: Session, retell_request: RetellRequest) -> dict:
    args, now = retell_request.args, utcnow()
    if not retell_request.call_id:
        raise ProtocolError(
            400, "missing_call_id",
            "start_booking needs the call id (the `call` object, or an X-Retell-Call-Id: {{call_id}} header)",
        )
    branch = branch_of(session, retell_request)
    lock_text = arguments.text(args, "lock_key")
    lock = None
    if lock_text is not None and holds() is not None:
        lock = parse_lock_key(lock_text)
        if lock is None:
            raise CallerError("invalid_argument", phrases.INVALID_LOCK_KEY)
        service, staff, start = _slot_of_lock(session, branch, lock, args, now)
    else:
        service = arguments.service(session, branch, args)
        staff = arguments.staff_candidates(session, branch, service, args)
        start = arguments.requested_time(args, branch, now).start
    name = arguments.customer_name(args)
    phone = arguments.booking_phone(args, retell_request, branch)
    email = arguments.customer_email(args)
    notes = arguments.notes(args)

    checker = checker_for(session, branch, service, staff, retell_request, now)
    require_open(checker, start)
    request = BookingRequest(
        service=service, start=start, name=name, phone=phone, email=email, notes=notes,
        call_id=retell_request.call_id, lock=lock,
    )
    tz_name = branch.timezone  # read now: the booking's commit expires the branch row
    booked = book_slot(
        session, checker, request, async_booking=bool(current_app.config.get("FEATURE_ASYNC_BOOKING", True))
    )
    return responses.envelope(
        "start_booking", success=True, appointment_id=booked.appointment_id,
        message=phrases.booked(
            booked.service_name, booked.staff_name, phrases.spoken_datetime(booked.starts_at, tz_name),
            booked.customer_name,
        ),
    )


def _slot_of_lock(session: Session, branch: Branch, lock, args, now):
    """Service, staff and start named by a lock key — checked against this branch and
    against whatever the agent also sent (they must agree: `lock_mismatch`)."""
    offered = bookable_services(session, branch)
    service = next((s for s in offered if s.id == lock.service_id), None)
    staff = [m for m in staff_for_service(session, branch, service) if m.id == lock.staff_id] if service else []
    if service is None or not staff:
        raise CallerError("invalid_argument", phrases.INVALID_LOCK_KEY)
    said_service = arguments.service(session, branch, args, required=False, offered=offered)
    if said_service is not None and said_service.id != service.id:
        raise CallerError("lock_mismatch", phrases.LOCK_MISMATCH)
    said_staff = arguments.text(args, "staff", "staff_name")
    if not wants_any_staff(said_staff) and find_staff(staff, said_staff).found is None:
        raise CallerError("lock_mismatch", phrases.LOCK_MISMATCH)
    if any(arguments.text(args, name) for name in ("datetime", "start", "date")):
        wanted = arguments.requested_time(args, branch, now)
        if wanted.start != lock.start:
            raise CallerError("lock_mismatch", phrases.LOCK_MISMATCH)
    if lock.start <= now:
        raise CallerError("lock_expired", phrases.LOCK_EXPIRED)
    return service, staff, lock.start


# --- the caller's appointments -------------------------------------------------------


def find_appointments(session: Session, retell_request: RetellRequest) -> dict:
    now = utcnow()
    branch = branch_of(session, retell_request)
    phone = arguments.callers_own_phone(retell_request, branch)
    found = manage.upcoming(session, branch, phone, now)
    if not found:
        return responses.envelope("find_appointments", success=True, message=phrases.NO_APPOINTMENTS)
    return responses.envelope(
        "find_appointments", success=True,
        message=phrases.appointments_found([manage.describe(a) for a in found]),
        appointments=[responses.appointment(a, branch.timezone) for a in found],
    )


def _callers_appointment(session: Session, retell_request: RetellRequest, branch: Branch, now):
    """The appointment the caller means: by id, by day (and time), or their only one."""
    args = retell_request.args
    phone = arguments.callers_own_phone(retell_request, branch)
    appointment_id = arguments.whole_number(args, "appointment_id")
    day = start = None
    if appointment_id is None and any(arguments.text(args, name) for name in ("datetime", "start", "date")):
        wanted = arguments.requested_time(args, branch, now, time_required=False)
        day, start = wanted.day, wanted.start
    if appointment_id is None and day is None:
        upcoming = manage.upcoming(session, branch, phone, now)
        if len(upcoming) == 1:
            return upcoming[0]
        if not upcoming:
            raise CallerError("not_found", phrases.NO_APPOINTMENTS)
        raise CallerError("ambiguous_appointment", phrases.which_appointment([manage.describe(a) for a in upcoming]))
    return manage.find_own(session, branch, phone, now, appointment_id=appointment_id, day=day, start=start)


def cancel_appointment(session: Session, retell_request: RetellRequest) -> dict:
    now = utcnow()
    branch = branch_of(session, retell_request)
    reason = arguments.text(retell_request.args, "reason") or "cancelled by the caller (voice agent)"
    appointment = _callers_appointment(session, retell_request, branch, now)
    line = manage.describe(appointment)
    appointment_id = appointment.id
    newly = manage.cancel(session, appointment, now, reason=reason)
    message = phrases.cancelled(line) if newly else phrases.already_cancelled(line)
    return responses.envelope("cancel_appointment", success=True, message=message, appointment_id=appointment_id)


def reschedule_appointment(session: Session, retell_request: RetellRequest) -> dict:
    now = utcnow()
    args = retell_request.args
    branch = branch_of(session, retell_request)
    appointment = _callers_appointment(session, retell_request, branch, now)
    if not any(arguments.text(args, name) for name in ("new_datetime", "new_start", "new_date")):
        raise CallerError("invalid_argument", phrases.NEW_TIME_MISSING)
    home = appointment.branch
    new_start = arguments.requested_time(args, home, now, prefix="new_").start
    checker = checker_for(
        session, home, appointment.service, [appointment.staff], retell_request, now, moving=appointment,
    )
    require_open(checker, new_start)
    moved = manage.reschedule(session, checker, appointment, new_start)
    tz_name = home.timezone
    phrase = phrases.rescheduled if moved else phrases.already_there
    return responses.envelope(
        "reschedule_appointment", success=True, appointment_id=appointment.id,
        slot=responses.slot(appointment.staff.name, appointment.starts_at, appointment.ends_at, tz_name),
        message=phrase(
            appointment.service.name, appointment.staff.name, phrases.spoken_datetime(appointment.starts_at, tz_name)
        ),
    )


# --- dispatch ---------------------------------------------------------------------

FUNCTIONS: dict[str, Callable[[Session, RetellRequest], dict]] = {
    "check_availability": check_availability,
    "start_booking": start_booking,
    "find_appointments": find_appointments,
    "cancel_appointment": cancel_appointment,
    "reschedule_appointment": reschedule_appointment,
}


def run(session: Session, retell_request: RetellRequest) -> dict:
    """Call the function; a `CallerError` becomes the `success: false` answer."""
    try:
        return FUNCTIONS[retell_request.function](session, retell_request)
    except CallerError as problem:
        session.rollback()
        logger.info("%s for call %s: %s", retell_request.function, retell_request.call_id, problem.code)
        return responses.error(retell_request.function, problem.code, problem.message, problem.alternatives)


__all__ = ["FUNCTIONS", "run"]
