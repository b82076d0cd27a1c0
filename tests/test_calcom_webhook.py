"""POST /webhooks/calcom: signature, every trigger, replays, and the double booking
the product exists to catch (a Cal.com booking colliding with a local one not yet synced)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from calcom.metadata import APPOINTMENT_KEY, SEGMENT_KEY
from calcom.webhooks import (
    BOOKING_CANCELLED,
    BOOKING_CREATED,
    BOOKING_RESCHEDULED,
    SIGNATURE_HEADER,
    booking_payload,
    ping_payload,
    sign,
)
from core.booking_guard import find_conflicts, Interval, move_appointment, cancel_appointment
from core.extensions import db
from core.models import (
    Appointment,
    AppointmentSource,
    AppointmentStatus,
    AuditEvent,
    Customer,
    SyncAction,
    SyncStatus,
    WebhookDelivery,
)
from tests.factories import book, make_world

UTC = timezone.utc
TEN = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # Tuesday 10:00 in Berlin
SECRET = "whsec_test"  # CALCOM_WEBHOOK_SECRET in the test config


@pytest.fixture
def world(app, clock):
    world = make_world()
    world["staff"][1].email = "ben@example.com"
    db.session.commit()
    return world


def payload(trigger, *, uid="cal_uid_1", start=TEN, minutes=30, host=100, host_email=None, event_type_id=1001,
            metadata=None, attendee=None, previous=None, booking_id=501, reason=None):
    attendee = attendee or {"name": "Web Kundin", "email": "web@example.com", "phoneNumber": "+4915199999999",
                            "timeZone": "Europe/Berlin", "language": "de"}
    return booking_payload(
        trigger,
        booking={"uid": uid, "id": booking_id, "start": start, "end": start + timedelta(minutes=minutes),
                 "title": "Termin", "metadata": metadata or {}, "cancellation_reason": reason},
        event_type={"id": event_type_id, "slug": "termin", "title": "Termin"},
        organizer={"id": host, "name": "Host", "email": host_email or f"host{host}@example.com",
                   "username": f"host-{host}", "timeZone": "Europe/Berlin"},
        attendees=[attendee], created_at=datetime(2026, 12, 7, 8, 0, tzinfo=UTC), previous=previous,
    )


def deliver(client, data, *, secret=SECRET, signature=None, raw=None):
    body = raw if raw is not None else json.dumps(data).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not False:
        headers[SIGNATURE_HEADER] = signature or sign(body, secret)
    return client.post("/webhooks/calcom", data=body, headers=headers)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- signature ----------------------------------------------------------------------------------


def test_valid_signature_is_accepted(client, world):
    response = deliver(client, payload(BOOKING_CREATED))
    assert response.status_code == 200 and response.json["result"] == "created"


@pytest.mark.parametrize("signature", [False, "0" * 64, "not-hex", "no-secret-provided"])
def test_missing_or_wrong_signature_is_401_and_stores_nothing(client, world, signature):
    response = deliver(client, payload(BOOKING_CREATED), signature=signature)
    assert response.status_code == 401 and "X-Cal-Signature-256" in response.json["error"]
    assert count(Appointment) == 0 and count(WebhookDelivery) == 0


def test_signature_with_another_secret_is_401(client, world):
    assert deliver(client, payload(BOOKING_CREATED), secret="whsec_other").status_code == 401
    assert count(Appointment) == 0


def test_without_a_configured_secret_everything_is_refused(client, app, world):
    app.config["CALCOM_WEBHOOK_SECRET"] = None
    assert deliver(client, payload(BOOKING_CREATED)).status_code == 401
    assert count(Appointment) == 0


# --- shapes ----------------------------------------------------------------------------------------


def test_ping_is_answered(client, world):
    response = deliver(client, ping_payload(datetime(2026, 12, 7, tzinfo=UTC)))
    assert response.status_code == 200 and response.json["result"] == "pong"


def test_unknown_trigger_is_acknowledged_and_ignored(client, world):
    response = deliver(client, {"triggerEvent": "MEETING_ENDED", "createdAt": "2026-12-07T08:00:00Z",
                                "bookingId": 1, "uid": "x"})
    assert response.status_code == 200 and response.json["result"] == "ignored"
    assert count(WebhookDelivery) == 0


@pytest.mark.parametrize("raw,message", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"payload": {}}', "triggerEvent is missing"),
    (b'{"triggerEvent": "BOOKING_CREATED"}', "needs a payload object"),
    (b'{"triggerEvent": "BOOKING_CREATED", "payload": {"startTime": "2026-12-08T09:00:00Z"}}', "payload.uid"),
    (b'{"triggerEvent": "BOOKING_CREATED", "payload": {"uid": "u", "startTime": "morgen", '
     b'"endTime": "2026-12-08T09:30:00Z"}}', "payload.startTime"),
    (b'{"triggerEvent": "BOOKING_RESCHEDULED", "payload": {"uid": "u", "startTime": "2026-12-08T09:00:00Z", '
     b'"endTime": "2026-12-08T09:30:00Z"}}', "rescheduleUid"),
])
def test_malformed_bodies_are_400_with_a_message(client, world, raw, message):
    response = deliver(client, None, raw=raw)
    assert response.status_code == 400 and message in response.json["error"]
    assert count(Appointment) == 0 and count(WebhookDelivery) == 0


@pytest.mark.parametrize("field,value", [
    ("bookingId", 2**31), ("bookingId", 2**70), ("eventTypeId", -1), ("rescheduleId", 10**30),
    ("bookingId", float("inf")), ("eventTypeId", float("nan")),
])
def test_ids_no_id_column_can_hold_are_400_not_500(client, world, field, value):
    """A Cal.com id beyond PostgreSQL's INTEGER failed in the database with a 500 (and
    Infinity in int()); now the delivery is refused with the reason, nothing stored."""
    data = payload(BOOKING_CREATED)
    data["payload"][field] = value
    response = deliver(client, None, raw=json.dumps(data).encode())
    assert response.status_code == 400 and f"payload.{field}" in response.json["error"]
    assert count(Appointment) == 0 and count(WebhookDelivery) == 0


def test_an_unknown_trigger_is_not_echoed_back_at_full_length(client, world):
    """A 50,000-character trigger came back whole in the answer (and the log)."""
    response = deliver(client, {"triggerEvent": "X" * 50_000, "payload": {}})
    assert response.status_code == 200 and response.json["result"] == "ignored"
    assert len(response.get_data()) < 300
    assert count(WebhookDelivery) == 0


def test_a_body_over_the_limit_is_413_json_and_stores_nothing(client, world, app):
    """Werkzeug's HTML 413 page used to answer; Cal.com logs the body it gets back."""
    data = payload(BOOKING_CREATED)
    data["payload"]["description"] = "x" * app.config["MAX_CONTENT_LENGTH"]
    response = deliver(client, data)
    assert response.status_code == 413 and response.is_json
    assert response.json == {"status": "error",
                             "error": f"request bodies are limited to {app.config['MAX_CONTENT_LENGTH']} bytes"}
    assert count(Appointment) == 0 and count(WebhookDelivery) == 0


# --- BOOKING_CREATED ---------------------------------------------------------------------------------


def test_foreign_booking_becomes_a_synced_calcom_appointment(client, world):
    response = deliver(client, payload(BOOKING_CREATED, host=101))
    appointment = db.session.get(Appointment, response.json["appointment_id"])
    assert appointment.source == AppointmentSource.CALCOM
    assert appointment.sync_status == SyncStatus.SYNCED and appointment.synced_at is not None
    assert appointment.staff_id == world["staff"][1].id  # Cal.com user 101
    assert appointment.service_id == world["haircut"].id  # event type 1001
    assert (appointment.starts_at, appointment.ends_at) == (TEN, TEN + timedelta(minutes=30))
    assert appointment.calcom_booking_uid == "cal_uid_1" and appointment.calcom_booking_id == 501
    assert appointment.customer.phone == "+4915199999999" and appointment.customer.email == "web@example.com"
    assert find_conflicts(db.session, world["staff"][1].id, [Interval(TEN, TEN + timedelta(minutes=30))]) == [
        appointment.id]
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.appointment_id == appointment.id))
    assert audit.action == "calcom_booking_imported" and audit.actor == "calcom-webhook"


def test_known_customer_is_reused_and_staff_found_by_email(client, world):
    attendee = {"name": "Erika M.", "email": "4915100000001@sms.cal.com", "phoneNumber": "+4915100000001",
                "timeZone": "Europe/Berlin"}
    response = deliver(client, payload(BOOKING_CREATED, host=999, host_email="ben@example.com", attendee=attendee))
    appointment = db.session.get(Appointment, response.json["appointment_id"])
    assert appointment.customer_id == world["customer"].id
    assert appointment.customer.email is None  # Cal.com's phone-only placeholder is not an email
    assert appointment.staff_id == world["staff"][1].id


def test_foreign_composite_booking_keeps_the_gap_free(client, world):
    response = deliver(client, payload(BOOKING_CREATED, event_type_id=1003, minutes=100))
    appointment = db.session.get(Appointment, response.json["appointment_id"])
    assert [(s.starts_at, s.ends_at) for s in appointment.segments] == [
        (TEN, TEN + timedelta(minutes=30)), (TEN + timedelta(minutes=70), TEN + timedelta(minutes=100))]
    book(world, TEN + timedelta(minutes=30), 40)  # the processing gap is bookable


@pytest.mark.parametrize("organizer", ["ben", "unknown"])
def test_a_booking_on_a_staff_members_own_event_type_names_staff_and_service(client, world, organizer):
    """Ben's own event type for the haircut: the event type alone says who and what
    (the team event type's id is not in the payload)."""
    from core.event_types import set_staff_event_type

    ben = world["staff"][1]
    set_staff_event_type(db.session, ben.id, world["haircut"].id, 100111)
    db.session.commit()
    host = 101 if organizer == "ben" else 999
    response = deliver(client, payload(BOOKING_CREATED, event_type_id=100111, host=host))
    assert response.json["result"] == "created"
    imported = db.session.get(Appointment, response.json["appointment_id"])
    assert (imported.staff_id, imported.service_id) == (ben.id, world["haircut"].id)
    assert [s.calcom_event_type_id for s in imported.segments] == [100111]


def test_unmatched_host_is_acknowledged_and_audited(client, world):
    response = deliver(client, payload(BOOKING_CREATED, host=4242))
    assert response.status_code == 200 and response.json["result"] == "unmatched"
    assert count(Appointment) == 0
    assert db.session.scalar(select(AuditEvent.action)) == "calcom_booking_unmatched"


def test_redis_down_never_fails_the_webhook(client, app, world, caplog):
    """The slot cache is dropped after the commit; without Redis its entries expire by themselves."""
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    app.extensions["redis"] = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                                              retry=Retry(NoBackoff(), 0))
    response = deliver(client, payload(BOOKING_CREATED))
    assert response.status_code == 200 and response.json["result"] == "created"
    assert count(Appointment) == 1
    assert "slot cache not invalidated after Cal.com BOOKING_CREATED cal_uid_1" in caplog.text


def test_every_booking_event_drops_the_cached_slots_of_the_hosts_event_types(client, app, world, clock):
    """Old and new day of a reschedule, for every event type the host takes part in."""
    from calcom import slot_cache
    from core.redis_client import get_redis

    redis = get_redis(app)
    day_slots = {TEN.date(): [(TEN, TEN + timedelta(minutes=30))]}
    later = TEN + timedelta(days=3)

    def warm():
        clock.advance(timedelta(seconds=1))  # fetched after the last invalidation
        for event_type_id in (1001, 1003):
            slot_cache.write(redis, event_type_id, 100, "Europe/Berlin", day_slots, 30)
            slot_cache.write(redis, event_type_id, 100, "Europe/Berlin", {later.date(): []}, 30)

    def cached():
        entries = [(e, 100, "Europe/Berlin", d) for e in (1001, 1003) for d in (TEN.date(), later.date())]
        return sorted((e, d.isoformat()) for e, _, _, d in slot_cache.read(redis, entries, 30))

    warm()
    assert len(cached()) == 4
    deliver(client, payload(BOOKING_CREATED))  # Anna (host 100), event type 1001, Tuesday
    assert cached() == [(1001, later.date().isoformat()), (1003, later.date().isoformat())]
    warm()
    deliver(client, payload(BOOKING_RESCHEDULED, uid="cal_uid_2", start=later,
                            previous={"uid": "cal_uid_1", "id": 501, "start": TEN, "end": TEN + timedelta(minutes=30)}))
    assert cached() == []
    warm()
    deliver(client, payload(BOOKING_CANCELLED, uid="cal_uid_2", start=later))
    assert cached() == [(1001, TEN.date().isoformat()), (1003, TEN.date().isoformat())]


def test_replay_changes_nothing(client, world):
    data = payload(BOOKING_CREATED)
    first = deliver(client, data)
    second = deliver(client, data)
    assert first.json["result"] == "created" and second.json["result"] == "replay"
    assert count(Appointment) == 1 and count(WebhookDelivery) == 1


def test_collision_with_a_pending_local_appointment_flags_it_for_review(client, world):
    local = book(world, TEN + timedelta(minutes=15), 30)  # voice booking, not yet in Cal.com
    assert local.sync_status == SyncStatus.PENDING

    response = deliver(client, payload(BOOKING_CREATED, uid="cal_web_77"))

    assert response.status_code == 200
    assert response.json["result"] == "conflict" and response.json["flagged_for_review"] == [local.id]
    db.session.refresh(local)
    assert local.requires_manual_review is True
    assert "cal_web_77" in local.manual_review_reason and "had not reached Cal.com" in local.manual_review_reason
    assert "Web Kundin" in local.manual_review_reason
    assert local.status == AppointmentStatus.BOOKED and local.segments[0].active  # the guard kept it
    assert count(Appointment) == 1  # the Cal.com booking is not stored over it …
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "calcom_double_booking"))
    assert audit.appointment_id == local.id and audit.details["booking"]["uid"] == "cal_web_77"  # … but kept here
    assert deliver(client, payload(BOOKING_CREATED, uid="cal_web_77")).json["result"] == "replay"


def test_our_own_booking_echoed_back_only_confirms_the_sync(client, world):
    local = book(world, TEN, 30)
    response = deliver(client, payload(BOOKING_CREATED, uid="ours_1", metadata={APPOINTMENT_KEY: str(local.id)}))
    assert response.json["result"] == "confirmed"
    db.session.refresh(local)
    assert local.sync_status == SyncStatus.SYNCED and local.calcom_booking_uid == "ours_1"
    assert local.segments[0].calcom_booking_uid == "ours_1"
    assert count(Appointment) == 1 and local.source == AppointmentSource.VOICE


def test_echo_of_one_composite_step_waits_for_the_other(client, world):
    from core.seed import busy_intervals

    local = book(world, TEN, busy=busy_intervals(world["colour"], TEN), service_id=world["colour"].id,
                 ends_at=TEN + timedelta(minutes=100))
    first = deliver(client, payload(BOOKING_CREATED, uid="step_0", event_type_id=1003,
                                    metadata={APPOINTMENT_KEY: str(local.id), SEGMENT_KEY: "0"}))
    assert first.json["result"] == "echo"
    second = deliver(client, payload(BOOKING_CREATED, uid="step_1", start=TEN + timedelta(minutes=70),
                                     event_type_id=1003, metadata={APPOINTMENT_KEY: str(local.id), SEGMENT_KEY: "1"}))
    assert second.json["result"] == "confirmed"
    db.session.refresh(local)
    assert [s.calcom_booking_uid for s in local.segments] == ["step_0", "step_1"]
    assert local.sync_status == SyncStatus.SYNCED


def test_a_second_cal_com_booking_for_one_appointment_is_flagged(client, world):
    local = book(world, TEN, 30)
    deliver(client, payload(BOOKING_CREATED, uid="ours_1", metadata={APPOINTMENT_KEY: str(local.id)}))
    response = deliver(client, payload(BOOKING_CREATED, uid="ours_2", metadata={APPOINTMENT_KEY: str(local.id)}))
    assert response.json["result"] == "duplicate"
    db.session.refresh(local)
    assert local.requires_manual_review and "ours_2" in local.manual_review_reason
    assert local.calcom_booking_uid == "ours_1"


# --- BOOKING_CANCELLED -------------------------------------------------------------------------------


def test_cancelled_in_calcom_cancels_locally_and_frees_the_slot(client, world):
    created = deliver(client, payload(BOOKING_CREATED))
    appointment_id = created.json["appointment_id"]
    response = deliver(client, payload(BOOKING_CANCELLED, reason="Kann nicht"))
    assert response.json["result"] == "cancelled"
    appointment = db.session.get(Appointment, appointment_id)
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancellation_reason == "Cal.com: Kann nicht"
    assert appointment.sync_status == SyncStatus.SYNCED  # no sync back to Cal.com
    assert appointment.sync_action == SyncAction.CREATE
    assert not any(s.active for s in appointment.segments)
    book(world, TEN, 30, staff=world["staff"][0])  # free again
    assert deliver(client, payload(BOOKING_CANCELLED, reason="Kann nicht")).json["result"] == "replay"


def test_our_cancel_echoed_back_confirms_it(client, world):
    local = book(world, TEN, 30)
    local.calcom_booking_uid = "ours_1"
    local.sync_status = SyncStatus.SYNCED
    db.session.commit()
    cancel_appointment(db.session, local.id, reason="Anruf")  # pending cancel sync
    response = deliver(client, payload(BOOKING_CANCELLED, uid="ours_1"))
    assert response.json["result"] == "confirmed"
    db.session.refresh(local)
    assert local.sync_status == SyncStatus.SYNCED and local.sync_action == SyncAction.CANCEL


def test_cancel_of_an_unknown_booking_is_acknowledged(client, world):
    response = deliver(client, payload(BOOKING_CANCELLED, uid="never_seen"))
    assert response.status_code == 200 and response.json["result"] == "unknown"


# --- BOOKING_RESCHEDULED ------------------------------------------------------------------------------


def moved(uid_old="cal_uid_1", uid_new="cal_uid_2", start=TEN + timedelta(hours=2), **kwargs):
    return payload(BOOKING_RESCHEDULED, uid=uid_new, start=start, booking_id=502,
                   previous={"uid": uid_old, "id": 501, "start": TEN, "end": TEN + timedelta(minutes=30)}, **kwargs)


def test_rescheduled_in_calcom_moves_the_appointment(client, world):
    appointment_id = deliver(client, payload(BOOKING_CREATED)).json["appointment_id"]
    response = deliver(client, moved())
    assert response.json["result"] == "moved"
    appointment = db.session.get(Appointment, appointment_id)
    assert appointment.starts_at == TEN + timedelta(hours=2)
    assert appointment.calcom_booking_uid == "cal_uid_2" and appointment.calcom_booking_id == 502
    assert [s.starts_at for s in appointment.segments if s.active] == [TEN + timedelta(hours=2)]
    assert appointment.sync_status == SyncStatus.SYNCED
    book(world, TEN, 30, staff=world["staff"][0])  # the old time is free


def test_reschedule_onto_a_taken_time_flags_and_keeps_the_appointment(client, world):
    appointment_id = deliver(client, payload(BOOKING_CREATED)).json["appointment_id"]
    blocker = book(world, TEN + timedelta(hours=2), 30)
    response = deliver(client, moved())
    assert response.json["result"] == "review"
    appointment = db.session.get(Appointment, appointment_id)
    assert appointment.starts_at == TEN and appointment.requires_manual_review
    assert str(blocker.id) in appointment.manual_review_reason
    assert appointment.calcom_booking_uid == "cal_uid_2"  # later events still find it


def test_our_reschedule_echoed_back_confirms_it(client, world):
    local = book(world, TEN, 30)
    local.calcom_booking_uid = "ours_1"
    local.sync_status = SyncStatus.SYNCED
    db.session.commit()
    move_appointment(db.session, local.id, [Interval(TEN + timedelta(hours=2), TEN + timedelta(hours=2, minutes=30))])
    response = deliver(client, moved(uid_old="ours_1", uid_new="ours_2", metadata={APPOINTMENT_KEY: str(local.id)}))
    assert response.json["result"] == "confirmed"
    db.session.refresh(local)
    assert local.sync_status == SyncStatus.SYNCED and local.calcom_booking_uid == "ours_2"


def test_reschedule_of_a_booking_we_never_stored_imports_it(client, world):
    response = deliver(client, moved(uid_old="lost_uid", uid_new="found_uid"))
    assert response.json["result"] == "created"
    assert db.session.get(Appointment, response.json["appointment_id"]).calcom_booking_uid == "found_uid"


# --- end to end with the emulator ---------------------------------------------------------------------


def test_direct_booking_in_the_emulator_reaches_slotguard(clock, calcom_emulator, world, live_slotguard):
    calcom_emulator.load_world(db.session)
    calcom_emulator.send_webhooks_to(live_slotguard + "/webhooks/calcom", SECRET)
    local = book(world, TEN, 30, staff=world["staff"][0])  # pending, unknown to Cal.com

    response = calcom_emulator.control("POST", "/bookings", json={
        "eventTypeId": 1001, "start": "2026-12-08T09:00:00Z", "hostId": 100,
        "attendee": {"name": "Web Kundin", "email": "web@example.com", "timeZone": "Europe/Berlin"}})
    assert response.status_code == 201  # Cal.com did not know: it accepted
    calcom_emulator.control("POST", "/bookings", json={
        "eventTypeId": 1001, "start": "2026-12-08T11:00:00Z", "hostId": 101,
        "attendee": {"name": "Max", "phoneNumber": "+4915122222222", "timeZone": "Europe/Berlin"}})
    calcom_emulator.wait_for_webhooks()

    assert [d["status"] for d in calcom_emulator.deliveries] == [200, 200]
    db.session.expire_all()
    assert db.session.get(Appointment, local.id).requires_manual_review
    imported = db.session.scalar(select(Appointment).where(Appointment.source == AppointmentSource.CALCOM))
    assert imported.staff_id == world["staff"][1].id and imported.starts_at == TEN + timedelta(hours=2)
    assert db.session.scalar(select(Customer.phone).where(Customer.id == imported.customer_id)) == "+4915122222222"


def test_a_local_booking_winning_the_race_after_the_check_still_means_review(client, world, monkeypatch):
    """Between the webhook's overlap check and its insert another writer takes the
    slot: the guard refuses the insert and the webhook flags the winner instead."""
    import booking.reconcile_webhook as reconcile

    local = book(world, TEN, 30)
    seen = []

    def check_sees_nothing_yet(session, staff_id, intervals, **kwargs):
        seen.append(staff_id)
        return [] if len(seen) == 1 else find_conflicts(session, staff_id, intervals, **kwargs)

    monkeypatch.setattr(reconcile, "find_conflicts", check_sees_nothing_yet)
    response = deliver(client, payload(BOOKING_CREATED))
    assert response.json["result"] == "conflict" and response.json["flagged_for_review"] == [local.id]
    assert count(Appointment) == 1
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 1  # no half-written rows


# --- composite appointments: one Cal.com booking per busy step ----------------------------------------


def colour_appointment(world, start=TEN):
    from core.seed import busy_intervals

    return book(world, start, busy=busy_intervals(world["colour"], start), service_id=world["colour"].id,
                ends_at=start + timedelta(minutes=100))


def step_payload(trigger, appointment, index, uid, **kwargs):
    step = [s for s in appointment.segments if s.active][index]
    return payload(trigger, uid=uid, start=step.starts_at, minutes=30, event_type_id=1003,
                   metadata={APPOINTMENT_KEY: str(appointment.id), SEGMENT_KEY: str(step.position)}, **kwargs)


def test_regular_echo_naming_segment_zero_also_confirms(client, world):
    local = book(world, TEN, 30)
    response = deliver(client, payload(BOOKING_CREATED, uid="ours_1",
                                       metadata={APPOINTMENT_KEY: str(local.id), SEGMENT_KEY: "0"}))
    assert response.json["result"] == "confirmed"
    db.session.refresh(local)
    assert local.calcom_booking_uid == local.segments[0].calcom_booking_uid == "ours_1"


def test_cancelling_one_step_in_calcom_cancels_the_appointment_and_queues_the_rest(client, app, world):
    from core.queues import SYNC_QUEUE, get_queue, sync_job_id

    local = colour_appointment(world)
    deliver(client, step_payload(BOOKING_CREATED, local, 0, "step_0"))
    deliver(client, step_payload(BOOKING_CREATED, local, 1, "step_1"))
    response = deliver(client, payload(BOOKING_CANCELLED, uid="step_0"))
    assert response.json["result"] == "cancelled"
    db.session.refresh(local)
    assert local.status == AppointmentStatus.CANCELLED
    assert local.sync_action == SyncAction.CANCEL and local.sync_status == SyncStatus.PENDING  # step_1 must go
    job = get_queue(SYNC_QUEUE).fetch_job(sync_job_id(local.id, local.sync_version))
    assert job is not None and job.args == (local.id, "cancel", local.sync_version)


def test_our_rollback_of_a_step_only_forgets_its_uid(client, world):
    from calcom.metadata import rollback_reason

    local = colour_appointment(world)
    deliver(client, step_payload(BOOKING_CREATED, local, 0, "step_0"))
    response = deliver(client, payload(BOOKING_CANCELLED, uid="step_0", reason=rollback_reason(local.id)))
    assert response.json["result"] == "rollback"
    db.session.refresh(local)
    assert local.status == AppointmentStatus.BOOKED and all(s.active for s in local.segments)
    assert local.sync_action == SyncAction.CREATE and local.sync_version == 1  # no cancel requested
    assert [s.calcom_booking_uid for s in local.segments] == [None, None]


@pytest.mark.parametrize("reason, metadata_names", [
    ("Slotguard rollback: customer called", None),  # no appointment named: a person typed this
    ("Slotguard rollback (appointment 999): …", None),  # names another appointment
    ("Kundin hat abgesagt", "this"),  # our booking, but a real cancellation
    ("rollback of this appointment", "another"),  # the payload's metadata says it is another's
])
def test_a_cancellation_that_is_not_our_rollback_of_this_appointment_cancels_it(
        client, world, reason, metadata_names):
    from calcom.metadata import rollback_reason

    local = colour_appointment(world)
    deliver(client, step_payload(BOOKING_CREATED, local, 0, "step_0"))
    if reason == "rollback of this appointment":
        reason = rollback_reason(local.id)
    cancelled = payload(BOOKING_CANCELLED, uid="step_0", reason=reason)
    if metadata_names is not None:
        cancelled["payload"]["metadata"] = {APPOINTMENT_KEY: str(local.id if metadata_names == "this" else 999)}
    response = deliver(client, cancelled)
    assert response.json["result"] == "cancelled"
    db.session.refresh(local)
    assert local.status == AppointmentStatus.CANCELLED


def test_our_reschedule_of_both_steps_confirms_after_the_second(client, world):
    local = colour_appointment(world)
    deliver(client, step_payload(BOOKING_CREATED, local, 0, "step_0"))
    deliver(client, step_payload(BOOKING_CREATED, local, 1, "step_1"))
    db.session.refresh(local)
    assert local.sync_status == SyncStatus.SYNCED
    later = TEN + timedelta(hours=3)
    from core.seed import busy_intervals

    move_appointment(db.session, local.id, busy_intervals(world["colour"], later),
                     ends_at=later + timedelta(minutes=100))
    db.session.refresh(local)
    first = deliver(client, payload(BOOKING_RESCHEDULED, uid="step_0b", start=later, event_type_id=1003,
                                    previous={"uid": "step_0", "id": 1, "start": TEN, "end": TEN}))
    assert first.json["result"] == "known" and local.sync_status == SyncStatus.PENDING
    second = deliver(client, payload(BOOKING_RESCHEDULED, uid="step_1b", start=later + timedelta(minutes=70),
                                     event_type_id=1003, previous={"uid": "step_1", "id": 2, "start": TEN, "end": TEN}))
    assert second.json["result"] == "confirmed"
    db.session.refresh(local)
    assert [s.calcom_booking_uid for s in local.segments if s.active] == ["step_0b", "step_1b"]
    assert not local.requires_manual_review


def test_one_step_moved_in_calcom_goes_to_review(client, world):
    local = colour_appointment(world)
    deliver(client, step_payload(BOOKING_CREATED, local, 0, "step_0"))
    deliver(client, step_payload(BOOKING_CREATED, local, 1, "step_1"))
    response = deliver(client, payload(BOOKING_RESCHEDULED, uid="step_1x", start=TEN + timedelta(hours=5),
                                       event_type_id=1003,
                                       previous={"uid": "step_1", "id": 2, "start": TEN, "end": TEN}))
    assert response.json["result"] == "review"
    db.session.refresh(local)
    assert local.requires_manual_review and "One step of this composite appointment" in local.manual_review_reason
    assert local.starts_at == TEN
