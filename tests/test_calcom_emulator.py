"""The Cal.com emulator over HTTP, driven by the real client: slots, conflicts,
cancel/reschedule, the rate limit, every fault kind, webhooks and the control API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import requests
from werkzeug.wrappers import Request, Response

from calcom.client import Attendee, CalcomClient
from calcom.emulator_faults import FaultPlan, FaultSettingsError, RateLimiter
from calcom.errors import CalcomRequestError, CalcomTimeout, CalcomUnavailable, RateLimited, SlotUnavailable
from calcom.metadata import APPOINTMENT_KEY, booking_metadata
from calcom.webhooks import SIGNATURE_HEADER, verify_signature
from tests.calcom_fixtures import serve_wsgi

UTC = timezone.utc
# The `clock` fixture freezes time at Monday 2026-12-07 08:00 UTC (09:00 in Berlin).
TUESDAY_10 = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
ERIKA = Attendee(name="Erika Mustermann", email="erika@example.com", phone_number="+4915100000001")


@pytest.fixture
def emulator(calcom_emulator, clock):
    calcom_emulator.add_host_and_event_type(host_id=101, event_type_id=1001, length=30)
    return calcom_emulator


@pytest.fixture
def client(emulator):
    return CalcomClient(emulator.url, "cal_test_key", connect_timeout=2, read_timeout=2)


def book(client, start=TUESDAY_10, appointment_id=1, event_type_id=1001, attendee=ERIKA):
    return client.create_booking(event_type_id=event_type_id, start=start, attendee=attendee,
                                 metadata=booking_metadata(appointment_id))


def raw(emulator, method, path, body=None, version="2024-08-13", key="cal_test_key", **params):
    headers = {"cal-api-version": version}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, emulator.url + path, json=body, params=params, headers=headers, timeout=5)


# --- slots --------------------------------------------------------------------------------


def test_slots_follow_working_hours_in_the_hosts_time_zone(emulator, client):
    slots = client.get_slots(1001, TUESDAY_10.replace(hour=0), TUESDAY_10.replace(hour=23), "Europe/Berlin")
    assert len(slots) == 18  # 09:00..17:30 Berlin, every 30 minutes
    assert slots[0].start == datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
    assert slots[-1].end == datetime(2026, 12, 8, 17, 0, tzinfo=UTC)  # 18:00 Berlin


def test_slots_wire_format_groups_days_in_the_requested_zone(emulator):
    response = raw(emulator, "GET", "/v2/slots", version="2024-09-04", eventTypeId=1001,
                   start="2026-12-08", end="2026-12-08", timeZone="Europe/Berlin")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success"
    assert list(body["data"]) == ["2026-12-08"]
    assert body["data"]["2026-12-08"][0] == {"start": "2026-12-08T09:00:00.000+01:00"}
    utc = raw(emulator, "GET", "/v2/slots", version="2024-09-04", eventTypeId=1001, start="2026-12-08",
              end="2026-12-08", format="range").json()
    assert utc["data"]["2026-12-08"][0] == {"start": "2026-12-08T08:00:00.000Z", "end": "2026-12-08T08:30:00.000Z"}


def test_no_slots_on_a_closed_day_and_none_in_the_past(emulator, client):
    sunday = datetime(2026, 12, 13, 0, 0, tzinfo=UTC)
    assert client.get_slots(1001, sunday, sunday + timedelta(hours=23), "Europe/Berlin") == []
    today = client.get_slots(1001, datetime(2026, 12, 7, 0, 0, tzinfo=UTC), datetime(2026, 12, 7, 23, 0, tzinfo=UTC),
                             "Europe/Berlin")
    assert today[0].start == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # "now", not earlier


def test_a_booking_removes_its_slot(emulator, client):
    book(client)
    starts = [s.start for s in client.get_slots(1001, TUESDAY_10 - timedelta(hours=1), TUESDAY_10 + timedelta(hours=1),
                                                "Europe/Berlin")]
    assert TUESDAY_10 not in starts
    assert TUESDAY_10 - timedelta(minutes=30) in starts and TUESDAY_10 + timedelta(minutes=30) in starts


def test_slots_validation(emulator):
    unknown = raw(emulator, "GET", "/v2/slots", version="2024-09-04", eventTypeId=1001, start="2026-12-08",
                  end="2026-12-08", username="anna")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "username property is wrong,property username should not exist "
    missing = raw(emulator, "GET", "/v2/slots", version="2024-09-04", eventTypeId=9999, start="2026-12-08",
                  end="2026-12-08")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFoundException"
    no_version = raw(emulator, "GET", "/v2/slots", version="", eventTypeId=1001, start="2026-12-08", end="2026-12-08")
    assert no_version.status_code == 404 and no_version.json()["error"]["message"].startswith("Cannot GET /v2/slots")


# --- bookings and conflicts -----------------------------------------------------------------


def test_create_returns_201_with_booking_output(emulator):
    response = raw(emulator, "POST", "/v2/bookings", {
        "start": "2026-12-08T09:00:00Z", "eventTypeId": 1001,
        "attendee": {"name": "Karl", "phoneNumber": "+4915112345678", "timeZone": "Europe/Berlin", "language": "de"},
        "metadata": {APPOINTMENT_KEY: "7"}})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["status"] == "accepted" and data["duration"] == 30 and data["eventTypeId"] == 1001
    assert data["start"] == "2026-12-08T09:00:00.000Z" and data["end"] == "2026-12-08T09:30:00.000Z"
    assert data["hosts"][0]["id"] == 101
    assert data["metadata"] == {APPOINTMENT_KEY: "7"}
    assert data["attendees"][0]["email"] == "4915112345678@sms.cal.com"  # Cal.com's phone-only placeholder
    assert response.headers["X-RateLimit-Limit-Default"] == "120"


def test_overlapping_booking_for_the_same_host_fails_like_calcom(emulator, client):
    book(client)
    with pytest.raises(SlotUnavailable) as caught:
        book(client, start=TUESDAY_10 + timedelta(minutes=15), appointment_id=2)
    assert caught.value.status == 400
    assert caught.value.message == "User either already has booking at this time or is not available"
    book(client, start=TUESDAY_10 + timedelta(minutes=30), appointment_id=3)  # back to back is fine


def test_round_robin_event_type_uses_the_next_free_host(calcom_emulator, clock):
    calcom_emulator.add_host_and_event_type(event_type_id=1002, hosts=[201, 202])
    client = CalcomClient(calcom_emulator.url, "cal_test_key")
    first = book(client, event_type_id=1002, appointment_id=1)
    second = book(client, event_type_id=1002, appointment_id=2)
    assert [first.hosts[0]["id"], second.hosts[0]["id"]] == [201, 202]
    with pytest.raises(SlotUnavailable, match="One of the hosts either already has booking"):
        book(client, event_type_id=1002, appointment_id=3)
    one_host = client.get_slots(1002, TUESDAY_10, TUESDAY_10 + timedelta(hours=1), "UTC", host_user_id=201)
    assert TUESDAY_10 not in [s.start for s in one_host]


def test_outside_working_hours_and_in_the_past_are_refused(emulator, client):
    with pytest.raises(SlotUnavailable):
        book(client, start=datetime(2026, 12, 8, 18, 0, tzinfo=UTC))  # 19:00 Berlin
    with pytest.raises(CalcomRequestError, match="Attempting to book a meeting in the past."):
        book(client, start=datetime(2026, 12, 7, 7, 0, tzinfo=UTC))


@pytest.mark.parametrize("body,status,message", [
    ({"start": "2026-12-08T09:00:00Z", "eventTypeId": 1001, "attendee": {"name": "X", "timeZone": "Europe/Berlin"}},
     400, "Attendee must have at least one contact method (email or phone number)"),
    ({"start": "2026-12-08T09:00:00Z", "eventTypeId": 1001, "hostId": 3,
      "attendee": {"name": "X", "email": "x@example.com", "timeZone": "Europe/Berlin"}},
     400, "hostId property is wrong,property hostId should not exist "),
    ({"start": "2026-12-08T09:00:00Z", "attendee": {"name": "X", "email": "x@example.com", "timeZone": "UTC"}},
     400, "Either eventTypeId or eventTypeSlug + username or eventTypeSlug + teamSlug must be provided"),
    ({"start": "2026-12-08T09:00:00Z", "eventTypeId": 4242,
      "attendee": {"name": "X", "email": "x@example.com", "timeZone": "UTC"}},
     404, "Event type with id 4242 not found."),
    ({"start": "2026-12-08T09:00:00Z", "eventTypeId": 1001, "metadata": {"k" * 41: "v"},
      "attendee": {"name": "X", "email": "x@example.com", "timeZone": "UTC"}},
     400, "Metadata must have at most 50 keys, each key up to 40 characters, and string values up to 500 characters."),
    ({"start": "next tuesday", "eventTypeId": 1001,
      "attendee": {"name": "X", "email": "x@example.com", "timeZone": "UTC"}},
     400, "start property is wrong,start must be a valid ISO 8601 date string "),
])
def test_create_validation_errors(emulator, body, status, message):
    response = raw(emulator, "POST", "/v2/bookings", body)
    assert response.status_code == status
    error = response.json()
    assert error["status"] == "error" and error["path"] == "/v2/bookings"
    assert message in error["error"]["message"]
    assert emulator.state.bookings == {}


def test_bookings_need_the_2024_08_13_version(emulator):
    response = raw(emulator, "POST", "/v2/bookings", {}, version="2024-04-15")
    assert response.status_code == 400 and "2024-08-13" in response.json()["error"]["message"]


def test_get_and_list_keep_and_filter_by_metadata(emulator, client):
    first = book(client, appointment_id=11)
    book(client, start=TUESDAY_10 + timedelta(hours=1), appointment_id=12,
         attendee=Attendee(name="Max Müller", email="max@example.com"))
    assert client.get_booking(first.uid).metadata == {APPOINTMENT_KEY: "11"}

    page = client.list_bookings(event_type_id=1001, take=1)
    assert page.total == 2 and page.has_more and len(page.items) == 1
    assert client.list_bookings(attendee_email="max@example.com").items[0].metadata[APPOINTMENT_KEY] == "12"
    assert client.list_bookings(after_start=TUESDAY_10 + timedelta(minutes=30)).total == 1
    assert [b.uid for b in client.find_bookings({APPOINTMENT_KEY: 11}, event_type_id=1001)] == [first.uid]
    found = emulator.control("GET", "/bookings", params={f"metadata.{APPOINTMENT_KEY}": "12"}).json()
    assert [b["metadata"][APPOINTMENT_KEY] for b in found] == ["12"]


def test_list_needs_an_api_key_and_valid_filters(emulator):
    assert raw(emulator, "GET", "/v2/bookings", key=None).status_code == 401
    bad = raw(emulator, "GET", "/v2/bookings", status="someday")
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "Invalid status. Allowed are upcoming, recurring, past, cancelled, unconfirmed"
    assert raw(emulator, "GET", "/v2/bookings", take="500").status_code == 400


def test_unknown_booking_is_404(emulator, client):
    with pytest.raises(CalcomRequestError) as caught:
        client.get_booking("nope")
    assert caught.value.status == 404
    assert caught.value.message == "Booking with uid=nope was not found in the database"


# --- cancel and reschedule ------------------------------------------------------------------


def test_cancel_frees_the_slot_and_twice_is_harmless(emulator, client):
    booking = book(client)
    cancelled = client.cancel_booking(booking.uid, "Kunde hat abgesagt")
    assert cancelled.is_cancelled and cancelled.cancellation_reason == "Kunde hat abgesagt"
    assert client.cancel_booking(booking.uid, "again") is None  # Cal.com: "already been cancelled"
    assert client.list_bookings(status="cancelled").total == 1
    assert client.list_bookings(status="upcoming").total == 0
    book(client, appointment_id=2)  # the slot is free again


def test_reschedule_makes_a_new_booking_and_cancels_the_old(emulator, client):
    old = book(client)
    new = client.reschedule_booking(old.uid, TUESDAY_10 + timedelta(hours=2), "Kundenwunsch")
    assert new.uid != old.uid and new.rescheduled_from_uid == old.uid
    assert new.start == TUESDAY_10 + timedelta(hours=2) and new.end - new.start == timedelta(minutes=30)
    assert new.metadata == old.metadata
    previous = client.get_booking(old.uid)
    assert previous.is_cancelled and previous.rescheduled_to_uid == new.uid
    with pytest.raises(CalcomRequestError, match=f"rescheduled already to booking with uid={new.uid}"):
        client.reschedule_booking(old.uid, TUESDAY_10 + timedelta(hours=3))
    book(client, appointment_id=2)  # the old time is free
    with pytest.raises(SlotUnavailable):
        book(client, start=TUESDAY_10 + timedelta(hours=2), appointment_id=3)


def test_reschedule_onto_a_taken_time_is_refused_and_changes_nothing(emulator, client):
    first = book(client)
    book(client, start=TUESDAY_10 + timedelta(hours=1), appointment_id=2)
    with pytest.raises(SlotUnavailable):
        client.reschedule_booking(first.uid, TUESDAY_10 + timedelta(hours=1))
    assert client.get_booking(first.uid).status == "accepted"


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limit_per_api_key_with_calcom_headers(emulator, clock):
    emulator.emulator.limiter = RateLimiter(3, clock=emulator.emulator.clock)
    first = raw(emulator, "GET", "/v2/bookings/none")
    assert (first.headers["X-RateLimit-Limit-Default"], first.headers["X-RateLimit-Remaining-Default"],
            first.headers["X-RateLimit-Reset-Default"]) == ("3", "2", "60")
    raw(emulator, "GET", "/v2/bookings/none")
    raw(emulator, "GET", "/v2/bookings/none")
    client = CalcomClient(emulator.url, "cal_test_key")
    with pytest.raises(RateLimited) as caught:
        client.get_booking("none")
    assert caught.value.code == "ThrottlerException"
    assert caught.value.message == "CustomThrottlerGuard - Too many requests. Please try again later."
    assert caught.value.retry_after == 60
    assert raw(emulator, "GET", "/v2/bookings/none", key="cal_other_key").status_code == 404  # its own budget
    clock.advance(timedelta(seconds=61))
    assert raw(emulator, "GET", "/v2/bookings/none").status_code == 404


def test_default_limit_is_120_per_minute(emulator):
    for _ in range(120):
        assert raw(emulator, "GET", "/v2/bookings/none").status_code == 404
    assert raw(emulator, "GET", "/v2/bookings/none").status_code == 429


# --- faults ----------------------------------------------------------------------------------


def test_error_fault_answers_503_and_creates_nothing(emulator, client):
    emulator.set_faults({"error_rate": 1.0, "endpoint": "create"})
    with pytest.raises(CalcomUnavailable) as caught:
        book(client)
    assert caught.value.status == 503
    assert emulator.state.bookings == {}
    assert client.get_slots(1001, TUESDAY_10, TUESDAY_10 + timedelta(hours=1), "UTC")  # other endpoints fine


def test_rate_limit_fault_answers_429_with_headers(emulator, client):
    emulator.set_faults({"rules": [{"kind": "rate_limit", "endpoint": "slots"}]})
    with pytest.raises(RateLimited) as caught:
        client.get_slots(1001, TUESDAY_10, TUESDAY_10 + timedelta(hours=1), "UTC")
    assert caught.value.retry_after == 60


def test_timeout_fault_hangs_past_the_client_timeout_and_creates_nothing(emulator):
    emulator.set_faults({"timeout_rate": 1.0, "endpoint": "POST /v2/bookings", "timeout_seconds": 30})
    impatient = CalcomClient(emulator.url, "cal_test_key", read_timeout=0.3)
    with pytest.raises(CalcomTimeout):
        book(impatient)
    emulator.emulator.release.set()  # let the hanging request end now
    assert emulator.state.bookings == {}


def test_dropped_response_creates_the_booking_but_never_answers(emulator, client):
    emulator.set_faults({"drop_rate": 1.0, "endpoint": "create", "times": 1})
    with pytest.raises(CalcomUnavailable) as caught:
        book(client, appointment_id=77)
    assert caught.value.code == "connection_error"
    found = client.find_bookings({APPOINTMENT_KEY: 77}, event_type_id=1001)  # the retry's first step
    assert len(found) == 1 and found[0].start == TUESDAY_10
    with pytest.raises(SlotUnavailable):  # and a blind retry would collide with it
        book(client, appointment_id=77)


def test_latency_fault_delays_the_answer(emulator, client):
    slept = []
    emulator.emulator.sleep = slept.append
    emulator.set_faults("latency_ms=250,endpoint=get")
    booking = book(client)
    client.get_booking(booking.uid)
    assert slept == [0.25]


def test_faults_with_a_seed_are_deterministic():
    def outcomes(seed):
        plan = FaultPlan.parse({"error_rate": 0.3, "drop_rate": 0.2, "seed": seed})
        return [plan.decide("POST /v2/bookings").kind for _ in range(40)]

    assert outcomes(7) == outcomes(7)
    assert outcomes(7) != outcomes(8)
    assert {"error", "drop", None} <= set(outcomes(7))


def test_times_limits_a_fault_to_the_next_requests(emulator, client):
    emulator.set_faults({"error_rate": 1.0, "times": 2})
    for _ in range(2):
        with pytest.raises(CalcomUnavailable):
            book(client)
    assert book(client).status == "accepted"


@pytest.mark.parametrize("settings,message", [
    ({"eror_rate": 0.5}, "unknown fault settings: eror_rate"),
    ({"error_rate": 2}, "rate must be between 0 and 1"),
    ({"error_rate": 1, "endpoint": "delete-everything"}, "unknown endpoint"),
    ("error_rate", "expected key=value"),
])
def test_nonsense_fault_settings_are_refused(settings, message):
    with pytest.raises(FaultSettingsError, match=message):
        FaultPlan.parse(settings)


def test_faults_through_the_control_api(emulator, client):
    response = emulator.control("POST", "/faults", json={"error_rate": 1.0, "endpoint": "create", "seed": 3})
    assert response.status_code == 200 and response.json()["rules"][0]["kind"] == "error"
    assert emulator.control("POST", "/faults", json={"error_rate": "lots"}).status_code == 400
    with pytest.raises(CalcomUnavailable):
        book(client)
    assert emulator.control("GET", "/faults").json()["injected"]["error"] == 1
    assert emulator.control("DELETE", "/faults").json()["rules"] == []
    assert book(client).status == "accepted"


# --- webhooks and the control API --------------------------------------------------------------


class Capture:
    def __init__(self):
        self.received = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.received.append((dict(request.headers), request.get_data()))
        return Response("ok")(environ, start_response)


def test_signed_webhooks_for_created_cancelled_and_rescheduled(emulator, client):
    capture = Capture()
    with serve_wsgi(capture) as url:
        emulator.send_webhooks_to(url + "/hook", "whsec_test")
        booking = book(client, appointment_id=5)
        moved = client.reschedule_booking(booking.uid, TUESDAY_10 + timedelta(hours=1))
        client.cancel_booking(moved.uid, "Krank")
        emulator.wait_for_webhooks()
    bodies = []
    for headers, body in capture.received:
        assert verify_signature(body, "whsec_test", headers[SIGNATURE_HEADER])
        bodies.append(json.loads(body))
    assert [b["triggerEvent"] for b in bodies] == ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"]
    created, rescheduled, cancelled = (b["payload"] for b in bodies)
    assert created["uid"] == booking.uid and created["metadata"][APPOINTMENT_KEY] == "5"
    assert created["startTime"] == "2026-12-08T09:00:00Z" and created["organizer"]["id"] == 101
    assert created["attendees"][0]["phoneNumber"] == "+4915100000001"
    assert rescheduled["uid"] == moved.uid and rescheduled["rescheduleUid"] == booking.uid
    assert rescheduled["rescheduleStartTime"] == "2026-12-08T09:00:00Z"
    assert cancelled["uid"] == moved.uid and cancelled["status"] == "CANCELLED"
    assert cancelled["cancellationReason"] == "Krank" and "metadata" not in cancelled


def test_direct_booking_through_the_control_api_sends_a_webhook(emulator):
    capture = Capture()
    with serve_wsgi(capture) as url:
        emulator.control("POST", "/webhooks", json={"url": url, "secret": "whsec_test"})
        response = emulator.control("POST", "/bookings", json={
            "eventTypeId": 1001, "start": "2026-12-08T09:00:00Z", "hostId": 101,
            "attendee": {"name": "Web Kunde", "email": "web@example.com", "timeZone": "Europe/Berlin"}})
        emulator.wait_for_webhooks()
    assert response.status_code == 201 and response.json()["origin"] == "direct"
    payload = json.loads(capture.received[0][1])["payload"]
    assert payload["metadata"] == {"videoCallUrl": f"https://app.cal.com/video/{payload['uid']}"}  # not ours
    log = emulator.control("GET", "/webhooks").json()
    assert log["deliveries"][0]["status"] == 200 and log["secret_set"] is True and "whsec" not in json.dumps(log)
    refused = emulator.control("POST", "/bookings", json={"eventTypeId": 1001, "start": "2026-12-08T09:00:00Z",
                                                           "attendee": {"name": "Y", "email": "y@example.com",
                                                                        "timeZone": "UTC"}})
    assert refused.status_code == 400  # the host is busy, as for anyone


def test_reset_forgets_bookings_and_faults(emulator, client):
    book(client)
    emulator.set_faults({"error_rate": 0.5})
    summary = emulator.control("POST", "/reset").json()
    assert summary["bookings"] == 0 and summary["faults"]["rules"] == [] and summary["event_types"] == 1


def test_unknown_route_is_a_nest_style_404(emulator):
    response = raw(emulator, "GET", "/v2/nothing")
    assert response.status_code == 404 and response.json()["error"]["message"] == "Cannot GET /v2/nothing"


# --- the demo world ---------------------------------------------------------------------------------


def test_world_from_the_database_matches_what_slotguard_believes(clock, calcom_emulator, demo):
    from sqlalchemy import func, select

    from core.models import Appointment, SyncStatus
    from core.seed import DEMO_PHONE

    summary = calcom_emulator.load_world(demo)
    # 6 team event types, and Berlin Mitte's three staff have their own for each of the 3 services.
    assert summary.hosts == 7 and summary.event_types == 6 + 3 * 3
    event_types = calcom_emulator.state.event_types
    assert event_types[1001].host_ids == (101, 102, 103, 104, 105)
    assert [(e, event_types[e].host_ids) for e in (100101, 100102, 100103, 100301)] == [
        (100101, (101,)), (100102, (102,)), (100103, (103,)), (100301, (101,))]
    synced = demo.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.sync_status == SyncStatus.SYNCED, Appointment.calcom_booking_uid.is_not(None)))
    assert 0 < summary.bookings >= synced  # composite appointments are one booking per step

    siebert = demo.scalar(select(Appointment).where(Appointment.call_id == "call_siebert_case"))
    assert siebert.branch.phone_number == DEMO_PHONE
    client = CalcomClient(calcom_emulator.url, "cal_test_key")
    free = client.get_slots(1001, siebert.starts_at, siebert.starts_at + timedelta(minutes=30), "Europe/Berlin",
                            host_user_id=siebert.staff.calcom_user_id)
    # The pending appointment never reached Cal.com: Cal.com offers its slot.
    assert siebert.starts_at in [s.start for s in free]
    own = client.get_slots(100101, siebert.starts_at, siebert.starts_at + timedelta(minutes=30), "Europe/Berlin")
    assert siebert.starts_at in [s.start for s in own]  # Anna's own event type says the same

    any_synced = demo.scalar(select(Appointment).where(
        Appointment.sync_status == SyncStatus.SYNCED, Appointment.starts_at > clock.utcnow(),
        Appointment.status == "booked").order_by(Appointment.id))
    booking = client.get_booking(any_synced.calcom_booking_uid if any_synced.service.kind.value == "regular"
                                 else any_synced.segments[0].calcom_booking_uid)
    assert booking.metadata[APPOINTMENT_KEY] == str(any_synced.id)
    assert booking.hosts[0]["id"] == any_synced.staff.calcom_user_id
    # Berlin Mitte's bookings are on their staff's own event types; Kreuzberg's on the team ones.
    mitte = demo.scalar(select(Appointment).where(
        Appointment.sync_status == SyncStatus.SYNCED, Appointment.branch_id == siebert.branch_id,
        Appointment.service_id == siebert.service_id).order_by(Appointment.id))
    assert client.get_booking(mitte.calcom_booking_uid).event_type_id == 1001 * 100 + (
        [m.id for m in siebert.branch.staff].index(mitte.staff_id) + 1)
    kreuzberg = demo.scalar(select(Appointment).where(
        Appointment.sync_status == SyncStatus.SYNCED, Appointment.branch_id != siebert.branch_id,
        Appointment.company_id == siebert.company_id, Appointment.service_id == siebert.service_id))
    assert client.get_booking(kreuzberg.calcom_booking_uid).event_type_id == 1001


def test_cli_refuses_nonsense_faults(runner):
    result = runner.invoke(args=["calcom", "emulator", "--empty", "--faults", "error_rate=lots"])
    assert result.exit_code == 2 and "error_rate" in result.output


def test_procfile_dev_is_the_procfile_plus_the_emulator():
    """`make run` uses Procfile.dev when no real Cal.com key is set: same processes, plus calcom."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    base = (root / "Procfile").read_text().splitlines()
    dev = (root / "Procfile.dev").read_text().splitlines()
    assert dev[:len(base)] == base
    assert [line.split(":", 1)[0] for line in dev[len(base):]] == ["calcom"]
    assert "calcom emulator" in dev[-1] and "CALCOM_EMULATOR_PORT" in dev[-1]
