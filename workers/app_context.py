"""The Flask app of a worker process: created once, used by every job it runs.

RQ imports jobs by dotted path in a plain process, so there is no app around them.
Jobs run inside `get_app().app_context()` (the `AppWorker` does this for every job),
so they use `current_app`, `db.session` and the configuration like a request would.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from flask import Flask, current_app, has_app_context

_app: Flask | None = None


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
    `AppWorker`'s per-job context, a test's), else this process's app.

    Jobs that may also run under a plain `rq worker`, and the scheduler, use this.
    """
    if has_app_context():
        yield current_app._get_current_object()
        return
    with get_app().app_context() as context:
        yield context.app
