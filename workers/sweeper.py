"""Recovery: re-enqueue syncs that are pending with no job left to carry them.

A sync job can vanish: the enqueue after the booking commit failed, Redis was
flushed or restarted without persistence, a worker was killed mid-job. The
monitoring room schedules `workers.sweeper.sweep_stale_pending` every few minutes.

How a killed worker's job comes back (RQ 3.0): while a job runs, its execution sits
in the queue's `StartedJobRegistry` with a heartbeat deadline (about 90 s ahead,
renewed by the worker). If the work horse dies, the worker marks the job failed at
once ("Work-horse terminated unexpectedly"); if the whole worker dies, the entry
expires and `StartedJobRegistry.cleanup()` — run by every worker's maintenance
every 10 minutes, and by this sweeper — fails it with `AbandonedJobError` (our jobs
have no RQ `Retry`, so RQ does not requeue them itself). Either way the job is no
longer queued, scheduled or started, and this sweeper enqueues it again once the
appointment has been pending longer than `SYNC_SWEEP_AFTER_MINUTES` and its next
attempt is due. The re-run is safe: it looks in Cal.com for the booking the dead
worker may have made before creating one.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import or_, select

from core.booking_guard import guarded_transaction
from core.clock import utcnow
from core.extensions import db
from core.models import Appointment, AuditEvent, SyncStatus
from core.queues import SYNC_QUEUE, enqueue_sync_quietly, get_queue, sync_job_id
from workers.sync_queue import retry_job_id

log = logging.getLogger("calcom.sweeper")

IN_FLIGHT = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED,
             JobStatus.READY_TO_ENQUEUE, JobStatus.RATE_LIMITED}


def sweep_stale_pending() -> dict:
    """Re-enqueue stale pending syncs whose job is gone; returns what it did."""
    config = current_app.config
    now = utcnow()
    threshold = now - timedelta(minutes=int(config.get("SYNC_SWEEP_AFTER_MINUTES", 10)))
    batch = int(config.get("SYNC_SWEEP_BATCH", 200))
    queue = get_queue(SYNC_QUEUE)

    # Let RQ declare the jobs of dead workers abandoned now instead of at its next
    # maintenance run (the same call the workers make; it only touches executions
    # whose heartbeat deadline has passed).
    StartedJobRegistry(queue=queue).cleanup(timestamp=now.timestamp())

    session = db.session
    to_enqueue: list[tuple[int, str, int]] = []
    in_flight: list[int] = []
    with guarded_transaction(session):
        query = (
            select(Appointment)
            .where(
                Appointment.sync_status == SyncStatus.PENDING,
                Appointment.sync_requested_at < threshold,
                or_(Appointment.next_sync_attempt_at.is_(None), Appointment.next_sync_attempt_at <= now),
            )
            .order_by(Appointment.sync_requested_at)
            .limit(batch)
        )
        if session.get_bind().dialect.name == "postgresql":
            # Rows a sync job is writing right now are not stale: skip them, don't wait.
            query = query.with_for_update(skip_locked=True)
        for appointment in session.scalars(query):
            status = job_in_flight(queue.connection, appointment)
            if status is not None:
                in_flight.append(appointment.id)
                continue
            job_status = _last_job_status(queue.connection, appointment)
            session.add(AuditEvent(
                actor="sweeper", action="sweep_requeue", appointment_id=appointment.id,
                note=f"Pending since {appointment.sync_requested_at.isoformat()} with no sync job in flight "
                     f"(last job: {job_status}); enqueued again.",
                details={"version": appointment.sync_version, "action": appointment.sync_action.value,
                         "attempts": appointment.sync_attempts, "job_status": job_status},
            ))
            to_enqueue.append((appointment.id, appointment.sync_action.value, appointment.sync_version))

    # After the commit, so the job reads what we read.
    failed = FailedJobRegistry(queue=queue)
    for appointment_id, action, version in to_enqueue:
        job_id = sync_job_id(appointment_id, version)
        if job_id in failed:
            failed.remove(job_id)  # it is about to run again; keep the registry honest
        if not enqueue_sync_quietly(appointment_id, action, version, app=current_app._get_current_object()):
            continue  # still pending: the next sweep tries again
        log.warning("sweeper appointment=%s action=%s version=%s outcome=requeued: pending with no job in flight",
                    appointment_id, action, version)
    if to_enqueue or in_flight:
        log.info("sweeper requeued=%s in_flight=%s", len(to_enqueue), len(in_flight))
    return {"requeued": [a for a, _, _ in to_enqueue], "in_flight": in_flight}


def candidate_job_ids(appointment: Appointment) -> list[str]:
    """Ids a job for the appointment's current change can have: the first attempt's,
    the running attempt's and the next attempt's (see `workers.sync_queue`)."""
    attempts = appointment.sync_attempts or 0
    ids = [sync_job_id(appointment.id, appointment.sync_version)]
    for number in (attempts, attempts + 1):
        job_id = retry_job_id(appointment.id, appointment.sync_version, number)
        if job_id not in ids:
            ids.append(job_id)
    return ids


def job_in_flight(connection, appointment: Appointment) -> str | None:
    """The id of a queued, scheduled or running job for the current change, if any."""
    for job_id in candidate_job_ids(appointment):
        status = _status(connection, job_id)
        if status in IN_FLIGHT:
            return job_id
    return None


def _last_job_status(connection, appointment: Appointment) -> str:
    for job_id in reversed(candidate_job_ids(appointment)):
        status = _status(connection, job_id)
        if status is not None:
            return f"{job_id} {status.value}"
    return "none in Redis"


def _status(connection, job_id: str) -> JobStatus | None:
    try:
        return Job.fetch(job_id, connection=connection).get_status(refresh=False)
    except Exception:  # NoSuchJobError, or a job hash without a status
        return None


__all__ = ["candidate_job_ids", "job_in_flight", "sweep_stale_pending"]
