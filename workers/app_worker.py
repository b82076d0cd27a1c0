"""RQ workers that run every job inside the Flask app context.

The Procfile starts `rq worker --with-scheduler --worker-class
workers.app_worker.SimpleAppWorker calcom-sync default`: `SimpleAppWorker` runs each
job in the worker process itself. Forking a work horse per job (`AppWorker`, RQ's
default) cost a sync job 150-250 ms instead of 35-46 ms on the benchmark machine
(README "Benchmarks"), and bought nothing these jobs need:

* job timeouts are still enforced: RQ's death penalty is a SIGALRM in the process
  that runs the job (`rq.timeouts.UnixSignalDeathPenalty`), the worker's own here;
* a killed worker (out of memory, lost machine) leaves its job "started" until the
  heartbeat deadline (the job's timeout + 60 s); then RQ's registry cleanup fails it
  as abandoned and the sweeper enqueues the appointment again, and the re-run adopts
  whatever Cal.com booking the dead one made (tests/reliability/test_crash.py);
* nothing leaks from one job into the next: each job gets a fresh app context and
  the database session is removed afterwards.

`AppWorker` stays for a deployment that wants a crashing job (a segfault in a C
extension) to spare the worker.

Each job gets a fresh app context and the database session is removed afterwards,
so nothing (an open transaction, a cached row) leaks from one job into the next.
"""

from __future__ import annotations

import logging
import os
from importlib import import_module
from typing import Any

from flask import Flask
from rq import SimpleWorker, Worker
from sqlalchemy.orm import configure_mappers

from core import log_context, prom
from core.extensions import db
from workers.app_context import get_app

log = logging.getLogger(__name__)

# The modules of every job the schedule and the app enqueue (imported by dotted path).
JOB_MODULES = ("workers.sync", "workers.sweeper", "workers.monitoring_jobs", "workers.prune", "workers.reconcile")


class AppContextMixin:
    """Wrap `perform_job` (which runs the job function) in an app context."""

    def __init__(self, *args: Any, app: Flask | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built here, before any fork, so every work horse inherits the same app.
        self.app = app or get_app()

    def perform_job(self, job, queue, *args: Any, **kwargs: Any) -> bool:
        # Metric files named after the RQ worker (core.prom): a forking worker's horses
        # take turns on one set, a non-forking worker writes its own under the same name.
        prom.use_rq_horse_identity(os.getppid() if self.is_horse else os.getpid())
        with self.app.app_context(), log_context.bound(**log_context.from_meta(job.meta)):
            if self.is_horse:
                # A forked horse inherits the parent's connection pool; never reuse
                # those sockets in the child (SQLAlchemy's pooling-with-fork advice).
                db.engine.dispose(close=False)
            try:
                return super().perform_job(job, queue, *args, **kwargs)
            finally:
                db.session.remove()


class AppWorker(AppContextMixin, Worker):
    """One forked work horse per job.

    A horse starts as a copy of this process, so whatever this process has not done
    yet, every horse does again for every job. Done once here instead (it made each
    sync job about 100 ms cheaper, see README "Benchmarks"): import the job modules,
    configure the ORM mappers, and initialise the database dialect with one
    connection, closed again so that no horse inherits an open socket.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        warm_up(self.app)


def warm_up(app: Flask) -> None:
    for name in JOB_MODULES:
        import_module(name)
    configure_mappers()
    with app.app_context():
        try:
            with db.engine.connect():
                pass
        except Exception as exc:  # noqa: BLE001 - a database still starting is the jobs' problem, not the worker's
            log.warning("worker warm-up: database not reachable yet (%s)", type(exc).__name__)
        finally:
            db.engine.dispose()


class SimpleAppWorker(AppContextMixin, SimpleWorker):
    """The production worker: runs jobs in the worker process itself (see above)."""


__all__ = ["AppWorker", "SimpleAppWorker", "warm_up"]
