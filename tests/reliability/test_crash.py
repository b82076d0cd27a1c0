"""Crash: a real `rq worker` killed with SIGKILL at chosen points of the sync, then
recovery as in production — none lost, exactly one Cal.com booking each.

Each test books four appointments (two haircuts, two composite colour services with
two busy segments each) through the booking code path and runs them with real `rq
worker --burst` processes on the sync queue, talking to the Cal.com emulator over HTTP,
once per worker class (`tests/support/worker_process.py`, `JobKillers`):

* `production`: the Procfile's non-forking `SimpleAppWorker`. The job runs in the
  worker, so at every job's crash point the whole worker is SIGKILLed: nothing is left
  to tell RQ and each job stays "started" until its heartbeat deadline; a fresh worker
  takes the next job.
* `forking`: `AppWorker`, one work horse per job. At the crash point of every job the
  test SIGKILLs the work horse (RQ's worker survives, fails the job and takes the next
  one); at the last job it kills the whole worker.

The crash points are chosen from outside the worker where possible:

* before Cal.com acted: the create request is held at a gate inside the emulator
  (`tests/support/emulator_gate.py`) and refused after the kill — the worker class
  itself, nothing patched;
* in flight: held the same way, and let through after the kill — Cal.com makes the
  booking and answers 201 to nobody;
* after Cal.com's 201, before our commit, and after our commit: the worker (or work
  horse) of `tests/support/crashing_worker.py` stops itself (SIGSTOP) there and the test
  kills it;
* a reschedule or cancel in flight: the appointments are synced first, then moved or
  cancelled by their callers, and the change's request is held at the gate like a create.

Recovery is what production runs: eleven minutes later (a controlled clock, not a
sleep) the sweeper lets RQ declare the dead worker's job abandoned and re-enqueues
every appointment still pending with no job in flight; a fresh `rq worker` process
runs them. Afterwards every appointment is synced, each busy segment has exactly one
live booking in the emulator (looked up by our metadata appointment id through its
inspection API) with the uid we recorded — none after a cancel — and nothing else is
live in Cal.com.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from rq.job import Job, JobStatus
from sqlalchemy import select

from core.clock import frozen_at, utcnow
from core.extensions import db
from core.models import SyncAttempt, SyncStatus
from core.queues import sync_job_id
from core.redis_client import get_redis
from tests.support.emulator_gate import EmulatorGate
from tests.support.salon import (
    appointments,
    book_planned,
    cancel_booked,
    check_synced_exactly_once,
    duplicates_in_calcom,
    make_salon,
    move_booked,
    plan_appointments,
)
from tests.support.sync_helpers import run_sync_jobs
from tests.support.worker_process import SIMPLE_APP_WORKER, JobKillers, WorkerProcess, wait_until
from workers.sweeper import sweep_stale_pending

pytestmark = pytest.mark.slow

APPOINTMENTS = 4  # composite, haircut, composite, haircut
SEGMENTS = 2 + 1 + 2 + 1  # busy segments, one Cal.com booking each


@pytest.fixture
def salon(app, calcom_emulator):
    return make_salon(calcom_emulator)


@pytest.fixture(params=[False, True], ids=["production", "forking"])
def forking(request) -> bool:
    """Which worker class runs the jobs: the Procfile's `SimpleAppWorker`, or `AppWorker`."""
    return request.param


def book_four(salon) -> list[int]:
    ids = [book_planned(salon, planned)
           for planned in plan_appointments(salon, datetime.now(timezone.utc), APPOINTMENTS, composite_share=2)]
    db.session.remove()  # the workers write these rows now
    return ids


def recover(app, database_url, tmp_path, expected_requeued) -> list[int]:
    """Production's recovery: the sweeper, eleven minutes on (past `SYNC_SWEEP_AFTER_MINUTES`
    and the dead worker's heartbeat deadline), then a fresh worker process (the Procfile's class)."""
    with frozen_at(utcnow() + timedelta(minutes=11)):
        requeued = sweep_stale_pending()["requeued"]
    assert sorted(requeued) == sorted(expected_requeued)
    db.session.remove()
    with WorkerProcess(app, database_url, tmp_path / "fresh-worker.log", worker_class=SIMPLE_APP_WORKER) as fresh:
        assert fresh.wait() == 0, fresh.log
    return requeued


def assert_all_synced_exactly_once(calcom_emulator, ids) -> None:
    found = appointments(ids)
    assert [a.sync_status for a in found] == [SyncStatus.SYNCED] * len(ids), [
        (a.id, a.sync_status.value, a.sync_error_message) for a in found]
    assert not any(a.requires_manual_review for a in found)
    problems = [p for a in found for p in check_synced_exactly_once(calcom_emulator, a)]
    assert problems == []
    assert duplicates_in_calcom(calcom_emulator) == []
    # Nothing else is live in Cal.com: no orphan from a killed attempt.
    live = [b for b in calcom_emulator.state.bookings.values() if b.active]
    assert len(live) == SEGMENTS


def lost_attempts(ids) -> list[int]:
    """Appointments with an attempt recorded as lost with its worker."""
    db.session.expire_all()
    return sorted(db.session.scalars(select(SyncAttempt.appointment_id).where(
        SyncAttempt.appointment_id.in_(ids), SyncAttempt.error_code == "worker_lost")))


def adopted(ids) -> list[int]:
    """Appointments whose successful attempt adopted a booking already in Cal.com."""
    db.session.expire_all()
    return sorted(set(db.session.scalars(select(SyncAttempt.appointment_id).where(
        SyncAttempt.appointment_id.in_(ids), SyncAttempt.error_message.contains("adopted booking")))))


def job_status(app, job_id: str) -> JobStatus:
    return Job.fetch(job_id, connection=get_redis(app)).get_status(refresh=True)


@pytest.mark.parametrize("calcom_acts", [False, True], ids=["before_calcom_acted", "in_flight_calcom_completes"])
def test_killed_while_the_create_is_held_at_calcom(app, calcom_emulator, database_url, salon, tmp_path, calcom_acts,
                                                  forking):
    """The worker class unpatched: each job's create reaches Cal.com and is held there;
    the worker is killed; then Cal.com either never acts on the request or completes it
    for a caller who is gone."""
    ids = book_four(salon)
    with EmulatorGate(calcom_emulator) as gate, JobKillers(app, database_url, tmp_path, forking=forking) as jobs:
        for n in range(APPOINTMENTS):
            jobs.start_job()
            held = gate.next_request()
            jobs.kill(last=n == APPOINTMENTS - 1)
            if calcom_acts:
                held.proceed()
                wait_until(lambda: len(calcom_emulator.state.bookings) == n + 1, timeout=30,
                           what="Cal.com to finish the orphaned create")
            else:
                held.refuse()
    # One booking per appointment made by nobody we know of (its first segment), or none.
    assert len(calcom_emulator.state.bookings) == (APPOINTMENTS if calcom_acts else 0)
    pending = appointments(ids)
    assert all(a.sync_status == SyncStatus.PENDING and a.calcom_booking_uid is None for a in pending)
    # The last job's whole worker died: RQ still thinks it is running.
    assert job_status(app, sync_job_id(ids[-1], 1)) == JobStatus.STARTED
    # A surviving forking worker failed its dead horse's job; with no survivor it is "started".
    assert job_status(app, sync_job_id(ids[0], 1)) == (JobStatus.FAILED if forking else JobStatus.STARTED)

    recover(app, database_url, tmp_path, expected_requeued=ids)

    assert_all_synced_exactly_once(calcom_emulator, ids)
    assert lost_attempts(ids) == sorted(ids)
    # The bookings Cal.com made for the dead workers were adopted, not made twice.
    assert adopted(ids) == (sorted(ids) if calcom_acts else [])


def test_killed_after_calcoms_201_before_our_commit(app, calcom_emulator, database_url, salon, tmp_path, forking):
    """Cal.com made the booking and answered 201; the worker is killed before it writes
    anything. For a composite the second segment was never booked."""
    ids = book_four(salon)
    with JobKillers(app, database_url, tmp_path, forking=forking, crashing=True,
                    SLOTGUARD_TEST_CRASH="stop", SLOTGUARD_TEST_CRASH_AT="after_create") as jobs:
        for n in range(APPOINTMENTS):
            jobs.start_job()
            jobs.kill(last=n == APPOINTMENTS - 1, stopped=True)
    assert len(calcom_emulator.state.bookings) == APPOINTMENTS  # the first segment of each
    assert all(a.sync_status == SyncStatus.PENDING for a in appointments(ids))

    recover(app, database_url, tmp_path, expected_requeued=ids)

    assert_all_synced_exactly_once(calcom_emulator, ids)
    assert lost_attempts(ids) == sorted(ids)
    assert adopted(ids) == sorted(ids)


def test_killed_after_our_commit(app, calcom_emulator, database_url, salon, tmp_path, forking):
    """The result is committed, then the worker dies before telling RQ. The first job's
    create met a 503, so what it committed is a retry — whose scheduling died with it."""
    ids = book_four(salon)
    calcom_emulator.set_faults({"rules": [{"kind": "error", "endpoint": "create", "times": 1}]})
    with JobKillers(app, database_url, tmp_path, forking=forking, crashing=True,
                    SLOTGUARD_TEST_CRASH="stop", SLOTGUARD_TEST_CRASH_AT="after_commit") as jobs:
        for n in range(APPOINTMENTS):
            jobs.start_job()
            jobs.kill(last=n == APPOINTMENTS - 1, stopped=True)
    first, *others = appointments(ids)
    assert first.sync_status == SyncStatus.PENDING and first.next_sync_attempt_at is not None
    assert first.sync_error_code == "http_503"
    assert [a.sync_status for a in others] == [SyncStatus.SYNCED] * (APPOINTMENTS - 1)
    assert job_status(app, sync_job_id(ids[-1], 1)) == JobStatus.STARTED

    # Only the appointment whose retry was lost needs the sweeper; the synced ones stay put.
    recover(app, database_url, tmp_path, expected_requeued=[first.id])

    assert_all_synced_exactly_once(calcom_emulator, ids)
    assert lost_attempts(ids) == []  # every attempt's result was committed before the kill
    # The abandoned job of the synced appointment was failed by RQ's cleanup, not re-run.
    assert job_status(app, sync_job_id(ids[-1], 1)) == JobStatus.FAILED


@pytest.mark.parametrize("change", ["reschedule", "cancel"])
def test_killed_while_a_move_or_cancel_is_in_flight(app, calcom_emulator, database_url, salon, tmp_path, change,
                                                    forking):
    """The four appointments are synced, then their callers move them (or cancel them).
    Each job's Cal.com request is held at the gate, the worker killed, and Cal.com then
    carries the request out for nobody: for a composite only its first segment's booking
    has moved (or been cancelled). Recovery finishes the change — exactly one live booking
    per segment at its new time, or none at all after a cancel."""
    planned = plan_appointments(salon, datetime.now(timezone.utc), APPOINTMENTS, composite_share=2)
    ids = [book_planned(salon, p) for p in planned]
    run_sync_jobs(app)
    assert [a.sync_status for a in appointments(ids)] == [SyncStatus.SYNCED] * APPOINTMENTS
    for appointment_id, p in zip(ids, planned):
        if change == "reschedule":
            # Colour 16:00 → 14:00, haircuts 9:00/9:30 → 11:00/11:30: free in both calendars.
            move_booked(appointment_id, p.start + timedelta(hours=-2 if p.composite else 2))
        else:
            cancel_booked(appointment_id)
    db.session.remove()

    def carried_out() -> int:  # Cal.com bookings no longer live: moved away from or cancelled
        return sum(1 for b in list(calcom_emulator.state.bookings.values()) if not b.active)

    with EmulatorGate(calcom_emulator, change) as gate, \
            JobKillers(app, database_url, tmp_path, forking=forking) as jobs:
        for n in range(APPOINTMENTS):
            jobs.start_job()
            held = gate.next_request()
            jobs.kill(last=n == APPOINTMENTS - 1)
            held.proceed()
            wait_until(lambda: carried_out() == n + 1, timeout=30, what=f"Cal.com to finish the orphaned {change}")
    assert all(a.sync_status == SyncStatus.PENDING for a in appointments(ids))

    recover(app, database_url, tmp_path, expected_requeued=ids)

    assert lost_attempts(ids) == sorted(ids)
    if change == "reschedule":
        assert_all_synced_exactly_once(calcom_emulator, ids)
    else:
        found = appointments(ids)
        assert [(a.sync_status, a.sync_action.value) for a in found] == [(SyncStatus.SYNCED, "cancel")] * APPOINTMENTS
        assert [b.uid for b in calcom_emulator.state.bookings.values() if b.active] == []
        assert duplicates_in_calcom(calcom_emulator) == []
