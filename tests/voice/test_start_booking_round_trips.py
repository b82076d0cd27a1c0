"""start_booking's round trips: the answer is built from what the booking read before
its commit, and a new appointment's sync is queued without looking for a job first.

Each round trip is paid by every caller on the phone (README "Benchmarks"); these
pin the two fixes down: no statement after the commit, no job look-up in Redis.
"""

from __future__ import annotations

from contextlib import contextmanager

import redis

from tests.support.sql_trace import recorded_statements
from tests.voice.test_start_booking import appointments, checked, queued_jobs


@contextmanager
def recorded_redis_commands(monkeypatch):
    commands: list[str] = []
    execute = redis.Redis.execute_command

    def record(client, *args, **options):
        commands.append(str(args[0]).upper())
        return execute(client, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", record)
    yield commands


def test_nothing_is_reloaded_after_the_commit(world, voice):
    lock_key = checked(voice)
    with recorded_statements() as statements:
        body = voice("start_booking", {"lock_key": lock_key, "customer_name": "Erika Muster"})

    assert body["success"] is True
    assert body["message"] == ("Vielen Dank, Erika Muster. Ihr Termin ist gebucht: Herrenhaarschnitt bei Anna am "
                               "Dienstag, 8. Dezember, um 10:00 Uhr.")
    last_write = max(i for i, s in enumerate(statements) if s.startswith("INSERT INTO appointment_segments"))
    assert statements[last_write + 1:] == []  # the commit follows; nothing is read again
    # The branch's services are read once, though the lock key and the arguments both name one.
    assert sum(s.startswith("SELECT services.") for s in statements) == 1


def test_a_new_booking_queues_its_sync_without_a_job_lookup(world, voice, app, monkeypatch):
    lock_key = checked(voice)
    with recorded_redis_commands(monkeypatch) as commands:
        body = voice("start_booking", {"lock_key": lock_key, "customer_name": "Erika Muster"})

    (appointment,) = appointments()
    assert appointment.id == body["appointment_id"]
    assert queued_jobs(app) == [f"sync-{appointment.id}-v1"]
    assert "HGETALL" not in commands and "LREM" not in commands
