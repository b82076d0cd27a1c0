"""Test fixtures: a real database and a real Redis for every test.

* `DATABASE_URL` set to PostgreSQL: a private database is created for this test
  session on that server (so parallel runs do not collide), migrated with Alembic,
  and dropped at the end. Unset: a SQLite file in a temporary folder, also migrated.
* `REDIS_URL` set: that Redis is used and its database is flushed before each test.
  Unset: an embedded valkey-server is started for the session.

Tables are emptied after each test, not rolled back, because the concurrency tests
commit from several threads and connections.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone

import pytest
import redis as redis_lib
from sqlalchemy.engine import make_url

from core import create_app, embedded_redis
from core.clock import frozen_at
from core.config import normalise_database_url
from core.extensions import db
from tests.support.database import empty_tables

# Shared Cal.com fixtures (HTTP test servers, the emulator) for every room's tests.
pytest_plugins = ["tests.calcom_fixtures"]


def _is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    configured = os.environ.get("DATABASE_URL")
    if not configured:
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "slotguard-test.db")
        return
    url = make_url(normalise_database_url(configured))
    if not _is_postgres(url.drivername):
        yield url.render_as_string(hide_password=False)
        return
    import psycopg

    name = f"slotguard_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url():
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    server = embedded_redis.start_server()
    try:
        yield embedded_redis.server_url(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def base_config(database_url, redis_url):
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret-key",
        "CALCOM_API_URL": "http://calcom.invalid",
        "CALCOM_API_KEY": "cal_test_key",
        "CALCOM_WEBHOOK_SECRET": "whsec_test",
        "RETELL_API_KEY": "retell_test_key",
        "ASSETS_FROM": "local",
        "SERVER_NAME": None,
    }


@pytest.fixture(scope="session")
def _migrated(base_config):
    """Bring the test database to the newest migration once per session."""
    from flask_migrate import upgrade

    app = create_app(base_config)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return True


@pytest.fixture
def app_config(base_config):
    """Per-test overrides: a test can change this dict before using `app`."""
    return dict(base_config)


@pytest.fixture
def app(_migrated, app_config):
    app = create_app(app_config)
    redis_lib.Redis.from_url(app.config["REDIS_URL"]).flushdb()
    with app.app_context():
        yield app
        db.session.remove()
        empty_tables()
        db.engine.dispose()



@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def is_postgres(app) -> bool:
    return db.engine.dialect.name == "postgresql"


@pytest.fixture(autouse=True)
def _skip_postgres_only(request):
    marker = request.node.get_closest_marker("postgres_only")
    if marker is None:
        return
    url = request.getfixturevalue("database_url")
    if not _is_postgres(url):
        reason = marker.args[0] if marker.args else "needs PostgreSQL"
        pytest.skip(f"PostgreSQL only: {reason}")


@pytest.fixture
def clock():
    """A frozen clock at a fixed Monday morning; `clock.advance(timedelta)` moves it."""
    from core import clock as clock_module

    start = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)
    with frozen_at(start):
        yield clock_module


@pytest.fixture
def demo(app):
    """The demo data set (`flask seed-demo`), for tests that want a realistic world."""
    from core.seed import seed_demo

    seed_demo(db.session)
    return db.session
