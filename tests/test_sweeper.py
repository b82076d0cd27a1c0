"""The sweeper re-enqueues stale pending syncs that have no job left (no Cal.com needed here;
`test_sync_recovery.py` runs the re-enqueued jobs against the emulator)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rq import Queue
from rq.job import JobStatus
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from core.extensions import db
from core.models import Appointment, AuditEvent, SyncStatus
from core.queues import SYNC_QUEUE, enqueue_sync, sync_job_id
from core.redis_client import get_redis
from tests.factories import book, make_world
from workers.sweeper import sweep_stale_pending
from workers.sync_queue import retry_job_id, schedule_retry

TEN = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)


def sync_queue(app) -> Queue:
    return Queue(SYNC_QUEUE, connection=get_redis(app))


def pending(world, clock, *, minutes_ago: int, start=TEN) -> Appointment:
    appointment = book(world, start)
    appointment.sync_requested_at = clock.utcnow() - timedelta(minutes=minutes_ago)
    db.session.commit()
    return appointment


def test_a_pending_sync_whose_job_was_lost_is_enqueued_again(app, clock):
    world = make_world()
    lost = pending(world, clock, minutes_ago=11)  # its enqueue never happened (or Redis was flushed)

    result = sweep_stale_pending()

    assert result == {"requeued": [lost.id], "in_flight": []}
    assert sync_queue(app).get_job_ids() == [sync_job_id(lost.id, lost.sync_version)]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.appointment_id == lost.id))
    assert (event.actor, event.action) == ("sweeper", "sweep_requeue")
    assert event.details["job_status"] == "none in Redis"


def test_recent_and_settled_appointments_are_left_alone(app, clock):
    world = make_world()
    pending(world, clock, minutes_ago=9)  # younger than the 10-minute threshold
    synced = pending(world, clock, minutes_ago=60, start=TEN + timedelta(hours=1))
    synced.sync_status = SyncStatus.SYNCED
    failed = pending(world, clock, minutes_ago=60, start=TEN + timedelta(hours=2))
    failed.sync_status = SyncStatus.FAILED
    db.session.commit()

    assert sweep_stale_pending() == {"requeued": [], "in_flight": []}
    assert sync_queue(app).get_job_ids() == []


def test_a_queued_or_scheduled_job_counts_as_in_flight(app, clock):
    world = make_world()
    queued = pending(world, clock, minutes_ago=30)
    enqueue_sync(queued.id, "create", queued.sync_version)
    waiting = pending(world, clock, minutes_ago=30, start=TEN + timedelta(hours=1))
    waiting.sync_attempts = 2
    db.session.commit()
    schedule_retry(waiting.id, "create", waiting.sync_version, 3, delay_seconds=60)

    result = sweep_stale_pending()

    assert result == {"requeued": [], "in_flight": [queued.id, waiting.id]}
    assert sync_queue(app).get_job_ids() == [sync_job_id(queued.id, queued.sync_version)]


def test_the_next_attempt_time_is_respected(app, clock):
    world = make_world()
    later = pending(world, clock, minutes_ago=30)
    later.next_sync_attempt_at = clock.utcnow() + timedelta(minutes=3)
    db.session.commit()

    assert sweep_stale_pending()["requeued"] == []

    clock.advance(timedelta(minutes=3))
    assert sweep_stale_pending()["requeued"] == [later.id]


def test_a_failed_job_is_run_again_and_leaves_the_failed_registry(app, clock):
    world = make_world()
    appointment = pending(world, clock, minutes_ago=20)
    job = enqueue_sync(appointment.id, "create", appointment.sync_version)
    # As RQ leaves it after the work horse was killed or the job was found abandoned.
    registry = FailedJobRegistry(queue=sync_queue(app))
    with get_redis(app).pipeline() as pipe:
        sync_queue(app).remove(job, pipeline=pipe)
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        registry.add(job, ttl=3600, pipeline=pipe)
        pipe.execute()
    assert job.id in registry

    assert sweep_stale_pending()["requeued"] == [appointment.id]

    assert job.id not in registry
    assert sync_queue(app).fetch_job(job.id).get_status() == JobStatus.QUEUED
    note = db.session.scalar(select(AuditEvent.details).where(AuditEvent.appointment_id == appointment.id))
    assert note["job_status"] == f"{job.id} failed"


def test_a_retry_job_that_was_lost_is_replaced(app, clock):
    world = make_world()
    appointment = pending(world, clock, minutes_ago=25)
    appointment.sync_attempts = 2
    appointment.next_sync_attempt_at = clock.utcnow() - timedelta(minutes=1)
    db.session.commit()
    # The retry for attempt 3 was scheduled, then Redis lost it.
    assert retry_job_id(appointment.id, appointment.sync_version, 3).endswith("-a3")

    assert sweep_stale_pending()["requeued"] == [appointment.id]
    assert sync_queue(app).get_job_ids() == [sync_job_id(appointment.id, appointment.sync_version)]


def test_the_batch_size_bounds_one_sweep(app, app_config, clock):
    app.config["SYNC_SWEEP_BATCH"] = 2
    world = make_world()
    oldest = [pending(world, clock, minutes_ago=60 - i, start=TEN + timedelta(hours=i)) for i in range(3)]

    assert sweep_stale_pending()["requeued"] == [oldest[0].id, oldest[1].id]
