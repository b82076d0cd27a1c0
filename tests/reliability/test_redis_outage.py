"""Redis outage: Redis fails in the middle of a rush of callers, and comes back.

Slotguard runs under gunicorn against a private Redis-compatible server (embedded
Valkey on its own port, never the shared one). Wave A — 100 callers for Anna's ten
slots — starts with Redis up; when a quarter of them have had their availability
answer, Redis fails while the rest are in flight: either `killed` (SIGKILL, no
persistence: connections refused, data gone) or `frozen` (SIGSTOP: connections
accepted, no answer ever — a hung or partitioned Redis). Wave B — 100 callers for
Ben's ten slots — runs entirely while Redis is down.

While it is down: holds degrade (no lock keys), the database guard still lets exactly
one caller have each slot, every caller hears a proper German sentence within 30 s
(no 5xx), `/readyz` answers 503 naming Redis, and nothing is half-written. When Redis
is back (restarted empty, or thawed), holds work again, the sweeper finds every
booking left pending with no job, re-enqueues it, a worker sends it to Cal.com (the
emulator), and every appointment ends synced with exactly one Cal.com booking.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import requests

from core import embedded_redis
from core.clock import frozen_at, utcnow
from core.extensions import db
from core.models import SyncStatus
from tests.reliability.conftest import BRANCH_PHONE, RETELL_KEY, SERVICE, scaled
from tests.support.booking_proof import active_appointments, half_written, overlapping_segments
from tests.support.live_server import gunicorn_slotguard, server_env
from tests.support.sync_helpers import bookings_of, reload, run_sync_jobs
from tests.support.voice_callers import (
    RetellClient, WantedSlot, call_all_at_once, describe, make_callers, slowest_answer,
)
from workers.sweeper import sweep_stale_pending

pytestmark = pytest.mark.slow

WAVE = 100


class PrivateRedis:
    """An embedded Valkey on a port of its own that the test may kill and restart."""

    def __init__(self, data_dir) -> None:
        self.data_dir = str(data_dir)
        self.server = embedded_redis.start_server(data_dir=self.data_dir)
        self.port = self.server.port
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def fail(self, fault: str) -> None:
        if fault == "killed":
            self.server.terminate()  # SIGKILL: no goodbye, no save; its data is gone
        else:
            os.kill(self.server.pid, signal.SIGSTOP)  # hangs: connections open, no answer ever

    def recover(self, fault: str) -> None:
        if fault == "killed":
            self.server = embedded_redis.start_server(data_dir=self.data_dir, port=self.port)
        else:
            os.kill(self.server.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.server.pid:
            os.kill(self.server.pid, signal.SIGCONT)
        self.server.stop()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "valkey")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def arena_redis_url(private_redis) -> str:
    return private_redis.url


def wait_for_ready(url: str, timeout: float = 30.0) -> requests.Response:
    """Poll /readyz until it says 200 (waiting on real processes reconnecting)."""
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(url + "/readyz", timeout=10)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def wait_for_hold(client: RetellClient, caller, timeout: float = 30.0):
    """Ask until the answer carries a lock key (waiting on the web processes' Redis retry)."""
    deadline = time.monotonic() + timeout
    with requests.Session() as http:
        while True:
            answer = client.call(http, caller, "check_availability", caller.wanted.args())
            if (answer.body or {}).get("lock_key") or time.monotonic() > deadline:
                return answer
            time.sleep(0.5)


def next_day_slot(contest) -> WantedSlot:
    """10:00 with Anna on the next working day after the contested one (Cal.com offers it)."""
    day = contest.day + timedelta(days=1)
    while day.isoweekday() == 7:
        day += timedelta(days=1)
    return WantedSlot(SERVICE, day.isoformat(), "10:00", "Anna")


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_redis_failing_mid_run_never_double_books_and_pending_syncs_are_swept_when_it_returns(
        arena, contest, roomy_calcom, backend, backend_database_url, private_redis, tmp_path, fault):
    env = server_env(
        database_url=backend_database_url, redis_url=private_redis.url, calcom_url=roomy_calcom.url,
        retell_key=RETELL_KEY, CALCOM_AVAILABILITY_TIMEOUT="10", CALCOM_CONNECT_TIMEOUT="10",
    )
    anna_slots = [s for s in contest.slots if s.staff == "Anna"]
    ben_slots = [s for s in contest.slots if s.staff == "Ben"]
    wave_a = make_callers(f"{backend}-a", scaled(WAVE), anna_slots)
    wave_b = make_callers(f"{backend}-b", scaled(WAVE), ben_slots, first_number=len(wave_a))
    kill_after = len(wave_a) // 4
    checked, killed, lock = [0], threading.Event(), threading.Lock()

    def kill_redis_mid_run(_caller) -> None:
        with lock:
            checked[0] += 1
            if checked[0] == kill_after:
                private_redis.fail(fault)
                killed.set()

    db.session.remove()
    with gunicorn_slotguard(env, tmp_path / "gunicorn.log") as url:
        # A caller who hears nothing for half a minute has hung up.
        client = RetellClient(url, RETELL_KEY, BRANCH_PHONE, timeout=30)
        assert requests.get(url + "/readyz", timeout=10).status_code == 200
        started = time.monotonic()
        call_all_at_once(client, wave_a, after_check=kill_redis_mid_run)
        assert killed.is_set()
        call_all_at_once(client, wave_b)
        elapsed = time.monotonic() - started

        down = requests.get(url + "/readyz", timeout=10)
        assert down.status_code == 503
        assert down.json()["down"] == ["redis"] and down.json()["checks"] == {"database": "ok", "redis": "down"}

        callers = wave_a + wave_b
        outcomes = Counter(c.outcome for c in callers)
        print(f"\nredis {fault} {backend}: {len(callers)} callers, {len(contest.slots)} slots, "
              f"{dict(outcomes)}, {elapsed:.1f} s, slowest answer {slowest_answer(callers):.1f} s")
        assert outcomes["unexpected"] == 0, describe(callers)
        assert not any("Traceback" in a.text for c in callers for a in c.answers)
        assert not any((a.body or {}).get("lock_key") for c in wave_b for a in c.answers)  # holds degraded

        # Exactly one booking per slot, Redis or not; nothing half-written; all waiting for Cal.com.
        assert overlapping_segments() == []
        booked = active_appointments()
        assert len(booked) == len(contest.slots) == outcomes["booked"]
        assert len({(a["staff_id"], str(a["starts_at"])) for a in booked}) == len(contest.slots)
        assert sorted(c.call_id for c in callers if c.outcome == "booked") == sorted(a["call_id"] for a in booked)
        assert half_written() == {name: [] for name in half_written()}
        assert {a["sync_status"] for a in booked} == {"pending"}

        # Redis returns (after a crash: empty, the queued jobs are gone) and the web
        # processes are ready again by themselves.
        private_redis.recover(fault)
        assert wait_for_ready(url).status_code == 200
        # … and hold slots again (the hold scripts are loaded into the new server).
        # (Each web process gives Redis another try REDIS_DOWN_SECONDS after its last
        # failure; the same call asking again only extends its own hold.)
        (late,) = make_callers(f"{backend}-late", 1, [next_day_slot(contest)], first_number=10_000)
        answer = wait_for_hold(client, late)
        assert answer.status == 200 and answer.body["available"] and answer.body["lock_key"], answer.text

    # The sweeper (scheduled every 5 minutes) finds them pending with no job in flight
    # once they are older than SYNC_SWEEP_AFTER_MINUTES; a worker sends them to Cal.com.
    ids = sorted(a["id"] for a in booked)
    with frozen_at(utcnow() + timedelta(minutes=11)):
        swept = sweep_stale_pending()
        if fault == "killed":  # the jobs queued before the crash died with Redis
            assert sorted(swept["requeued"]) == ids
        else:  # a frozen Redis kept them: only the bookings made while it hung need the sweeper
            assert sorted(swept["requeued"] + swept["in_flight"]) == ids and swept["requeued"]
        run_sync_jobs(arena)
    for appointment_id in ids:
        appointment = reload(appointment_id)
        assert appointment.sync_status == SyncStatus.SYNCED, (appointment_id, appointment.sync_error_message)
        (made,) = bookings_of(roomy_calcom, appointment_id)
        assert made.uid == appointment.calcom_booking_uid
    assert sum(1 for b in roomy_calcom.state.bookings.values() if b.active) == len(ids)
