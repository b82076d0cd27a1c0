"""Helpers for the sync tests: run the `calcom-sync` queue with a real worker and a real
Redis, let scheduled retries come due, and look at the emulator's bookings."""

from __future__ import annotations

from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from calcom.metadata import APPOINTMENT_KEY
from core.extensions import db
from core.models import Appointment, SyncAttempt
from core.queues import SYNC_QUEUE
from core.redis_client import get_redis
from workers.app_worker import SimpleAppWorker


def sync_queue(app) -> Queue:
    return Queue(SYNC_QUEUE, connection=get_redis(app))


def run_sync_jobs(app) -> None:
    """Run everything queued on `calcom-sync` in a burst-mode worker, in this process
    (so the frozen test clock applies inside the jobs too)."""
    db.session.remove()  # the worker must not share our session's open transaction
    queue = sync_queue(app)
    SimpleAppWorker([queue], connection=queue.connection, app=app).work(burst=True)


def scheduled_job_ids(app) -> list[str]:
    return ScheduledJobRegistry(queue=sync_queue(app)).get_job_ids()


def let_scheduled_jobs_come_due(app) -> list[str]:
    """Do what RQ's scheduler does when a scheduled job's time has come (`rq worker
    --with-scheduler` polls every second), without waiting for real time to pass."""
    queue = sync_queue(app)
    registry = ScheduledJobRegistry(queue=queue)
    ids = registry.get_job_ids()
    for job_id in ids:
        job = queue.fetch_job(job_id)
        registry.remove(job_id)
        queue.enqueue_job(job)
    return ids


def run_due_retries(app, clock, after) -> list[str]:
    """Let `after` (a timedelta) pass on the controlled clock, then run what came due."""
    clock.advance(after)
    due = let_scheduled_jobs_come_due(app)
    run_sync_jobs(app)
    return due


def reload(appointment_id: int) -> Appointment:
    db.session.expire_all()
    return db.session.get(Appointment, appointment_id)


def attempts(appointment_id: int) -> list[SyncAttempt]:
    db.session.expire_all()
    return list(db.session.scalars(select(SyncAttempt).where(SyncAttempt.appointment_id == appointment_id)
                                   .order_by(SyncAttempt.id)))


def bookings_of(emulator, appointment_id: int, *, live_only: bool = True):
    """The emulator's bookings carrying the appointment's id in their metadata."""
    found = emulator.state.find(metadata={APPOINTMENT_KEY: str(appointment_id)})
    return [b for b in found if b.active or not live_only]
