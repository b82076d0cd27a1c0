"""The one way an appointment gets written: checked and inserted so no staff is double-booked.

Every writer (voice booking, dashboard, Cal.com webhook, reschedule) goes through
`insert_appointment` / `move_appointment` / `cancel_appointment`. The database has
the last word:

* PostgreSQL: an exclusion constraint on active `appointment_segments`
  (`staff_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&`). A concurrent
  insert that loses the race fails with SQLSTATE 23P01, which becomes `SlotTaken`.
* SQLite: no such constraint exists, so the overlap check and the insert run in one
  `BEGIN IMMEDIATE` transaction. SQLite allows one writer at a time, so two of these
  transactions cannot interleave between check and insert.

The explicit overlap query runs on both databases: it gives the friendly answer
early, and on SQLite it *is* the guard.

Changing an existing appointment is a read-modify-write (is it still active? which
segments are live? which sync version?). Every writer — voice cancel and reschedule,
the dashboard's retry and resolve, the Cal.com webhook, the sync worker, reconcile —
first takes the same lock with `lock_appointment` inside a `guarded_transaction`,
so two writers of one appointment run one after the other and neither writes from
a stale read (a webhook cancel racing a sync success, a caller's reschedule racing
a cancel). `appointments_breaking_invariants_sql` is the independent check that no
interleaving left an active segment on an inactive appointment.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterator, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.attributes import set_committed_value

from core.clock import ensure_utc, utcnow
from core.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentSegment,
    AppointmentSource,
    AppointmentStatus,
    SyncAction,
    SyncStatus,
)

# A segment longer than this is refused. It also bounds the overlap lookup: an
# overlapping segment must start after `start - MAX_SEGMENT`, so the index range
# scanned stays small however much history a staff member has.
MAX_SEGMENT = timedelta(hours=12)

EXCLUSION_VIOLATION = "23P01"


class GuardError(Exception):
    """Base class for refusals of the booking guard."""


class SlotTaken(GuardError):
    """The staff member already has an active appointment overlapping the interval."""

    def __init__(self, staff_id: int, starts_at: datetime, ends_at: datetime, conflicting_ids: Sequence[int] = ()):
        self.staff_id = staff_id
        self.starts_at = starts_at
        self.ends_at = ends_at
        self.conflicting_appointment_ids = list(conflicting_ids)
        super().__init__(
            f"staff {staff_id} is already booked between {starts_at.isoformat()} and {ends_at.isoformat()}"
        )


class InvalidInterval(GuardError, ValueError):
    """An interval that cannot be booked (empty, reversed, naive or too long)."""


@dataclass(frozen=True)
class Interval:
    starts_at: datetime
    ends_at: datetime
    # Cal.com event type this interval is booked as (composite segments may differ).
    calcom_event_type_id: int | None = None

    def overlaps(self, other: Interval) -> bool:
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at


@dataclass
class NewAppointment:
    """Everything needed to write one appointment; ids, not objects, so callers can
    build it from outside input without loading rows first."""

    company_id: int
    branch_id: int
    service_id: int
    staff_id: int
    customer_id: int
    # The busy intervals (one for a regular service, one per busy step otherwise).
    busy: list[Interval]
    # The whole appointment, gaps included; defaults to the span of `busy`.
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    status: AppointmentStatus = AppointmentStatus.BOOKED
    source: AppointmentSource = AppointmentSource.VOICE
    sync_status: SyncStatus = SyncStatus.PENDING
    call_id: str | None = None
    notes: str | None = None
    calcom_booking_uid: str | None = None
    calcom_booking_id: int | None = None
    segment_booking_uids: list[str | None] = field(default_factory=list)


def _validate(intervals: Sequence[Interval]) -> list[Interval]:
    if not intervals:
        raise InvalidInterval("an appointment needs at least one busy interval")
    checked = []
    for interval in intervals:
        if interval.starts_at.tzinfo is None or interval.ends_at.tzinfo is None:
            raise InvalidInterval("times must be timezone-aware")
        start, end = ensure_utc(interval.starts_at), ensure_utc(interval.ends_at)
        if end <= start:
            raise InvalidInterval("an interval must end after it starts")
        if end - start > MAX_SEGMENT:
            raise InvalidInterval(f"an interval may last at most {MAX_SEGMENT}")
        checked.append(Interval(start, end, interval.calcom_event_type_id))
    ordered = sorted(checked, key=lambda i: i.starts_at)
    for earlier, later in zip(ordered, ordered[1:]):
        if earlier.overlaps(later):
            raise InvalidInterval("the busy intervals of one appointment must not overlap")
    return ordered


def find_conflicts(
    session: Session,
    staff_id: int,
    intervals: Sequence[Interval],
    *,
    ignore_appointment_id: int | None = None,
) -> list[int]:
    """Ids of appointments whose active segments overlap any of `intervals` for this staff.

    One indexed query: (staff_id, starts_at) on active rows, bounded below by
    `MAX_SEGMENT` so only nearby segments are read.
    """
    if not intervals:
        return []
    earliest = min(i.starts_at for i in intervals)
    latest = max(i.ends_at for i in intervals)
    rows = session.execute(
        select(AppointmentSegment.appointment_id, AppointmentSegment.starts_at, AppointmentSegment.ends_at).where(
            AppointmentSegment.staff_id == staff_id,
            # The bare column, as the partial index's predicate: see `load_segments`.
            AppointmentSegment.active,
            AppointmentSegment.starts_at < latest,
            AppointmentSegment.starts_at > earliest - MAX_SEGMENT,
            AppointmentSegment.ends_at > earliest,
        )
    ).all()
    conflicts: list[int] = []
    for appointment_id, seg_start, seg_end in rows:
        if appointment_id == ignore_appointment_id:
            continue
        if any(Interval(seg_start, seg_end).overlaps(i) for i in intervals) and appointment_id not in conflicts:
            conflicts.append(appointment_id)
    return conflicts


@contextmanager
def guarded_transaction(session: Session) -> Iterator[Session]:
    """Run a block as one write transaction in which overlap checks are reliable.

    On SQLite the transaction starts with `BEGIN IMMEDIATE` (the engine listener in
    `core.database` reads the `sqlite_immediate` option), which takes the database's
    write lock before the first read, so check-then-insert cannot interleave with
    another writer. A read-only transaction that is already open is ended first; open
    writes are a programming error because they would be committed by surprise.

    Commits on success, rolls back on any exception (including `SlotTaken`).
    """
    if isinstance(session, scoped_session):
        session = session()  # Flask-SQLAlchemy's proxy lacks in_transaction()
    if session.get_bind().dialect.name == "sqlite":
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("guarded_transaction() needs a session without pending writes")
        if session.in_transaction():
            session.commit()
        session.connection(execution_options={"sqlite_immediate": True})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def lock_appointment(session: Session, appointment_id: int) -> Appointment | None:
    """The appointment, re-read and locked against every other writer until the
    transaction ends; None when it does not exist. Call inside `guarded_transaction`.

    PostgreSQL: `SELECT … FOR UPDATE` on the appointment row; a second writer waits
    here until the first commits, then reads what the first wrote. SQLite ignores
    `FOR UPDATE`; there `guarded_transaction`'s `BEGIN IMMEDIATE` already holds the
    database's only write lock, and a plain transaction would be a bug, so it is refused.

    Whatever this session read before the lock may be stale, so the appointment and
    its segments are loaded afresh (`populate_existing`).
    """
    if isinstance(session, scoped_session):
        session = session()
    if session.get_bind().dialect.name == "sqlite":
        options = session.connection().get_execution_options()
        if not options.get("sqlite_immediate"):
            raise RuntimeError("lock_appointment() must run inside guarded_transaction() on SQLite")
    appointment = session.scalars(
        select(Appointment).where(Appointment.id == appointment_id)
        .with_for_update().execution_options(populate_existing=True)
    ).first()
    if appointment is None:
        return None
    # The row lock covers the segments too (every writer takes it first); reload them
    # so a segment read before the lock cannot be written back with an old `active`.
    segments = session.scalars(
        select(AppointmentSegment).where(AppointmentSegment.appointment_id == appointment_id)
        .order_by(AppointmentSegment.position).execution_options(populate_existing=True)
    ).all()
    set_committed_value(appointment, "segments", list(segments))
    return appointment


def lock_appointments(session: Session, appointment_ids: Sequence[int]) -> dict[int, Appointment]:
    """`lock_appointment` for several, always in id order so two writers that each
    lock a set of appointments cannot deadlock."""
    locked = {}
    for appointment_id in sorted(set(appointment_ids)):
        appointment = lock_appointment(session, appointment_id)
        if appointment is not None:
            locked[appointment_id] = appointment
    return locked


def _flush_segments(session: Session, staff_id: int, intervals: list[Interval]) -> None:
    """Flush now so PostgreSQL checks the exclusion constraint here; a violation
    (another transaction won the race after our check) becomes `SlotTaken`."""
    try:
        session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == EXCLUSION_VIOLATION:
            raise SlotTaken(staff_id, intervals[0].starts_at, intervals[-1].ends_at) from exc
        raise


def _raise_if_taken(session: Session, staff_id: int, intervals: list[Interval], ignore: int | None = None) -> None:
    conflicts = find_conflicts(session, staff_id, intervals, ignore_appointment_id=ignore)
    if conflicts:
        raise SlotTaken(staff_id, intervals[0].starts_at, intervals[-1].ends_at, conflicts)


def add_appointment(session: Session, new: NewAppointment) -> Appointment:
    """Check and add an appointment inside an open `guarded_transaction`.

    For writers that do more in the same transaction (the Cal.com webhook flags a
    colliding appointment). Raises `SlotTaken`; the caller's transaction then rolls back.
    """
    busy = _validate(new.busy)
    _raise_if_taken(session, new.staff_id, busy)
    now = utcnow()
    appointment = Appointment(
        company_id=new.company_id,
        branch_id=new.branch_id,
        service_id=new.service_id,
        staff_id=new.staff_id,
        customer_id=new.customer_id,
        starts_at=ensure_utc(new.starts_at) if new.starts_at else busy[0].starts_at,
        ends_at=ensure_utc(new.ends_at) if new.ends_at else busy[-1].ends_at,
        status=new.status,
        source=new.source,
        sync_status=new.sync_status,
        sync_action=SyncAction.CREATE,
        sync_requested_at=now,
        synced_at=now if new.sync_status == SyncStatus.SYNCED else None,
        call_id=new.call_id,
        notes=new.notes,
        calcom_booking_uid=new.calcom_booking_uid,
        calcom_booking_id=new.calcom_booking_id,
    )
    if appointment.starts_at > busy[0].starts_at or appointment.ends_at < busy[-1].ends_at:
        raise InvalidInterval("the busy intervals must lie within the appointment")
    uids = list(new.segment_booking_uids) + [None] * (len(busy) - len(new.segment_booking_uids))
    appointment.segments = [
        AppointmentSegment(
            staff_id=new.staff_id,
            position=position,
            starts_at=interval.starts_at,
            ends_at=interval.ends_at,
            active=new.status in ACTIVE_STATUSES,
            calcom_event_type_id=interval.calcom_event_type_id,
            calcom_booking_uid=uid,
        )
        for position, (interval, uid) in enumerate(zip(busy, uids))
    ]
    session.add(appointment)
    _flush_segments(session, new.staff_id, busy)
    return appointment


def insert_appointment(session: Session, new: NewAppointment) -> Appointment:
    """Write one appointment with its busy segments in one guarded transaction.

    Returns the committed appointment, or raises `SlotTaken` and writes nothing.
    """
    with guarded_transaction(session):
        appointment = add_appointment(session, new)
    return appointment


def request_sync(appointment: Appointment, action: SyncAction) -> None:
    """Mark an appointment as needing `action` in Cal.com, starting a fresh attempt budget."""
    appointment.sync_status = SyncStatus.PENDING
    appointment.sync_action = action
    appointment.sync_requested_at = utcnow()
    appointment.sync_version = (appointment.sync_version or 0) + 1
    appointment.sync_attempts = 0
    appointment.next_sync_attempt_at = None
    appointment.sync_error_code = None
    appointment.sync_error_message = None


def move_segments(session: Session, appointment: Appointment, busy: Sequence[Interval]) -> None:
    """Inside an open `guarded_transaction`: give `appointment` new busy intervals.

    The old segments stay active until the new ones are checked, so a refused move
    (`SlotTaken`) leaves the appointment exactly where it was. The appointment's own
    old segments do not count as a conflict (moving by 15 minutes is allowed).
    """
    intervals = _validate(busy)
    _raise_if_taken(session, appointment.staff_id, intervals, ignore=appointment.id)
    old = list(appointment.segments)
    for segment in old:
        segment.active = False
    # Deactivate before inserting so PostgreSQL's constraint does not see the
    # appointment colliding with itself.
    session.flush()
    offset = max((s.position for s in old), default=-1) + 1
    for position, interval in enumerate(intervals):
        appointment.segments.append(
            AppointmentSegment(
                staff_id=appointment.staff_id,
                position=offset + position,
                starts_at=interval.starts_at,
                ends_at=interval.ends_at,
                active=True,
                calcom_event_type_id=interval.calcom_event_type_id,
            )
        )
    appointment.starts_at = intervals[0].starts_at
    appointment.ends_at = intervals[-1].ends_at
    _flush_segments(session, appointment.staff_id, intervals)


def move_appointment(
    session: Session,
    appointment_id: int,
    busy: Sequence[Interval],
    *,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    request: SyncAction | None = SyncAction.RESCHEDULE,
) -> Appointment:
    """Move an active appointment to new busy intervals in one guarded transaction.

    Raises `SlotTaken` (and changes nothing) when the new time is taken, `LookupError`
    when the appointment does not exist or is no longer active. `request` marks the
    appointment pending for the Cal.com reschedule; pass None when Cal.com itself
    made the change (webhook).
    """
    with guarded_transaction(session):
        appointment = lock_appointment(session, appointment_id)
        if appointment is None or not appointment.is_active:
            raise LookupError(f"appointment {appointment_id} is not active")
        move_segments(session, appointment, busy)
        if starts_at is not None:
            appointment.starts_at = ensure_utc(starts_at)
        if ends_at is not None:
            appointment.ends_at = ensure_utc(ends_at)
        if request is not None:
            request_sync(appointment, request)
    return appointment


def release_appointment(
    appointment: Appointment, *, reason: str | None = None, request: SyncAction | None = SyncAction.CANCEL
) -> None:
    """Cancel an appointment in the current transaction: its segments stop blocking.

    `request` marks it pending for the Cal.com cancel; None when Cal.com cancelled it.
    """
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = utcnow()
    appointment.cancellation_reason = reason
    for segment in appointment.segments:
        segment.active = False
    if request is not None:
        request_sync(appointment, request)


def cancel_appointment(
    session: Session, appointment_id: int, *, reason: str | None = None, request: SyncAction | None = SyncAction.CANCEL
) -> Appointment:
    """Cancel one appointment and free its slot, committed. Cancelling twice is harmless."""
    with guarded_transaction(session):
        appointment = lock_appointment(session, appointment_id)
        if appointment is None:
            raise LookupError(f"appointment {appointment_id} does not exist")
        if appointment.status != AppointmentStatus.CANCELLED:
            release_appointment(appointment, reason=reason, request=request)
    return appointment


def overlapping_pairs_sql() -> str:
    """SQL listing pairs of active segments of one staff that overlap.

    Used by tests and the reliability suites as the independent proof that the
    guard held: it must always return no rows.
    """
    return (
        "SELECT a.id, b.id FROM appointment_segments a JOIN appointment_segments b "
        "ON a.staff_id = b.staff_id AND a.id < b.id "
        "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at "
        "WHERE a.active AND b.active"
    )


def appointments_breaking_invariants_sql() -> str:
    """SQL listing (segment id, appointment id) of active segments that belong to an
    appointment which is not active (cancelled, completed, no-show).

    Such a segment would keep a staff member busy for an appointment nobody will
    come to — what a lost update between two writers leaves behind. Tests run it
    after every interleaving: it must always return no rows.
    """
    active = ", ".join(f"'{status.value}'" for status in ACTIVE_STATUSES)
    return (
        "SELECT s.id, a.id FROM appointment_segments s JOIN appointments a ON a.id = s.appointment_id "
        f"WHERE s.active AND a.status NOT IN ({active})"
    )


__all__ = [
    "GuardError",
    "InvalidInterval",
    "Interval",
    "NewAppointment",
    "SlotTaken",
    "add_appointment",
    "appointments_breaking_invariants_sql",
    "lock_appointment",
    "lock_appointments",
    "cancel_appointment",
    "find_conflicts",
    "guarded_transaction",
    "insert_appointment",
    "move_appointment",
    "move_segments",
    "overlapping_pairs_sql",
    "release_appointment",
    "request_sync",
    "MAX_SEGMENT",
]
