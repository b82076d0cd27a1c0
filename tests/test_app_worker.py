"""Workers run every job inside the Flask app context and clean up after it."""

from __future__ import annotations

from rq import Queue
from sqlalchemy import select

from core.extensions import db
from core.models import Company
from core.redis_client import get_redis
from workers.app_worker import AppWorker, SimpleAppWorker


def test_jobs_run_in_the_app_context_and_leave_no_session_state_behind(app):
    queue = Queue("default", connection=get_redis(app))
    first = queue.enqueue("tests.support.worker_jobs.leave_uncommitted_company", "leaky")
    second = queue.enqueue("tests.support.worker_jobs.company_slugs")

    SimpleAppWorker([queue], connection=queue.connection, app=app).work(burst=True)

    assert first.return_value() == app.name  # current_app was there
    assert second.return_value() == []  # the first job's uncommitted row did not leak
    assert db.session.scalars(select(Company)).all() == []


def test_forking_worker_runs_each_job_in_a_work_horse_with_its_own_connections(app):
    db.session.execute(select(1))  # the parent holds a pooled connection while forking
    queue = Queue("default", connection=get_redis(app))
    jobs = [queue.enqueue("tests.support.worker_jobs.add_company", slug) for slug in ("horse-1", "horse-2")]

    AppWorker([queue], connection=queue.connection, app=app).work(burst=True)

    assert [job.get_status() for job in jobs] == ["finished", "finished"]
    db.session.rollback()
    assert sorted(db.session.scalars(select(Company.slug))) == ["horse-1", "horse-2"]


def test_every_job_rq_runs_is_wrapped_in_the_one_app_context_pattern(app):
    """The sync job and every scheduled job use `job_in_app_context`, nothing else."""
    import inspect

    from werkzeug.utils import import_string

    from core.queues import SYNC_JOB
    from workers.schedule import schedule_from_config

    paths = [SYNC_JOB] + [job.func for job in schedule_from_config(app.config)]
    for path in paths:
        job = import_string(path)
        assert getattr(job, "runs_in_app_context", False), path
        assert "with app_context()" not in inspect.getsource(job.__wrapped__), path


def test_a_job_outside_any_context_runs_in_the_process_app(app, monkeypatch):
    """Under a plain `rq worker` (no AppWorker) a job still finds its app."""
    import threading

    from flask import current_app

    import workers.app_context as app_context_module

    monkeypatch.setattr(app_context_module, "_app", app)
    seen = []
    job = app_context_module.job_in_app_context(lambda: seen.append(current_app.name))
    thread = threading.Thread(target=job)  # a new thread has no app context
    thread.start()
    thread.join()
    assert seen == [app.name]
