"""Every writer of an appointment takes the same lock (`lock_appointment`), so two
writers of one appointment run one after the other and no update is lost.

The PostgreSQL tests use two real connections in two threads; the holder keeps the
lock until PostgreSQL itself reports the other one waiting, then lets go.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text, update

from booking.reconcile_webhook import handle_event, parse_event
from calcom.webhooks import BOOKING_CANCELLED, booking_payload
from core.booking_guard import (
    Interval,
    appointments_breaking_invariants_sql,
    guarded_transaction,
    lock_appointment,
    move_appointment,
    move_segments,
    release_appointment,
)
from core.extensions import db
from core.models import Appointment, AppointmentSegment, AppointmentStatus, SyncAction
from tests.factories import book, make_world
from tests.support.pg_waits import wait_until_a_backend_waits_for_a_lock

TEN = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)  # Tuesday 10:00 in Berlin
NOON = TEN + timedelta(hours=2)


def broken_invariants() -> list:
    db.session.rollback()  # a fresh snapshot: see what the threads committed
    return db.session.execute(text(appointments_breaking_invariants_sql())).all()


class LockHolder(threading.Thread):
    """Takes the appointment's lock, runs `change` on it, and commits only when told."""

    def __init__(self, app, appointment_id: int, change):
        super().__init__(daemon=True)
        self.app, self.appointment_id, self.change = app, appointment_id, change
        self.locked, self.go_on = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        with self.app.app_context():
            try:
                with guarded_transaction(db.session):
                    appointment = lock_appointment(db.session, self.appointment_id)
                    self.change(db.session, appointment)
                    db.session.flush()
                    self.locked.set()
                    self.go_on.wait(30)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.error = exc
                self.locked.set()
            finally:
                db.session.remove()


class Writer(threading.Thread):
    """Runs one writer (in its own connection) and keeps what it returned or raised."""

    def __init__(self, app, write):
        super().__init__(daemon=True)
        self.app, self.write = app, write
        self.result = self.error = None

    def run(self) -> None:
        with self.app.app_context():
            try:
                self.result = self.write(db.session)
            except BaseException as exc:  # noqa: BLE001 - inspected by the test
                self.error = exc
            finally:
                db.session.remove()


def interleave(app, appointment_id: int, first_change, second_write) -> Writer:
    """The first writer holds the lock mid-change; the second starts, must block, and
    runs only after the first committed."""
    holder = LockHolder(app, appointment_id, first_change)
    holder.start()
    assert holder.locked.wait(15), "the first writer never took the lock"
    assert holder.error is None, holder.error
    second = Writer(app, second_write)
    second.start()
    blocked = wait_until_a_backend_waits_for_a_lock()
    holder.go_on.set()
    holder.join(15)
    second.join(15)
    assert blocked, "the second writer did not wait for the first one's lock"
    assert holder.error is None, holder.error
    return second


@pytest.mark.postgres_only("row locks between two real connections")
def test_caller_reschedule_waits_for_a_cancel_and_does_not_revive_the_appointment(app, clock):
    world = make_world()
    appointment_id = book(world, TEN).id

    def cancel(session, appointment):
        release_appointment(appointment, reason="Cal.com: abgesagt", request=None)

    def reschedule(session):
        return move_appointment(session, appointment_id, [Interval(NOON, NOON + timedelta(minutes=30))])

    second = interleave(app, appointment_id, cancel, reschedule)

    # The reschedule read the appointment only after the cancel committed: refused.
    assert isinstance(second.error, LookupError)
    assert broken_invariants() == []
    appointment = db.session.get(Appointment, appointment_id)
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.starts_at == TEN
    assert appointment.sync_action != SyncAction.RESCHEDULE


def cancel_webhook(uid: str) -> bytes:
    body = booking_payload(
        BOOKING_CANCELLED,
        booking={"uid": uid, "id": 501, "start": TEN, "end": TEN + timedelta(minutes=30), "title": "Termin",
                 "metadata": {}, "cancellation_reason": "Kundin hat abgesagt"},
        event_type={"id": 1001, "slug": "termin", "title": "Termin"},
        organizer={"id": 100, "name": "Host", "email": "host100@example.com", "username": "host-100",
                   "timeZone": "Europe/Berlin"},
        attendees=[{"name": "Erika", "email": "erika@example.com", "timeZone": "Europe/Berlin", "language": "de"}],
        created_at=datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc),
    )
    return json.dumps(body).encode()


@pytest.mark.postgres_only("row locks between two real connections")
def test_webhook_cancel_racing_a_move_leaves_no_active_segment_behind(app, clock):
    world = make_world()
    appointment = book(world, TEN)
    appointment.calcom_booking_uid = "cal_uid_1"
    appointment.segments[0].calcom_booking_uid = "cal_uid_1"
    db.session.commit()
    appointment_id = appointment.id

    def move(session, locked):
        # Another writer (a reschedule) is mid-way: old segment off, a new one on.
        move_segments(session, locked, [Interval(NOON, NOON + timedelta(minutes=30))])

    second = interleave(app, appointment_id, move, lambda session: handle_event(session, parse_event(
        cancel_webhook("cal_uid_1"))))

    assert second.error is None, second.error
    assert second.result.result == "cancelled"
    # Without the lock the webhook deactivated only the segment it had read before
    # the move committed, and the moved segment stayed active on a cancelled appointment.
    assert broken_invariants() == []
    active = db.session.scalars(select(AppointmentSegment).where(
        AppointmentSegment.appointment_id == appointment_id, AppointmentSegment.active)).all()
    assert active == []
    assert db.session.get(Appointment, appointment_id).status == AppointmentStatus.CANCELLED


def test_lock_reads_what_another_writer_committed_after_this_session_read_it(app):
    world = make_world()
    appointment = book(world, TEN)
    assert appointment.segments[0].active  # this session now holds the old state
    with db.engine.begin() as other:  # another writer cancels meanwhile
        other.execute(update(AppointmentSegment).where(
            AppointmentSegment.appointment_id == appointment.id).values(active=False))
        other.execute(update(Appointment).where(Appointment.id == appointment.id).values(
            status=AppointmentStatus.CANCELLED.value))

    with guarded_transaction(db.session):
        locked = lock_appointment(db.session, appointment.id)
        assert locked.status == AppointmentStatus.CANCELLED
        assert [s.active for s in locked.segments] == [False]


def test_lock_outside_a_guarded_transaction_is_refused_on_sqlite(app, is_postgres):
    world = make_world()
    appointment_id = book(world, TEN).id
    if is_postgres:
        with guarded_transaction(db.session):
            assert lock_appointment(db.session, appointment_id).id == appointment_id
        return
    with pytest.raises(RuntimeError, match="guarded_transaction"):
        lock_appointment(db.session, appointment_id)
    db.session.rollback()


def test_invariant_query_finds_an_active_segment_of_a_cancelled_appointment(app):
    world = make_world()
    appointment = book(world, TEN)
    assert broken_invariants() == []
    with db.engine.begin() as conn:  # what a lost update would leave
        conn.execute(update(Appointment).where(Appointment.id == appointment.id).values(
            status=AppointmentStatus.CANCELLED.value))
    assert [row[1] for row in broken_invariants()] == [appointment.id]
