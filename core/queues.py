"""RQ queues, and enqueueing a sync by name.

The booking and dashboard blueprints must not import `workers` (dependencies point
inward), so jobs are enqueued by their dotted path; RQ imports the function in the
worker process.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app
from rq import Queue

from core import log_context
from core.redis_client import get_redis

SYNC_QUEUE = "calcom-sync"
DEFAULT_QUEUE = "default"
SYNC_JOB = "workers.sync.sync_appointment"

log = logging.getLogger("calcom.sync")


def get_queue(name: str = DEFAULT_QUEUE, app: Flask | None = None) -> Queue:
    app = app or current_app
    return Queue(name, connection=get_redis(app), is_async=not app.config.get("RQ_SYNC_INLINE", False))


def sync_job_id(appointment_id: int, version: int) -> str:
    """One job id per appointment change, so enqueueing the same change twice is harmless."""
    return f"sync-{appointment_id}-v{version}"


def enqueue_sync(appointment_id: int, action: str, version: int, *, app: Flask | None = None,
                 new_job: bool = False):
    """Queue the Cal.com sync of one appointment change.

    The job id is derived from the appointment's `sync_version`: enqueueing the same
    change twice (a retried request, the sweeper) does not create a second job
    while the first is still queued. `new_job=True` (an appointment just inserted,
    whose first change nobody can have queued yet) skips that look-up, which costs
    two Redis round trips (RQ's `fetch_job` also removes a missing id from the queue).
    """
    queue = get_queue(SYNC_QUEUE, app)
    job_id = sync_job_id(appointment_id, version)
    existing = None if new_job else queue.fetch_job(job_id)
    if existing is not None and existing.get_status(refresh=True) in {"queued", "started", "scheduled", "deferred"}:
        return existing
    return queue.enqueue(
        SYNC_JOB,
        appointment_id,
        action,
        version,
        job_id=job_id,
        description=f"sync appointment {appointment_id} ({action})",
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        # The request and call that asked for it, for the worker's log lines.
        meta=log_context.job_meta(),
    )


def enqueue_sync_quietly(appointment_id: int, action: str, version: int, *, app: Flask | None = None,
                         new_job: bool = False) -> bool:
    """Queue a sync after a commit, never failing the caller: True when queued.

    The change is already committed (a caller's booking, an operator's retry), so a
    queue failure (Redis down) must not turn it into an error. The appointment stays
    `pending` and the sweeper (`workers.sweeper`) enqueues it once Redis is back.
    """
    try:
        enqueue_sync(appointment_id, action, version, app=app, new_job=new_job)
        return True
    except Exception as exc:  # noqa: BLE001 - any queue failure; the sweeper is the fallback
        log.warning("sync appointment=%s action=%s version=%s outcome=not_queued: %s: %s; "
                    "it stays pending for the sweeper", appointment_id, action, version, type(exc).__name__, exc)
        return False


__all__ = ["SYNC_QUEUE", "DEFAULT_QUEUE", "get_queue", "enqueue_sync", "enqueue_sync_quietly", "sync_job_id"]
