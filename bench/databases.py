"""The databases a run measures, and the app built on each.

PostgreSQL comes from BENCH_DATABASE_URL, else DATABASE_URL (when that is a
PostgreSQL URL); it is skipped with a note when unset or unreachable. SQLite is a
file in the instance folder, made anew for every size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core import PROJECT_ROOT, create_app
from core.config import normalise_database_url
from core.extensions import db

SQLITE_PATH = os.path.join(PROJECT_ROOT, "instance", "bench.db")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
RETELL_KEY = "retell_bench_key"


@dataclass
class Target:
    name: str  # "postgres" | "sqlite"
    url: str | None
    note: str = ""

    @property
    def available(self) -> bool:
        return self.url is not None


def postgres_target() -> Target:
    configured = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not configured or not configured.startswith("postgres"):
        return Target("postgres", None, "skipped: set BENCH_DATABASE_URL (or DATABASE_URL) to a PostgreSQL URL")
    url = normalise_database_url(configured)
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to connect means: skip with a note
        shown = make_url(url).render_as_string(hide_password=True)
        return Target("postgres", None, f"skipped: cannot connect to {shown} ({type(exc).__name__})")
    return Target("postgres", url)


def sqlite_target() -> Target:
    return Target("sqlite", "sqlite:///" + SQLITE_PATH)


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL


def make_app(target: Target, **overrides: Any) -> Flask:
    """A Slotguard app on the target database, quiet, with the bench's Redis DB."""
    config = {
        "SQLALCHEMY_DATABASE_URI": target.url,
        "REDIS_URL": redis_url(),
        "SECRET_KEY": "bench-secret",
        "RETELL_API_KEY": RETELL_KEY,
        "CALCOM_API_URL": "http://calcom.invalid",
        "CALCOM_API_KEY": "cal_bench_key",
        "CALCOM_WEBHOOK_SECRET": "whsec_bench",
        "LOG_LEVEL": "ERROR",
        "ASSETS_FROM": "local",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False, "pool_size": 24, "max_overflow": 8}
        if target.name == "postgres" else {},
    }
    config.update(overrides)
    return create_app(config)


def fresh_schema(target: Target) -> None:
    """An empty database at the newest migration (SQLite: a new file)."""
    from flask_migrate import upgrade

    if target.name == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(SQLITE_PATH + suffix):
                os.remove(SQLITE_PATH + suffix)
    app = make_app(target)
    with app.app_context():
        upgrade()
        db.engine.dispose()


__all__ = ["Target", "fresh_schema", "make_app", "postgres_target", "redis_url", "sqlite_target"]
