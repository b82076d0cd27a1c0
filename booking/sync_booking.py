"""FEATURE_ASYNC_BOOKING=false: put the booking into Cal.com before the caller hears "booked".

The appointment is first inserted through the database guard as usual (so two callers
still cannot both get the slot), then created in Cal.com while the caller waits — one
booking for a regular service, one per busy step for a composite one, each carrying
our appointment id (and segment) in its metadata like the sync worker's bookings.

If Cal.com refuses or fails, the caller is told so honestly and the local appointment
is cancelled, so the slot is free again:

* a definite refusal (slot taken in Cal.com, another 4xx) created nothing in Cal.com:
  the appointment is cancelled and needs no further sync;
* a timeout, 5xx or 429 may have created a booking after all (and a composite may be
  half created): the appointment is cancelled with a Cal.com cancel queued, and the
  sync job removes whatever exists there (it finds bookings by our metadata).

Every try is recorded as a `SyncAttempt`, so monitoring counts it like a worker's.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session

from calcom.client import Attendee, get_client
from calcom.errors import CalcomError
from calcom.failures import SLOT_TAKEN, Failure, classify
from calcom.metadata import booking_metadata
from core.booking_guard import guarded_transaction, lock_appointment, release_appointment
from core.clock import utcnow
from core.event_types import event_types_of_segments
from core.models import Appointment, ServiceKind, SyncAction, SyncAttempt, SyncOutcome, SyncStatus
from core.queues import enqueue_sync_quietly

logger = logging.getLogger(__name__)


class CalendarRefused(Exception):
    """Cal.com already has a booking at that time; the appointment was cancelled."""


class CalendarFailed(Exception):
    """Cal.com could not take the booking now; the appointment was cancelled."""


def create_in_calcom_now(session: Session, appointment: Appointment) -> None:
    """Create the appointment's Cal.com booking(s) and mark it synced, or cancel it and
    raise `CalendarRefused` / `CalendarFailed`."""
    service, branch, customer = appointment.service, appointment.branch, appointment.customer
    attendee = Attendee(
        name=customer.name, email=customer.email, phone_number=customer.phone, time_zone=branch.timezone, language="de"
    )
    composite = service.kind == ServiceKind.COMPOSITE
    segments = sorted((segment for segment in appointment.segments if segment.active), key=lambda s: s.starts_at)
    event_type_ids = event_types_of_segments(session, service, appointment.staff, len(segments))
    appointment_id = appointment.id
    client = get_client(purpose="sync")
    started_at, started = utcnow(), time.perf_counter()
    made: dict[int, tuple[str, int]] = {}  # segment id -> Cal.com booking (uid, id)
    error: CalcomError | None = None
    failure: Failure | None = None
    try:
        for segment, event_type_id in zip(segments, event_type_ids):
            minutes = int((segment.ends_at - segment.starts_at).total_seconds() // 60)
            booking = client.create_booking(
                event_type_id=event_type_id,
                start=segment.starts_at,
                attendee=attendee,
                length_minutes=minutes if composite else None,
                metadata=booking_metadata(appointment_id, segment.position if composite else None),
            )
            made[segment.id] = (booking.uid, booking.id)
    except CalcomError as exc:
        error = exc
        failing_event_type = event_type_ids[len(made)] if len(made) < len(event_type_ids) else None
        failure = classify(exc, doing=f"book appointment {appointment_id} in Cal.com while the caller waited",
                           event_type_id=failing_event_type, segment_index=len(made) if composite else None)
    # Written under the lock every writer takes: a Cal.com webhook about these very
    # bookings may have arrived while we waited.
    with guarded_transaction(session):
        current = lock_appointment(session, appointment_id)
        _remember_bookings(current, made)
        _record(session, current, started_at, started, SyncOutcome.FAILED if error else SyncOutcome.SUCCESS,
                error, failure)
        if failure is None:
            current.sync_status = SyncStatus.SYNCED
            current.synced_at = utcnow()
            return
        # A timeout, 5xx, 429 or unreadable answer may have created it after all.
        maybe_created = bool(made) or failure.retryable
        reason = "Cal.com did not accept the booking while the caller waited"
        if maybe_created:
            release_appointment(current, reason=reason, request=SyncAction.CANCEL)
        else:
            # Nothing exists in Cal.com and nothing ever will: local and Cal.com agree.
            release_appointment(current, reason=reason, request=None)
            current.sync_status = SyncStatus.SYNCED
            current.synced_at = utcnow()
    logger.warning("appointment %s: Cal.com create failed (%s: %s); cancelled locally", appointment_id,
                   failure.code, failure.reason)
    if maybe_created:
        enqueue_sync_quietly(appointment_id, SyncAction.CANCEL.value, current.sync_version)
    if failure.kind == SLOT_TAKEN:
        raise CalendarRefused(failure.reason) from error
    raise CalendarFailed(failure.reason) from error


def _remember_bookings(appointment: Appointment, made: dict[int, tuple[str, int]]) -> None:
    for segment in sorted(appointment.segments, key=lambda s: s.starts_at):
        if segment.id not in made:
            continue
        segment.calcom_booking_uid, segment.calcom_booking_id = made[segment.id]
        if appointment.calcom_booking_uid is None:
            appointment.calcom_booking_uid, appointment.calcom_booking_id = made[segment.id]


def _record(session: Session, appointment: Appointment, started_at, started: float, outcome: SyncOutcome,
            error: CalcomError | None, failure: Failure | None) -> None:
    now = utcnow()
    appointment.sync_attempts = (appointment.sync_attempts or 0) + 1
    appointment.last_sync_attempt_at = now
    if failure is not None:
        appointment.sync_error_code = failure.code
        appointment.sync_error_message = failure.reason
    session.add(
        SyncAttempt(
            appointment_id=appointment.id,
            action=SyncAction.CREATE,
            attempt_number=appointment.sync_attempts,
            started_at=started_at,
            finished_at=now,
            outcome=outcome,
            http_status=error.status if error is not None else 201,
            error_code=failure.code if failure is not None else None,
            error_message=failure.reason if failure is not None else None,
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
    )


__all__ = ["CalendarFailed", "CalendarRefused", "create_in_calcom_now"]
