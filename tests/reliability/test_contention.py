"""Contention: 200 callers race for 20 slots through the real HTTP endpoints.

Slotguard runs under gunicorn (two worker processes with eight threads each, the
production `gunicorn.conf.py`), Cal.com is the emulator offering exactly 20 slots on
the contested day (two staff members, 09:00–13:30), and 200 callers — ten per slot,
half of them `check_availability` then `start_booking` with the lock key, half
`start_booking` straight away — are released at the same instant.

Afterwards, on PostgreSQL and on SQLite, with slot holds on and off (the database
guard alone):

* a SQL self-join over `appointment_segments` finds no overlapping active segments;
* exactly one appointment per slot: bookings = the 20 free slots that existed;
* every caller heard a booking or "Dieser Termin wurde gerade vergeben." (those who
  asked first may hear "… ist leider kein Termin frei." instead) — no 5xx, no other
  error, and the callers told "gebucht" are exactly the appointments' calls;
* nothing half-written (segments, customers).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from core.extensions import db
from tests.reliability.conftest import BRANCH_PHONE, RETELL_KEY, scaled
from tests.support.booking_proof import active_appointments, half_written, overlapping_segments
from tests.support.live_server import gunicorn_slotguard, server_env
from tests.support.voice_callers import RetellClient, call_all_at_once, describe, make_callers, slowest_answer

pytestmark = pytest.mark.slow

CALLERS = 200


@pytest.mark.parametrize("holds", ["holds", "guard_only"])
def test_200_callers_racing_for_20_slots_never_double_book(
        arena, contest, roomy_calcom, backend, backend_database_url, arena_redis_url, tmp_path, holds):
    env = server_env(
        database_url=backend_database_url, redis_url=arena_redis_url, calcom_url=roomy_calcom.url,
        retell_key=RETELL_KEY, FEATURE_SLOT_LOCKING="true" if holds == "holds" else "false",
        CALCOM_AVAILABILITY_TIMEOUT="10", CALCOM_CONNECT_TIMEOUT="10",
    )
    callers = make_callers(f"{backend}-{holds}", scaled(CALLERS), contest.slots)
    db.session.remove()  # no open transaction of ours while the server writes

    with gunicorn_slotguard(env, tmp_path / "gunicorn.log") as url:
        started = time.monotonic()
        call_all_at_once(RetellClient(url, RETELL_KEY, BRANCH_PHONE), callers)
        elapsed = time.monotonic() - started

    outcomes = Counter(caller.outcome for caller in callers)
    print(f"\ncontention {backend}/{holds}: {len(callers)} callers, {len(contest.slots)} slots, "
          f"{dict(outcomes)}, {elapsed:.1f} s, slowest answer {slowest_answer(callers):.1f} s")

    # Every caller heard a sentence that fits what happened: no 5xx, no other error.
    assert outcomes["unexpected"] == 0, describe(callers)
    assert {c.outcome for c in callers if c.flow == "direct"} <= {"booked", "taken"}
    if holds == "guard_only":
        assert not any((a.body or {}).get("lock_key") for c in callers for a in c.answers)

    # The database: no overlap, one appointment per slot, all 20 slots booked.
    assert overlapping_segments() == []
    booked = active_appointments()
    assert len(booked) == len(contest.slots) == outcomes["booked"]
    assert len({(a["staff_id"], str(a["starts_at"])) for a in booked}) == len(contest.slots)
    # The callers told "gebucht" are exactly the calls that own an appointment.
    assert sorted(c.call_id for c in callers if c.outcome == "booked") == sorted(a["call_id"] for a in booked)
    assert {c.appointment_id for c in callers if c.outcome == "booked"} == {a["id"] for a in booked}
    assert half_written() == {name: [] for name in half_written()}
