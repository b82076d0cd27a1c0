"""Fixtures of the reliability suites: a database per backend, a Cal.com emulator that
offers exactly the contested slots, and Slotguard served by gunicorn.

Backends: with `DATABASE_URL` pointing at PostgreSQL the suites run on it *and* on a
private, migrated SQLite file, so CI's PostgreSQL pass proves both; on the embedded
defaults they run on the session's SQLite database only.

`RELIABILITY_SCALE` (default 1) multiplies the number of callers, for a quick local
run (`RELIABILITY_SCALE=0.25`); CI runs the issue's numbers: 200 callers, 20 slots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

import pytest
import redis as redis_lib

from calcom.emulator import Emulator
from core import create_app
from core.extensions import db
from tests.support.database import empty_tables
from tests.calcom_fixtures import EmulatorHandle, serve_wsgi
from tests.factories import make_world
from tests.support.voice_callers import WantedSlot

RETELL_KEY = "retell_reliability_key"
BRANCH_PHONE = "+4930222222"
SERVICE = "Herrenhaarschnitt"  # tests.factories.make_world: 30 minutes, event type 1001
# The contested day: Cal.com lets each of the two staff members work 09:00–14:00 on
# it, so it offers exactly 2 × 10 half-hour slots.
CONTESTED_HOURS = [["09:00", "14:00"]]
SLOT_TIMES = [f"{9 + m // 60:02d}:{m % 60:02d}" for m in range(0, 300, 30)]


def postgres_configured() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql"))


BACKENDS = ["postgresql", "sqlite"] if postgres_configured() else ["sqlite"]


def scaled(count: int) -> int:
    """`count` callers times RELIABILITY_SCALE (at least one per slot)."""
    scale = float(os.environ.get("RELIABILITY_SCALE", "1") or "1")
    return max(len(SLOT_TIMES) * 2, round(count * scale))


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def backend_database_url(backend, database_url, _migrated, base_config, tmp_path):
    """The session's database for its own backend; a fresh migrated SQLite file when the
    session runs on PostgreSQL and this test wants SQLite."""
    if backend == "postgresql" or not database_url.startswith("postgresql"):
        yield database_url
        return
    from flask_migrate import upgrade

    url = "sqlite:///" + str(tmp_path / "reliability.db")
    migrating = create_app(dict(base_config, SQLALCHEMY_DATABASE_URI=url))
    with migrating.app_context():
        upgrade()
        db.engine.dispose()
    yield url


@pytest.fixture
def arena_redis_url(redis_url) -> str:
    """The Redis the server under test and the test itself use (the outage suite
    overrides it with a private server it can stop)."""
    return redis_url


@pytest.fixture
def roomy_calcom():
    """The Cal.com emulator with a rate limit high enough for hundreds of callers (the
    rate-limit behaviour has its own tests); served on a free port."""
    emulator = Emulator(seed=99, rate_limit=1_000_000)
    with serve_wsgi(emulator) as url:
        try:
            yield EmulatorHandle(emulator, url)
        finally:
            emulator.shutdown()


@pytest.fixture
def arena(backend_database_url, arena_redis_url, base_config, roomy_calcom):
    """An app context on the backend's database, emptied before and after; Redis flushed."""
    app = create_app(dict(
        base_config, SQLALCHEMY_DATABASE_URI=backend_database_url, REDIS_URL=arena_redis_url,
        CALCOM_API_URL=roomy_calcom.url, RETELL_API_KEY=RETELL_KEY,
        CALCOM_AVAILABILITY_TIMEOUT=10.0, CALCOM_CONNECT_TIMEOUT=10.0, CALCOM_SYNC_TIMEOUT=10.0,
    ))
    redis_lib.Redis.from_url(arena_redis_url).flushdb()
    with app.app_context():
        empty_tables()
        try:
            yield app
        finally:
            db.session.remove()
            empty_tables()
            db.engine.dispose()



def contested_day(now: datetime) -> date:
    """A working day (Mon–Sat) three or more days ahead of the real `now`."""
    day = (now + timedelta(days=3)).date()
    while day.isoweekday() == 7:
        day += timedelta(days=1)
    return day


@dataclass
class Contest:
    day: date
    slots: list[WantedSlot]  # every slot Cal.com offers that day
    staff_ids: dict[str, int]


@pytest.fixture
def contest(arena, roomy_calcom) -> Contest:
    """Branch +4930222222 with Anna and Ben (Cal.com users 100, 101); on the contested
    day Cal.com offers them 09:00–13:30 only: 20 slots, all free."""
    world = make_world(phone=BRANCH_PHONE)
    roomy_calcom.load_world(db.session, preload_bookings=False)
    day = contested_day(datetime.now(timezone.utc))
    state = roomy_calcom.state
    for host in list(state.hosts.values()):
        state.add_host(replace(host, working_hours={**host.working_hours, str(day.isoweekday()): CONTESTED_HOURS}))
    slots = [WantedSlot(SERVICE, day.isoformat(), at, member.name) for member in world["staff"] for at in SLOT_TIMES]
    for member in world["staff"]:
        offered = state.slots({"eventTypeId": "1001", "start": day.isoformat(), "end": day.isoformat(),
                               "timeZone": "Europe/Berlin", "rrHostSubsetIds": str(member.calcom_user_id)})
        assert len(offered.get(day.isoformat(), [])) == len(SLOT_TIMES), offered
    return Contest(day, slots, {m.name: m.id for m in world["staff"]})
