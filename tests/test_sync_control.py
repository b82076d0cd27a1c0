"""Operator actions on the sync pipeline (`core.sync_control`), used by the CLI and the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rq import Queue
from sqlalchemy import select

from core.extensions import db
from core.models import Appointment, AuditEvent, Company, SyncAction, SyncStatus
from core.queues import SYNC_QUEUE, sync_job_id
from core.redis_client import get_redis
from core.sync_control import resolve_manual_review, retry_sync
from tests.factories import book, make_world

TEN = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)


def failed_for_review(world, start=TEN, *, action=SyncAction.CREATE) -> Appointment:
    appointment = book(world, start)
    appointment.sync_status = SyncStatus.FAILED
    appointment.sync_action = action
    appointment.sync_attempts = 5
    appointment.sync_error_code = "retries_exhausted"
    appointment.sync_error_message = "Gave up after 5 attempts."
    appointment.requires_manual_review = True
    appointment.manual_review_reason = "Gave up after 5 attempts."
    appointment.next_sync_attempt_at = None
    db.session.commit()
    return appointment


def queued_job_ids(app) -> list[str]:
    return Queue(SYNC_QUEUE, connection=get_redis(app)).get_job_ids()


def audit(appointment_id: int) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.appointment_id == appointment_id)))


def test_retry_clears_review_resets_budget_and_enqueues_a_new_version(app, clock):
    world = make_world()
    appointment = failed_for_review(world)
    old_version = appointment.sync_version

    results = retry_sync(db.session, [appointment.id], actor="ops@example.com", note="Cal.com is back")

    assert [(r.appointment_id, r.ok) for r in results] == [(appointment.id, True)]
    assert results[0].message == "create sync queued"
    db.session.expire_all()
    again = db.session.get(Appointment, appointment.id)
    assert again.sync_status == SyncStatus.PENDING
    assert again.requires_manual_review is False and again.manual_review_reason is None
    assert again.sync_attempts == 0 and again.sync_error_code is None
    assert again.sync_version == old_version + 1
    assert again.sync_requested_at == clock.utcnow()
    assert queued_job_ids(app) == [sync_job_id(appointment.id, old_version + 1)]
    (event,) = audit(appointment.id)
    assert (event.actor, event.action, event.note) == ("ops@example.com", "retry_sync", "Cal.com is back")
    assert event.details["previous"] == {"sync_status": "failed", "attempts": 5, "error_code": "retries_exhausted"}


def test_retry_keeps_the_pending_action(app):
    world = make_world()
    appointment = failed_for_review(world, action=SyncAction.CANCEL)

    (result,) = retry_sync(db.session, [appointment.id], actor="cli")

    assert result.ok and result.message == "cancel sync queued"
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).sync_action == SyncAction.CANCEL


def test_retry_reports_unknown_and_already_synced_ids_and_changes_nothing_for_them(app):
    world = make_world()
    synced = book(world, TEN)
    synced.sync_status = SyncStatus.SYNCED
    db.session.commit()
    failed = failed_for_review(world, TEN + timedelta(hours=1))

    results = retry_sync(db.session, [999_999, synced.id, failed.id, failed.id], actor="cli")

    assert [(r.appointment_id, r.ok, r.message) for r in results] == [
        (999_999, False, "no such appointment"),
        (synced.id, False, "already synced; nothing to retry"),
        (failed.id, True, "create sync queued"),
    ]
    assert audit(synced.id) == []
    assert len(queued_job_ids(app)) == 1


def test_retry_is_limited_to_the_operators_company(app):
    world = make_world()
    appointment = failed_for_review(world)
    other = Company(name="Other", slug="other")
    db.session.add(other)
    db.session.commit()

    (result,) = retry_sync(db.session, [appointment.id], actor="ops", company_id=other.id)

    assert (result.ok, result.message) == (False, "no such appointment")
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).requires_manual_review is True
    assert queued_job_ids(app) == []


def test_retry_of_a_synced_appointment_under_review_is_allowed(app):
    world = make_world()
    appointment = book(world, TEN)
    appointment.sync_status = SyncStatus.SYNCED
    appointment.requires_manual_review = True
    appointment.manual_review_reason = "Cal.com changed the booking"
    db.session.commit()

    (result,) = retry_sync(db.session, [appointment.id], actor="ops")

    assert result.ok
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).sync_status == SyncStatus.PENDING


def test_resolve_fixed_in_calcom_marks_synced_and_audits(app, clock):
    world = make_world()
    appointment = failed_for_review(world)

    result = resolve_manual_review(db.session, appointment.id, actor="ops", note=" booked it by hand ",
                                   resolution="fixed_in_calcom")

    assert result.ok and result.message == "review resolved"
    db.session.expire_all()
    again = db.session.get(Appointment, appointment.id)
    assert again.requires_manual_review is False
    assert again.sync_status == SyncStatus.SYNCED and again.synced_at == clock.utcnow()
    (event,) = audit(appointment.id)
    assert event.action == "resolve_review" and event.note == "booked it by hand"
    assert event.details == {"reason": "Gave up after 5 attempts.", "resolution": "fixed_in_calcom",
                             "sync_status": "failed"}


def test_resolve_acknowledged_keeps_the_failed_status_visible(app):
    world = make_world()
    appointment = failed_for_review(world)

    assert resolve_manual_review(db.session, appointment.id, actor="ops", note="called the customer").ok

    db.session.expire_all()
    again = db.session.get(Appointment, appointment.id)
    assert again.requires_manual_review is False and again.sync_status == SyncStatus.FAILED


def test_resolve_refuses_bad_input_and_changes_nothing(app):
    world = make_world()
    appointment = failed_for_review(world)
    fine = book(world, TEN + timedelta(hours=2))

    refusals = [
        resolve_manual_review(db.session, appointment.id, actor="ops", note="x", resolution="ignored"),
        resolve_manual_review(db.session, appointment.id, actor="ops", note="   "),
        resolve_manual_review(db.session, 999_999, actor="ops", note="x"),
        resolve_manual_review(db.session, fine.id, actor="ops", note="x"),
    ]

    assert [(r.ok, r.message) for r in refusals] == [
        (False, "resolution must be one of fixed_in_calcom, acknowledged"),
        (False, "a note is required to resolve a review"),
        (False, "no such appointment"),
        (False, "this appointment does not need review"),
    ]
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).requires_manual_review is True
    assert audit(appointment.id) == [] and audit(fine.id) == []
