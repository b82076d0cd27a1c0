"""The Prometheus metrics of every room, defined once so all of them share the objects.

Rooms import what they record (`from core.prom import SYNC_JOBS`) and call `.inc()`
or `.observe()` at the one place the event happens; `/metrics` (`core.observability`)
renders them. Nothing here imports Flask or another room.

Multiprocess mode: gunicorn runs several worker processes and RQ forks a work horse
per job, each with its own memory. When `PROMETHEUS_MULTIPROC_DIR` is set (by the
start-up environment, before Python starts, so every child inherits it)
prometheus-client writes each process's values to memory-mapped files in that
directory and a scrape adds them up (`MultiProcessCollector`). Without it a plain
in-process registry is used (development, tests).

Values that are facts of a shared store — queue depth in Redis — are not counted by
any process: `QueueDepthCollector` reads them when Prometheus scrapes.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# RQ forks a work horse per job. With prometheus-client's default identity (the pid)
# every horse would leave its own set of files behind — thousands a day, each read
# by every scrape. A worker runs one horse at a time, so its horses take turns on one
# identity, "rq<worker pid>" (see `use_rq_horse_identity`): the first metric touched
# in a new horse notices the identity changed and re-reads the shared file, so
# counts carry on where the previous horse stopped.
_identity_override: str | None = None


def _process_identity():
    return _identity_override or os.getpid()


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV)
    return path or None


if multiprocess_dir():
    os.makedirs(multiprocess_dir(), exist_ok=True)
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identity)


def use_rq_horse_identity(worker_pid: int) -> None:
    """Called before an RQ job runs, in the work horse (with its worker's pid) or in a
    non-forking worker (with its own): see `workers.app_worker`."""
    global _identity_override
    _identity_override = f"rq{int(worker_pid)}"


# Latency buckets (seconds): voice answers must stay well under a second, Cal.com
# calls and sync jobs may take several.
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

HTTP_REQUEST_SECONDS = Histogram(
    "slotguard_http_request_duration_seconds",
    "Time to answer an HTTP request, per Flask endpoint, method and status code.",
    ["endpoint", "method", "status"],
    buckets=FAST_BUCKETS,
)
VOICE_FUNCTION_CALLS = Counter(
    "slotguard_voice_function_calls_total",
    "Retell function calls by outcome: available, not_available, booked, ok, a caller error code "
    "(slot_taken, lock_expired, …), protocol_error or internal_error.",
    ["function", "outcome"],
)
SLOT_HOLDS = Counter(
    "slotguard_slot_holds_total",
    "Slot hold events: acquired, refused (another call holds every option), extended, "
    "expired (gone or taken over when the booking came), released, redis_down.",
    ["event"],
)
SYNC_JOBS = Counter(
    "slotguard_sync_jobs_total",
    "Cal.com sync job runs by action and outcome (success, retry, failed, skipped, busy, error).",
    ["action", "outcome"],
)
SYNC_JOB_SECONDS = Histogram(
    "slotguard_sync_job_duration_seconds",
    "Duration of a Cal.com sync job run, by action and outcome.",
    ["action", "outcome"],
    buckets=SLOW_BUCKETS,
)
CALCOM_REQUESTS = Counter(
    "slotguard_calcom_requests_total",
    "Cal.com API requests by endpoint template and HTTP status ('none' when no answer came).",
    ["endpoint", "status"],
)
CALCOM_REQUEST_SECONDS = Histogram(
    "slotguard_calcom_request_duration_seconds",
    "Cal.com API request latency by endpoint template and outcome (ok, timeout, server_error, …).",
    ["endpoint", "outcome"],
    buckets=SLOW_BUCKETS,
)
METRICS_COLLECT_SECONDS = Histogram(
    "slotguard_sync_metrics_collect_duration_seconds",
    "Time the monitoring collector needs to compute the sync metrics (its aggregate SQL).",
    buckets=SLOW_BUCKETS,
)
RECONCILE_RUNS = Counter(
    "slotguard_reconcile_runs_total",
    "Drift reconciliation runs by result (ok, errors) and mode (apply, dry_run).",
    ["result", "mode"],
)
RECONCILE_DRIFT = Counter(
    "slotguard_reconcile_drift_total",
    "Drift found by reconciliation, by kind and what was done (repaired, flagged, reported).",
    ["kind", "handling"],
)
PRUNED_ROWS = Counter(
    "slotguard_pruned_total",
    "Records removed by the retention prune, by what they were.",
    ["what"],
)


class QueueDepthCollector:
    """RQ queue and registry sizes, read from Redis at scrape time without side effects
    (`cleanup=False`, like rq-dashboard), so a scrape never changes job state."""

    def __init__(self, connection_factory: Callable[[], object], queue_names: Iterable[str]) -> None:
        self.connection_factory = connection_factory
        self.queue_names = tuple(queue_names)

    def collect(self):
        from rq import Queue

        family = GaugeMetricFamily("slotguard_rq_jobs", "RQ jobs per queue and state (queued, started, "
                                   "scheduled, deferred, failed).", labels=["queue", "state"])
        up = GaugeMetricFamily("slotguard_rq_redis_up", "1 when the scrape could read the queues from Redis.")
        try:
            connection = self.connection_factory()
            rows = []
            for name in self.queue_names:
                queue = Queue(name, connection=connection)
                rows += [
                    (name, "queued", connection.llen(queue.key)),
                    (name, "started", queue.started_job_registry.get_job_count(cleanup=False)),
                    (name, "scheduled", queue.scheduled_job_registry.get_job_count(cleanup=False)),
                    (name, "deferred", queue.deferred_job_registry.get_job_count(cleanup=False)),
                    (name, "failed", queue.failed_job_registry.get_job_count(cleanup=False)),
                ]
        except Exception:  # Redis down: say so instead of failing the whole scrape
            up.add_metric([], 0)
            yield up
            return
        for name, state, count in rows:
            family.add_metric([name, state], count)
        up.add_metric([], 1)
        yield family
        yield up


class _Registry:
    """Adapter: the process's default registry as one collector of a scrape registry."""

    def collect(self):
        return REGISTRY.collect()


def render(extra_collectors: Iterable[object] = ()) -> tuple[bytes, str]:
    """The exposition text of every metric (all processes in multiprocess mode)."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_Registry())
    for collector in extra_collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """gunicorn's `child_exit` hook: drop a dead worker's live-gauge files."""
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(pid, path)


__all__ = [
    "CALCOM_REQUESTS",
    "CALCOM_REQUEST_SECONDS",
    "HTTP_REQUEST_SECONDS",
    "METRICS_COLLECT_SECONDS",
    "PRUNED_ROWS",
    "QueueDepthCollector",
    "RECONCILE_DRIFT",
    "RECONCILE_RUNS",
    "SLOT_HOLDS",
    "SYNC_JOBS",
    "SYNC_JOB_SECONDS",
    "VOICE_FUNCTION_CALLS",
    "mark_process_dead",
    "multiprocess_dir",
    "render",
    "use_rq_horse_identity",
]
