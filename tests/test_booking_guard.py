"""The database guard: nobody is ever double-booked, on PostgreSQL and on SQLite."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from core.booking_guard import (
    Interval,
    InvalidInterval,
    SlotTaken,
    cancel_appointment,
    insert_appointment,
    move_appointment,
    overlapping_pairs_sql,
)
from core.extensions import db
from core.models import Appointment, AppointmentSegment, AppointmentStatus, SyncAction, SyncStatus
from tests.factories import book, ids_only, make_world, new_appointment

TEN = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)  # 10:00 in Berlin


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def count_active_segments() -> int:
    return db.session.scalar(select(func.count()).select_from(AppointmentSegment).where(AppointmentSegment.active))


def test_overlapping_segment_for_same_staff_is_refused(app):
    world = make_world()
    book(world, TEN, 30)

    with pytest.raises(SlotTaken) as caught:
        book(world, TEN + minutes(15), 30)

    assert caught.value.staff_id == world["staff"][0].id
    assert caught.value.conflicting_appointment_ids
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 1


def test_refused_booking_writes_nothing(app):
    world = make_world()
    book(world, TEN, 60)
    before = db.session.scalar(select(func.count()).select_from(AppointmentSegment))

    with pytest.raises(SlotTaken):
        book(world, TEN + minutes(30), 30)

    assert db.session.scalar(select(func.count()).select_from(AppointmentSegment)) == before


def test_touching_intervals_are_allowed(app):
    world = make_world()
    book(world, TEN, 30)
    book(world, TEN + minutes(30), 30)
    book(world, TEN - minutes(30), 30)

    assert count_active_segments() == 3


def test_other_staff_may_take_the_same_time(app):
    world = make_world()
    book(world, TEN, 30, staff=world["staff"][0])
    book(world, TEN, 30, staff=world["staff"][1])

    assert count_active_segments() == 2


def test_cancelled_appointment_frees_its_slot(app):
    world = make_world()
    first = book(world, TEN, 30)

    cancelled = cancel_appointment(db.session, first.id, reason="customer called")
    second = book(world, TEN, 30)

    assert cancelled.status == AppointmentStatus.CANCELLED
    assert cancelled.sync_status == SyncStatus.PENDING and cancelled.sync_action == SyncAction.CANCEL
    assert second.id != first.id
    assert count_active_segments() == 1


def test_composite_gap_is_free_for_another_customer(app):
    world = make_world()
    colour_busy = [Interval(TEN, TEN + minutes(30)), Interval(TEN + minutes(70), TEN + minutes(100))]
    book(world, TEN, busy=colour_busy, service_id=world["colour"].id, ends_at=TEN + minutes(100))

    # The 40-minute processing gap holds a 30-minute haircut…
    book(world, TEN + minutes(35), 30)
    # …but not something that reaches into the second busy segment.
    with pytest.raises(SlotTaken):
        book(world, TEN + minutes(60), 30)


def test_reschedule_keeps_old_slot_until_new_one_is_secured(app):
    world = make_world()
    moving = book(world, TEN, 30)
    blocker = book(world, TEN + minutes(120), 30)

    with pytest.raises(SlotTaken):
        move_appointment(db.session, moving.id, [Interval(TEN + minutes(120), TEN + minutes(150))])

    db.session.expire_all()
    assert db.session.get(Appointment, moving.id).starts_at == TEN
    assert count_active_segments() == 2

    # Moving by 15 minutes overlaps only itself, which is fine.
    moved = move_appointment(db.session, moving.id, [Interval(TEN + minutes(15), TEN + minutes(45))])
    assert moved.starts_at == TEN + minutes(15)
    assert moved.sync_action == SyncAction.RESCHEDULE and moved.sync_status == SyncStatus.PENDING
    assert count_active_segments() == 2
    assert blocker.id


def test_invalid_intervals_are_refused(app):
    world = make_world()
    with pytest.raises(InvalidInterval):
        book(world, TEN, busy=[Interval(TEN, TEN)])
    with pytest.raises(InvalidInterval):
        book(world, TEN, busy=[Interval(TEN.replace(tzinfo=None), TEN.replace(tzinfo=None) + minutes(30))])
    with pytest.raises(InvalidInterval):
        book(world, TEN, busy=[Interval(TEN, TEN + timedelta(hours=13))])
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 0


def test_times_come_back_as_aware_utc(app):
    world = make_world()
    appointment = book(world, TEN, 30)
    db.session.expire_all()
    loaded = db.session.get(Appointment, appointment.id)
    assert loaded.starts_at == TEN
    assert loaded.starts_at.utcoffset() == timedelta(0)


@pytest.mark.postgres_only("the exclusion constraint exists only on PostgreSQL")
def test_postgres_constraint_refuses_overlap_even_without_the_check(app):
    """Bypass the application check entirely: the database itself must refuse."""
    world = make_world()
    first = book(world, TEN, 30)
    with pytest.raises(Exception) as caught:
        db.session.execute(
            text(
                "INSERT INTO appointment_segments (appointment_id, staff_id, position, starts_at, ends_at, active) "
                "VALUES (:a, :s, 1, :start, :end, true)"
            ),
            {"a": first.id, "s": world["staff"][0].id, "start": TEN + minutes(10), "end": TEN + minutes(20)},
        )
        db.session.commit()
    db.session.rollback()
    assert getattr(caught.value.orig, "sqlstate", None) == "23P01"


@pytest.mark.postgres_only("the race between check and insert is only closed by the constraint there")
def test_postgres_constraint_turns_lost_race_into_slot_taken(app, monkeypatch):
    """Two writers both pass the check; the constraint refuses the second one."""
    import core.booking_guard as guard

    world = make_world()
    book(world, TEN, 30)
    monkeypatch.setattr(guard, "find_conflicts", lambda *a, **k: [])
    with pytest.raises(SlotTaken):
        book(world, TEN, 30)
    assert count_active_segments() == 1


def test_twenty_threads_inserting_the_same_slot_produce_one_row(app):
    world = ids_only(make_world())
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        with app.app_context():
            barrier.wait()
            try:
                insert_appointment(db.session, new_appointment(world, TEN, 30))
                result = "booked"
            except SlotTaken:
                result = "taken"
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["booked"] + ["taken"] * 19
    db.session.rollback()  # end this thread's read snapshot to see the others' commits
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 1
    assert db.session.execute(text(overlapping_pairs_sql())).all() == []
