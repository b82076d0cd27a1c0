"""Job ids and enqueueing of sync retries, shared by the sync job and the sweeper.

The first attempt of a change runs as `sync-<id>-v<version>` (`core.queues`); the
n-th attempt as `sync-<id>-v<version>-a<n>`. Ids are derived from the appointment's
state, so the sweeper can tell whether a job for the current change is in flight.
"""

from __future__ import annotations

from datetime import timedelta

from core import log_context
from core.queues import SYNC_JOB, SYNC_QUEUE, get_queue, sync_job_id


def retry_job_id(appointment_id: int, version: int, attempt_number: int) -> str:
    """The id of the job that makes attempt `attempt_number` (2, 3, …) of a change."""
    if attempt_number <= 1:
        return sync_job_id(appointment_id, version)
    return f"{sync_job_id(appointment_id, version)}-a{attempt_number}"


def schedule_sync(appointment_id: int, action: str, version: int, delay_seconds: float, *, job_id: str,
                  description: str):
    """Enqueue a sync job `delay_seconds` from now; RQ's scheduler (`rq worker
    --with-scheduler`) moves it to the queue when it is due."""
    return get_queue(SYNC_QUEUE).enqueue_in(
        timedelta(seconds=max(0.0, delay_seconds)), SYNC_JOB, appointment_id, action, version,
        job_id=job_id, description=description, result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600,
        meta=log_context.job_meta(),
    )


def schedule_retry(appointment_id: int, action: str, version: int, attempt_number: int, delay_seconds: float):
    """Enqueue attempt `attempt_number` of a change after the backoff delay."""
    return schedule_sync(appointment_id, action, version, delay_seconds,
                         job_id=retry_job_id(appointment_id, version, attempt_number),
                         description=f"sync appointment {appointment_id} ({action}), attempt {attempt_number}")


__all__ = ["retry_job_id", "schedule_retry", "schedule_sync"]
