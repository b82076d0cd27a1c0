"""One Flask app per worker process, for jobs that need the database and config.

RQ imports a job function by its dotted path and calls it outside any Flask app.
`app_context()` gives it one: the app already active (a test, or a worker class that
pushes a context per job), else one app created on first use and kept for the life
of the process, so a job does not pay for `create_app()` every time.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from flask import Flask, current_app, has_app_context

_app: Flask | None = None


def get_app() -> Flask:
    """The current app inside a context, else this process's own (created once)."""
    global _app
    if has_app_context():
        return current_app._get_current_object()
    if _app is None:
        from core import create_app

        _app = create_app()
    return _app


@contextmanager
def app_context() -> Iterator[Flask]:
    """Run a block inside an app context, reusing the active one when there is one."""
    if has_app_context():
        yield current_app._get_current_object()
        return
    app = get_app()
    with app.app_context():
        yield app
