"""find_appointments, cancel_appointment, reschedule_appointment: only the caller's own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import select, text

from booking.availability import Availability, Checker
from core.booking_guard import overlapping_pairs_sql
from core.extensions import db
from core.models import Appointment, AppointmentStatus, SyncAction, SyncStatus
from core.queues import SYNC_QUEUE
from core.redis_client import get_redis
from tests.factories import book
from tests.voice.conftest import CALLER, berlin

OTHER_CALLER = "+4917600000002"


def own(world, caller, start, minutes=30, **kwargs):
    return book(world, start, minutes, customer_id=caller.id, **kwargs)


def queued_jobs(app) -> list[str]:
    return Queue(SYNC_QUEUE, connection=get_redis(app)).job_ids


def fresh(appointment_id: int) -> Appointment:
    db.session.commit()
    return db.session.get(Appointment, appointment_id)


def test_find_lists_only_the_callers_upcoming_appointments(world, voice, caller, clock):
    later = own(world, caller, berlin(2026, 12, 9, 14), staff=world["staff"][1])
    sooner = own(world, caller, berlin(2026, 12, 8, 10))
    book(world, berlin(2026, 12, 8, 11), 30)  # someone else's (make_world's customer)
    cancelled = own(world, caller, berlin(2026, 12, 10, 10))
    cancelled.status = AppointmentStatus.CANCELLED
    for segment in cancelled.segments:
        segment.active = False
    db.session.commit()

    body = voice("find_appointments", {})
    assert body["success"] is True and body["error_code"] is None
    assert [a["appointment_id"] for a in body["appointments"]] == [sooner.id, later.id]
    assert body["appointments"][0] == {
        "appointment_id": sooner.id, "service": "Herrenhaarschnitt", "staff": "Anna",
        "start": "2026-12-08T10:00:00+01:00", "end": "2026-12-08T10:30:00+01:00",
        "spoken": "Dienstag, 8. Dezember, um 10:00 Uhr"}
    assert body["message"] == (
        "Ich habe 2 Termine für Sie gefunden: Herrenhaarschnitt am Dienstag, 8. Dezember, um 10:00 Uhr bei Anna "
        "und Herrenhaarschnitt am Mittwoch, 9. Dezember, um 14:00 Uhr bei Ben.")


def test_find_cannot_look_up_other_peoples_numbers(world, voice, caller):
    book(world, berlin(2026, 12, 8, 11), 30)  # belongs to +4915100000001
    body = voice("find_appointments", {"customer_phone": "+4915100000001"})
    assert body["appointments"] == []
    assert body["message"] == "Unter Ihrer Telefonnummer habe ich keinen anstehenden Termin gefunden."


def test_cancel_by_id_frees_the_slot_and_queues_the_calcom_cancel(world, voice, caller, app):
    appointment = own(world, caller, berlin(2026, 12, 8, 10))
    body = voice("cancel_appointment", {"appointment_id": appointment.id})
    assert body == {"success": True, "error_code": None, "appointment_id": appointment.id,
                    "message": "Ihr Termin Herrenhaarschnitt am Dienstag, 8. Dezember, um 10:00 Uhr bei Anna "
                               "ist storniert."}
    cancelled = fresh(appointment.id)
    assert cancelled.status == AppointmentStatus.CANCELLED and not any(s.active for s in cancelled.segments)
    assert (cancelled.sync_status, cancelled.sync_action) == (SyncStatus.PENDING, SyncAction.CANCEL)
    assert queued_jobs(app) == [f"sync-{appointment.id}-v{cancelled.sync_version}"]
    other = voice("check_availability", {"service": "Herrenhaarschnitt", "date": "2026-12-08", "time": "10:00",
                                         "staff": "Anna"}, call_id="call_B")
    assert other["available"] is True

    again = voice("cancel_appointment", {"appointment_id": appointment.id})  # Retell retried
    assert again["success"] is True and again["message"].startswith("Der Termin Herrenhaarschnitt")
    assert "war bereits storniert" in again["message"]
    assert len(queued_jobs(app)) == 1 and fresh(appointment.id).sync_version == cancelled.sync_version


def test_someone_elses_appointment_is_not_found_and_untouched(world, voice, caller):
    stranger = book(world, berlin(2026, 12, 8, 11), 30)
    for function, args in [("cancel_appointment", {"appointment_id": stranger.id}),
                           ("reschedule_appointment", {"appointment_id": stranger.id, "new_date": "2026-12-09",
                                                       "new_time": "10:00"})]:
        body = voice(function, args)
        assert body["success"] is False and body["error_code"] == "not_found"
        assert body["message"].startswith("Diesen Termin habe ich unter Ihrer Telefonnummer nicht gefunden.")
    assert voice("cancel_appointment", {"appointment_id": 999999})["error_code"] == "not_found"
    untouched = fresh(stranger.id)
    assert untouched.status == AppointmentStatus.BOOKED and untouched.starts_at == berlin(2026, 12, 8, 11)


def test_cancel_by_date_and_time_or_the_only_upcoming_one(world, voice, caller):
    first = own(world, caller, berlin(2026, 12, 8, 10))
    second = own(world, caller, berlin(2026, 12, 8, 15))
    ambiguous = voice("cancel_appointment", {"date": "2026-12-08"})
    assert ambiguous["error_code"] == "ambiguous_appointment"
    assert ambiguous["message"].startswith("Sie haben mehrere Termine: Herrenhaarschnitt am Dienstag, 8. Dezember, "
                                           "um 10:00 Uhr bei Anna und ")
    assert voice("cancel_appointment", {})["error_code"] == "ambiguous_appointment"

    assert voice("cancel_appointment", {"date": "2026-12-08", "time": "15:00"})["appointment_id"] == second.id
    assert voice("cancel_appointment", {})["appointment_id"] == first.id  # the only one left
    assert voice("cancel_appointment", {})["error_code"] == "not_found"
    assert voice("cancel_appointment", {"date": "2026-12-09"})["error_code"] == "not_found"


def test_past_appointments_cannot_be_changed(world, voice, caller, clock):
    appointment = own(world, caller, berlin(2026, 12, 8, 10))
    clock.advance(timedelta(days=2))
    body = voice("cancel_appointment", {"appointment_id": appointment.id})
    assert body["error_code"] == "past_appointment"
    assert fresh(appointment.id).status == AppointmentStatus.BOOKED


def test_reschedule_moves_and_queues_the_calcom_reschedule(world, voice, caller, app):
    appointment = own(world, caller, berlin(2026, 12, 8, 10))
    version = appointment.sync_version
    body = voice("reschedule_appointment", {"appointment_id": appointment.id, "new_date": "2026-12-09",
                                            "new_time": "14:30"})
    assert body == {
        "success": True, "error_code": None, "appointment_id": appointment.id, "alternatives": [],
        "slot": {"start": "2026-12-09T14:30:00+01:00", "end": "2026-12-09T15:00:00+01:00", "staff": "Anna"},
        "message": "Ihr Termin ist verschoben: Herrenhaarschnitt bei Anna am Mittwoch, 9. Dezember, um 14:30 Uhr.",
    }
    moved = fresh(appointment.id)
    assert (moved.starts_at, moved.ends_at) == (berlin(2026, 12, 9, 14, 30), berlin(2026, 12, 9, 15))
    assert [s.starts_at for s in moved.segments if s.active] == [berlin(2026, 12, 9, 14, 30)]
    assert (moved.sync_status, moved.sync_action, moved.sync_version) == (
        SyncStatus.PENDING, SyncAction.RESCHEDULE, version + 1)
    assert queued_jobs(app) == [f"sync-{appointment.id}-v{version + 1}"]
    assert list(get_redis(app).scan_iter(match="slotguard:hold:*")) == []
    # The old slot is free, the new one taken.
    assert voice("check_availability", {"service": "Herrenhaarschnitt", "date": "2026-12-08", "time": "10:00",
                                        "staff": "Anna"}, call_id="call_B")["available"] is True
    again = voice("reschedule_appointment", {"appointment_id": appointment.id, "new_date": "2026-12-09",
                                             "new_time": "14:30"})
    assert again["success"] is True and again["message"].startswith("Ihr Termin Herrenhaarschnitt bei Anna ist bereits")


def test_reschedule_by_15_minutes_overlapping_its_own_synced_slot(world, voice, caller, app, calendar):
    app.config["FEATURE_ASYNC_BOOKING"] = False  # so Cal.com has the booking too
    booked = voice("start_booking", {"service": "Herrenhaarschnitt", "date": "2026-12-08", "time": "10:00",
                                     "staff": "Anna", "customer_name": "Erika Muster"})
    assert fresh(booked["appointment_id"]).sync_status == SyncStatus.SYNCED
    body = voice("reschedule_appointment", {"new_datetime": "2026-12-08T10:15"}, call_id="call_2")
    assert body["success"] is True, body
    assert fresh(booked["appointment_id"]).starts_at == berlin(2026, 12, 8, 10, 15)


def test_reschedule_to_a_taken_slot_keeps_the_old_one(world, voice, caller):
    appointment = own(world, caller, berlin(2026, 12, 8, 10))
    book(world, berlin(2026, 12, 9, 10), 30)
    body = voice("reschedule_appointment", {"appointment_id": appointment.id, "new_date": "2026-12-09",
                                            "new_time": "10:00"})
    assert body["success"] is False and body["error_code"] == "slot_taken"
    assert [a["start"][11:16] for a in body["alternatives"]] == ["09:30", "10:30", "09:00"]
    kept = fresh(appointment.id)
    assert kept.starts_at == berlin(2026, 12, 8, 10) and kept.sync_action == SyncAction.CREATE


def test_reschedule_losing_the_race_in_the_database_keeps_the_old_slot(world, voice, caller, monkeypatch):
    """Availability said yes, but another writer got there first: the guard refuses the
    move and the appointment stays exactly where it was."""
    appointment = own(world, caller, berlin(2026, 12, 8, 10))
    book(world, berlin(2026, 12, 9, 10), 30)
    original_check = Checker.check

    def optimistic(self, start):
        option = self.option(self.staff[0], start)
        return Availability(True, slot=option) if option else original_check(self, start)

    monkeypatch.setattr(Checker, "check", optimistic)
    body = voice("reschedule_appointment", {"appointment_id": appointment.id, "new_date": "2026-12-09",
                                            "new_time": "10:00"})
    assert body["error_code"] == "slot_taken"
    kept = fresh(appointment.id)
    assert kept.starts_at == berlin(2026, 12, 8, 10)
    assert [s.starts_at for s in kept.segments if s.active] == [berlin(2026, 12, 8, 10)]
    assert db.session.execute(text(overlapping_pairs_sql())).all() == []


@pytest.mark.parametrize("args, code", [
    ({}, "invalid_argument"),
    ({"new_date": "2026-12-01", "new_time": "10:00"}, "past_time"),
    ({"new_date": "2026-12-09", "new_time": "20:00"}, "outside_hours"),
    ({"new_date": "2026-12-09", "new_time": "nachmittags"}, "invalid_argument"),
    ({"new_date": "2026-12-09"}, "invalid_argument"),
])
def test_reschedule_bad_arguments_change_nothing(world, voice, caller, app, args, code):
    appointment = own(world, caller, berlin(2026, 12, 8, 10))
    body = voice("reschedule_appointment", dict(args, appointment_id=appointment.id))
    assert body["success"] is False and body["error_code"] == code, body
    assert fresh(appointment.id).starts_at == berlin(2026, 12, 8, 10)
    assert queued_jobs(app) == []


def test_anonymous_caller_cannot_reach_anyones_appointments(world, voice, caller):
    own(world, caller, berlin(2026, 12, 8, 10))
    for function, args in [("find_appointments", {}), ("find_appointments", {"customer_phone": CALLER}),
                           ("cancel_appointment", {"date": "2026-12-08", "customer_phone": CALLER})]:
        body = voice(function, dict(args, from_number=CALLER), from_number="anonymous")
        assert body["success"] is False and body["error_code"] == "missing_phone"
        assert body["message"].startswith("Ihre Telefonnummer ist unterdrückt")
    assert fresh(db.session.scalar(select(Appointment.id))).status == AppointmentStatus.BOOKED


@pytest.mark.parametrize("appointment_id", [2**31, 2**63, 2**70, str(2**70), -(2**63) - 1])
@pytest.mark.parametrize("function", ["cancel_appointment", "reschedule_appointment"])
def test_ids_beyond_any_row_are_refused_before_the_database(world, voice, caller, app, function, appointment_id):
    """An id no id column can hold (PostgreSQL INTEGER) was sent to the query and
    failed there with a 500; now it is a plain "not understood"."""
    appointment = own(world, caller, berlin(2026, 12, 8, 10))
    args = {"appointment_id": appointment_id, "new_date": "2026-12-09", "new_time": "10:00"}
    body = voice(function, args)
    assert body["success"] is False and body["error_code"] == "invalid_argument", body
    assert fresh(appointment.id).status == AppointmentStatus.BOOKED
    assert fresh(appointment.id).starts_at == berlin(2026, 12, 8, 10)
    assert queued_jobs(app) == []
