"""start_booking: hold → one guarded transaction → release → queued sync; exactly once."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from rq import Queue
from sqlalchemy import func, select, text

from core.booking_guard import overlapping_pairs_sql
from core.extensions import db
from core.models import (
    Appointment,
    AppointmentSegment,
    AppointmentStatus,
    Customer,
    SyncAttempt,
    SyncOutcome,
    SyncStatus,
)
from core.queues import SYNC_QUEUE
from core.redis_client import get_redis
from tests.voice.conftest import CALLER, Voice, berlin

SLOT = {"service": "Herrenhaarschnitt", "date": "2026-12-08", "time": "10:00", "staff": "Anna"}
LOCK_EXPIRED = "Ihre Reservierung ist abgelaufen. Bitte prüfen Sie erneut die Verfügbarkeit."


def appointments() -> list[Appointment]:
    db.session.commit()  # end the test's own read transaction: see what other threads committed
    return list(db.session.scalars(select(Appointment).order_by(Appointment.id)))


def queued_jobs(app) -> list[str]:
    return Queue(SYNC_QUEUE, connection=get_redis(app)).job_ids


def hold_keys(app) -> list[bytes]:
    return list(get_redis(app).scan_iter(match="slotguard:hold:*"))


def expire_holds(app) -> None:
    """Let every hold run out now (TTL set in the past; no sleeping)."""
    for key in hold_keys(app):
        get_redis(app).pexpireat(key, 1)


def checked(voice, call_id="call_A", **args):
    body = voice("check_availability", dict(SLOT, **args), call_id=call_id)
    assert body["available"] is True, body
    return body["lock_key"]


def test_normal_flow(world, voice, app):
    lock_key = checked(voice)
    body = voice("start_booking", {"lock_key": lock_key, "customer_name": "Erika Muster",
                                   "customer_email": "erika@example.com", "notes": "bitte kurz"})

    assert body == {
        "success": True, "error_code": None, "appointment_id": body["appointment_id"], "alternatives": [],
        "message": "Vielen Dank, Erika Muster. Ihr Termin ist gebucht: Herrenhaarschnitt bei Anna am "
                   "Dienstag, 8. Dezember, um 10:00 Uhr.",
    }
    (appointment,) = appointments()
    assert appointment.id == body["appointment_id"]
    assert (appointment.starts_at, appointment.ends_at) == (berlin(2026, 12, 8, 10), berlin(2026, 12, 8, 10, 30))
    assert appointment.staff.name == "Anna" and appointment.service.name == "Herrenhaarschnitt"
    assert appointment.call_id == "call_A" and appointment.notes == "bitte kurz"
    assert appointment.status == AppointmentStatus.BOOKED and appointment.sync_status == SyncStatus.PENDING
    assert (appointment.customer.name, appointment.customer.phone, appointment.customer.email) == (
        "Erika Muster", CALLER, "erika@example.com")
    assert [(s.starts_at, s.ends_at, s.active) for s in appointment.segments] == [
        (berlin(2026, 12, 8, 10), berlin(2026, 12, 8, 10, 30), True)]
    assert hold_keys(app) == []  # released
    assert queued_jobs(app) == [f"sync-{appointment.id}-v{appointment.sync_version}"]


def test_booking_with_date_and_time_in_the_args_too(world, voice):
    lock_key = checked(voice)
    body = voice("start_booking", dict(SLOT, lock_key=lock_key, customer_name="Erika Muster"))
    assert body["success"] is True


def test_customer_is_reused_by_phone_and_name_and_the_number_is_normalised(world, voice):
    voice("start_booking", dict(SLOT, lock_key=checked(voice), customer_name="Erika Muster",
                                customer_phone="0151 999 888 77"))
    voice("start_booking", dict(SLOT, time="11:00", lock_key=checked(voice, time="11:00"),
                                customer_name="erika muster", customer_phone="+49 151 99988877"))
    voice("start_booking", dict(SLOT, time="12:00", lock_key=checked(voice, time="12:00"),
                                customer_name="Max Muster", customer_phone="+49 151 99988877"))
    customers = db.session.scalars(select(Customer).where(Customer.phone == "+4915199988877")).all()
    assert sorted(c.name for c in customers) == ["Erika Muster", "Max Muster"]  # a family shares a phone


def test_retry_of_the_same_call_is_idempotent(world, voice, app):
    args = {"lock_key": checked(voice), "customer_name": "Erika Muster"}
    first = voice("start_booking", args)
    again = voice("start_booking", args)  # Retell retried: the hold is gone by now
    without_lock = voice("start_booking", dict(SLOT, customer_name="Erika Muster"))
    assert first["appointment_id"] == again["appointment_id"] == without_lock["appointment_id"]
    assert again["message"] == first["message"]
    assert len(appointments()) == 1
    assert len(queued_jobs(app)) == 1


def test_expired_hold_gives_the_german_expiry_message_and_writes_nothing(world, voice, app):
    lock_key = checked(voice)
    expire_holds(app)
    body = voice("start_booking", {"lock_key": lock_key, "customer_name": "Erika Muster"})
    assert body == {"success": False, "error_code": "lock_expired", "message": LOCK_EXPIRED,
                    "appointment_id": None, "alternatives": []}
    assert appointments() == [] and db.session.query(Customer).count() == 1  # only make_world's
    assert queued_jobs(app) == []


def test_stolen_hold_gives_the_expiry_message_and_the_thief_keeps_it(world, voice, app):
    lock_key = checked(voice, call_id="call_A")
    expire_holds(app)
    thief_key = checked(voice, call_id="call_B")
    body = voice("start_booking", {"lock_key": lock_key, "customer_name": "Erika Muster"}, call_id="call_A")
    assert body["error_code"] == "lock_expired" and body["message"] == LOCK_EXPIRED
    assert set(get_redis(app).mget(hold_keys(app))) == {b"call_B"}
    booked = voice("start_booking", {"lock_key": thief_key, "customer_name": "Max Muster"}, call_id="call_B")
    assert booked["success"] is True
    assert [a.call_id for a in appointments()] == ["call_B"]


def test_lock_key_of_another_call_is_not_honoured(world, voice):
    lock_key = checked(voice, call_id="call_A")
    body = voice("start_booking", {"lock_key": lock_key, "customer_name": "Mallory"}, call_id="call_B")
    assert body["error_code"] == "lock_expired" and appointments() == []


def test_missing_lock_key_logs_a_warning_and_still_books(world, voice, app, caplog):
    with caplog.at_level(logging.WARNING, logger="booking.booking_flow"):
        body = voice("start_booking", dict(SLOT, customer_name="Erika Muster"))
    assert body["success"] is True
    assert "without lock_key" in caplog.text
    assert len(appointments()) == 1 and hold_keys(app) == []


def test_without_slot_locking_a_missing_lock_key_is_not_blamed_on_the_agent(world, voice, app, caplog):
    """Regression (reliability suite, guard only): every booking logged "configure the
    agent to pass its lock_key" although check_availability cannot give one then."""
    app.config["FEATURE_SLOT_LOCKING"] = False
    with caplog.at_level(logging.WARNING, logger="booking.booking_flow"):
        assert voice("check_availability", SLOT)["lock_key"] is None
        assert voice("start_booking", dict(SLOT, customer_name="Erika Muster"))["success"] is True
    assert "without lock_key" not in caplog.text


def test_missing_lock_key_respects_another_callers_hold(world, voice):
    checked(voice, call_id="call_A")
    body = voice("start_booking", dict(SLOT, customer_name="Max Muster"), call_id="call_B")
    assert body["success"] is False and body["error_code"] == "slot_taken"
    assert body["message"].startswith("Dieser Termin wurde gerade vergeben. Ich kann Ihnen anbieten: um 9:00 Uhr")
    assert len(body["alternatives"]) == 3 and appointments() == []


def test_slot_taken_after_a_lost_race_offers_alternatives(world, voice, app):
    lock_key = checked(voice, call_id="call_A")
    # Another writer (dashboard, webhook) got the slot into the database meanwhile.
    from tests.factories import book

    book(world, berlin(2026, 12, 8, 10, 15), 30, staff=world["staff"][0])
    body = voice("start_booking", {"lock_key": lock_key, "customer_name": "Erika Muster"})
    assert body["success"] is False and body["error_code"] == "slot_taken"
    assert "Dieser Termin wurde gerade vergeben" in body["message"]
    assert [a["start"][11:16] for a in body["alternatives"]] == ["09:30", "09:00", "11:00"]
    assert len(appointments()) == 1 and hold_keys(app) == []


@pytest.mark.parametrize("locking", [False, True])
def test_fifty_concurrent_bookings_of_one_slot_make_exactly_one_appointment(world, app, locking):
    app.config["FEATURE_SLOT_LOCKING"] = locking
    # 50 callers at once on a small shared machine: let Cal.com (the emulator) be slow
    # rather than time out, so the test is about the database guard and the holds.
    app.config["CALCOM_AVAILABILITY_TIMEOUT"] = 30.0
    results: list[dict] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(50)

    def caller(index: int) -> None:
        try:
            voice = Voice(app.test_client())
            raw = voice.body("start_booking", dict(SLOT, customer_name=f"Kunde {index}"), call_id=f"call_{index}",
                             from_number=f"+49151000{index:05d}")
            barrier.wait(timeout=30)
            response = voice.post("start_booking", raw)
            results.append(response.get_json())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors
    assert len(results) == 50
    assert sum(1 for r in results if r["success"]) == 1
    assert {r["error_code"] for r in results if not r["success"]} <= {"slot_taken"}
    assert len(appointments()) == 1
    assert db.session.execute(text(overlapping_pairs_sql())).all() == []


def test_composite_service_books_its_busy_steps_and_leaves_the_gap(world, voice):
    lock_key = checked(voice, service="Färben")
    colour = voice("start_booking", {"lock_key": lock_key, "customer_name": "Erika Muster"})
    assert colour["success"] is True
    segments = db.session.scalars(select(AppointmentSegment).order_by(AppointmentSegment.starts_at)).all()
    assert [(s.starts_at, s.ends_at) for s in segments] == [
        (berlin(2026, 12, 8, 10), berlin(2026, 12, 8, 10, 30)),
        (berlin(2026, 12, 8, 11, 10), berlin(2026, 12, 8, 11, 40))]
    appointment = db.session.get(Appointment, colour["appointment_id"])
    assert (appointment.starts_at, appointment.ends_at) == (berlin(2026, 12, 8, 10), berlin(2026, 12, 8, 11, 40))

    gap = voice("start_booking", dict(SLOT, time="10:30", customer_name="Max Muster"), call_id="call_B")
    assert gap["success"] is True
    busy = voice("start_booking", dict(SLOT, time="11:15", customer_name="Eva Muster"), call_id="call_C")
    assert busy["error_code"] == "slot_taken"
    assert len(appointments()) == 2


def test_without_slot_locking_the_guard_alone_protects(world, voice, app):
    app.config["FEATURE_SLOT_LOCKING"] = False
    check = voice("check_availability", SLOT)
    assert check["available"] is True and check["lock_key"] is None
    assert hold_keys(app) == []
    assert voice("check_availability", SLOT, call_id="call_B")["available"] is True  # no holds at all
    assert voice("start_booking", dict(SLOT, customer_name="Erika Muster"))["success"] is True
    second = voice("start_booking", dict(SLOT, customer_name="Max Muster"), call_id="call_B")
    assert second["error_code"] == "slot_taken" and len(appointments()) == 1


def test_synchronous_booking_creates_in_calcom_before_answering(world, voice, app, calendar):
    app.config["FEATURE_ASYNC_BOOKING"] = False
    body = voice("start_booking", {"lock_key": checked(voice), "customer_name": "Erika Muster"})
    assert body["success"] is True
    (appointment,) = appointments()
    (booking,) = calendar.bookings(metadata={"slotguard_appointment_id": str(appointment.id)})
    assert appointment.sync_status == SyncStatus.SYNCED and appointment.calcom_booking_uid == booking.uid
    assert booking.start == appointment.starts_at and booking.attendees[0]["phoneNumber"] == CALLER
    (attempt,) = db.session.scalars(select(SyncAttempt)).all()
    assert attempt.outcome == SyncOutcome.SUCCESS and attempt.http_status == 201
    assert queued_jobs(app) == []


def test_synchronous_composite_creates_one_booking_per_busy_step(world, voice, app, calendar):
    app.config["FEATURE_ASYNC_BOOKING"] = False
    body = voice("start_booking", dict(SLOT, service="Färben", customer_name="Erika Muster"))
    assert body["success"] is True
    bookings = calendar.bookings(metadata={"slotguard_appointment_id": str(body["appointment_id"])})
    assert [(b.start, b.end, b.metadata["slotguard_segment"]) for b in bookings] == [
        (berlin(2026, 12, 8, 10), berlin(2026, 12, 8, 10, 30), "0"),
        (berlin(2026, 12, 8, 11, 10), berlin(2026, 12, 8, 11, 40), "1")]


def test_synchronous_booking_refused_by_calcom_is_answered_honestly(world, voice, app, calendar):
    app.config["FEATURE_ASYNC_BOOKING"] = False
    lock_key = checked(voice)
    for host in (100, 101):  # booked in Cal.com itself after our check, for every host
        calendar.book_directly(host, berlin(2026, 12, 8, 10), 30)
    body = voice("start_booking", {"lock_key": lock_key, "customer_name": "Erika Muster"})
    assert body["success"] is False and body["error_code"] == "slot_taken"
    assert body["message"].startswith("Dieser Termin wurde gerade vergeben.")
    assert "10:00" not in [a["start"][11:16] for a in body["alternatives"]]
    (appointment,) = appointments()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.sync_status == SyncStatus.SYNCED  # nothing exists in Cal.com, nothing to do
    assert not any(s.active for s in appointment.segments)
    (attempt,) = db.session.scalars(select(SyncAttempt)).all()
    assert attempt.outcome == SyncOutcome.FAILED and attempt.http_status == 400
    # The one Cal.com classifier (calcom.failures) names it as the sync worker would.
    assert (attempt.error_code, appointment.sync_error_code) == ("slot_taken_in_calcom", "slot_taken_in_calcom")
    assert attempt.error_message.startswith(f"Could not book appointment {appointment.id} in Cal.com while the caller")
    assert queued_jobs(app) == []


def test_synchronous_booking_when_calcom_fails_cancels_and_queues_the_cleanup(world, voice, app, calendar):
    app.config["FEATURE_ASYNC_BOOKING"] = False
    lock_key = checked(voice)
    calendar.fail("error", status=503, endpoints=["create"])
    body = voice("start_booking", {"lock_key": lock_key, "customer_name": "Erika Muster"})
    assert body == {"success": False, "error_code": "booking_failed", "appointment_id": None, "alternatives": [],
                    "message": "Ich konnte den Termin leider nicht im Kalender eintragen. Bitte versuchen Sie es "
                               "in ein paar Minuten noch einmal."}
    (appointment,) = appointments()
    assert appointment.status == AppointmentStatus.CANCELLED and appointment.sync_status == SyncStatus.PENDING
    assert appointment.sync_action.value == "cancel"  # a 5xx may still have created it: the worker cleans up
    (attempt,) = db.session.scalars(select(SyncAttempt)).all()
    assert attempt.error_code == "http_503" and "Cal.com had a server error" in attempt.error_message
    assert queued_jobs(app) == [f"sync-{appointment.id}-v{appointment.sync_version}"]
    calendar.heal()
    assert voice("check_availability", SLOT, call_id="call_B")["available"] is True  # the slot is free again


BAD_ARGUMENTS = [
    ({"customer_name": ""}, "missing_name", "Auf welchen Namen darf ich den Termin eintragen?"),
    ({"customer_name": "12345"}, "invalid_argument", "Den Namen habe ich leider nicht verstanden."),
    ({"customer_name": ["Erika"]}, "invalid_argument", "Da ist leider etwas durcheinandergeraten."),
    ({"customer_phone": "gleich hier"}, "invalid_phone", "Die Telefonnummer habe ich leider nicht verstanden."),
    ({"customer_email": "erika at example"}, "invalid_email", "Die E-Mail-Adresse scheint nicht zu stimmen."),
    ({"notes": "x" * 1001}, "invalid_argument", "Die Anmerkung ist leider zu lang."),
    ({"service": "Massage"}, "unknown_service", "Die Leistung Massage bieten wir leider nicht an."),
    ({"service": None}, "unknown_service", "Welche Leistung möchten Sie buchen?"),
    ({"service_id": "abc"}, "invalid_argument", "Da ist leider etwas durcheinandergeraten."),
    ({"staff": "Zoe"}, "unknown_staff", "Zoe kann ich für diese Leistung leider nicht finden."),
    ({"date": "irgendwann"}, "invalid_argument", "Das Datum habe ich leider nicht verstanden."),
    ({"date": None}, "invalid_argument", "Das Datum habe ich leider nicht verstanden."),
    ({"time": "abends"}, "invalid_argument", "Die Uhrzeit habe ich leider nicht verstanden."),
    ({"time": None}, "invalid_argument", "Die Uhrzeit habe ich leider nicht verstanden."),
    ({"date": "2026-12-01"}, "past_time", "Dieser Zeitpunkt liegt in der Vergangenheit."),
    ({"date": "2028-01-10"}, "too_far_ahead", "So weit im Voraus kann ich leider noch nichts eintragen."),
    ({"time": "07:00"}, "outside_hours", "Zu dieser Zeit haben wir leider geschlossen."),
    ({"date": "2026-12-13"}, "outside_hours", "Zu dieser Zeit haben wir leider geschlossen."),  # Sunday
    ({"time": "17:45"}, "outside_hours", "Zu dieser Zeit haben wir leider geschlossen."),  # would end 18:15
    ({"lock_key": "h1-nonsense"}, "invalid_argument", "Die Reservierungsnummer ist ungültig."),
    ({"lock_key": "h1-999-1-20261208T0900Z"}, "invalid_argument", "Die Reservierungsnummer ist ungültig."),
]


@pytest.mark.parametrize("change, code, message_start", BAD_ARGUMENTS,
                         ids=[f"{code}:{','.join(change)}" for change, code, _ in BAD_ARGUMENTS])
def test_every_bad_argument_is_answered_in_german_and_nothing_is_written(world, voice, app, change, code,
                                                                         message_start):
    args = {**SLOT, "customer_name": "Erika Muster", **change}
    args = {k: v for k, v in args.items() if v is not None}
    body = voice("start_booking", args)
    assert body["success"] is False and body["error_code"] == code
    assert body["message"].startswith(message_start), body["message"]
    assert body["appointment_id"] is None
    assert appointments() == [] and db.session.query(Customer).count() == 1
    assert hold_keys(app) == [] and queued_jobs(app) == []


def test_lock_key_that_does_not_match_the_args_is_refused(world, voice):
    lock_key = checked(voice)
    for change in ({"time": "11:00"}, {"service": "Färben"}, {"staff": "Ben"}):
        body = voice("start_booking", dict(SLOT, lock_key=lock_key, customer_name="Erika Muster", **change))
        assert body["error_code"] == "lock_mismatch", change
        assert body["message"] == ("Die Reservierung gilt für einen anderen Termin. "
                                   "Bitte prüfen Sie erneut die Verfügbarkeit.")
    assert appointments() == []


def test_unknown_branch_is_answered_in_german(world, voice):
    body = voice("start_booking", dict(SLOT, customer_name="Erika Muster"), to_number="+4930999999")
    assert body["success"] is False and body["error_code"] == "unknown_branch"
    assert appointments() == []


def test_branch_from_configured_branch_id(world, voice):
    raw = json.loads(voice.body("check_availability", SLOT, to_number=None))
    raw["call"]["metadata"] = {"branch_id": str(world["branch"].id)}
    response = voice.post("check_availability", json.dumps(raw))
    assert response.get_json()["available"] is True


@pytest.mark.parametrize("branch_id", [2**31, 2**70, "-1", 0])
def test_configured_branch_id_beyond_any_row_is_an_unknown_branch(world, voice, branch_id):
    """Such an id used to reach the database (500 on PostgreSQL and SQLite)."""
    raw = json.loads(voice.body("start_booking", dict(SLOT, customer_name="Erika Muster")))
    raw["call"]["metadata"] = {"branch_id": branch_id}
    response = voice.post("start_booking", json.dumps(raw))
    assert response.status_code == 200
    assert response.get_json()["error_code"] == "unknown_branch"
    assert appointments() == []


def test_anonymous_caller_must_give_a_number(world, voice):
    body = voice("start_booking", dict(SLOT, customer_name="Erika Muster"), from_number="anonymous")
    assert body["error_code"] == "missing_phone"
    assert body["message"] == ("Ich kann Ihre Telefonnummer leider nicht erkennen. "
                               "Unter welcher Nummer können wir Sie erreichen?")
    assert voice("start_booking", dict(SLOT, customer_name="Erika Muster", customer_phone="030 1234567"),
                 from_number="anonymous")["success"] is True
    assert appointments()[0].customer.phone == "+49301234567"


def test_answers_stay_short(world, voice):
    body = voice("start_booking", dict(SLOT, customer_name="E" * 200))
    assert len(json.dumps(body, ensure_ascii=False)) < 15_000
    assert db.session.scalar(select(func.count()).select_from(Appointment)) == 1
