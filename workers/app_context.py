"""The Flask app of a worker process: created once, used by every job it runs.

RQ imports jobs by dotted path in a plain process, so there is no app around them.
The one pattern: every job function RQ runs (the sync job and every scheduled job)
is decorated with `@job_in_app_context`, so it uses `current_app`, `db.session` and
the configuration like a request would — inside the `SimpleAppWorker`'s (or
`AppWorker`'s) per-job context, a test's, or (under a plain `rq worker`) this
process's app. Code that is not a job
(the scheduler process) uses the `app_context()` block the decorator is built on.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from flask import Flask, current_app, has_app_context

_app: Flask | None = None

Job = TypeVar("Job", bound=Callable)


def get_app() -> Flask:
    """This process's app, built from the environment on first use."""
    global _app
    if _app is None:
        from core import create_app

        _app = create_app()
    return _app


@contextmanager
def app_context() -> Iterator[Flask]:
    """Run a block inside an app context: the active one when there is one (the
    `SimpleAppWorker`'s or `AppWorker`'s per-job context, a test's), else this process's app.

    Jobs that may also run under a plain `rq worker`, and the scheduler, use this.
    """
    if has_app_context():
        yield current_app._get_current_object()
        return
    with get_app().app_context() as context:
        yield context.app


def job_in_app_context(job: Job) -> Job:
    """Run an RQ job function inside an app context (see `app_context`)."""

    @functools.wraps(job)
    def run(*args, **kwargs):
        with app_context():
            return job(*args, **kwargs)

    run.runs_in_app_context = True  # type: ignore[attr-defined]  # checked by the tests
    return run  # type: ignore[return-value]


__all__ = ["app_context", "get_app", "job_in_app_context"]
