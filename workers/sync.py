"""The sync job: carry one appointment change (create, cancel, reschedule) to Cal.com.

`core.queues.enqueue_sync` enqueues `sync_appointment(appointment_id, action,
version)` on the `calcom-sync` queue, one job per change (job id
`sync-<id>-v<version>`). One run is one attempt:

1. take the appointment's Redis lock (`workers.sync_lock`) — another worker on the
   same appointment means we try again shortly;
2. claim the attempt in a short transaction: a job whose version or action no longer
   matches the appointment is stale and does nothing (a `skipped` attempt records
   why); otherwise the attempt is counted and a `SyncPlan` is read;
3. make Cal.com match the plan (`workers.sync_calcom`), no transaction open;
4. write the result in a second short transaction: `synced`, or still `pending`
   with the next attempt scheduled (backoff with full jitter, `workers.backoff`), or
   `failed` + manual review with a reason an operator can act on; then drop the
   cached Cal.com slots the attempt made stale (`calcom.slot_cache`);
5. after the commit, enqueue the retry with RQ's scheduler (`enqueue_in`); if that is
   lost, the sweeper (`workers.sweeper`) re-enqueues the appointment.
"""

from __future__ import annotations

import logging
import random
import time

from flask import current_app
from rq import get_current_job

from calcom.client import get_client
from calcom.slot_cache import invalidate_quietly as invalidate_slot_cache
from core import log_context
from core.extensions import db
from core.models import Appointment, SyncOutcome, SyncStatus
from core.prom import SYNC_JOB_SECONDS, SYNC_JOBS
from core.queues import sync_job_id
from core.redis_client import get_redis
from workers.app_context import job_in_app_context
from workers.backoff import BackoffPolicy, retry_delay
from workers.sync_calcom import carry_out
from workers.sync_lock import SyncLock
from workers.sync_queue import schedule_retry, schedule_sync
from workers.sync_records import Skipped, claim_attempt, finish_attempt

log = logging.getLogger("calcom.sync")

# The random source of the jitter; tests replace it with a seeded `random.Random`.
rng: random.Random = random.SystemRandom()


@job_in_app_context
def sync_appointment(appointment_id: int, action: str, version: int) -> str:
    """Run one sync attempt for one appointment change; returns the outcome's name."""
    appointment_id, version = int(appointment_id), int(version)
    started = time.monotonic()
    outcome = "error"
    with log_context.bound(appointment_id=appointment_id):
        try:
            outcome = _run(appointment_id, action, version)
            return outcome
        finally:
            SYNC_JOBS.labels(action, outcome).inc()
            SYNC_JOB_SECONDS.labels(action, outcome).observe(time.monotonic() - started)


def _run(appointment_id: int, action: str, version: int) -> str:
    config = current_app.config
    policy = BackoffPolicy.from_config(config)
    job = get_current_job()
    job_id = job.id if job is not None else None
    lock = SyncLock(get_redis(), appointment_id, job_id or "-", float(config.get("SYNC_LOCK_SECONDS", 120)))
    if not lock.acquire():
        return _busy(appointment_id, action, version, job_id, lock.holder())
    try:
        return _attempt(appointment_id, action, version, job_id, lock, policy)
    finally:
        lock.release()


def _attempt(appointment_id: int, action: str, version: int, job_id: str | None, lock: SyncLock,
             policy: BackoffPolicy) -> str:
    session = db.session
    plan = claim_attempt(session, appointment_id, action, version, job_id=job_id, max_attempts=policy.max_attempts)
    if isinstance(plan, Skipped):
        log.info("sync appointment=%s action=%s version=%s outcome=skipped code=%s job=%s: %s",
                 appointment_id, action, version, plan.code, job_id, plan.message)
        return "skipped"

    started = time.monotonic()
    outcome = carry_out(get_client(purpose="sync"), plan, keep_lock=lock.extend)
    duration_ms = int((time.monotonic() - started) * 1000)

    def delay_for(failed_attempts: int, retry_after: float | None) -> float:
        return retry_delay(policy, failed_attempts, rng, retry_after=retry_after)

    decision = finish_attempt(session, plan, outcome, duration_ms=duration_ms, retry_delay=delay_for)
    # Cal.com's calendar may have changed (even a failed attempt may have booked or
    # rolled back): cached slots around these times are stale now.
    invalidate_slot_cache(plan.slot_cache_event_type_ids, plan.slot_cache_moments,
                          why=f"syncing appointment {appointment_id}")
    log.log(
        logging.WARNING if decision.outcome in (SyncOutcome.RETRY, SyncOutcome.FAILED) else logging.INFO,
        "sync appointment=%s action=%s attempt=%s/%s outcome=%s code=%s status=%s duration_ms=%s job=%s%s%s",
        appointment_id, plan.action.value, plan.attempt_number, policy.max_attempts, decision.outcome.value,
        decision.code, outcome.failure.http_status if outcome.failure else None, duration_ms, job_id,
        f" retry_in={decision.retry_in_seconds:.0f}s" if decision.retry_in_seconds is not None else "",
        f": {decision.message}" if decision.message else "",
    )
    if decision.retry_in_seconds is not None:
        schedule_retry(appointment_id, plan.action.value, version, plan.attempt_number + 1,
                       decision.retry_in_seconds)
    return decision.outcome.value


def _busy(appointment_id: int, action: str, version: int, job_id: str | None, holder: str | None) -> str:
    """Another worker holds the appointment: come back shortly (unless we are stale anyway).

    The holder may be syncing an older version and will leave the newer change to
    us, so we must not simply drop the job. The retry carries a distinct job id (the
    running job's id is still in use) and does not count as an attempt.
    """
    appointment = db.session.get(Appointment, appointment_id)
    stale = (appointment is None or appointment.sync_version != version or appointment.sync_action.value != action
             or appointment.sync_status != SyncStatus.PENDING)
    db.session.rollback()  # end the read; the holder is about to write this row
    if stale:
        log.info("sync appointment=%s action=%s version=%s outcome=skipped code=busy_stale job=%s: "
                 "another worker holds it and this job is out of date", appointment_id, action, version, job_id)
        return "skipped"
    delay = float(current_app.config.get("SYNC_BUSY_RETRY_SECONDS", 15))
    delay += rng.uniform(0, delay)
    base = (job_id or sync_job_id(appointment_id, version)).split("-busy", 1)[0]
    schedule_sync(appointment_id, action, version, delay, job_id=f"{base}-busy{int(time.time() * 1000)}",
                  description=f"sync appointment {appointment_id} ({action}), after a busy lock")
    log.info("sync appointment=%s action=%s version=%s outcome=busy job=%s holder=%s retry_in=%.0fs",
             appointment_id, action, version, job_id, (holder or "?").split("|")[0], delay)
    return "busy"


__all__ = ["sync_appointment"]
