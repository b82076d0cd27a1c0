"""Which SQL statements a piece of code sends: for tests that pin down round trips."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import event

from core.extensions import db


@contextmanager
def recorded_statements() -> Iterator[list[str]]:
    """Collect every statement sent on the app's engine inside the block, whitespace
    folded (one line each), in order."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
