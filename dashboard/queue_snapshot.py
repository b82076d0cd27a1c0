"""A read-only look at the RQ queues, workers and schedules.

Like rq-dashboard, a page view must never change job state: RQ's convenient
readers clean up as they read (`registry.count` runs `cleanup()`, which moves
expired started jobs to the failed registry; `Worker.all` removes dead worker keys;
rq-scheduler's `get_jobs` cancels entries whose job vanished). So this module reads
the same Redis structures with plain reads only: `get_job_count(cleanup=False)`,
SMEMBERS/EXISTS/HMGET for workers, ZRANGE for schedules, `Job.fetch_many` for jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import redis
from rq import Queue
from rq.job import Job
from rq.worker_registration import REDIS_WORKER_KEYS
from rq_scheduler import Scheduler

from core.queues import DEFAULT_QUEUE, SYNC_QUEUE

KNOWN_QUEUES = (SYNC_QUEUE, DEFAULT_QUEUE)
SCHEDULE_LIMIT = 50


@dataclass(frozen=True)
class QueueCounts:
    name: str
    queued: int
    started: int
    failed: int
    scheduled: int
    deferred: int
    finished: int


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    state: str
    queues: list[str]
    current_job: str | None
    last_heartbeat: datetime | None
    birth: datetime | None


@dataclass(frozen=True)
class ScheduledJob:
    job_id: str
    description: str
    next_run: datetime
    repeat: str | None  # "every 300 s", "cron */5 * * * *", or None for a one-off


@dataclass
class QueueSnapshot:
    queues: list[QueueCounts] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)
    scheduled: list[ScheduledJob] = field(default_factory=list)
    scheduled_total: int = 0

    @property
    def failed_total(self) -> int:
        return sum(q.failed for q in self.queues)


def _text(value) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _when(value) -> datetime | None:
    raw = _text(value)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def queue_counts(connection: redis.Redis) -> list[QueueCounts]:
    names = set(KNOWN_QUEUES) | {
        _text(key)[len(Queue.redis_queue_namespace_prefix):]
        for key in connection.smembers(Queue.redis_queues_keys)
    }
    counts = []
    for name in sorted(names, key=lambda n: (n not in KNOWN_QUEUES, n)):
        queue = Queue(name, connection=connection)
        counts.append(QueueCounts(
            name=name,
            queued=connection.llen(queue.key),
            started=queue.started_job_registry.get_job_count(cleanup=False),
            failed=queue.failed_job_registry.get_job_count(cleanup=False),
            scheduled=queue.scheduled_job_registry.get_job_count(cleanup=False),
            deferred=queue.deferred_job_registry.get_job_count(cleanup=False),
            finished=queue.finished_job_registry.get_job_count(cleanup=False),
        ))
    return counts


def live_workers(connection: redis.Redis) -> list[WorkerInfo]:
    """Workers whose key still exists (it expires when a worker stops heartbeating)."""
    keys = sorted(_text(k) for k in connection.smembers(REDIS_WORKER_KEYS))
    if not keys:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hmget(key, "state", "queues", "current_job", "last_heartbeat", "birth")
        rows = pipe.execute()
    workers = []
    prefix = "rq:worker:"
    for key, (state, queues, current_job, heartbeat, birth) in zip(keys, rows):
        if state is None and queues is None and heartbeat is None:
            continue  # key expired: the worker is gone (left for RQ itself to tidy)
        workers.append(WorkerInfo(
            name=key[len(prefix):] if key.startswith(prefix) else key,
            state=_text(state) or "unknown",
            queues=[q for q in (_text(queues) or "").split(",") if q],
            current_job=_text(current_job) or None,
            last_heartbeat=_when(heartbeat),
            birth=_when(birth),
        ))
    return workers


def scheduled_jobs(connection: redis.Redis, limit: int = SCHEDULE_LIMIT) -> tuple[list[ScheduledJob], int]:
    """The periodic jobs of rq-scheduler (next run first) and how many there are."""
    key = Scheduler.scheduled_jobs_key
    total = connection.zcard(key)
    entries = connection.zrange(key, 0, limit - 1, withscores=True)
    ids = [_text(job_id) for job_id, _ in entries]
    jobs = Job.fetch_many(ids, connection=connection) if ids else []
    scheduled = []
    for (job_id, score), job in zip(entries, jobs):
        description, repeat = "(job data expired)", None
        if job is not None:
            description = job.description or job.func_name
            if job.meta.get("cron_string"):
                repeat = f"cron {job.meta['cron_string']}"
            elif job.meta.get("interval"):
                repeat = f"every {job.meta['interval']} s"
        scheduled.append(ScheduledJob(
            job_id=_text(job_id), description=description,
            next_run=datetime.fromtimestamp(score, tz=timezone.utc), repeat=repeat,
        ))
    return scheduled, total


def take_snapshot(connection: redis.Redis) -> QueueSnapshot:
    scheduled, scheduled_total = scheduled_jobs(connection)
    return QueueSnapshot(
        queues=queue_counts(connection),
        workers=live_workers(connection),
        scheduled=scheduled,
        scheduled_total=scheduled_total,
    )
