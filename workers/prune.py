"""Retention: remove what is older than it may be kept, in small batches.

Scheduled daily (`slotguard-prune`, `SCHEDULE_PRUNE_CRON`); what it removes:

| what                         | kept for (setting)                              |
| ---------------------------- | ----------------------------------------------- |
| `sync_attempts` rows         | `RETENTION_SYNC_ATTEMPTS_DAYS` (90)             |
| `reconciliation_runs` rows   | `RETENTION_RECONCILIATION_RUNS_DAYS` (180)      |
| Cal.com call records (Redis) | `CALCOM_CALL_LOG_RETENTION` seconds (86400)     |
| finished RQ jobs             | `RETENTION_FINISHED_JOBS_HOURS` (24)            |

A value of 0 keeps that kind forever. Rows go in batches of `PRUNE_BATCH_SIZE`, each
batch its own short transaction (select the oldest ids, delete exactly those,
commit), so a prune never holds locks a booking or a sync job would wait on for
long. The scheduler's own cron jobs (`slotguard-…`) are never deleted: their job
hash must outlive the gap between two runs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from rq.job import Job
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from calcom import call_log
from core.clock import utcnow
from core.extensions import db
from core.models import ReconciliationRun, SyncAttempt
from core.prom import PRUNED_ROWS
from core.queues import DEFAULT_QUEUE, SYNC_QUEUE, get_queue
from core.redis_client import get_redis
from workers.app_context import job_in_app_context

log = logging.getLogger("calcom.prune")

CRON_JOB_PREFIX = "slotguard-"
MAX_BATCHES = 10_000


def delete_in_batches(session: Session, model, time_column, before: datetime, batch_size: int) -> int:
    """Delete rows of `model` with `time_column < before`, oldest first, `batch_size` at a time."""
    total = 0
    for _ in range(MAX_BATCHES):
        ids = list(session.scalars(select(model.id).where(time_column < before).order_by(model.id)
                                   .limit(batch_size)))
        if not ids:
            break
        session.execute(delete(model).where(model.id.in_(ids)))
        session.commit()
        total += len(ids)
        if len(ids) < batch_size:
            break
    session.commit()
    return total


def prune_finished_jobs(connection, before: datetime, batch_size: int) -> int:
    """Delete finished RQ jobs that ended before `before` (the cron jobs excepted)."""
    removed = 0
    for name in (SYNC_QUEUE, DEFAULT_QUEUE):
        registry = get_queue(name).finished_job_registry
        registry.cleanup()  # entries whose result has already expired
        ids = [i for i in registry.get_job_ids(cleanup=False) if not i.startswith(CRON_JOB_PREFIX)]
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            for job_id, job in zip(chunk, Job.fetch_many(chunk, connection=connection)):
                if job is None:
                    registry.remove(job_id)
                    continue
                ended = job.ended_at
                if ended is not None and ended.tzinfo is None:
                    ended = ended.replace(tzinfo=before.tzinfo)
                if ended is not None and ended < before:
                    job.delete()
                    removed += 1
    return removed


def prune_call_log(connection, retention_seconds: int, now: datetime) -> int:
    return int(connection.zremrangebyscore(call_log.KEY, "-inf", now.timestamp() - retention_seconds))


@job_in_app_context
def prune() -> dict:
    """The scheduled retention run; returns how much of each kind it removed."""
    config = current_app.config
    now = utcnow()
    batch = max(1, int(config["PRUNE_BATCH_SIZE"]))
    session = db.session
    removed: dict[str, int] = {}
    if config["RETENTION_SYNC_ATTEMPTS_DAYS"] > 0:
        removed["sync_attempts"] = delete_in_batches(
            session, SyncAttempt, SyncAttempt.started_at,
            now - timedelta(days=config["RETENTION_SYNC_ATTEMPTS_DAYS"]), batch)
    if config["RETENTION_RECONCILIATION_RUNS_DAYS"] > 0:
        removed["reconciliation_runs"] = delete_in_batches(
            session, ReconciliationRun, ReconciliationRun.started_at,
            now - timedelta(days=config["RETENTION_RECONCILIATION_RUNS_DAYS"]), batch)
    redis = get_redis()
    if config["CALCOM_CALL_LOG_RETENTION"] > 0:
        removed["calcom_calls"] = prune_call_log(redis, config["CALCOM_CALL_LOG_RETENTION"], now)
    if config["RETENTION_FINISHED_JOBS_HOURS"] > 0:
        removed["finished_jobs"] = prune_finished_jobs(
            redis, now - timedelta(hours=config["RETENTION_FINISHED_JOBS_HOURS"]), batch)
    for what, count in removed.items():
        if count:
            PRUNED_ROWS.labels(what).inc(count)
    log.info("prune: %s", ", ".join(f"{k}={v}" for k, v in removed.items()) or "retention is off")
    return removed


__all__ = ["delete_in_batches", "prune", "prune_call_log", "prune_finished_jobs"]
