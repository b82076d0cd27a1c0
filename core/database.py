"""Engine settings that make each database behave the way the booking guard needs."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from core.extensions import db


def configure_engine(app: Flask) -> None:
    """Attach per-dialect connection settings to the app's engine."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)


def _configure_sqlite(engine: Engine) -> None:
    """Give SQLite real transactions and a `BEGIN IMMEDIATE` on request.

    pysqlite by default opens transactions lazily and only before writes, which
    would let a check-then-insert interleave with another writer. Following the
    SQLAlchemy pysqlite recipe, the driver's own transaction handling is switched
    off and SQLAlchemy emits BEGIN itself: `BEGIN IMMEDIATE` (take the write lock
    now) when the connection carries `sqlite_immediate=True`, else a plain BEGIN.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers (dashboard, availability) run while one writer writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Writers queue for the lock instead of failing at once.
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        if connection.get_execution_options().get("sqlite_immediate"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
