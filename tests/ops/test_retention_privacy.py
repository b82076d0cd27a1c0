"""Retention (the scheduled prune) and one customer's data: export, erase, masking."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from calcom import call_log
from core.extensions import db
from core.models import Appointment, AuditEvent, Customer, ReconciliationRun, SyncAction, SyncAttempt
from core.privacy import ERASED_NAME, mask_email, mask_phone
from core.queues import get_queue
from core.redis_client import get_redis
from tests.factories import book, make_world
from workers.prune import prune

UTC = timezone.utc
TEN = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def test_prune_removes_what_is_past_retention_in_small_batches(app, clock):
    world = make_world()
    appointment = book(world, TEN)
    now = clock.utcnow()
    for days in range(0, 200, 2):  # 100 attempts, one every two days back
        db.session.add(SyncAttempt(appointment_id=appointment.id, action=SyncAction.CREATE,
                                   started_at=now - timedelta(days=days)))
    db.session.add(ReconciliationRun(started_at=now - timedelta(days=200), window_from=now, window_to=now,
                                     counts={}, findings=[], errors=[]))
    db.session.add(ReconciliationRun(started_at=now - timedelta(days=2), window_from=now, window_to=now,
                                     counts={}, findings=[], errors=[]))
    db.session.commit()
    redis = get_redis()
    call_log.record(redis, method="GET", endpoint="/v2/slots", status=200, latency_ms=5, outcome="ok",
                    at=now - timedelta(days=3), retention_seconds=10 * 86400)
    call_log.record(redis, method="GET", endpoint="/v2/slots", status=200, latency_ms=5, outcome="ok", at=now,
                    retention_seconds=10 * 86400)
    app.config.update(PRUNE_BATCH_SIZE=7, RETENTION_SYNC_ATTEMPTS_DAYS=90)

    statements = []
    from sqlalchemy import event

    def remember(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        removed = prune()
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)

    assert removed["sync_attempts"] == 54  # 92..198 days old (90 is still kept)
    assert count(SyncAttempt) == 46
    assert len([s for s in statements if "sync_attempts" in s]) == 8  # ceil(54 / 7) batches
    assert removed["reconciliation_runs"] == 1 and count(ReconciliationRun) == 1
    assert removed["calcom_calls"] == 1 and redis.zcard(call_log.KEY) == 1
    assert prune()["sync_attempts"] == 0  # nothing left to do


def test_prune_deletes_old_finished_jobs_but_never_the_cron_jobs(app, clock):
    from rq import SimpleWorker

    queue = get_queue("default")
    old = queue.enqueue("tests.support.worker_jobs.company_slugs", job_id="old-job")
    cron = queue.enqueue("tests.support.worker_jobs.company_slugs", job_id="slotguard-refresh-sync-metrics")
    db.session.remove()
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    app.config["RETENTION_FINISHED_JOBS_HOURS"] = 1
    with __import__("core.clock", fromlist=["frozen_at"]).frozen_at(datetime.now(UTC) + timedelta(hours=2)):
        removed = prune()
    assert removed["finished_jobs"] == 1
    assert queue.fetch_job(old.id) is None
    assert queue.fetch_job(cron.id) is not None


def test_export_prints_the_person_and_their_appointments(app, runner, clock):
    world = make_world()
    book(world, TEN, notes="Bitte kurz")
    customer = world["customer"]
    result = runner.invoke(args=["customers", "export", "--phone", "+49 151 00000001"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["customer"]["name"] == "Erika Mustermann" and data["customer"]["phone"] == "+4915100000001"
    assert [a["notes"] for a in data["appointments"]] == ["Bitte kurz"]
    assert json.loads(runner.invoke(args=["customers", "export", "--id", str(customer.id)]).output) | {
        "exported_at": data["exported_at"]} == data


@pytest.mark.parametrize("args, message", [
    (["--phone", "015100000001"], "international format"),
    (["--phone", "+4915100000001", "--id", "1"], "exactly one of"),
    ([], "exactly one of"),
    (["--id", "0"], "positive"),
])
def test_bad_input_is_refused(app, runner, args, message):
    make_world()
    for command in ("export", "erase"):
        result = runner.invoke(args=["customers", command, *args, "--yes"][: None if command == "erase" else -1])
        assert result.exit_code == 2 and message in result.output, result.output


def test_erase_needs_confirmation_then_keeps_the_appointments(app, runner, clock):
    world = make_world()
    appointment = book(world, TEN, notes="Allergie gegen X")
    customer_id = world["customer"].id

    refused = runner.invoke(args=["customers", "erase", "--id", str(customer_id)])
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert db.session.get(Customer, customer_id).phone == "+4915100000001"

    done = runner.invoke(args=["customers", "erase", "--id", str(customer_id), "--yes", "--note", "Ticket 42"])
    assert done.exit_code == 0 and "1 appointment(s) kept" in done.output
    db.session.expire_all()
    customer = db.session.get(Customer, customer_id)
    assert (customer.name, customer.phone, customer.email) == (ERASED_NAME, None, None)
    kept = db.session.get(Appointment, appointment.id)
    assert kept is not None and kept.notes is None and kept.customer_id == customer_id
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer_erased")).one()
    assert audit.note == "Ticket 42" and audit.details["customer_id"] == customer_id
    assert "Erika" not in json.dumps(audit.details)
    assert runner.invoke(args=["customers", "erase", "--phone", "+4915100000001", "--yes"]).exit_code == 1


def test_masks_for_viewers():
    assert mask_phone("+4915112345678") == "+49 …78"
    assert mask_email("erika@example.com") == "e…@example.com"
    assert mask_phone(None) == "" and mask_email("") == ""


def test_the_jinja_filters_mask_for_viewers_only(app):
    from flask import render_template_string
    from flask_login import login_user

    from core.accounts import create_user
    from core.extensions import login_manager
    from core.models import User

    if login_manager._user_callback is None:  # the dashboard registers it; without it, the same
        login_manager.user_loader(lambda user_id: db.session.get(User, int(user_id)))
    template = "{{ phone|masked_phone }} {{ email|masked_email }}"
    values = {"phone": "+4915112345678", "email": "erika@example.com"}
    with app.test_request_context():
        assert render_template_string(template, **values) == "+49 …78 e…@example.com"  # nobody signed in
        login_user(create_user(db.session, "viewer@example.com", "long-enough-password-1", "viewer", None))
        assert render_template_string(template, **values) == "+49 …78 e…@example.com"
    with app.test_request_context():
        login_user(create_user(db.session, "operator@example.com", "long-enough-password-1", "operator", None))
        assert render_template_string(template, **values) == "+4915112345678 erika@example.com"
