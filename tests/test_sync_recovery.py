"""Real `rq worker` processes: the Procfile's worker retries through RQ's scheduler, and
a worker killed between Cal.com's 201 and our commit still ends with exactly one booking.

A real `rq worker` process (the production `SimpleAppWorker`, or the forking
`AppWorker`; see `tests/support/crashing_worker.py`) takes the sync job, Cal.com (the emulator) makes
the booking and answers 201, and the process is killed with SIGKILL before anything
is committed. Then recovery runs as in production: the sweeper finds the appointment
pending with no live job and enqueues it again; the re-run finds the booking by its
metadata and adopts it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time as clock_time
from datetime import date, datetime, time, timedelta, timezone

import pytest
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from core import PROJECT_ROOT
from core.clock import frozen_at, local_to_utc, utcnow
from core.extensions import db
from core.models import SyncOutcome, SyncStatus
from core.queues import enqueue_sync, sync_job_id
from core.redis_client import get_redis
from tests.factories import book, make_world
from tests.support.sync_helpers import attempts, bookings_of, reload, run_sync_jobs, sync_queue
from workers.sweeper import sweep_stale_pending

pytestmark = pytest.mark.slow


def next_weekday_ten(now: datetime) -> datetime:
    """10:00 in Berlin on a working day a few days ahead of the real `now`."""
    day: date = (now + timedelta(days=3)).date()
    while day.isoweekday() == 7:
        day += timedelta(days=1)
    return local_to_utc(datetime.combine(day, time(10, 0)), "Europe/Berlin")


RQ = os.path.join(os.path.dirname(sys.executable), "rq")


def worker_env(app, database_url: str, **extra: str) -> dict[str, str]:
    """The environment a worker process gets: the test's database, Redis and emulator."""
    return dict(os.environ, DATABASE_URL=database_url, REDIS_URL=app.config["REDIS_URL"],
                CALCOM_API_URL=app.config["CALCOM_API_URL"], CALCOM_API_KEY="cal_test_key",
                SECRET_KEY="test-secret-key", PYTHONPATH=PROJECT_ROOT, **extra)


def run_crashing_worker(app, database_url: str, mode: str, tmp_path) -> subprocess.CompletedProcess:
    """`horse`/`worker`: the forking `AppWorker`'s horse dies (alone, or with its worker);
    `production`: the Procfile's non-forking `SimpleAppWorker` dies (nothing is left)."""
    log = tmp_path / f"worker-{mode}.log"
    worker_class = ("tests.support.crashing_worker.CrashingSimpleAppWorker" if mode == "production"
                    else "tests.support.crashing_worker.CrashingAppWorker")
    crash = "horse" if mode == "production" else mode
    with open(log, "w") as output:
        process = subprocess.run(
            [RQ, "worker", "--burst", "--url", app.config["REDIS_URL"],
             "--worker-class", worker_class, "calcom-sync"],
            cwd=PROJECT_ROOT, env=worker_env(app, database_url, SLOTGUARD_TEST_CRASH=crash), stdout=output,
            stderr=subprocess.STDOUT, timeout=120,
        )
    process.log = log.read_text()
    return process


def test_the_procfile_worker_retries_through_rqs_scheduler(app, calcom_emulator, database_url, tmp_path):
    """`rq worker --with-scheduler --worker-class workers.app_worker.SimpleAppWorker calcom-sync default`,
    as in the Procfile: a 503, then the retry scheduled with `enqueue_in` is moved to the
    queue by RQ's scheduler and succeeds. (Backoff shortened to 1 s for this process.)"""
    world = make_world()
    calcom_emulator.load_world(db.session, preload_bookings=False)
    calcom_emulator.set_faults({"rules": [{"kind": "error", "endpoint": "create", "times": 1}]})
    appointment = book(world, next_weekday_ten(datetime.now(timezone.utc)))
    enqueue_sync(appointment.id, "create", appointment.sync_version)
    appointment_id = appointment.id
    db.session.remove()
    env = worker_env(app, database_url, SYNC_BACKOFF_BASE_SECONDS="1", SYNC_BACKOFF_CAP_SECONDS="1")
    log = tmp_path / "worker.log"
    with open(log, "w") as output:
        worker = subprocess.Popen(
            [RQ, "worker", "--with-scheduler", "--url", app.config["REDIS_URL"],
             "--worker-class", "workers.app_worker.SimpleAppWorker", "calcom-sync", "default"],
            cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = clock_time.monotonic() + 60
            while reload(appointment_id).sync_status == SyncStatus.PENDING and clock_time.monotonic() < deadline:
                db.session.remove()
                clock_time.sleep(0.2)  # waiting for another process, not for time-dependent logic
        finally:
            worker.terminate()
            worker.wait(timeout=30)

    appointment = reload(appointment_id)
    assert appointment.sync_status == SyncStatus.SYNCED, log.read_text()
    first, second = attempts(appointment_id)
    assert (first.outcome, first.http_status) == (SyncOutcome.RETRY, 503)
    assert (second.outcome, second.job_id) == (SyncOutcome.SUCCESS, f"sync-{appointment_id}-v1-a2")
    assert len(bookings_of(calcom_emulator, appointment_id)) == 1


@pytest.mark.parametrize("mode", ["horse", "worker", "production"])
def test_killed_after_calcoms_201_still_ends_with_exactly_one_booking(
        app, calcom_emulator, database_url, tmp_path, mode):
    real_now = datetime.now(timezone.utc)
    with frozen_at(real_now):
        world = make_world()
        calcom_emulator.load_world(db.session, preload_bookings=False)
        appointment = book(world, next_weekday_ten(real_now))
        job = enqueue_sync(appointment.id, "create", appointment.sync_version)
        db.session.remove()

        worker = run_crashing_worker(app, database_url, mode, tmp_path)

        # Cal.com has the booking; Slotguard never heard of it.
        (made,) = bookings_of(calcom_emulator, appointment.id)
        appointment = reload(appointment.id)
        assert appointment.sync_status == SyncStatus.PENDING, worker.log
        assert appointment.calcom_booking_uid is None and appointment.sync_attempts == 1
        (unfinished,) = attempts(appointment.id)
        assert unfinished.finished_at is None and unfinished.outcome is None
        status = Job.fetch(job.id, connection=get_redis(app)).get_status()
        if mode == "horse":
            # RQ's worker saw its work horse die and failed the job (no RQ retry is configured).
            assert worker.returncode == 0, worker.log
            assert status == JobStatus.FAILED
            assert "Work-horse terminated unexpectedly" in worker.log
        else:
            # Nobody is left to tell RQ: the job stays "started" until its heartbeat deadline.
            assert worker.returncode == -9, worker.log
            assert status == JobStatus.STARTED
            assert job.id in StartedJobRegistry(queue=sync_queue(app))

        # Eleven minutes later the sweeper runs (the dead worker's heartbeat deadline,
        # about 90 s, has long passed: RQ's StartedJobRegistry cleanup fails the job as
        # abandoned) and enqueues the appointment again.
        with frozen_at(utcnow() + timedelta(minutes=11)):
            assert sweep_stale_pending()["requeued"] == [appointment.id]
            assert Job.fetch(job.id, connection=get_redis(app)).get_status() == JobStatus.QUEUED
            run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.SYNCED
    assert appointment.calcom_booking_uid == made.uid
    assert bookings_of(calcom_emulator, appointment.id, live_only=False) == [made]
    lost, recovered = attempts(appointment.id)
    assert (lost.outcome, lost.error_code) == (SyncOutcome.RETRY, "worker_lost")
    assert recovered.outcome == SyncOutcome.SUCCESS and f"adopted booking {made.uid}" in recovered.error_message
    assert recovered.job_id == sync_job_id(appointment.id, appointment.sync_version)
