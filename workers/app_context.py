"""The Flask app of a worker process: created once, used by every job it runs.

RQ imports jobs by dotted path in a plain process, so there is no app around them.
Jobs run inside `get_app().app_context()` (the `AppWorker` does this for every job),
so they use `current_app`, `db.session` and the configuration like a request would.
"""

from __future__ import annotations

from flask import Flask

_app: Flask | None = None


def get_app() -> Flask:
    """This process's app, built from the environment on first use."""
    global _app
    if _app is None:
        from core import create_app

        _app = create_app()
    return _app
