"""Drift reconciliation against the Cal.com emulator: each kind, dry runs, the rate share.

The emulator holds Cal.com's side; drift is made the way it happens in life — a
booking deleted or moved or cancelled in Cal.com without a webhook, an answer lost
on the way, a booking made on the Cal.com page. Then `flask appointments reconcile`
runs like an operator would run it and the queued repairs are carried out by a real
RQ worker.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from calcom.metadata import APPOINTMENT_KEY
from calcom.rate_budget import RateBudget, budget_settings
from core.booking_guard import release_appointment
from core.clock import utcnow
from core.extensions import db
from core.models import AuditEvent, ReconciliationRun, SyncStatus
from core.queues import enqueue_sync
from core.redis_client import get_redis
from tests.factories import book, ids_only, make_world
from tests.support.sync_helpers import bookings_of, reload, run_sync_jobs, sync_queue
from workers import reconcile as reconcile_module
from workers.reconcile import CANCELLED_HERE, MISSING, STATUS_MISMATCH, TIME_MISMATCH, UNKNOWN, reconcile

UTC = timezone.utc
TEN = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # Tuesday 10:00 in Berlin; the clock says Monday 08:00 UTC
WINDOW = (datetime(2026, 12, 7, tzinfo=UTC), datetime(2026, 12, 14, tzinfo=UTC))


@pytest.fixture
def world(app, calcom_emulator, clock):
    world = make_world()
    calcom_emulator.load_world(db.session, preload_bookings=False)
    return ids_only(world)  # the sync worker ends the session; ids outlive it


def synced(world, start=TEN, **kwargs):
    """An appointment booked here and carried to the emulator by the real sync job."""
    appointment = book(world, start, **kwargs)
    enqueue_sync(appointment.id, "create", appointment.sync_version)
    run_sync_jobs(_app())
    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.SYNCED
    return appointment


def _app():
    from flask import current_app

    return current_app._get_current_object()


def direct_booking(emulator, start, *, host_id=100, metadata=None, name="Web Kundin"):
    """A customer books on the Cal.com page (or a lost answer left our booking there)."""
    booking, _ = emulator.state.create_booking(
        {"eventTypeId": 1001, "start": start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
         "attendee": {"name": name, "email": "web@example.com", "timeZone": "Europe/Berlin"},
         **({"metadata": metadata} if metadata else {})},
        host_id=host_id, origin="direct")
    return booking


def run_reconcile(runner, *args):
    result = runner.invoke(args=["appointments", "reconcile", "--from", "2026-12-07", "--to", "2026-12-13", *args])
    db.session.expire_all()
    return result


def latest_run() -> ReconciliationRun:
    db.session.expire_all()
    return db.session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc())).first()


def test_no_drift_when_both_sides_agree(world, runner, calcom_emulator):
    synced(world)
    result = run_reconcile(runner)
    assert result.exit_code == 0, result.output
    run = latest_run()
    assert (run.status, run.drift_total, run.bookings_seen) == ("ok", 0, 1)
    assert "Drift: none" in result.output


def test_missing_in_calcom_is_synced_again(world, runner, calcom_emulator, app):
    appointment = synced(world)
    (gone,) = bookings_of(calcom_emulator, appointment.id)
    del calcom_emulator.state.bookings[gone.uid]  # deleted in Cal.com, nobody told us

    result = run_reconcile(runner)
    assert result.exit_code == 1, result.output
    run = latest_run()
    assert run.counts[MISSING] == 1 and run.repaired == 1
    assert reload(appointment.id).sync_status == SyncStatus.PENDING
    assert f"appointment {appointment.id} (Erika Mustermann" in result.output

    run_sync_jobs(app)
    (again,) = bookings_of(calcom_emulator, appointment.id)
    assert again.start == TEN and reload(appointment.id).calcom_booking_uid == again.uid
    assert reload(appointment.id).sync_status == SyncStatus.SYNCED
    assert run_reconcile(runner).exit_code == 0  # and now they agree


def test_a_booking_carrying_our_id_is_adopted(world, runner, calcom_emulator):
    """The sync gave up (its answers were lost) though Cal.com took the booking."""
    appointment = book(world, TEN)
    appointment.sync_status = SyncStatus.FAILED
    appointment.requires_manual_review = True
    appointment.manual_review_reason = "retries_exhausted: Cal.com did not answer"
    db.session.commit()
    ours = direct_booking(calcom_emulator, TEN, metadata={APPOINTMENT_KEY: str(appointment.id)}, name="Erika")

    result = run_reconcile(runner)
    assert result.exit_code == 1, result.output
    appointment = reload(appointment.id)
    assert (appointment.sync_status, appointment.calcom_booking_uid) == (SyncStatus.SYNCED, ours.uid)
    assert not appointment.requires_manual_review
    assert latest_run().counts[UNKNOWN] == 1 and latest_run().repaired == 1
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "reconcile_unknown_in_calcom")).one()
    assert audit.actor == "reconcile" and audit.appointment_id == appointment.id


def test_a_foreign_booking_over_our_appointment_is_flagged_naming_both(world, runner, calcom_emulator):
    """The Siebert case seen from the other side: ours never reached Cal.com, a web
    customer booked the same time there and the webhook was lost."""
    appointment = book(world, TEN)  # pending, never synced
    foreign = direct_booking(calcom_emulator, TEN)
    lonely = direct_booking(calcom_emulator, TEN + timedelta(hours=3), host_id=101)

    result = run_reconcile(runner)
    assert result.exit_code == 1
    appointment = reload(appointment.id)
    assert appointment.requires_manual_review
    reason = appointment.manual_review_reason
    assert foreign.uid in reason and "Web Kundin" in reason and "Erika Mustermann" in reason
    assert "Tue 08.12.2026 10:00–10:30" in reason
    run = latest_run()
    assert run.counts[UNKNOWN] == 2 and run.flagged == 1
    assert any(f["booking_uid"] == lonely.uid and f["handling"] == "reported" for f in run.findings)


def test_a_booking_on_a_staff_members_own_event_type_is_looked_at_too(world, runner, calcom_emulator):
    """Ben's own Cal.com event type (host pinning) is listed like the services' ones: a
    booking made on his page whose webhook was lost is found."""
    from core.event_types import set_staff_event_type

    set_staff_event_type(db.session, world["staff"][1].id, world["haircut"].id, 100111)
    db.session.commit()
    calcom_emulator.load_world(db.session, preload_bookings=False)
    booking, _ = calcom_emulator.state.create_booking(
        {"eventTypeId": 100111, "start": "2026-12-08T12:00:00.000Z",
         "attendee": {"name": "Web Kunde", "email": "web@example.com", "timeZone": "Europe/Berlin"}},
        origin="direct")

    assert run_reconcile(runner).exit_code == 1
    run = latest_run()
    assert run.event_types == 3 and run.counts[UNKNOWN] == 1  # 1001, 1003 and Ben's 100111
    assert [f["booking_uid"] for f in run.findings] == [booking.uid]


def test_cancelled_here_but_live_in_calcom_is_cancelled_again(world, runner, calcom_emulator, app):
    appointment = synced(world)
    release_appointment(appointment, reason="Kunde hat abgesagt", request=None)  # the cancel sync was lost
    db.session.commit()

    assert run_reconcile(runner).exit_code == 1
    assert latest_run().counts[CANCELLED_HERE] == 1
    assert reload(appointment.id).sync_status == SyncStatus.PENDING
    run_sync_jobs(app)
    assert bookings_of(calcom_emulator, appointment.id) == []
    assert reload(appointment.id).sync_status == SyncStatus.SYNCED


def test_moved_in_calcom_is_a_time_mismatch_for_a_person(world, runner, calcom_emulator):
    appointment = synced(world)
    (booking,) = bookings_of(calcom_emulator, appointment.id)
    calcom_emulator.state.reschedule_booking(booking.uid, {"start": "2026-12-08T12:00:00.000Z"})

    run_reconcile(runner)
    run = latest_run()
    assert run.counts == {MISSING: 0, UNKNOWN: 0, CANCELLED_HERE: 0, TIME_MISMATCH: 1, STATUS_MISMATCH: 0}
    appointment = reload(appointment.id)
    assert appointment.requires_manual_review and appointment.sync_status == SyncStatus.SYNCED
    assert "13:00–13:30" in appointment.manual_review_reason and "10:00–10:30" in appointment.manual_review_reason


def test_cancelled_in_calcom_is_a_status_mismatch_for_a_person(world, runner, calcom_emulator):
    appointment = synced(world)
    (booking,) = bookings_of(calcom_emulator, appointment.id)
    calcom_emulator.state.cancel_booking(booking.uid, {"cancellationReason": "Kunde kommt nicht"})

    run_reconcile(runner)
    assert latest_run().counts[STATUS_MISMATCH] == 1
    appointment = reload(appointment.id)
    assert appointment.requires_manual_review and appointment.is_active
    assert "cancelled (Kunde kommt nicht)" in appointment.manual_review_reason
    # A second night finds the same drift and leaves the review as it is.
    run_reconcile(runner)
    assert reload(appointment.id).manual_review_reason == appointment.manual_review_reason


def test_pending_syncs_are_in_flight_not_drift(world, runner, calcom_emulator):
    appointment = synced(world)
    del calcom_emulator.state.bookings[bookings_of(calcom_emulator, appointment.id)[0].uid]
    appointment.sync_status = SyncStatus.PENDING  # a sync job is on it
    db.session.commit()
    assert run_reconcile(runner).exit_code == 0


def test_dry_run_reports_and_changes_nothing(world, runner, calcom_emulator, app):
    missing = synced(world).id
    del calcom_emulator.state.bookings[bookings_of(calcom_emulator, missing)[0].uid]
    moved = synced(world, TEN + timedelta(hours=2)).id
    calcom_emulator.state.cancel_booking(bookings_of(calcom_emulator, moved)[0].uid, {})
    cancelled = synced(world, TEN + timedelta(hours=4))
    release_appointment(cancelled, request=None)
    db.session.commit()
    ids = (missing, moved, cancelled.id)

    def snapshot():
        db.session.expire_all()
        rows = [reload(i) for i in ids]
        return ([(a.status, a.sync_status, a.sync_version, a.requires_manual_review, a.manual_review_reason)
                 for a in rows],
                sorted((b.uid, b.status, b.start) for b in calcom_emulator.state.bookings.values()),
                db.session.scalar(select(db.func.count(AuditEvent.id))))

    before = snapshot()
    result = run_reconcile(runner, "--dry-run")
    assert result.exit_code == 1 and "dry run: nothing changed" in result.output
    assert snapshot() == before
    assert sync_queue(app).count == 0
    run = latest_run()
    assert run.dry_run and run.drift_total == 3 and run.repaired == 0 and run.flagged == 0
    assert {f["handling"] for f in run.findings} == {"would_repair", "would_flag"}


def test_calcom_errors_skip_the_event_type_instead_of_calling_everything_missing(world, runner, calcom_emulator):
    appointment = synced(world)
    calcom_emulator.set_faults({"rules": [{"kind": "error", "endpoint": "list"}]})
    result = run_reconcile(runner)
    assert result.exit_code == 3
    run = latest_run()
    assert run.status == "errors" and run.drift_total == 0 and "event type 1001" in run.errors[0]
    assert reload(appointment.id).sync_status == SyncStatus.SYNCED


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-12-07"], "give both --from and --to"),
    (["--from", "7.12.2026", "--to", "2026-12-08"], "is not a date"),
    (["--from", "2026-12-08", "--to", "2026-12-07"], "--to must not be before --from"),
])
def test_bad_options_change_nothing(app, runner, args, message):
    result = runner.invoke(args=["appointments", "reconcile", *args])
    assert result.exit_code == 2 and message in result.output
    assert db.session.scalar(select(db.func.count(ReconciliationRun.id))) == 0


# --- the rate share ----------------------------------------------------------------


def _max_in_any_minute(times: list[datetime]) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + timedelta(seconds=60)) for start in times), default=0)


def test_the_budget_never_lets_more_than_its_share_through_in_any_minute(app, clock):
    settings = budget_settings(120, 25)
    assert settings.allowed_per_minute == 30
    budget = RateBudget(get_redis(), "test", settings)  # waits move the frozen clock (core.clock.sleep)
    other = RateBudget(get_redis(), "test", settings)
    sent = []
    for n in range(200):  # two processes sharing one bucket, taking turns
        (budget if n % 2 else other).take()
        sent.append(utcnow())
    assert _max_in_any_minute(sent) <= 30
    elapsed = (sent[-1] - sent[0]).total_seconds()
    # …and it does use its share: a burst of 3, then 27 a minute.
    assert elapsed == pytest.approx((200 - settings.burst) / 27 * 60, abs=1)


def test_reconciliation_stays_within_its_share_of_calcoms_rate_limit(world, app, calcom_emulator, clock,
                                                                     monkeypatch):
    """Page size 1 and 40 bookings: 40+ list requests, counted on the controlled clock."""
    for hour in range(8):
        for staff in (100, 101):
            for minute in (0, 30):
                direct_booking(calcom_emulator, TEN + timedelta(hours=hour, minutes=minute), host_id=staff)
    monkeypatch.setattr(reconcile_module, "PAGE_SIZE", 1)
    app.config["RECONCILE_RATE_SHARE_PERCENT"] = 10  # 12 requests a minute
    from calcom.client import CalcomClient

    sent: list[datetime] = []
    real_list = CalcomClient.list_bookings

    def counted(self, **kwargs):
        sent.append(utcnow())
        return real_list(self, **kwargs)

    monkeypatch.setattr(CalcomClient, "list_bookings", counted)
    run = reconcile(db.session, WINDOW)
    assert run.bookings_seen == 32 and run.calcom_requests == len(sent) >= 32
    assert _max_in_any_minute(sent) <= 12
    assert json.loads(json.dumps(run.counts))[UNKNOWN] == 32


def test_the_nightly_run_raises_the_drift_alert_through_the_notifiers_once(world, app, calcom_emulator):
    from core.models import AlertNotification
    from workers.reconcile import reconcile_nightly

    appointment = synced(world)
    calcom_emulator.state.cancel_booking(bookings_of(calcom_emulator, appointment.id)[0].uid, {})
    app.config["RECONCILE_DRIFT_ALERT_THRESHOLD"] = 0

    summary = reconcile_nightly()
    assert summary["drift"] == 1 and summary["flagged"] == 1 and "alert_run" in summary
    db.session.expire_all()
    (sent,) = db.session.scalars(select(AlertNotification).where(AlertNotification.kind == "reconcile_drift")).all()
    assert (sent.channel, sent.scope, sent.is_open, sent.sent_count) == ("log", "overall", True, 1)
    assert "found 1 difference with Cal.com (status_mismatch 1)" in sent.message
    reconcile_nightly()  # the same drift the next night: de-duplicated, not sent again
    db.session.expire_all()
    assert db.session.scalars(select(AlertNotification).where(AlertNotification.kind == "reconcile_drift")
                              ).one().sent_count == 1


def dead_redis():
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))


def test_a_run_that_crashes_is_recorded_as_failed_not_left_running(world, app, calcom_emulator, monkeypatch):
    synced(world)

    def crash(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(reconcile_module, "_compare", crash)
    with pytest.raises(RuntimeError):
        reconcile(db.session, WINDOW, trigger="schedule")
    run = latest_run()
    assert run.status == "failed" and run.finished_at is not None
    assert "RuntimeError: database went away" in run.errors[-1]


def test_repairs_stand_when_redis_is_down_while_enqueueing(world, runner, calcom_emulator, app, caplog):
    """The repair is committed; its sync stays pending for the sweeper instead of crashing the run."""
    appointment = synced(world)
    (gone,) = bookings_of(calcom_emulator, appointment.id)
    del calcom_emulator.state.bookings[gone.uid]
    budget = RateBudget.for_share(get_redis(app), "reconcile", per_minute=120, share_percent=100)
    real = get_redis(app)
    app.extensions["redis"] = dead_redis()
    try:
        run = reconcile(db.session, WINDOW, budget=budget)
    finally:
        app.extensions["redis"] = real
    assert run.status == "ok" and run.repaired == 1
    assert reload(appointment.id).sync_status == SyncStatus.PENDING
    assert "outcome=not_queued" in caplog.text
