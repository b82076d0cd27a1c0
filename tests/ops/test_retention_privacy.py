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
from tests.support.sql_trace import recorded_statements
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

    with recorded_statements() as sent:
        removed = prune()
    statements = [s for s in sent if s.upper().startswith("DELETE")]

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


def test_erase_scrubs_every_copy_of_the_person_and_nothing_of_anyone_else(app, runner, clock):
    """The name, number and address were copied into error texts, reviews, audit
    events, reconciliation findings, alerts and webhook results; erase finds them all."""
    from core.models import AlertNotification, WebhookDelivery
    from core.queues import SYNC_QUEUE

    world = make_world()
    customer = world["customer"]
    customer.email = "erika@example.com"
    other = Customer(company_id=world["company"].id, name="Max Muster", phone="+4915100000002",
                     email="max@example.com")
    db.session.add(other)
    db.session.commit()
    theirs = book(world, TEN)
    someone_elses = book(world, TEN + timedelta(hours=2), customer_id=other.id)
    about_both = ("Double booking: Cal.com booking bk_1 (Erika Mustermann, erika@example.com, 0151 00000001) "
                  f"overlaps appointment {someone_elses.id} (Max Muster, +49 151 00000002)")
    theirs.sync_error_message = "HTTP 400: attendee Erika Mustermann <ERIKA@example.com> rejected"
    theirs.cancellation_reason = "Cancelled in Cal.com by erika mustermann"
    someone_elses.manual_review_reason = "Reconciliation: " + about_both
    db.session.add_all([
        SyncAttempt(appointment_id=theirs.id, action=SyncAction.CREATE, started_at=clock.utcnow(),
                    error_message="attendee phone +49 151 0000 0001 is invalid"),
        AuditEvent(actor="calcom", action="calcom_double_booking", appointment_id=someone_elses.id, note=about_both,
                   details={"booking": {"attendee": {"name": "Erika Mustermann", "email": "erika@example.com",
                                                     "phone": "+4915100000001"}}}),
        ReconciliationRun(started_at=clock.utcnow(), window_from=TEN, window_to=TEN, counts={},
                          findings=[{"kind": "unknown_in_calcom", "message": about_both}],
                          errors=["Could not read the booking of Erika Mustermann"]),
        AlertNotification(scope="overall", kind="manual_review", channel="log", severity="warning",
                          message=f"Needs review: {about_both}"),
        WebhookDelivery(source="calcom", event_key="k1", trigger="BOOKING_CREATED",
                        result="imported booking of Erika Mustermann"),
    ])
    db.session.commit()
    failed_job = get_queue(SYNC_QUEUE).enqueue("workers.sync.sync_appointment", theirs.id, "create", 1,
                                               job_id=f"sync-{theirs.id}-v1")
    failed_job.set_status("failed")
    get_queue(SYNC_QUEUE).failed_job_registry.add(failed_job, ttl=3600)

    done = runner.invoke(args=["customers", "erase", "--id", str(customer.id), "--yes"])
    assert done.exit_code == 0, done.output
    db.session.expire_all()

    everything = json.dumps([
        [a.sync_error_message, a.cancellation_reason, a.manual_review_reason] for a in db.session.scalars(
            select(Appointment))] + [s.error_message for s in db.session.scalars(select(SyncAttempt))]
        + [[e.note, e.details] for e in db.session.scalars(select(AuditEvent))]
        + [[r.findings, r.errors] for r in db.session.scalars(select(ReconciliationRun))]
        + [n.message for n in db.session.scalars(select(AlertNotification))]
        + [w.result for w in db.session.scalars(select(WebhookDelivery))], ensure_ascii=False)
    for trace in ("Erika", "erika", "ERIKA", "00000001", "0000 0001"):
        assert trace not in everything, trace
    assert "Gelöschte Person" in everything and "[email]" in everything and "[phone]" in everything
    # The other customer in the same texts is untouched.
    assert "Max Muster, +49 151 00000002" in db.session.get(Appointment, someone_elses.id).manual_review_reason
    assert f"sync-{theirs.id}-v1" not in get_queue(SYNC_QUEUE).failed_job_registry.get_job_ids()
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "customer_erased")).one()
    assert audit.details["copies_scrubbed"]["appointments"] == 2


def test_the_scrubber_finds_every_spelling_of_the_number_and_only_that_person():
    from core.pii import Scrubber

    scrub = Scrubber(name="Erika Mustermann", phone="+4915100000001", email="erika@example.com",
                     erased_name=ERASED_NAME)
    text = ("Erika Mustermann (+49 151 00000001, 0151 00000001, 004915100000001, Erika@Example.com) and "
            "Anna (+49 151 00000002), appointment 15100000001? no: id 12 at 2026-12-08 10:00")
    assert scrub.text(text) == (f"{ERASED_NAME} ([phone], [phone], [phone], [email]) and Anna (+49 151 00000002), "
                                "appointment 15100000001? no: id 12 at 2026-12-08 10:00")


def test_logs_viewers_and_stored_calcom_errors_mask_with_the_one_pii_module():
    import logging

    from calcom.errors import CalcomRequestError
    from calcom.failures import classify
    from core import logs, pii

    text = "attendee +4915112345678 erika@example.com"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, text, None, None)
    logs.PiiMaskingFilter().filter(record)
    assert record.getMessage() == pii.mask_text(text) == "attendee +49…78 e…@….com"
    assert mask_phone is pii.mask_phone and mask_email is pii.mask_email
    reason = classify(CalcomRequestError(text, status=400), doing="book").reason
    assert pii.redact_text(text) == "attendee [phone] [email]" and "attendee [phone] [email]" in reason


def test_calcom_call_records_hold_no_personal_data(app, calcom_emulator, clock):
    """Erase has nothing to scrub in the call log: it never holds the attendee."""
    from calcom.client import Attendee, get_client
    from calcom.errors import CalcomError

    world = make_world()
    calcom_emulator.load_world(db.session, preload_bookings=False)
    client = get_client(purpose="sync")
    erika = Attendee(name="Erika Mustermann", email="erika@example.com", phone_number="+4915100000001")
    event_type_id = world["haircut"].calcom_event_type_id
    statuses = []
    for _ in range(4):  # the same slot until every host is busy and Cal.com refuses
        try:
            client.create_booking(event_type_id=event_type_id, start=TEN, attendee=erika, metadata={})
            statuses.append(201)
        except CalcomError as exc:
            statuses.append(exc.status)
            break
    calls = call_log.calls(get_redis(), 3600)
    assert [c["s"] for c in calls] == statuses and statuses[-1] == 400
    recorded = json.dumps(calls)
    for trace in ("Erika", "erika", "4915100000001", "Mustermann"):
        assert trace not in recorded
