"""`flask appointments retry-sync ID… [--note]`."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from core.extensions import db
from core.models import Appointment, AuditEvent, SyncStatus
from tests.factories import book, make_world

TEN = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)


def failed_appointment(world) -> Appointment:
    appointment = book(world, TEN)
    appointment.sync_status = SyncStatus.FAILED
    appointment.requires_manual_review = True
    appointment.manual_review_reason = "Gave up after 5 attempts."
    db.session.commit()
    return appointment


def test_retry_sync_queues_and_audits_with_the_note(app, runner):
    appointment = failed_appointment(make_world())

    result = runner.invoke(args=["appointments", "retry-sync", str(appointment.id), "--note", "Cal.com is back"])

    assert result.exit_code == 0, result.output
    assert f"{appointment.id}: create sync queued" in result.output
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).sync_status == SyncStatus.PENDING
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.appointment_id == appointment.id))
    assert (event.actor, event.note) == ("cli", "Cal.com is back")


def test_unknown_ids_are_reported_and_the_exit_code_is_nonzero(app, runner):
    appointment = failed_appointment(make_world())

    result = runner.invoke(args=["appointments", "retry-sync", str(appointment.id), "424242"])

    assert result.exit_code == 1
    assert f"{appointment.id}: create sync queued" in result.output
    assert "424242: not retried: no such appointment" in result.output
    db.session.expire_all()
    # The known one was retried all the same.
    assert db.session.get(Appointment, appointment.id).sync_status == SyncStatus.PENDING


def test_ids_must_be_positive_whole_numbers(app, runner):
    for bad in (["abc"], ["0"], ["-3"], []):
        result = runner.invoke(args=["appointments", "retry-sync", *bad])
        assert result.exit_code == 2, (bad, result.output)
    assert "Missing argument" in runner.invoke(args=["appointments", "retry-sync"]).output


def test_a_retry_stands_when_redis_is_down_and_waits_for_the_sweeper(app, runner, caplog):
    """The retry is committed; a queue failure leaves it pending instead of an error."""
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    appointment = failed_appointment(make_world())
    app.extensions["redis"] = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                                              retry=Retry(NoBackoff(), 0))

    result = runner.invoke(args=["appointments", "retry-sync", str(appointment.id)])

    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).sync_status == SyncStatus.PENDING
    assert "outcome=not_queued" in caplog.text and "stays pending for the sweeper" in caplog.text
