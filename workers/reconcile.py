"""Drift reconciliation: compare our appointments with Cal.com's bookings, repair what is safe.

Webhooks and sync jobs keep the two sides equal one change at a time; this catches
what slipped through (a lost webhook, a booking changed in Cal.com by hand, a bug).
Run nightly by the scheduler (`reconcile_nightly`) and on demand with
`flask --app wsgi appointments reconcile [--from DATE --to DATE] [--dry-run]`.

Per Cal.com event type, the bookings starting in the window are listed page by page
(`CalcomClient.list_bookings`; every request takes a token from the shared
`calcom.rate_budget`, so reconciliation never uses more than its share of Cal.com's
rate limit) and matched to our busy segments — by booking uid, else by the
`slotguard_appointment_id` metadata our bookings carry. Drift kinds:

| kind                | what                                                        | done                     |
| ------------------- | ----------------------------------------------------------- | ------------------------ |
| `missing_in_calcom` | active and `synced` here, no live booking in Cal.com        | sync re-enqueued         |
| `unknown_in_calcom` | live in Cal.com, its uid unknown here                       | adopted when it carries our metadata and fits; else flagged/reported |
| `cancelled_here`    | live in Cal.com, the appointment is cancelled here          | cancel sync re-enqueued  |
| `time_mismatch`     | the booking is at another time than the appointment         | manual review            |
| `status_mismatch`   | cancelled in Cal.com, active and synced here                | manual review            |

Appointments whose sync is pending are in flight, not drift: the sync job settles
them. A manual-review reason names both sides (the appointment with its customer and
time, the Cal.com booking with its uid, attendee and time). Each action runs in its
own short transaction on the locked appointment row and is skipped when the row
changed since it was read. `--dry-run` reports the same findings and changes nothing
(the run itself is recorded, marked as a dry run).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Callable, Iterable

from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from calcom.client import Booking, CalcomClient, get_client
from calcom.errors import CalcomError, CalcomRequestError, RateLimited
from calcom.failures import classify
from calcom.metadata import appointment_id_from, segment_from
from calcom.rate_budget import RateBudget
from core.booking_guard import MAX_SEGMENT, guarded_transaction, lock_appointment, request_sync
from core.clock import UTC, ensure_utc, format_span, utcnow
from core.event_types import staff_event_type_mappings
from core.extensions import db
from core.models import (
    Appointment,
    AppointmentSegment,
    AppointmentStatus,
    AuditEvent,
    ReconciliationRun,
    Service,
    ServiceSegment,
    Staff,
    SyncAction,
    SyncStatus,
)
from core.prom import RECONCILE_DRIFT, RECONCILE_RUNS
from core.queues import enqueue_sync_quietly
from core.redis_client import get_redis
from monitoring import drift
from workers.sync_calcom import MAX_RESCHEDULE_HOPS, is_live

log = logging.getLogger("calcom.reconcile")

MISSING = "missing_in_calcom"
UNKNOWN = "unknown_in_calcom"
CANCELLED_HERE = "cancelled_here"
TIME_MISMATCH = "time_mismatch"
STATUS_MISMATCH = "status_mismatch"
KINDS = (MISSING, UNKNOWN, CANCELLED_HERE, TIME_MISMATCH, STATUS_MISMATCH)

# What was done about a finding.
REPAIRED, FLAGGED, REPORTED, WOULD_REPAIR, WOULD_FLAG, CHANGED = (
    "repaired", "flagged", "reported", "would_repair", "would_flag", "changed_meanwhile")

PAGE_SIZE = 100
MAX_PAGES = 200  # 20,000 bookings of one event type in one window
FINDINGS_KEPT = 200
RATE_LIMIT_RETRIES = 3
ACTOR = "reconcile"
REVIEW_PREFIX = "Reconciliation: "


@dataclass
class Finding:
    kind: str
    message: str
    appointment_id: int | None = None
    booking_uid: str | None = None
    event_type_id: int | None = None
    handling: str = REPORTED
    # The change to make (None: only report); run in its own transaction.
    action: Callable[[Appointment], str | None] | None = None
    # The appointment's state when read: the action is skipped if it changed.
    seen_version: int | None = None
    seen_status: tuple | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "handling": self.handling, "appointment_id": self.appointment_id,
                "booking_uid": self.booking_uid, "event_type_id": self.event_type_id, "message": self.message}


@dataclass
class Comparison:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bookings_seen: int = 0
    segments_seen: int = 0


def default_window(now: datetime, days_back: int, days_ahead: int) -> tuple[datetime, datetime]:
    """From midnight UTC `days_back` days ago to midnight `days_ahead` days ahead."""
    today = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    return today - timedelta(days=days_back), today + timedelta(days=days_ahead + 1)


def day_window(start: date, end: date) -> tuple[datetime, datetime]:
    """`--from 2026-12-01 --to 2026-12-31`: both days included (UTC)."""
    if end < start:
        raise ValueError("--to must not be before --from")
    if (end - start).days > 400:
        raise ValueError("a window may span at most 400 days")
    return (datetime.combine(start, time(0), tzinfo=UTC),
            datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC))


def budget_for(app) -> RateBudget:
    return RateBudget.for_share(get_redis(app), "reconcile", per_minute=app.config["CALCOM_RATE_LIMIT_PER_MINUTE"],
                                share_percent=app.config["RECONCILE_RATE_SHARE_PERCENT"])


# --- the run ---------------------------------------------------------------------------


def reconcile(
    session: Session,
    window: tuple[datetime, datetime],
    *,
    dry_run: bool = False,
    trigger: str = "cli",
    client: CalcomClient | None = None,
    budget: RateBudget | None = None,
) -> ReconciliationRun:
    """Compare, repair what is safe, flag the rest; returns the recorded run."""
    app = current_app._get_current_object()
    start, end = (ensure_utc(w) for w in window)
    if end <= start:
        raise ValueError("the window must end after it starts")
    client = client or get_client(purpose="sync")
    budget = budget or budget_for(app)

    run = ReconciliationRun(started_at=utcnow(), window_from=start, window_to=end, dry_run=dry_run,
                            trigger=trigger, status="running", counts={}, findings=[], errors=[])
    session.add(run)
    session.commit()
    run_id = run.id
    log.info("reconcile run=%s from=%s to=%s dry_run=%s: started", run_id, start.isoformat(), end.isoformat(),
             dry_run)
    try:
        return _run(session, run_id, start, end, dry_run=dry_run, lister=_Lister(client, budget), app=app)
    except BaseException as exc:  # a crash (or RQ's job timeout) must not leave the run "running"
        _record_crash(session, run_id, exc, dry_run)
        raise


def _record_crash(session: Session, run_id: int, exc: BaseException, dry_run: bool) -> None:
    """Mark a run that died half-way as failed, with what killed it."""
    try:
        session.rollback()
        run = session.get(ReconciliationRun, run_id)
        run.finished_at = utcnow()
        run.status = "failed"
        run.errors = list(run.errors or []) + [f"the run stopped: {type(exc).__name__}: {exc}"[:500]]
        session.commit()
    except Exception:  # the database itself may be what failed
        session.rollback()
        log.exception("reconcile run=%s: could not record the failure", run_id)
    RECONCILE_RUNS.labels("failed", "dry_run" if dry_run else "apply").inc()
    log.error("reconcile run=%s status=failed: %s: %s", run_id, type(exc).__name__, exc)


def _run(session: Session, run_id: int, start: datetime, end: datetime, *, dry_run: bool, lister: "_Lister",
         app) -> ReconciliationRun:
    """The comparison and the repairs of one recorded run; finishes the run's row."""
    errors: list[str] = []
    findings: list[Finding] = []
    bookings_seen = segments_seen = 0
    event_types = _event_type_ids(session)
    for event_type_id in event_types:
        try:
            bookings = lister.bookings(event_type_id, start, end)
        except (CalcomError, TimeoutError) as exc:
            # Without the complete list every segment would look missing: skip this type.
            failure = classify(exc, doing=f"list the Cal.com bookings of event type {event_type_id}",
                               event_type_id=event_type_id)
            errors.append(failure.reason)
            log.warning("reconcile run=%s event_type=%s code=%s: %s", run_id, event_type_id, failure.code,
                        failure.reason)
            continue
        comparison = _compare(session, event_type_id, bookings, start, end, lister)
        session.rollback()  # end the read transaction before any write
        findings += comparison.findings
        errors += comparison.errors
        bookings_seen += comparison.bookings_seen
        segments_seen += comparison.segments_seen

    to_enqueue: list[tuple[int, str, int]] = []
    for finding in findings:
        if finding.action is None:
            continue
        if dry_run:
            finding.handling = WOULD_REPAIR if finding.handling == REPAIRED else WOULD_FLAG
            continue
        try:
            queued = _apply(session, finding)
        except Exception as exc:  # one bad row must not stop the run
            session.rollback()
            errors.append(f"appointment {finding.appointment_id}: {finding.kind} not handled ({exc})")
            log.exception("reconcile run=%s appointment=%s: action failed", run_id, finding.appointment_id)
            continue
        if queued:
            to_enqueue.append(queued)
    for appointment_id, action, version in to_enqueue:  # after the commits: jobs read what we wrote
        enqueue_sync_quietly(appointment_id, action, version, app=app)

    run = session.get(ReconciliationRun, run_id)
    counts = Counter(f.kind for f in findings)
    run.finished_at = utcnow()
    run.status = "errors" if errors else "ok"
    run.event_types = len(event_types)
    run.bookings_seen = bookings_seen
    run.segments_seen = segments_seen
    run.calcom_requests = lister.requests
    run.drift_total = len(findings)
    run.repaired = sum(1 for f in findings if f.handling == REPAIRED)
    run.flagged = sum(1 for f in findings if f.handling == FLAGGED)
    run.counts = {kind: counts.get(kind, 0) for kind in KINDS}
    run.findings = [f.to_json() for f in findings[:FINDINGS_KEPT]]
    run.errors = errors[:FINDINGS_KEPT]
    session.commit()

    if not dry_run:  # what the reconcile_drift alert rule reads
        drift.record_run(get_redis(app), {
            "run_id": run.id, "finished_at": run.finished_at.isoformat(timespec="seconds"), "status": run.status,
            "drift_total": run.drift_total, "repaired": run.repaired, "flagged": run.flagged, "counts": run.counts,
            "flagged_ids": sorted({f.appointment_id for f in findings if f.handling == FLAGGED})[:50],
        })
    mode = "dry_run" if dry_run else "apply"
    RECONCILE_RUNS.labels(run.status, mode).inc()
    for finding in findings:
        RECONCILE_DRIFT.labels(finding.kind, finding.handling).inc()
    for finding in findings:
        log.log(logging.INFO if finding.handling == REPAIRED else logging.WARNING,
                "reconcile run=%s kind=%s handling=%s appointment=%s booking=%s: %s", run_id, finding.kind,
                finding.handling, finding.appointment_id, finding.booking_uid, finding.message)
    log.log(logging.WARNING if findings or errors else logging.INFO,
            "reconcile run=%s status=%s drift=%s repaired=%s flagged=%s requests=%s: %s", run_id, run.status,
            run.drift_total, run.repaired, run.flagged, run.calcom_requests,
            ", ".join(f"{k}={v}" for k, v in run.counts.items() if v) or "no drift")
    return run


def _event_type_ids(session: Session) -> list[int]:
    """Every Cal.com event type our services, their steps and the staff members' own
    event types (`core.event_types`) book."""
    ids = set(session.scalars(select(Service.calcom_event_type_id).where(Service.calcom_event_type_id.is_not(None))))
    ids |= set(staff_event_type_mappings(session).values())
    ids |= set(session.scalars(select(ServiceSegment.calcom_event_type_id)
                               .where(ServiceSegment.calcom_event_type_id.is_not(None))))
    ids |= set(session.scalars(select(AppointmentSegment.calcom_event_type_id)
                               .where(AppointmentSegment.calcom_event_type_id.is_not(None)).distinct()))
    return sorted(ids)


class _Lister:
    """Cal.com reads within the rate budget; a 429 waits as Cal.com asks and tries again."""

    def __init__(self, client: CalcomClient, budget: RateBudget) -> None:
        self.client = client
        self.budget = budget
        self.requests = 0

    def _call(self, fn, *args, **kwargs):
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            self.budget.take()
            self.requests += 1
            try:
                return fn(*args, **kwargs)
            except RateLimited as exc:
                if attempt == RATE_LIMIT_RETRIES:
                    raise
                self.budget.sleep(exc.retry_after if exc.retry_after is not None else 60.0)
        raise AssertionError("unreachable")

    def bookings(self, event_type_id: int, start: datetime, end: datetime) -> list[Booking]:
        """Every booking of the event type starting in [start, end), all statuses."""
        found: list[Booking] = []
        skip = 0
        for _ in range(MAX_PAGES):
            page = self._call(self.client.list_bookings, event_type_id=event_type_id, after_start=start,
                              before_end=end + MAX_SEGMENT, take=PAGE_SIZE, skip=skip)
            found += [b for b in page.items if start <= b.start < end]
            if not page.has_more or not page.items:
                return found
            skip += len(page.items)
        raise CalcomRequestError(f"more than {MAX_PAGES * PAGE_SIZE} bookings; narrow the window")

    def booking(self, uid: str) -> Booking | None:
        """One booking by uid (None when Cal.com has no such booking)."""
        try:
            return self._call(self.client.get_booking, uid)
        except CalcomRequestError as exc:
            if exc.status == 404:
                return None
            raise

    def follow(self, booking: Booking) -> Booking:
        """Where a booking that was rescheduled in Cal.com went (the live successor)."""
        for _ in range(MAX_RESCHEDULE_HOPS):
            if is_live(booking) or not booking.rescheduled_to_uid:
                return booking
            successor = self.booking(booking.rescheduled_to_uid)
            if successor is None:
                return booking
            booking = successor
        return booking


# --- comparing one event type ---------------------------------------------------------


def _local_segments(session: Session, event_type_id: int, start: datetime, end: datetime):
    """Our busy segments of this event type starting in the window (active or not)."""
    event_type = func.coalesce(AppointmentSegment.calcom_event_type_id, Service.calcom_event_type_id)
    return session.execute(
        select(AppointmentSegment, Appointment)
        .join(Appointment, AppointmentSegment.appointment_id == Appointment.id)
        .join(Service, Appointment.service_id == Service.id)
        .where(event_type == event_type_id, AppointmentSegment.starts_at >= start, AppointmentSegment.starts_at < end)
        .order_by(AppointmentSegment.starts_at)
    ).all()


def _segments_by_uid(session: Session, uids: Iterable[str]) -> dict[str, tuple[AppointmentSegment | None, Appointment]]:
    """Where each uid is recorded here (a segment, else only on the appointment)."""
    uids = sorted(set(uids))
    found: dict[str, tuple[AppointmentSegment | None, Appointment]] = {}
    for chunk in (uids[i:i + 500] for i in range(0, len(uids), 500)):
        for segment, appointment in session.execute(
                select(AppointmentSegment, Appointment)
                .join(Appointment, AppointmentSegment.appointment_id == Appointment.id)
                .where(AppointmentSegment.calcom_booking_uid.in_(chunk))):
            found[segment.calcom_booking_uid] = (segment, appointment)
        for appointment in session.scalars(select(Appointment).where(Appointment.calcom_booking_uid.in_(chunk))):
            found.setdefault(appointment.calcom_booking_uid, (None, appointment))
    return found


def _compare(session: Session, event_type_id: int, bookings: list[Booking], start: datetime, end: datetime,
             lister: _Lister) -> Comparison:
    result = Comparison(bookings_seen=len(bookings))
    known = _segments_by_uid(session, [b.uid for b in bookings])
    covered: set[int] = set()  # active segments a live booking stands for

    seen: set[tuple] = set()

    def add(finding: Finding) -> None:
        key = (finding.kind, finding.appointment_id, finding.booking_uid)
        if key in seen:
            return
        seen.add(key)
        finding.event_type_id = event_type_id
        result.findings.append(finding)

    for booking in bookings:
        segment, appointment = known.get(booking.uid, (None, None))
        if appointment is not None:
            _compare_known(booking, segment, appointment, covered, add)
        else:
            _compare_unknown(session, booking, covered, add)

    rows = _local_segments(session, event_type_id, start, end)
    result.segments_seen = len(rows)
    by_uid = {b.uid: b for b in bookings}
    for segment, appointment in rows:
        if (not segment.active or segment.id in covered or not appointment.is_active
                or appointment.sync_status != SyncStatus.SYNCED):
            continue
        uid = segment.calcom_booking_uid or (appointment.calcom_booking_uid if segment.position == 0 else None)
        booking = by_uid.get(uid) if uid else None
        try:
            if booking is None and uid:
                booking = lister.booking(uid)  # moved out of the window, or gone
            if booking is not None:
                booking = lister.follow(booking)  # moved in Cal.com: to where?
        except (CalcomError, TimeoutError) as exc:
            result.errors.append(classify(exc, doing=f"read Cal.com booking {uid} of appointment {appointment.id}",
                                          event_type_id=event_type_id).reason)
            continue
        finding = _missing_or_elsewhere(segment, appointment, booking)
        if finding is not None:
            add(finding)
    return result


def _compare_known(booking: Booking, segment: AppointmentSegment | None, appointment: Appointment,
                   covered: set[int], add) -> None:
    """A booking whose uid we have recorded."""
    pending = appointment.sync_status == SyncStatus.PENDING
    if is_live(booking):
        if not appointment.is_active:
            if not pending:
                add(_cancel_finding(booking, appointment))
            return
        if segment is None:  # recorded on the appointment only: its first active segment
            segment = next((s for s in sorted(appointment.segments, key=lambda s: s.starts_at) if s.active), None)
        if segment is None:
            return
        if segment.active:
            covered.add(segment.id)
        if pending:
            return
        if not segment.active or booking.start != segment.starts_at or booking.end != segment.ends_at:
            add(_flag(TIME_MISMATCH, appointment, booking,
                      f"Cal.com booking {_booking_text(booking, appointment)} does not match {_appointment_text(appointment)}: "
                      "one side was moved without the other. Decide which time is right, move the other "
                      "side, then resolve the review."))
        return
    # Cancelled (or rejected) in Cal.com.
    if (segment is not None and segment.active and appointment.is_active
            and appointment.sync_status == SyncStatus.SYNCED and not booking.rescheduled_to_uid):
        covered.add(segment.id)
        reason = f" ({booking.cancellation_reason})" if booking.cancellation_reason else ""
        add(_flag(STATUS_MISMATCH, appointment, booking,
                  f"Cal.com booking {_booking_text(booking, appointment)} is {booking.status}{reason}, but "
                  f"{_appointment_text(appointment)} is still active here. Call the customer: cancel it here, "
                  "or retry the sync to book it in Cal.com again."))


def _compare_unknown(session: Session, booking: Booking, covered: set[int], add) -> None:
    """A booking whose uid we have never recorded."""
    if not is_live(booking):
        return  # a cancelled stranger is no drift
    our_id = appointment_id_from(booking.metadata)
    appointment = session.get(Appointment, our_id) if our_id is not None else None
    if our_id is not None and appointment is None:
        add(Finding(UNKNOWN, f"Cal.com booking {_booking_text(booking)} carries appointment id {our_id}, which "
                             "does not exist here. Cancel it in Cal.com if nobody expects it.",
                    booking_uid=booking.uid))
        return
    if appointment is None:
        _foreign_booking(session, booking, add)
        return
    if appointment.sync_status == SyncStatus.PENDING:
        return  # its sync job looks for bookings carrying its id and adopts them
    if not appointment.is_active:
        add(_cancel_finding(booking, appointment))
        return
    active = sorted((s for s in appointment.segments if s.active), key=lambda s: s.starts_at)
    index = segment_from(booking.metadata) or 0
    segment = active[index] if index < len(active) else None
    if segment is not None:
        covered.add(segment.id)  # this booking stands for it, right or wrong
    if segment is None or booking.start != segment.starts_at or booking.end != segment.ends_at:
        add(_flag(TIME_MISMATCH, appointment, booking,
                  f"Cal.com booking {_booking_text(booking, appointment)} was made for {_appointment_text(appointment)} "
                  "but is at another time. Cancel the wrong one in Cal.com or move the appointment, then resolve "
                  "the review."))
        return
    if segment.calcom_booking_uid and segment.calcom_booking_uid != booking.uid:
        add(_flag(UNKNOWN, appointment, booking,
                  f"Cal.com has a second booking {_booking_text(booking, appointment)} for {_appointment_text(appointment)} "
                  f"(recorded: {segment.calcom_booking_uid}). Cancel the duplicate in Cal.com, then resolve the review."))
        return
    add(Finding(UNKNOWN, f"Cal.com booking {_booking_text(booking, appointment)} carries our id and matches "
                         f"{_appointment_text(appointment)}; adopted.",
                appointment_id=appointment.id, booking_uid=booking.uid, handling=REPAIRED,
                action=_adopt(booking, segment.id), seen_version=appointment.sync_version,
                seen_status=_state(appointment)))


def _foreign_booking(session: Session, booking: Booking, add) -> None:
    """A live booking made in Cal.com that we never heard of (a lost webhook)."""
    host_ids = [h.get("id") for h in booking.hosts if isinstance(h, dict) and h.get("id") is not None]
    collisions: list[Appointment] = []
    if host_ids:
        collisions = list(session.scalars(
            select(Appointment).join(AppointmentSegment, AppointmentSegment.appointment_id == Appointment.id)
            .join(Staff, Appointment.staff_id == Staff.id)
            .where(Staff.calcom_user_id.in_(host_ids), AppointmentSegment.active.is_(True),
                   AppointmentSegment.starts_at < booking.end, AppointmentSegment.ends_at > booking.start)
            .distinct()))
    if not collisions:
        add(Finding(UNKNOWN, f"Cal.com booking {_booking_text(booking)} was made in Cal.com and is not known here "
                             "(its webhook never arrived). Its time stays blocked by Cal.com's availability; "
                             "re-send the webhook from Cal.com or enter the appointment by hand.",
                    booking_uid=booking.uid))
        return
    for appointment in collisions:
        add(_flag(UNKNOWN, appointment, booking,
                  f"Double booking: Cal.com booking {_booking_text(booking)} was made in Cal.com, is not known "
                  f"here, and overlaps {_appointment_text(appointment)}. Call one customer and cancel or move "
                  "one booking, then resolve the review."))


def _missing_or_elsewhere(segment: AppointmentSegment, appointment: Appointment,
                          booking: Booking | None) -> Finding | None:
    """A synced segment with no live booking at its place in the listing; `booking`
    is its recorded booking read by uid (followed through reschedules), if any."""
    if booking is not None and is_live(booking):
        if booking.start == segment.starts_at and booking.end == segment.ends_at:
            return None  # fine, only listed under another event type

        return _flag(TIME_MISMATCH, appointment, booking,
                     f"Cal.com booking {_booking_text(booking, appointment)} does not match "
                     f"{_appointment_text(appointment)}: one side was moved without the other. Decide which time "
                     "is right, move the other side, then resolve the review.")
    if booking is not None:
        reason = f" ({booking.cancellation_reason})" if booking.cancellation_reason else ""
        return _flag(STATUS_MISMATCH, appointment, booking,
                     f"Cal.com booking {_booking_text(booking, appointment)} is {booking.status}{reason}, but "
                     f"{_appointment_text(appointment)} is still active here. Call the customer: cancel it here, "
                     "or retry the sync to book it in Cal.com again.")
    where = f"booking {segment.calcom_booking_uid}" if segment.calcom_booking_uid else "no booking uid"
    return Finding(MISSING, f"{_appointment_text(appointment)} is synced ({where}) but Cal.com has no live booking "
                            "for it; its sync was queued again.",
                   appointment_id=appointment.id, booking_uid=segment.calcom_booking_uid, handling=REPAIRED,
                   action=_resync, seen_version=appointment.sync_version, seen_status=_state(appointment))


def _cancel_finding(booking: Booking, appointment: Appointment) -> Finding:
    return Finding(CANCELLED_HERE, f"Cal.com booking {_booking_text(booking, appointment)} is live, but "
                                   f"{_appointment_text(appointment)} is cancelled here; its cancel sync was queued "
                                   "again.",
                   appointment_id=appointment.id, booking_uid=booking.uid, handling=REPAIRED,
                   action=_recancel(booking.uid), seen_version=appointment.sync_version,
                   seen_status=_state(appointment))


def _flag(kind: str, appointment: Appointment, booking: Booking | None, reason: str) -> Finding:
    return Finding(kind, reason, appointment_id=appointment.id, booking_uid=booking.uid if booking else None,
                   handling=FLAGGED, action=_flag_for_review(kind, reason), seen_version=appointment.sync_version,
                   seen_status=_state(appointment))


def _state(appointment: Appointment) -> tuple:
    return (appointment.status, appointment.sync_status, appointment.sync_action)


# --- actions (each in its own transaction on the locked row) --------------------------


def _apply(session: Session, finding: Finding) -> tuple[int, str, int] | None:
    """Run a finding's action unless the appointment changed since it was read.

    Returns (id, action, version) of a sync to enqueue after the commit, or None.
    """
    with guarded_transaction(session):
        appointment = lock_appointment(session, finding.appointment_id)
        if (appointment is None or appointment.sync_version != finding.seen_version
                or _state(appointment) != finding.seen_status):
            finding.handling = CHANGED
            return None
        note = finding.action(appointment)
        session.add(AuditEvent(actor=ACTOR, action=f"reconcile_{finding.kind}", appointment_id=appointment.id,
                               note=finding.message, details={"handling": finding.handling,
                                                              "booking_uid": finding.booking_uid,
                                                              "event_type_id": finding.event_type_id,
                                                              "result": note}))
        if appointment.sync_status == SyncStatus.PENDING and appointment.sync_version != finding.seen_version:
            return appointment.id, appointment.sync_action.value, appointment.sync_version
    return None


def _resync(appointment: Appointment) -> str:
    """Book it in Cal.com again: a create keeps segments whose booking is still live."""
    request_sync(appointment, SyncAction.CREATE)
    return "create sync queued"


def _recancel(uid: str):
    def recancel(appointment: Appointment) -> str:
        known = {appointment.calcom_booking_uid} | {s.calcom_booking_uid for s in appointment.segments}
        if uid not in known:
            # The cancel job cancels the uids recorded for the appointment: record this one.
            spare = next((s for s in sorted(appointment.segments, key=lambda s: s.position)
                          if not s.calcom_booking_uid), None)
            if spare is not None:
                spare.calcom_booking_uid = uid
            elif not appointment.calcom_booking_uid:
                appointment.calcom_booking_uid = uid
        request_sync(appointment, SyncAction.CANCEL)
        return "cancel sync queued"
    return recancel


def _adopt(booking: Booking, segment_id: int):
    def adopt(appointment: Appointment) -> str:
        segment = next((s for s in appointment.segments if s.id == segment_id), None)
        if segment is None or not segment.active:
            return "segment gone; nothing adopted"
        segment.calcom_booking_uid = booking.uid
        segment.calcom_booking_id = booking.id
        active = sorted((s for s in appointment.segments if s.active), key=lambda s: s.starts_at)
        if active and active[0].id == segment.id:
            appointment.calcom_booking_uid = booking.uid
            appointment.calcom_booking_id = booking.id
        if all(s.calcom_booking_uid for s in active) and appointment.sync_status == SyncStatus.FAILED:
            # The sync gave up although Cal.com had taken the booking (an answer lost
            # on the way): it is synced after all, and the review was about that.
            appointment.sync_status = SyncStatus.SYNCED
            appointment.synced_at = utcnow()
            appointment.sync_error_code = None
            appointment.sync_error_message = None
            appointment.next_sync_attempt_at = None
            if appointment.requires_manual_review:
                appointment.requires_manual_review = False
                appointment.manual_review_reason = None
            return "booking adopted; sync marked synced"
        return "booking adopted"
    return adopt


def _flag_for_review(kind: str, reason: str):
    def flag(appointment: Appointment) -> str:
        text = REVIEW_PREFIX + reason
        if appointment.requires_manual_review and appointment.manual_review_reason == text:
            return "already flagged"
        appointment.requires_manual_review = True
        appointment.manual_review_reason = text
        return "flagged for manual review"
    return flag


# --- texts naming both sides -------------------------------------------------------


def _tz(appointment: Appointment | None) -> str:
    return appointment.branch.timezone if appointment is not None else current_app.config.get("TZ_DEFAULT",
                                                                                              "Europe/Berlin")


def _span(start: datetime, end: datetime, tz: str) -> str:
    return format_span(start, end, tz, zone=None)


def _booking_text(booking: Booking, appointment: Appointment | None = None) -> str:
    attendee = booking.attendees[0].name if booking.attendees else "no attendee"
    hosts = ", ".join(str(h.get("name") or h.get("id")) for h in booking.hosts if isinstance(h, dict))
    host = f" with {hosts}" if hosts else ""
    return f"{booking.uid} ({attendee}{host}, {_span(booking.start, booking.end, _tz(appointment))})"


def _appointment_text(appointment: Appointment) -> str:
    customer = appointment.customer.name if appointment.customer else "?"
    return (f"appointment {appointment.id} ({customer}, {appointment.service.name} with {appointment.staff.name}, "
            f"{_span(appointment.starts_at, appointment.ends_at, _tz(appointment))}, {appointment.status.value})")


# --- the scheduled job --------------------------------------------------------------


def reconcile_nightly() -> dict:
    """The scheduler's nightly run over the default window; the alert check follows at
    once, so drift above `RECONCILE_DRIFT_ALERT_THRESHOLD` is notified now (through
    monitoring's notifiers and de-duplication), not at the next 15-minute run."""
    from workers.app_context import app_context

    with app_context() as app:
        window = default_window(utcnow(), app.config["RECONCILE_DAYS_BACK"], app.config["RECONCILE_DAYS_AHEAD"])
        run = reconcile(db.session, window, trigger="schedule")
        summary = {"run": run.id, "status": run.status, "drift": run.drift_total, "repaired": run.repaired,
                   "flagged": run.flagged, "requests": run.calcom_requests}
        if run.drift_total > app.config["RECONCILE_DRIFT_ALERT_THRESHOLD"]:
            from monitoring.alerting import run_alert_check

            summary["alert_run"] = run_alert_check(db.session).health
        return summary


__all__ = ["KINDS", "default_window", "day_window", "reconcile", "reconcile_nightly"]
