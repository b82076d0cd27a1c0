"""The rq-scheduler schedule on a real Redis: registered once across restarts, kept in
step with the config, and its monitoring jobs runnable by an RQ worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from rq import Queue, SimpleWorker
from rq_scheduler import Scheduler

from core.redis_client import get_redis
from monitoring.metrics import CACHE_KEY
from monitoring.trends import key_for
from tests.monitoring.data import appointment, company
from workers import schedule

EXPECTED = {
    "slotguard-refresh-sync-metrics": ("workers.monitoring_jobs.refresh_sync_metrics", "*/5 * * * *"),
    "slotguard-alert-sync-failures": ("workers.monitoring_jobs.alert_sync_failures", "*/15 * * * *"),
    "slotguard-sweep-stale-pending": ("workers.sweeper.sweep_stale_pending", "*/5 * * * *"),
    "slotguard-daily-digest": ("workers.monitoring_jobs.send_daily_digest", "0 7 * * *"),
    "slotguard-reconcile": ("workers.reconcile.reconcile_nightly", "30 2 * * *"),
    "slotguard-prune": ("workers.prune.prune", "15 3 * * *"),
}


@pytest.fixture
def keep_signal_handlers():
    """rq-scheduler's loop installs its own SIGINT/SIGTERM handlers: give pytest its own back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def _scheduled(redis) -> dict[str, tuple[str, str, float]]:
    scheduler = Scheduler(connection=redis)
    return {job.id: (job.func_name, job.meta["cron_string"], at.timestamp())
            for job, at in scheduler.get_jobs(with_times=True)}


def test_schedule_is_registered_once_across_scheduler_restarts(app, keep_signal_handlers):
    redis = get_redis()
    for _ in range(3):  # three starts of the scheduler in this process
        assert schedule.main(["--burst"]) == 0
    jobs = _scheduled(redis)
    assert {job_id: (func, cron) for job_id, (func, cron, _) in jobs.items()} == EXPECTED
    assert redis.zcard(Scheduler.scheduled_jobs_key) == len(EXPECTED)
    # A periodic job's hash never expires between runs (else rq-scheduler drops the job).
    assert {job.result_ttl for job in Scheduler(connection=redis).get_jobs()} == {-1}

    # And as the Procfile starts it, in a process of its own (a restart after a deploy).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, REDIS_URL=app.config["REDIS_URL"],
               DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"])
    done = subprocess.run([sys.executable, "-m", "workers.schedule", "--burst"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "schedule: slotguard-alert-sync-failures kept" in done.stderr
    assert _scheduled(redis) == jobs


def test_registration_keeps_unchanged_jobs_and_replaces_changed_ones(app):
    redis = get_redis()
    scheduler = Scheduler(connection=redis)
    foreign = scheduler.cron("0 * * * *", func="somebody.elses.job", id="other-hourly")
    scheduler.cron("0 * * * *", func="workers.monitoring_jobs.old_job", id="slotguard-retired")

    first = schedule.register_schedule(scheduler, schedule.schedule_from_config(app.config))
    assert first == {**{job_id: "added" for job_id in EXPECTED}, "slotguard-retired": "removed"}
    before = _scheduled(redis)

    again = schedule.register_schedule(Scheduler(connection=redis), schedule.schedule_from_config(app.config))
    assert again == {job_id: "kept" for job_id in EXPECTED}
    assert _scheduled(redis) == before  # next run times untouched too

    app.config["SCHEDULE_DIGEST_CRON"] = "30 6 * * *"
    changed = schedule.register_schedule(Scheduler(connection=redis), schedule.schedule_from_config(app.config))
    assert changed["slotguard-daily-digest"] == "replaced"
    after = _scheduled(redis)
    assert after["slotguard-daily-digest"][1] == "30 6 * * *"
    assert len([j for j in after if j.startswith("slotguard-")]) == len(EXPECTED)
    assert foreign.id in after  # other people's jobs are left alone


def test_a_bad_cron_string_stops_the_scheduler_with_a_message(app):
    app.config["SCHEDULE_ALERTS_CRON"] = "every quarter hour"
    with pytest.raises(ValueError, match="bad cron string 'every quarter hour' for slotguard-alert-sync-failures"):
        schedule.schedule_from_config(app.config)


def _run_scheduled_job(redis, job_id: str):
    """Do what the scheduler loop does when a job is due, then let a worker run it."""
    scheduler = Scheduler(connection=redis)
    job = next(j for j in scheduler.get_jobs() if j.id == job_id)
    scheduler.enqueue_job(job)
    assert job_id in scheduler  # a cron job goes back on the schedule for its next run
    SimpleWorker([Queue("default", connection=redis)], connection=redis).work(burst=True)
    job.refresh()
    return job


def test_the_monitoring_jobs_run_in_an_rq_worker(app, clock):
    redis = get_redis()
    world = company("Salon A")
    appointment(world)
    schedule.register_schedule(Scheduler(connection=redis), schedule.schedule_from_config(app.config))

    refreshed = _run_scheduled_job(redis, "slotguard-refresh-sync-metrics")
    assert refreshed.get_status() == "finished", refreshed.exc_info
    assert refreshed.return_value() == {"generated_at": "2026-12-07T08:00:00+00:00", "health": "healthy"}
    assert redis.exists(CACHE_KEY) and redis.zcard(key_for("overall")) == 1

    alerted = _run_scheduled_job(redis, "slotguard-alert-sync-failures")
    assert alerted.get_status() == "finished", alerted.exc_info
    assert alerted.return_value() == {"health": "healthy", "alerts": 0, "sent": 0, "failed_channels": [],
                                      "skipped": None}

    digest = _run_scheduled_job(redis, "slotguard-daily-digest")
    assert digest.return_value() == "skipped: email not configured"


def test_get_app_creates_one_app_per_process(monkeypatch):
    from flask import Flask

    from workers import app_context

    created = []

    def fake_create_app():
        created.append(Flask("worker"))
        return created[-1]

    monkeypatch.setattr("core.create_app", fake_create_app)
    monkeypatch.setattr(app_context, "_app", None)
    with app_context.app_context() as first:
        pass
    with app_context.app_context() as second:
        pass
    assert first is second and created == [first]
