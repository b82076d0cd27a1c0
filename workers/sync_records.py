"""The database side of one sync attempt: claim it, then write down what happened.

Two short transactions, each with the appointment row locked (`SELECT … FOR UPDATE`
on PostgreSQL, `BEGIN IMMEDIATE` on SQLite) so that reading the sync version and
writing the result cannot interleave with a writer changing the appointment. No
transaction is open while Cal.com is called: a slow Cal.com never blocks a caller
cancelling on the phone, and never blocks other appointments.

`claim_attempt` turns the appointment into a `SyncPlan` — plain values, everything
the Cal.com calls need — so no database row is touched between the two transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from calcom.client import Attendee, Booking
from core.booking_guard import MAX_SEGMENT, guarded_transaction, lock_appointment
from core.clock import format_local, format_span, utcnow
from core.event_types import event_types_of_segments, event_types_of_staff
from core.models import (
    Appointment,
    AppointmentSegment,
    AuditEvent,
    Branch,
    Customer,
    Service,
    ServiceKind,
    Staff,
    SyncAction,
    SyncAttempt,
    SyncOutcome,
    SyncStatus,
)
from calcom.failures import Failure


@dataclass(frozen=True)
class Target:
    """One busy segment as Cal.com should have it: its own booking."""

    index: int  # 0-based among the appointment's busy segments; the metadata's segment number
    segment_id: int
    starts_at: datetime
    ends_at: datetime
    event_type_id: int | None
    label: str  # "segment 2 of 2 (Auswaschen, 10:10–10:40)"; "" for a regular appointment
    uid: str | None  # a booking already recorded for this very segment


@dataclass(frozen=True)
class SyncPlan:
    appointment_id: int
    action: SyncAction
    version: int
    attempt_number: int
    attempt_id: int
    max_attempts: int
    composite: bool
    # The active busy segments (create, reschedule); empty for a cancel.
    targets: tuple[Target, ...]
    # Per segment index, the newest booking uid recorded on an earlier position of the
    # appointment (the booking a reschedule moves).
    previous_uids: dict[int, str]
    # …and where that booking was (to order a composite move, see `move_order`).
    previous_starts: dict[int, datetime]
    # Every booking uid ever recorded for the appointment, newest first (a cancel).
    all_uids: tuple[str, ...]
    # Where our bookings can be: all the appointment's segments, old and new.
    search_from: datetime
    search_to: datetime
    event_type_ids: tuple[int, ...]
    attendee: Attendee | None
    attendee_problem: str | None
    # An earlier attempt may have changed Cal.com without us hearing the answer:
    # look for our bookings (by metadata) before creating any.
    check_calcom_first: bool
    # "Herrenhaarschnitt with Anna on Tue 08.12.2026 10:00 (Europe/Berlin)"
    what: str
    cancellation_reason: str | None
    # The staff member's Cal.com user id: the host the bookings should have.
    host_user_id: int | None = None
    # Cached Cal.com slots this attempt makes stale: every event type the staff member
    # takes part in, around the times the appointment's bookings are (or were) at.
    slot_cache_event_type_ids: tuple[int, ...] = ()
    slot_cache_moments: tuple[datetime, ...] = ()

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt_number >= self.max_attempts

    def move_order(self) -> list[Target]:
        """The order in which to place the segments' bookings.

        All of them belong to one host, so moving a composite appointment later must
        move its last segment first (and earlier: its first segment first); otherwise
        a segment's new time can overlap another segment's old booking, and Cal.com
        refuses it as "already has booking at this time".
        """
        targets = sorted(self.targets, key=lambda t: t.starts_at)
        first = targets[0] if targets else None
        before = self.previous_starts.get(first.index) if first is not None else None
        if self.action == SyncAction.RESCHEDULE and before is not None and first.starts_at > before:
            targets.reverse()
        return targets


@dataclass(frozen=True)
class Skipped:
    """The job has nothing to do (stale, already done, appointment gone)."""

    code: str
    message: str


@dataclass
class CalcomOutcome:
    """What the Cal.com calls achieved."""

    # Per segment index, the live booking that now represents it (create, reschedule).
    bookings: dict[int, Booking] = field(default_factory=dict)
    failure: Failure | None = None
    # Booking uids we cancelled in Cal.com (a cancel, or rolling back a composite).
    cancelled_uids: set[str] = field(default_factory=set)
    rolled_back: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(frozen=True)
class Decision:
    """How the attempt ended, for the job to log and act on."""

    outcome: SyncOutcome
    code: str | None
    message: str | None
    retry_in_seconds: float | None = None
    superseded: bool = False


# Skipped attempts that never reached Cal.com.
NO_CALL_CODES = ("stale_job", "already_synced", "not_pending")


def _may_have_changed_calcom_unheard():
    """Attempts whose effect in Cal.com we may not know: unfinished (worker died),
    retried or failed (a timeout or dropped answer may hide a success), or superseded
    while calling. Successful attempts recorded what they did; stale skips called nothing."""
    return or_(
        SyncAttempt.outcome.is_(None),
        SyncAttempt.outcome.in_([SyncOutcome.RETRY, SyncOutcome.FAILED]),
        and_(SyncAttempt.outcome == SyncOutcome.SKIPPED, SyncAttempt.error_code.not_in(NO_CALL_CODES)),
    )


def claim_attempt(
    session: Session, appointment_id: int, action: str, version: int, *, job_id: str | None, max_attempts: int
) -> SyncPlan | Skipped:
    """Start an attempt: check the job is current, count it, and read the plan."""
    now = utcnow()
    with guarded_transaction(session):
        appointment = _locked(session, appointment_id)
        if appointment is None:
            return Skipped("appointment_gone", f"appointment {appointment_id} no longer exists")
        stale = _stale_reason(appointment, action, version)
        if stale is not None:
            code, message = stale
            session.add(SyncAttempt(
                appointment_id=appointment.id, action=_action(action, appointment), started_at=now,
                finished_at=now, attempt_number=appointment.sync_attempts, outcome=SyncOutcome.SKIPPED,
                error_code=code, error_message=message, duration_ms=0, job_id=job_id,
            ))
            return Skipped(code, message)

        _close_orphaned_attempts(session, appointment.id, now)
        check_first = session.scalar(select(exists().where(
            SyncAttempt.appointment_id == appointment.id, _may_have_changed_calcom_unheard(),
        ))) or False
        appointment.sync_attempts = (appointment.sync_attempts or 0) + 1
        appointment.last_sync_attempt_at = now
        appointment.next_sync_attempt_at = None
        attempt = SyncAttempt(appointment_id=appointment.id, action=appointment.sync_action,
                              attempt_number=appointment.sync_attempts, started_at=now, job_id=job_id)
        session.add(attempt)
        session.flush()
        _load_plan_rows(session, appointment)
        return _plan(session, appointment, attempt, check_first, max_attempts)


def finish_attempt(
    session: Session,
    plan: SyncPlan,
    outcome: CalcomOutcome,
    *,
    duration_ms: int,
    retry_delay: Callable[[int, float | None], float],
) -> Decision:
    """Write the attempt's result and the appointment's new sync state.

    `retry_delay(failed_attempts, retry_after)` gives the wait before the next attempt.
    What Cal.com now holds (booking uids) is recorded even when the appointment
    changed meanwhile: the newer sync needs those uids to cancel or move them.
    """
    now = utcnow()
    with guarded_transaction(session):
        appointment = _locked(session, plan.appointment_id)
        attempt = session.get(SyncAttempt, plan.attempt_id)
        if appointment is None or attempt is None:
            return Decision(SyncOutcome.SKIPPED, "appointment_gone", "the appointment was deleted meanwhile")
        _record_bookings(session, appointment, plan, outcome)
        attempt.finished_at = now
        attempt.duration_ms = duration_ms
        failure = outcome.failure
        if failure is not None:
            attempt.http_status = failure.http_status
            attempt.error_code = failure.code
            attempt.error_message = failure.reason

        same_request = appointment.sync_version == plan.version and appointment.sync_action == plan.action
        # Cal.com's webhook echoing our own booking may have confirmed this very request
        # while we were still talking to Cal.com: that is our success, not someone else's change.
        confirmed_by_webhook = same_request and appointment.sync_status == SyncStatus.SYNCED and failure is None
        current = same_request and appointment.sync_status == SyncStatus.PENDING
        if not current and not confirmed_by_webhook:
            # Someone changed the appointment while we talked to Cal.com; the job for
            # the newer version takes it from here (with the uids recorded above).
            if failure is None:
                attempt.outcome = SyncOutcome.SUCCESS
                return Decision(SyncOutcome.SUCCESS, None, "done, but the appointment changed meanwhile",
                                superseded=True)
            attempt.outcome = SyncOutcome.SKIPPED
            attempt.error_message = f"Superseded by a newer change. {failure.reason}"
            return Decision(SyncOutcome.SKIPPED, failure.code, attempt.error_message, superseded=True)

        if failure is None:
            attempt.outcome = SyncOutcome.SUCCESS
            attempt.error_message = "; ".join(outcome.notes) or None
            appointment.sync_status = SyncStatus.SYNCED
            appointment.synced_at = now
            appointment.next_sync_attempt_at = None
            appointment.sync_error_code = None
            appointment.sync_error_message = None
            return Decision(SyncOutcome.SUCCESS, None, attempt.error_message)

        appointment.sync_error_code = failure.code
        appointment.sync_error_message = failure.reason
        if failure.retryable and not plan.is_last_attempt:
            delay = retry_delay(plan.attempt_number, failure.retry_after)
            appointment.next_sync_attempt_at = now + timedelta(seconds=delay)
            attempt.outcome = SyncOutcome.RETRY
            return Decision(SyncOutcome.RETRY, failure.code, failure.reason, retry_in_seconds=delay)

        if failure.retryable:
            first = appointment.sync_requested_at
            minutes = max(1, round((now - first).total_seconds() / 60)) if first else None
            span = f" over {minutes} minutes" if minutes else ""
            reason = (f"Gave up after {plan.attempt_number} attempts{span}. Last error: {failure.reason} "
                      "Check Cal.com's status, then retry the sync.")
            appointment.sync_error_code = "retries_exhausted"
            appointment.sync_error_message = reason
        else:
            reason = failure.reason
        attempt.outcome = SyncOutcome.FAILED
        appointment.sync_status = SyncStatus.FAILED
        appointment.next_sync_attempt_at = None
        appointment.requires_manual_review = True
        appointment.manual_review_reason = reason
        session.add(AuditEvent(actor="sync-worker", action="sync_failed", appointment_id=appointment.id,
                               note=reason, details={"code": appointment.sync_error_code,
                                                     "cause": failure.code, "attempts": plan.attempt_number,
                                                     "action": plan.action.value,
                                                     "segment": failure.segment_index}))
        return Decision(SyncOutcome.FAILED, appointment.sync_error_code, reason)


def _locked(session: Session, appointment_id: int) -> Appointment | None:
    """The appointment, locked against every other writer until the transaction ends
    (the one lock all writers take: `core.booking_guard.lock_appointment`)."""
    return lock_appointment(session, appointment_id)


def _action(action: str, appointment: Appointment) -> SyncAction:
    try:
        return SyncAction(action)
    except ValueError:
        return appointment.sync_action


def _stale_reason(appointment: Appointment, action: str, version: int) -> tuple[str, str] | None:
    if appointment.sync_version != version or appointment.sync_action.value != action:
        return ("stale_job", f"Job for version {version} ({action}) skipped: the appointment changed since "
                f"(now version {appointment.sync_version}, {appointment.sync_action.value}).")
    if appointment.sync_status == SyncStatus.SYNCED:
        return ("already_synced", f"Job for version {version} ({action}) skipped: already synced.")
    if appointment.sync_status != SyncStatus.PENDING:
        return ("not_pending", f"Job for version {version} ({action}) skipped: the sync is "
                f"{appointment.sync_status.value}; use retry-sync to try again.")
    return None


def _close_orphaned_attempts(session: Session, appointment_id: int, now: datetime) -> None:
    """An attempt left unfinished means its worker died mid-way (we hold the lock now).

    Its effect in Cal.com is unknown; this attempt looks before it acts.
    """
    orphans = session.scalars(select(SyncAttempt).where(
        SyncAttempt.appointment_id == appointment_id, SyncAttempt.finished_at.is_(None),
    ))
    for orphan in orphans:
        orphan.finished_at = now
        orphan.outcome = SyncOutcome.RETRY
        orphan.error_code = "worker_lost"
        orphan.error_message = ("The worker stopped before recording the result (killed or crashed); "
                                "the next attempt checked Cal.com for bookings it may have made.")


def _load_plan_rows(session: Session, appointment: Appointment) -> None:
    """Read what the plan needs of the appointment's service (with its steps), staff
    member, branch and customer in two queries instead of five lazy loads, one round
    trip each, while the appointment's row is locked."""
    row = session.execute(
        select(Service, Staff, Branch, Customer)
        .select_from(Appointment)
        .join(Service, Service.id == Appointment.service_id)
        .join(Staff, Staff.id == Appointment.staff_id)
        .join(Branch, Branch.id == Appointment.branch_id)
        .join(Customer, Customer.id == Appointment.customer_id)
        .where(Appointment.id == appointment.id)
        .options(selectinload(Service.segments))
    ).first()
    if row is None:  # cannot happen (foreign keys); the lazy loads would say what is missing
        return
    for name, value in zip(("service", "staff", "branch", "customer"), row):
        set_committed_value(appointment, name, value)


def _plan(session: Session, appointment: Appointment, attempt: SyncAttempt, check_first: bool,
          max_attempts: int) -> SyncPlan:
    service, staff, branch, customer = appointment.service, appointment.staff, appointment.branch, \
        appointment.customer
    composite = service.kind == ServiceKind.COMPOSITE
    segments = sorted(appointment.segments, key=lambda s: s.position)
    active = sorted((s for s in segments if s.active), key=lambda s: s.starts_at)
    busy_labels = [step.label for step in service.busy_steps]
    per_generation = len(active) or len(busy_labels) or 1

    def index_of(segment: AppointmentSegment) -> int:
        # Positions are handed out in blocks, one block per place the appointment has
        # been (0..k-1 when booked, k..2k-1 after the first move, …).
        return segment.position % per_generation

    tz = branch.timezone
    # The staff member's own event type when one is mapped (Cal.com cannot give the
    # booking to a colleague then), else the service's or the step's: core.event_types.
    event_type_ids = event_types_of_segments(session, service, staff, len(active))
    targets = []
    for rank, segment in enumerate(active):
        label = ""
        if composite:
            name = busy_labels[rank] if rank < len(busy_labels) else f"part {rank + 1}"
            label = (f"segment {rank + 1} of {len(active)} ({name}, "
                     f"{format_span(segment.starts_at, segment.ends_at, tz, '%H:%M', zone=None)})")
        targets.append(Target(
            index=rank, segment_id=segment.id, starts_at=segment.starts_at, ends_at=segment.ends_at,
            event_type_id=event_type_ids[rank], label=label,
            uid=segment.calcom_booking_uid,
        ))

    previous: dict[int, str] = {}
    previous_starts: dict[int, datetime] = {}
    for segment in reversed(segments):  # newest position first
        if segment.active or not segment.calcom_booking_uid:
            continue
        index = index_of(segment)
        if index not in previous:
            previous[index] = segment.calcom_booking_uid
            previous_starts[index] = segment.starts_at
    if appointment.calcom_booking_uid and 0 not in previous and appointment.calcom_booking_uid not in \
            {t.uid for t in targets}:
        previous[0] = appointment.calcom_booking_uid

    uids: list[str] = []
    for uid in [appointment.calcom_booking_uid] + [s.calcom_booking_uid for s in reversed(segments)]:
        if uid and uid not in uids:
            uids.append(uid)

    starts = [s.starts_at for s in segments] or [appointment.starts_at]
    ends = [s.ends_at for s in segments] or [appointment.ends_at]
    # Where our bookings can be: the event types of earlier bookings too.
    event_types = {s.calcom_event_type_id for s in segments if s.calcom_event_type_id}
    event_types |= {t.event_type_id for t in targets if t.event_type_id}
    if service.calcom_event_type_id:
        event_types.add(service.calcom_event_type_id)

    attendee, problem = _attendee(customer, tz)
    what = f"{service.name} with {staff.name} on {format_local(appointment.starts_at, tz, zone='name')}"
    return SyncPlan(
        appointment_id=appointment.id,
        action=appointment.sync_action,
        version=appointment.sync_version,
        attempt_number=attempt.attempt_number,
        attempt_id=attempt.id,
        max_attempts=max_attempts,
        composite=composite,
        targets=tuple(targets),
        previous_uids=previous,
        previous_starts=previous_starts,
        all_uids=tuple(uids),
        search_from=min(starts),
        search_to=max(ends) + MAX_SEGMENT,
        event_type_ids=tuple(sorted(event_types)),
        attendee=attendee,
        attendee_problem=problem,
        check_calcom_first=bool(check_first),
        what=what,
        cancellation_reason=appointment.cancellation_reason,
        host_user_id=staff.calcom_user_id,
        slot_cache_event_type_ids=tuple(sorted(event_types | event_types_of_staff(session, [staff.id]))),
        slot_cache_moments=tuple(sorted({t.starts_at for t in targets} | set(previous_starts.values())
                                        | {s.starts_at for s in segments if s.calcom_booking_uid})),
    )


def _attendee(customer, tz: str) -> tuple[Attendee | None, str | None]:
    """The customer as a Cal.com attendee, or why Cal.com would refuse them."""
    name = (customer.name or "").strip()
    if not name:
        return None, "the customer has no name, which Cal.com requires"
    if not customer.email and not customer.phone:
        return None, "the customer has neither an e-mail address nor a phone number; Cal.com needs one"
    return Attendee(name=name, email=customer.email or None, phone_number=customer.phone or None,
                    time_zone=tz, language="de"), None


def _record_bookings(session: Session, appointment: Appointment, plan: SyncPlan, outcome: CalcomOutcome) -> None:
    """Remember which Cal.com booking stands for which segment (and forget cancelled ones)."""
    by_id = {s.id: s for s in appointment.segments}
    for target in plan.targets:
        booking = outcome.bookings.get(target.index)
        segment = by_id.get(target.segment_id)
        if booking is None or segment is None:
            continue
        segment.calcom_booking_uid = booking.uid
        segment.calcom_booking_id = booking.id
    if outcome.bookings:
        first = outcome.bookings[min(outcome.bookings)]
        appointment.calcom_booking_uid = first.uid
        appointment.calcom_booking_id = first.id
    if outcome.rolled_back and outcome.cancelled_uids:
        # Cancelled by us to undo a partial composite booking: these uids no longer
        # stand for the appointment (a retry books afresh, a Cal.com webhook about
        # the cancellation finds no appointment to cancel).
        for segment in appointment.segments:
            if segment.calcom_booking_uid in outcome.cancelled_uids:
                segment.calcom_booking_uid = None
                segment.calcom_booking_id = None
        if appointment.calcom_booking_uid in outcome.cancelled_uids:
            appointment.calcom_booking_uid = None
            appointment.calcom_booking_id = None


__all__ = ["CalcomOutcome", "Decision", "Skipped", "SyncPlan", "Target", "claim_attempt", "finish_attempt"]
