"""The schedule: cron jobs registered with rq-scheduler, then the scheduler loop.

`python -m workers.schedule` (the Procfile's `scheduler` process) registers

| job id                          | default cron    | what                                    |
| ------------------------------- | --------------- | --------------------------------------- |
| slotguard-refresh-sync-metrics  | `*/5 * * * *`   | recompute + cache metrics, trend sample |
| slotguard-alert-sync-failures   | `*/15 * * * *`  | the alert run (notifications)           |
| slotguard-sweep-stale-pending   | `*/5 * * * *`   | re-enqueue syncs lost on the way        |
| slotguard-daily-digest          | `0 7 * * *`     | the daily email digest                  |
| slotguard-reconcile             | `30 2 * * *`    | drift reconciliation with Cal.com       |
| slotguard-prune                 | `15 3 * * *`    | retention: delete old rows and jobs     |

and then runs rq-scheduler's loop, which moves due jobs onto the `default` queue for
the workers. Registration is idempotent: every job has a fixed id, a job already
scheduled with the same function, cron string and queue is left alone (its next run
time included), a changed one is replaced, and a `slotguard-` job no longer in the
schedule is removed. Restarting the scheduler — or running two — never duplicates a
job. Cron strings are read in the scheduler host's local time (UTC on most servers).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from dataclasses import dataclass

from crontab import CronTab
from rq_scheduler import Scheduler
from werkzeug.utils import import_string

from core.queues import DEFAULT_QUEUE

log = logging.getLogger("calcom")

JOB_ID_PREFIX = "slotguard-"


@dataclass(frozen=True)
class CronJob:
    id: str
    cron: str
    func: str  # dotted path, imported by the worker
    description: str
    timeout: int = 600  # seconds a run may take before RQ stops it
    queue: str = DEFAULT_QUEUE


def schedule_from_config(config) -> list[CronJob]:
    """The jobs to schedule, with cron strings from the app config (checked here)."""
    jobs = [
        CronJob("slotguard-refresh-sync-metrics", config["SCHEDULE_METRICS_CRON"],
                "workers.monitoring_jobs.refresh_sync_metrics", "refresh the sync metrics cache"),
        CronJob("slotguard-alert-sync-failures", config["SCHEDULE_ALERTS_CRON"],
                "workers.monitoring_jobs.alert_sync_failures", "check sync health and notify"),
        CronJob("slotguard-sweep-stale-pending", config["SCHEDULE_SWEEPER_CRON"],
                "workers.sweeper.sweep_stale_pending", "re-enqueue stale pending syncs"),
        CronJob("slotguard-daily-digest", config["SCHEDULE_DIGEST_CRON"],
                "workers.monitoring_jobs.send_daily_digest", "send the daily sync digest"),
        # Listing two months of bookings within a quarter of Cal.com's rate limit takes
        # a while on a big account: an hour before RQ stops it.
        CronJob("slotguard-reconcile", config["SCHEDULE_RECONCILE_CRON"], "workers.reconcile.reconcile_nightly",
                "compare appointments with Cal.com's bookings", timeout=3600),
        CronJob("slotguard-prune", config["SCHEDULE_PRUNE_CRON"], "workers.prune.prune",
                "delete what is past its retention", timeout=1800),
    ]
    for job in jobs:
        try:
            CronTab(job.cron)
        except ValueError as exc:
            raise ValueError(f"bad cron string {job.cron!r} for {job.id}: {exc}") from None
    return jobs


def _unchanged(existing, job: CronJob) -> bool:
    return (existing.func_name == job.func and existing.meta.get("cron_string") == job.cron
            and existing.origin == job.queue and existing.timeout == job.timeout)


def register_schedule(scheduler: Scheduler, jobs: list[CronJob]) -> dict[str, str]:
    """Make the scheduler hold exactly `jobs` (by id); returns what happened to each id."""
    existing = {job.id: job for job in scheduler.get_jobs() if job.id.startswith(JOB_ID_PREFIX)}
    outcome: dict[str, str] = {}
    for job in jobs:
        current = existing.pop(job.id, None)
        if current is not None and _unchanged(current, job):
            outcome[job.id] = "kept"
            continue
        if current is not None:
            scheduler.cancel(current)
            current.delete()
        # result_ttl stays rq-scheduler's -1: a periodic job's hash must outlive the gap
        # between two runs, or the scheduler drops the job when it finds the hash gone.
        scheduler.cron(job.cron, func=job.func, id=job.id, queue_name=job.queue, timeout=job.timeout,
                       description=job.description)
        outcome[job.id] = "replaced" if current is not None else "added"
    for stale_id, stale in existing.items():  # ours, but no longer in the schedule
        scheduler.cancel(stale)
        stale.delete()
        outcome[stale_id] = "removed"
    return outcome


def _warn_unimportable(jobs: list[CronJob]) -> None:
    """A job whose function is missing would fail at every run: say so at start."""
    for job in jobs:
        try:
            import_string(job.func)
        except ImportError:
            log.error("scheduled job %s: %s cannot be imported; its runs will fail", job.id, job.func)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.schedule", description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true",
                        help="register the schedule, enqueue what is due now, and exit")
    args = parser.parse_args(argv)
    # The pinned crontab announces that a future version will read cron strings in UTC
    # (printed at every start); the schedule is documented in the host's local time,
    # which is what the pinned version does.
    warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler.utils")

    from core.redis_client import get_redis
    from workers.app_context import app_context

    with app_context() as app:
        jobs = schedule_from_config(app.config)
        _warn_unimportable(jobs)
        scheduler = Scheduler(queue_name=DEFAULT_QUEUE, connection=get_redis(),
                              interval=app.config["SCHEDULER_INTERVAL_SECONDS"])
        for job_id, what in register_schedule(scheduler, jobs).items():
            log.info("schedule: %s %s", job_id, what)
        scheduler.run(burst=args.burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
