"""The sync job against the Cal.com emulator: real HTTP, a real Redis, RQ's worker.

Each test books an appointment through the booking guard, enqueues its sync the way
the booking blueprint does (`core.queues.enqueue_sync`) and runs the `calcom-sync`
queue with `SimpleAppWorker` in burst mode. The clock is frozen (`clock` fixture), so
backoff times are exact; scheduled retries are let come due explicitly.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from calcom.client import CalcomClient
from core.booking_guard import Interval, cancel_appointment, move_appointment
from core.event_types import set_staff_event_type
from core.extensions import db
from core.models import AuditEvent, Service, SyncOutcome, SyncStatus
from core.queues import enqueue_sync
from core.redis_client import get_redis
from core.seed import busy_intervals
from core.sync_control import retry_sync
from tests.factories import book, make_world
from tests.support.sync_helpers import (
    attempts,
    bookings_of,
    let_scheduled_jobs_come_due,
    reload,
    run_due_retries,
    run_sync_jobs,
    scheduled_job_ids,
)
from workers import sync as sync_module
from workers.sweeper import sweep_stale_pending
from workers.sync_lock import SyncLock

UTC = timezone.utc
TEN = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # Tuesday 10:00 in Berlin; the clock says Monday 08:00 UTC


class NoJitter(random.Random):
    """Always the shortest wait full jitter allows (0 s, or a 429's wait)."""

    def uniform(self, a, b):
        return a


@pytest.fixture
def calcom(app, calcom_emulator, clock):
    # Generous for a loaded machine (a slow answer must not turn into a retry);
    # the timeout test sets its own short one.
    app.config["CALCOM_SYNC_TIMEOUT"] = 5.0
    return calcom_emulator


@pytest.fixture
def world(calcom):
    world = make_world()
    world["colour_id"] = world["colour"].id
    calcom.load_world(db.session, preload_bookings=False)
    return world


@pytest.fixture
def solo_world(calcom):
    """One hairdresser, so a foreign Cal.com booking at her time really blocks the slot."""
    world = make_world(staff_names=("Anna",))
    world["colour_id"] = world["colour"].id
    calcom.load_world(db.session, preload_bookings=False)
    return world


@pytest.fixture
def seeded(monkeypatch):
    rng = random.Random(20261207)
    monkeypatch.setattr(sync_module, "rng", rng)
    return rng


def request_sync_job(appointment, action="create"):
    appointment = reload(appointment.id)
    enqueue_sync(appointment.id, action, appointment.sync_version)
    return appointment


def synced_appointment(app, world, start=TEN, **kwargs):
    appointment = book(world, start, **kwargs)
    request_sync_job(appointment)
    run_sync_jobs(app)
    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.SYNCED, appointment.sync_error_message
    return appointment


def foreign_booking(calcom, start, *, host_id=100, event_type_id=1001):
    """Someone books Anna directly on the Cal.com page; Slotguard never hears of it."""
    booking, _ = calcom.state.create_booking(
        {"start": start.isoformat().replace("+00:00", "Z"), "eventTypeId": event_type_id,
         "attendee": {"name": "Max Muster", "email": "max@example.com", "timeZone": "Europe/Berlin"}},
        host_id=host_id, origin="direct")
    return booking


def colour_busy(world, start):
    """The colour service's busy intervals (read afresh: the worker closed our session)."""
    colour = db.session.get(Service, world["colour_id"])
    return colour, busy_intervals(colour, start)


def composite(app, world, start=TEN):
    colour, busy = colour_busy(world, start)
    return book(world, start, busy=busy, service_id=colour.id, starts_at=start,
                ends_at=start + timedelta(minutes=colour.duration_minutes))


# --- the three actions -------------------------------------------------------------------------------


def test_create_books_once_and_records_the_attempt(app, world, calcom, clock):
    appointment = request_sync_job(book(world, TEN))

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    (booking,) = bookings_of(calcom, appointment.id)
    assert appointment.sync_status == SyncStatus.SYNCED
    assert (appointment.calcom_booking_uid, appointment.calcom_booking_id) == (booking.uid, booking.id)
    assert appointment.segments[0].calcom_booking_uid == booking.uid
    assert appointment.synced_at == clock.utcnow() and appointment.sync_attempts == 1
    assert appointment.sync_error_code is None and not appointment.requires_manual_review
    assert (booking.start, booking.end, booking.event_type_id) == (TEN, TEN + timedelta(minutes=30), 1001)
    assert booking.metadata == {"slotguard_appointment_id": str(appointment.id)}
    assert booking.attendees[0]["phoneNumber"] == "+4915100000001"
    (attempt,) = attempts(appointment.id)
    assert attempt.outcome == SyncOutcome.SUCCESS and attempt.attempt_number == 1
    assert attempt.job_id == f"sync-{appointment.id}-v{appointment.sync_version}"
    assert attempt.started_at == attempt.finished_at == clock.utcnow() and attempt.duration_ms >= 0
    assert attempt.http_status is None and attempt.error_code is None


def test_each_attempt_is_logged_without_secrets_or_contact_details(app, world, calcom, clock, caplog):
    world["customer"].email = "erika@example.com"
    db.session.commit()
    calcom.set_faults({"rules": [{"kind": "error", "endpoint": "create", "times": 1}]})
    appointment = request_sync_job(book(world, TEN))

    with caplog.at_level("INFO", logger="calcom"):
        run_sync_jobs(app)
        run_due_retries(app, clock, timedelta(minutes=5))

    lines = [r.getMessage() for r in caplog.records if r.name.startswith("calcom")]
    sync_lines = [line for line in lines if line.startswith("sync ")]
    assert sync_lines[0].startswith(f"sync appointment={appointment.id} action=create attempt=1/5 outcome=retry "
                                    "code=http_503 status=503")
    assert sync_lines[1].startswith(f"sync appointment={appointment.id} action=create attempt=2/5 outcome=success")
    for line in lines:
        assert "cal_test_key" not in line and "erika@example.com" not in line and "+4915100000001" not in line


def test_cancel_cancels_the_booking_in_calcom(app, world, calcom):
    appointment = synced_appointment(app, world)
    cancel_appointment(db.session, appointment.id, reason="Kundin ist krank")
    request_sync_job(appointment, "cancel")

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.SYNCED
    assert bookings_of(calcom, appointment.id) == []
    (booking,) = bookings_of(calcom, appointment.id, live_only=False)
    assert (booking.status, booking.cancellation_reason) == ("cancelled", "Slotguard: Kundin ist krank")
    assert [a.outcome for a in attempts(appointment.id)] == [SyncOutcome.SUCCESS, SyncOutcome.SUCCESS]


def test_reschedule_moves_the_booking_and_stores_the_new_uid(app, world, calcom):
    appointment = synced_appointment(app, world)
    old_uid = appointment.calcom_booking_uid
    noon = TEN + timedelta(hours=2)
    move_appointment(db.session, appointment.id, [Interval(noon, noon + timedelta(minutes=30))])
    request_sync_job(appointment, "reschedule")

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    (live,) = bookings_of(calcom, appointment.id)
    assert appointment.sync_status == SyncStatus.SYNCED
    assert live.start == noon and live.uid != old_uid and live.rescheduled_from_uid == old_uid
    assert appointment.calcom_booking_uid == live.uid
    assert [s.calcom_booking_uid for s in appointment.segments if s.active] == [live.uid]


def test_a_host_other_than_the_staff_member_is_noted(app, world, calcom, caplog):
    # Cal.com assigns the first free host of the event type: Anna, not Ben.
    appointment = request_sync_job(book(world, TEN, staff=world["staff"][1]))

    run_sync_jobs(app)

    (booking,) = bookings_of(calcom, appointment.id)
    assert booking.host_id == 100
    (attempt,) = attempts(appointment.id)
    assert attempt.outcome == SyncOutcome.SUCCESS
    assert "not to the staff member's Cal.com user 101" in attempt.error_message
    assert any("not to the staff member's Cal.com user 101" in r.getMessage() for r in caplog.records
               if r.name == "calcom.sync")


def test_the_host_note_survives_the_webhook_confirming_first(app, world, calcom, live_slotguard, monkeypatch,
                                                            caplog):
    """The echo of our own booking confirms the sync while the worker is still busy:
    the attempt is still our success, with its note, not "changed meanwhile"."""
    calcom.send_webhooks_to(live_slotguard + "/webhooks/calcom", app.config["CALCOM_WEBHOOK_SECRET"])
    finish = sync_module.finish_attempt

    def finish_after_the_webhooks(*args, **kwargs):
        calcom.wait_for_webhooks()
        return finish(*args, **kwargs)

    monkeypatch.setattr(sync_module, "finish_attempt", finish_after_the_webhooks)
    appointment = request_sync_job(book(world, TEN, staff=world["staff"][1])).id

    run_sync_jobs(app)

    assert [(d["trigger"], d["status"]) for d in calcom.deliveries] == [("BOOKING_CREATED", 200)]
    assert '"result":"confirmed"' in calcom.deliveries[0]["response"].replace(" ", "")
    assert reload(appointment).sync_status == SyncStatus.SYNCED
    (attempt,) = attempts(appointment)
    assert attempt.outcome == SyncOutcome.SUCCESS
    assert "not to the staff member's Cal.com user 101" in attempt.error_message
    assert "changed meanwhile" not in caplog.text


def test_a_staff_members_own_event_type_puts_the_booking_on_their_calendar(app, world, calcom, caplog):
    """Same situation, but Ben has his own event types (a personal event type each, him
    the only host): Cal.com has no host to choose, both bookings land on Ben's calendar,
    the composite's steps too — although Anna, first host of the team event types, is free."""
    ben = world["staff"][1]
    set_staff_event_type(db.session, ben.id, world["haircut"].id, 100111)
    set_staff_event_type(db.session, ben.id, world["colour_id"], 100311)
    db.session.commit()
    calcom.load_world(db.session, preload_bookings=False)
    haircut = request_sync_job(book(world, TEN, staff=ben)).id  # segment recorded without an event type
    colour, busy = colour_busy(world, TEN + timedelta(hours=2))
    dyeing = request_sync_job(book(world, busy[0].starts_at, busy=busy, service_id=colour.id, staff=ben,
                                   ends_at=busy[0].starts_at + timedelta(minutes=100))).id

    run_sync_jobs(app)

    assert reload(haircut).sync_status == reload(dyeing).sync_status == SyncStatus.SYNCED
    assert [(b.host_id, b.event_type_id) for b in bookings_of(calcom, haircut)] == [(101, 100111)]
    assert [(b.host_id, b.event_type_id) for b in bookings_of(calcom, dyeing)] == [(101, 100311)] * 2
    assert not calcom.state.find(host_id=100)
    assert all(a.error_message is None for a in attempts(haircut) + attempts(dyeing))
    assert "not to the staff member" not in caplog.text


# --- transient failures: retried, still exactly one booking -------------------------------------------


def test_a_5xx_is_retried_with_backoff_and_books_once(app, world, calcom, clock, seeded):
    calcom.set_faults({"rules": [{"kind": "error", "endpoint": "create", "times": 1}]})
    appointment = request_sync_job(book(world, TEN))
    expected_wait = random.Random(20261207).uniform(0, 120)

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.PENDING and appointment.sync_attempts == 1
    assert appointment.sync_error_code == "http_503"
    assert appointment.next_sync_attempt_at == clock.utcnow() + timedelta(seconds=expected_wait)
    assert scheduled_job_ids(app) == [f"sync-{appointment.id}-v{appointment.sync_version}-a2"]
    (first,) = attempts(appointment.id)
    assert (first.outcome, first.http_status, first.error_code) == (SyncOutcome.RETRY, 503, "http_503")
    assert bookings_of(calcom, appointment.id) == []

    run_due_retries(app, clock, timedelta(seconds=expected_wait))

    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.SYNCED and appointment.sync_attempts == 2
    assert appointment.sync_error_code is None and appointment.next_sync_attempt_at is None
    assert len(bookings_of(calcom, appointment.id)) == 1
    assert [a.outcome for a in attempts(appointment.id)] == [SyncOutcome.RETRY, SyncOutcome.SUCCESS]


def test_a_429_waits_at_least_what_the_rate_limit_headers_say(app, world, calcom, clock, monkeypatch):
    monkeypatch.setattr(sync_module, "rng", NoJitter())
    calcom.set_faults({"rules": [{"kind": "rate_limit", "endpoint": "create", "times": 1}]})
    appointment = request_sync_job(book(world, TEN))

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    (first,) = attempts(appointment.id)
    assert (first.outcome, first.http_status, first.error_code) == (SyncOutcome.RETRY, 429, "rate_limited")
    # The emulator's window started with this request: X-RateLimit-Reset-Default: 60.
    assert "wait 60 s" in first.error_message
    assert appointment.next_sync_attempt_at == clock.utcnow() + timedelta(seconds=60)

    run_due_retries(app, clock, timedelta(seconds=60))

    assert reload(appointment.id).sync_status == SyncStatus.SYNCED
    assert len(bookings_of(calcom, appointment.id)) == 1


def test_a_timeout_is_retried_and_books_once(app, world, calcom, clock):
    app.config["CALCOM_SYNC_TIMEOUT"] = 0.5  # the hang below outlasts it
    calcom.set_faults({"rules": [{"kind": "timeout", "endpoint": "create", "times": 1, "hang_seconds": 2}]})
    appointment = request_sync_job(book(world, TEN))

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.PENDING and appointment.sync_error_code == "timeout"
    assert "did not answer in time" in appointment.sync_error_message

    run_due_retries(app, clock, timedelta(minutes=2))

    assert reload(appointment.id).sync_status == SyncStatus.SYNCED
    assert len(bookings_of(calcom, appointment.id)) == 1


def test_a_dropped_answer_is_followed_by_adopting_the_booking_not_a_second_one(app, world, calcom, clock):
    # Cal.com makes the booking, then the connection drops before we hear the 201.
    calcom.set_faults({"rules": [{"kind": "drop", "endpoint": "create", "times": 1}]})
    appointment = request_sync_job(book(world, TEN))

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    (made,) = bookings_of(calcom, appointment.id)
    assert appointment.sync_status == SyncStatus.PENDING and appointment.calcom_booking_uid is None
    assert appointment.sync_error_code == "connection_error"

    run_due_retries(app, clock, timedelta(minutes=2))

    appointment = reload(appointment.id)
    assert bookings_of(calcom, appointment.id) == [made]
    assert len(bookings_of(calcom, appointment.id, live_only=False)) == 1
    assert appointment.sync_status == SyncStatus.SYNCED and appointment.calcom_booking_uid == made.uid
    second = attempts(appointment.id)[1]
    assert second.outcome == SyncOutcome.SUCCESS and f"adopted booking {made.uid}" in second.error_message


def test_a_cancel_whose_answer_was_dropped_succeeds_when_repeated(app, world, calcom, clock):
    appointment = synced_appointment(app, world)
    calcom.set_faults({"rules": [{"kind": "drop", "endpoint": "cancel", "times": 1}]})
    cancel_appointment(db.session, appointment.id)
    request_sync_job(appointment, "cancel")

    run_sync_jobs(app)
    assert reload(appointment.id).sync_status == SyncStatus.PENDING  # cancelled in Cal.com, unheard
    run_due_retries(app, clock, timedelta(minutes=2))

    assert reload(appointment.id).sync_status == SyncStatus.SYNCED  # "already cancelled" counts as done
    assert bookings_of(calcom, appointment.id) == []


def test_a_reschedule_already_applied_is_adopted_not_repeated(app, world, calcom, clock):
    appointment = synced_appointment(app, world)
    noon = TEN + timedelta(hours=2)
    calcom.set_faults({"rules": [{"kind": "drop", "endpoint": "reschedule", "times": 1}]})
    move_appointment(db.session, appointment.id, [Interval(noon, noon + timedelta(minutes=30))])
    request_sync_job(appointment, "reschedule")

    run_sync_jobs(app)
    (moved,) = bookings_of(calcom, appointment.id)
    assert moved.start == noon and reload(appointment.id).sync_status == SyncStatus.PENDING
    run_due_retries(app, clock, timedelta(minutes=2))

    appointment = reload(appointment.id)
    assert bookings_of(calcom, appointment.id) == [moved]
    assert appointment.sync_status == SyncStatus.SYNCED and appointment.calcom_booking_uid == moved.uid


# --- the retry schedule -------------------------------------------------------------------------------


def test_backoff_schedule_on_the_controlled_clock_then_manual_review(app, world, calcom, clock, seeded):
    calcom.set_faults({"rules": [{"kind": "error", "endpoint": "create", "status": 502}]})
    appointment = request_sync_job(book(world, TEN))
    requested = clock.utcnow()
    draws = random.Random(20261207)

    for attempt_number, ceiling in enumerate((120, 240, 480, 960), start=1):
        run_sync_jobs(app)
        appointment = reload(appointment.id)
        wait = draws.uniform(0, ceiling)
        assert appointment.sync_attempts == attempt_number
        assert appointment.next_sync_attempt_at == clock.utcnow() + timedelta(seconds=wait)
        clock.advance(timedelta(seconds=wait))
        assert let_scheduled_jobs_come_due(app) == [f"sync-{appointment.id}-v1-a{attempt_number + 1}"]
    run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert clock.utcnow() - requested <= timedelta(minutes=30)
    assert appointment.sync_status == SyncStatus.FAILED and appointment.requires_manual_review
    assert appointment.sync_error_code == "retries_exhausted" and appointment.next_sync_attempt_at is None
    assert appointment.manual_review_reason.startswith("Gave up after 5 attempts")
    assert "Cal.com had a server error (HTTP 502" in appointment.manual_review_reason
    assert [a.outcome for a in attempts(appointment.id)] == [SyncOutcome.RETRY] * 4 + [SyncOutcome.FAILED]
    assert scheduled_job_ids(app) == []
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.appointment_id == appointment.id))
    assert (audit.action, audit.details["cause"]) == ("sync_failed", "http_502")


# --- refusals: manual review at once ------------------------------------------------------------------


def test_slot_taken_by_an_unknown_calcom_booking_goes_to_manual_review(app, solo_world, calcom):
    foreign_booking(calcom, TEN)
    appointment = request_sync_job(book(solo_world, TEN))

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.FAILED and appointment.requires_manual_review
    assert appointment.sync_error_code == "slot_taken_in_calcom"
    assert "Cal.com already has another booking at this time that Slotguard does not know about" \
        in appointment.manual_review_reason
    assert "Herrenhaarschnitt with Anna on Tue 08.12.2026 10:00" in appointment.manual_review_reason
    (attempt,) = attempts(appointment.id)
    assert (attempt.outcome, attempt.http_status) == (SyncOutcome.FAILED, 400)
    assert scheduled_job_ids(app) == [] and bookings_of(calcom, appointment.id) == []


@pytest.mark.parametrize("change, code, status, says", [
    (lambda w: setattr(w["haircut"], "calcom_event_type_id", 4242), "event_type_not_found", 404,
     ["Cal.com does not know event type 4242", "Fix the service's Cal.com event type id"]),
    (lambda w: setattr(w["customer"], "email", "erika.at.example"), "invalid_attendee", 400,
     ["Correct the customer's name, e-mail or phone number", "Invalid email format"]),
    (lambda w: setattr(w["customer"], "phone", None), "invalid_attendee", None,  # refused before calling
     ["neither an e-mail address nor a phone number"]),
], ids=["unknown event type", "invalid e-mail", "no contact at all"])
def test_refusals_retrying_cannot_fix_go_to_manual_review_at_once(app, world, calcom, change, code, status, says):
    change(world)
    db.session.commit()
    appointment = request_sync_job(book(world, TEN))

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert (appointment.sync_status, appointment.sync_error_code) == (SyncStatus.FAILED, code)
    assert appointment.requires_manual_review and scheduled_job_ids(app) == []
    for phrase in says:
        assert phrase in appointment.manual_review_reason
    (attempt,) = attempts(appointment.id)
    assert (attempt.outcome, attempt.http_status) == (SyncOutcome.FAILED, status)
    assert calcom.emulator.requests_served == (0 if status is None else 1)


# --- composite services -------------------------------------------------------------------------------


def test_a_composite_service_gets_one_verified_booking_per_busy_segment(app, world, calcom):
    appointment = request_sync_job(composite(app, world))

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    bookings = sorted(bookings_of(calcom, appointment.id), key=lambda b: b.start)
    assert appointment.sync_status == SyncStatus.SYNCED
    assert [(b.start, b.end) for b in bookings] == [
        (TEN, TEN + timedelta(minutes=30)), (TEN + timedelta(minutes=70), TEN + timedelta(minutes=100))]
    assert [b.metadata["slotguard_segment"] for b in bookings] == ["0", "1"]
    assert [s.calcom_booking_uid for s in appointment.segments] == [b.uid for b in bookings]
    assert appointment.calcom_booking_uid == bookings[0].uid


def test_a_composite_segment_that_cannot_be_booked_rolls_back_the_others(app, solo_world, calcom):
    foreign_booking(calcom, TEN + timedelta(minutes=70))  # in the way of the second work segment
    appointment = request_sync_job(composite(app, solo_world))

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.FAILED and appointment.requires_manual_review
    assert appointment.sync_error_code == "slot_taken_in_calcom"
    reason = appointment.manual_review_reason
    assert "segment 2 of 2 (Auswaschen, 11:10–11:40)" in reason
    assert "The other segments' bookings were cancelled in Cal.com" in reason
    assert bookings_of(calcom, appointment.id) == []
    (first_segment,) = bookings_of(calcom, appointment.id, live_only=False)
    assert first_segment.status == "cancelled" and first_segment.start == TEN
    # The BOOKING_CANCELLED webhook can tell our undo from a customer's cancellation.
    assert first_segment.cancellation_reason.startswith(f"Slotguard rollback (appointment {appointment.id})")
    assert [s.calcom_booking_uid for s in appointment.segments] == [None, None]


@pytest.mark.parametrize("webhooks_arrive", ["before_the_result_is_written", "after_the_result_is_written"])
def test_the_webhook_of_our_own_rollback_leaves_the_appointment_as_the_sync_left_it(
        app, solo_world, calcom, live_slotguard, monkeypatch, webhooks_arrive):
    """The segment that was booked echoes back (BOOKING_CREATED stores its uid), then
    our rollback cancels it (BOOKING_CANCELLED). Whichever comes first — the webhooks
    or the worker writing its result — the customer keeps the appointment, flagged."""
    foreign_booking(calcom, TEN + timedelta(minutes=70))  # in the way of the second work segment
    calcom.send_webhooks_to(live_slotguard + "/webhooks/calcom", app.config["CALCOM_WEBHOOK_SECRET"])
    gate = threading.Event()
    if webhooks_arrive == "before_the_result_is_written":
        gate.set()
        finish = sync_module.finish_attempt

        def finish_after_the_webhooks(*args, **kwargs):
            calcom.wait_for_webhooks()
            return finish(*args, **kwargs)

        monkeypatch.setattr(sync_module, "finish_attempt", finish_after_the_webhooks)
    else:
        deliver = calcom.emulator.webhooks._deliver

        def deliver_when_the_job_is_done(*args):
            assert gate.wait(10)
            return deliver(*args)

        monkeypatch.setattr(calcom.emulator.webhooks, "_deliver", deliver_when_the_job_is_done)
    appointment = request_sync_job(composite(app, solo_world))

    run_sync_jobs(app)
    gate.set()
    calcom.wait_for_webhooks()

    assert [(d["trigger"], d["status"]) for d in calcom.deliveries] == [
        ("BOOKING_CREATED", 200), ("BOOKING_CANCELLED", 200)]
    assert '"result":"rollback"' in calcom.deliveries[1]["response"].replace(" ", "")
    appointment = reload(appointment.id)
    assert appointment.is_active and all(s.active for s in appointment.segments)
    assert appointment.sync_status == SyncStatus.FAILED and appointment.requires_manual_review
    assert "segment 2 of 2 (Auswaschen, 11:10–11:40)" in appointment.manual_review_reason
    assert appointment.calcom_booking_uid is None
    assert [s.calcom_booking_uid for s in appointment.segments] == [None, None]
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.appointment_id == appointment.id,
                                                       AuditEvent.action == "calcom_rollback_seen"))
    assert audit is not None and audit.details["uid"] == calcom.deliveries[1]["uid"]


def test_a_composite_move_later_moves_every_segment(app, solo_world, calcom):
    world = solo_world
    appointment = request_sync_job(composite(app, world))
    run_sync_jobs(app)
    # An hour later: the first segment's new time overlaps the second one's old booking
    # (one hairdresser, so Cal.com cannot give the move to someone else).
    later = TEN + timedelta(hours=1)
    move_appointment(db.session, appointment.id, colour_busy(world, later)[1], starts_at=later,
                     ends_at=later + timedelta(minutes=100))
    request_sync_job(appointment, "reschedule")

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.SYNCED, appointment.sync_error_message
    bookings = sorted(bookings_of(calcom, appointment.id), key=lambda b: b.start)
    assert [b.start for b in bookings] == [later, later + timedelta(minutes=70)]
    assert [b.metadata["slotguard_segment"] for b in bookings] == ["0", "1"]
    assert [s.calcom_booking_uid for s in appointment.segments if s.active] == [b.uid for b in bookings]


def test_a_composite_cancel_cancels_every_segment(app, world, calcom):
    appointment = request_sync_job(composite(app, world))
    run_sync_jobs(app)
    cancel_appointment(db.session, appointment.id)
    request_sync_job(appointment, "cancel")

    run_sync_jobs(app)

    assert reload(appointment.id).sync_status == SyncStatus.SYNCED
    assert bookings_of(calcom, appointment.id) == []
    assert len(bookings_of(calcom, appointment.id, live_only=False)) == 2


# --- stale jobs, concurrent changes, busy locks ---------------------------------------------------------


def test_a_stale_job_does_nothing(app, world, calcom):
    appointment = book(world, TEN)
    enqueue_sync(appointment.id, "create", appointment.sync_version)  # queued, not yet run…
    cancel_appointment(db.session, appointment.id)  # …when the caller cancels
    request_sync_job(appointment, "cancel")

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    skipped, cancel = attempts(appointment.id)
    assert (skipped.outcome, skipped.error_code) == (SyncOutcome.SKIPPED, "stale_job")
    assert (cancel.outcome, cancel.error_message) == (SyncOutcome.SUCCESS, "never reached Cal.com; nothing to cancel")
    assert appointment.sync_status == SyncStatus.SYNCED and appointment.sync_attempts == 1
    assert calcom.emulator.requests_served == 0


def test_a_change_during_the_calcom_call_is_not_overwritten(app, world, calcom, monkeypatch):
    appointment = request_sync_job(book(world, TEN))
    real_create = CalcomClient.create_booking

    def create_while_the_caller_cancels(client, **kwargs):
        booking = real_create(client, **kwargs)
        with Session(db.engine) as other:  # the voice agent's request, on its own connection
            cancel_appointment(other, appointment.id)
        return booking

    monkeypatch.setattr(CalcomClient, "create_booking", create_while_the_caller_cancels)
    run_sync_jobs(app)

    appointment = reload(appointment.id)
    (made,) = bookings_of(calcom, appointment.id)
    assert appointment.sync_status == SyncStatus.PENDING and appointment.sync_action.value == "cancel"
    assert appointment.calcom_booking_uid == made.uid  # remembered for the cancel
    assert attempts(appointment.id)[0].outcome == SyncOutcome.SUCCESS

    monkeypatch.setattr(CalcomClient, "create_booking", real_create)
    request_sync_job(appointment, "cancel")
    run_sync_jobs(app)

    assert reload(appointment.id).sync_status == SyncStatus.SYNCED
    assert bookings_of(calcom, appointment.id) == []


def test_two_workers_on_one_appointment_make_one_booking(app, world, calcom):
    # Both jobs run at the same moment (a duplicate delivery); Cal.com takes 300 ms to book.
    calcom.set_faults({"rules": [{"kind": "latency", "endpoint": "create", "latency_ms": 300}]})
    appointment = book(world, TEN)
    appointment_id, version = appointment.id, appointment.sync_version
    db.session.remove()
    start_together = threading.Barrier(2)
    results: list[str] = []

    def worker() -> None:
        with app.app_context():
            start_together.wait()
            try:
                results.append(sync_module.sync_appointment(appointment_id, "create", version))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == ["busy", "success"]
    assert len(bookings_of(calcom, appointment_id)) == 1
    assert [a.outcome for a in attempts(appointment_id)] == [SyncOutcome.SUCCESS]
    assert reload(appointment_id).sync_attempts == 1


def test_a_job_that_finds_another_worker_on_the_appointment_comes_back_later(app, world, calcom):
    appointment = request_sync_job(book(world, TEN))
    other_worker = SyncLock(get_redis(app), appointment.id, "-", 60)  # not an RQ job: only its TTL frees it
    assert other_worker.acquire()

    run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert appointment.sync_attempts == 0 and attempts(appointment.id) == []
    (busy_retry,) = scheduled_job_ids(app)
    assert busy_retry.startswith(f"sync-{appointment.id}-v{appointment.sync_version}-busy")

    other_worker.release()
    let_scheduled_jobs_come_due(app)
    run_sync_jobs(app)
    assert reload(appointment.id).sync_status == SyncStatus.SYNCED


# --- recovery and the operator's retry ------------------------------------------------------------------


def test_a_stale_pending_appointment_is_swept_and_synced(app, world, calcom, clock):
    appointment = book(world, TEN)  # its enqueue was lost (Redis flushed, web process died)
    clock.advance(timedelta(minutes=11))

    assert sweep_stale_pending()["requeued"] == [appointment.id]
    run_sync_jobs(app)

    assert reload(appointment.id).sync_status == SyncStatus.SYNCED
    assert len(bookings_of(calcom, appointment.id)) == 1


def test_manual_retry_after_the_operator_fixed_calcom(app, solo_world, calcom):
    blocker = foreign_booking(calcom, TEN)
    appointment = request_sync_job(book(solo_world, TEN))
    run_sync_jobs(app)
    assert reload(appointment.id).requires_manual_review

    calcom.state.cancel_booking(blocker.uid, {"cancellationReason": "moved by phone"})
    (result,) = retry_sync(db.session, [appointment.id], actor="ops@example.com", note="cancelled the other one")
    run_sync_jobs(app)

    appointment = reload(appointment.id)
    assert result.ok and appointment.sync_status == SyncStatus.SYNCED and not appointment.requires_manual_review
    assert len(bookings_of(calcom, appointment.id)) == 1
    assert [a.outcome for a in attempts(appointment.id)] == [SyncOutcome.FAILED, SyncOutcome.SUCCESS]


def test_a_composite_whose_last_attempt_fails_transiently_is_flagged_as_retries_exhausted(
        app, world, calcom, clock, monkeypatch):
    """Found by the Cal.com faults suite: the last attempt books segment 1, segment 2 meets
    a 503. The partial booking is rolled back, and the appointment goes to manual review
    like any sync whose attempts ran out — `retries_exhausted`, "Gave up after …" — not
    as if Cal.com had refused it."""
    app.config["SYNC_MAX_ATTEMPTS"] = 2
    calcom.set_faults({"rules": [{"kind": "error", "endpoint": "create", "times": 1}]})
    create = CalcomClient.create_booking

    def create_then_calcom_fails(client, *args, **kwargs):
        booking = create(client, *args, **kwargs)
        calcom.set_faults({"rules": [{"kind": "error", "endpoint": "create"}]})  # every later create: 503
        return booking

    monkeypatch.setattr(CalcomClient, "create_booking", create_then_calcom_fails)
    appointment = request_sync_job(composite(app, world))
    run_sync_jobs(app)
    assert reload(appointment.id).sync_status == SyncStatus.PENDING

    run_due_retries(app, clock, timedelta(minutes=5))

    appointment = reload(appointment.id)
    assert appointment.sync_status == SyncStatus.FAILED and appointment.requires_manual_review
    assert appointment.sync_error_code == "retries_exhausted"
    reason = appointment.manual_review_reason
    assert reason.startswith("Gave up after 2 attempts")
    assert "segment 2 of 2 (Auswaschen, 11:10–11:40)" in reason and "(HTTP 503" in reason
    assert "The other segments' bookings were cancelled in Cal.com" in reason
    assert bookings_of(calcom, appointment.id) == [] and scheduled_job_ids(app) == []
    assert [a.outcome for a in attempts(appointment.id)] == [SyncOutcome.RETRY, SyncOutcome.FAILED]
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.appointment_id == appointment.id))
    assert (audit.action, audit.details["code"], audit.details["cause"]) == ("sync_failed", "retries_exhausted",
                                                                            "http_503")
