"""The Cal.com client against a local HTTP server answering in Cal.com's documented JSON."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
import redis as redis_lib
from werkzeug.wrappers import Request, Response

from calcom import call_log
from calcom.client import Attendee, Booking, CalcomClient, Slot, get_client, retry_after_seconds
from calcom.errors import (
    CalcomError,
    CalcomRequestError,
    CalcomTimeout,
    CalcomUnavailable,
    MalformedResponse,
    RateLimited,
    RetryableCalcomError,
    SlotUnavailable,
)
from calcom.metadata import APPOINTMENT_KEY, SEGMENT_KEY, appointment_id_from, booking_metadata
from tests.calcom_fixtures import serve_wsgi

START = datetime(2030, 1, 8, 13, 0, tzinfo=timezone.utc)


def booking_json(uid="bk_1", *, status="accepted", start="2030-01-08T13:00:00.000Z", end="2030-01-08T13:30:00.000Z",
                 metadata=None, **extra):
    """A BookingOutput_2024_08_13 as Cal.com returns it."""
    data = {
        "id": 123, "uid": uid, "title": "Herrenhaarschnitt between Anna and Erika", "description": "",
        "hosts": [{"id": 101, "name": "Anna Becker", "email": "anna@example.com", "username": "anna-becker",
                   "timeZone": "Europe/Berlin"}],
        "status": status, "start": start, "end": end, "duration": 30,
        "eventTypeId": 1001, "eventType": {"id": 1001, "slug": "herrenhaarschnitt"},
        "location": "", "absentHost": False,
        "createdAt": "2030-01-01T10:00:00.000Z", "updatedAt": "2030-01-01T10:00:00.000Z",
        "metadata": metadata if metadata is not None else {APPOINTMENT_KEY: "42"},
        "attendees": [{"name": "Erika Mustermann", "email": "erika@example.com", "displayEmail": "erika@example.com",
                       "timeZone": "Europe/Berlin", "language": "de", "absent": False, "phoneNumber": "+4915100000001"}],
        "guests": [], "bookingFieldsResponses": {"name": "Erika Mustermann"},
    }
    data.update(extra)
    return data


def error_json(status, code, message, path="/v2/bookings"):
    return {"status": "error", "timestamp": "2030-01-01T00:00:00.000Z", "path": path,
            "error": {"code": code, "message": message,
                      "details": {"message": message, "error": "Bad Request", "statusCode": status}}}


@dataclass
class Canned:
    status: int = 200
    body: object = None  # dict → JSON; bytes/str → sent as is
    headers: dict = field(default_factory=dict)
    hang: bool = False  # wait (until the test ends) instead of answering


class FakeCalcom:
    """A WSGI app that answers each request with the next canned response and logs it."""

    def __init__(self):
        self.responses: list[Canned] = []
        self.requests: list[dict] = []
        self.release = threading.Event()

    def answer(self, status=200, body=None, headers=None, hang=False):
        self.responses.append(Canned(status, body, headers or {}, hang))

    def __call__(self, environ, start_response):
        request = Request(environ)
        raw = request.get_data()
        self.requests.append({
            "method": request.method, "path": request.path, "args": request.args.to_dict(),
            "headers": dict(request.headers), "json": json.loads(raw) if raw else None,
        })
        canned = self.responses.pop(0) if self.responses else Canned(500, {"status": "error"})
        if canned.hang:
            self.release.wait(10)
        if isinstance(canned.body, (dict, list)):
            response = Response(json.dumps(canned.body), canned.status, content_type="application/json")
        else:
            response = Response(canned.body or b"", canned.status, content_type="text/html")
        for name, value in canned.headers.items():
            response.headers[name] = value
        return response(environ, start_response)


@pytest.fixture
def fake():
    fake = FakeCalcom()
    with serve_wsgi(fake) as url:
        fake.url = url
        yield fake
        fake.release.set()


@pytest.fixture
def redis(redis_url):
    connection = redis_lib.Redis.from_url(redis_url)
    connection.delete(call_log.KEY)
    yield connection
    connection.delete(call_log.KEY)


@pytest.fixture
def client(fake, redis):
    return CalcomClient(fake.url, "cal_test_abc", connect_timeout=1, read_timeout=0.5, redis=redis)


ERIKA = Attendee(name="Erika Mustermann", email="erika@example.com", phone_number="+4915100000001")


# --- requests on the wire ------------------------------------------------------------


def test_create_booking_sends_documented_request_and_parses_booking(fake, client):
    fake.answer(201, {"status": "success", "data": booking_json(metadata={APPOINTMENT_KEY: "42", SEGMENT_KEY: "0"})})

    booking = client.create_booking(event_type_id=1001, start=START, attendee=ERIKA,
                                    metadata=booking_metadata(42, 0))

    sent = fake.requests[0]
    assert sent["method"] == "POST" and sent["path"] == "/v2/bookings"
    assert sent["headers"]["Authorization"] == "Bearer cal_test_abc"
    assert sent["headers"]["Cal-Api-Version"] == "2024-08-13"
    assert sent["json"] == {
        "start": "2030-01-08T13:00:00.000Z", "eventTypeId": 1001,
        "attendee": {"name": "Erika Mustermann", "email": "erika@example.com", "phoneNumber": "+4915100000001",
                     "timeZone": "Europe/Berlin", "language": "de"},
        "metadata": {"slotguard_appointment_id": "42", "slotguard_segment": "0"},
    }
    assert isinstance(booking, Booking)
    assert booking.uid == "bk_1" and booking.id == 123 and booking.status == "accepted"
    assert booking.start == START and booking.end == START + timedelta(minutes=30)
    assert booking.start.tzinfo is not None
    assert booking.event_type_id == 1001
    assert appointment_id_from(booking.metadata) == 42
    assert booking.attendees[0].phone_number == "+4915100000001"
    assert booking.hosts[0]["id"] == 101
    assert booking.rescheduled_from_uid is None


def test_create_booking_refuses_attendee_without_contact_before_sending(fake, client):
    with pytest.raises(ValueError, match="contact method"):
        client.create_booking(event_type_id=1001, start=START, attendee=Attendee(name="Erika"), metadata={})
    with pytest.raises(ValueError, match="at most 50 keys"):
        client.create_booking(event_type_id=1001, start=START, attendee=ERIKA, metadata={"k" * 41: "v"})
    assert fake.requests == []


def test_get_slots_uses_slots_version_and_returns_utc_slots(fake, client):
    fake.answer(200, {"status": "success", "data": {
        "2030-01-08": [{"start": "2030-01-08T09:00:00.000+01:00", "end": "2030-01-08T09:30:00.000+01:00"},
                       {"start": "2030-01-08T09:30:00.000+01:00", "end": "2030-01-08T10:00:00.000+01:00"}],
        "2030-01-09": [{"start": "2030-01-09T14:00:00.000+01:00", "end": "2030-01-09T14:30:00.000+01:00"}],
    }})

    slots = client.get_slots(1001, START, START + timedelta(days=2), "Europe/Berlin", duration_minutes=30,
                             host_user_id=101)

    sent = fake.requests[0]
    assert sent["path"] == "/v2/slots"
    assert sent["headers"]["Cal-Api-Version"] == "2024-09-04"
    assert sent["args"] == {"eventTypeId": "1001", "start": "2030-01-08T13:00:00.000Z",
                            "end": "2030-01-10T13:00:00.000Z", "timeZone": "Europe/Berlin", "format": "range",
                            "duration": "30", "rrHostSubsetIds": "101"}
    assert slots[0] == Slot(datetime(2030, 1, 8, 8, 0, tzinfo=timezone.utc), datetime(2030, 1, 8, 8, 30, tzinfo=timezone.utc))
    assert [s.start.hour for s in slots] == [8, 8, 13]
    assert all(s.start.utcoffset() == timedelta(0) for s in slots)


def test_get_slots_time_format_without_end_uses_duration(fake, client):
    fake.answer(200, {"status": "success", "data": {"2030-01-08": [{"start": "2030-01-08T09:00:00.000Z"}]}})
    slots = client.get_slots(1001, START, START + timedelta(days=1), "UTC", duration_minutes=45)
    assert slots[0].end - slots[0].start == timedelta(minutes=45)


def test_empty_slots_object_means_no_slots(fake, client):
    fake.answer(200, {"status": "success", "data": {}})
    assert client.get_slots(1001, START, START + timedelta(days=1), "UTC") == []


def test_list_bookings_sends_filters_and_reads_pagination(fake, client):
    fake.answer(200, {"status": "success", "data": [booking_json("a"), booking_json("b")],
                      "pagination": {"totalItems": 5, "remainingItems": 1, "itemsReturned": 2, "itemsPerPage": 2,
                                     "currentPage": 2, "totalPages": 3, "hasNextPage": True,
                                     "hasPreviousPage": True}})

    page = client.list_bookings(event_type_id=1001, attendee_email="erika@example.com", after_start=START,
                                before_end=START + timedelta(days=1), status=["upcoming", "past"], take=2, skip=2)

    assert fake.requests[0]["args"] == {
        "take": "2", "skip": "2", "eventTypeId": "1001", "attendeeEmail": "erika@example.com",
        "afterStart": "2030-01-08T13:00:00.000Z", "beforeEnd": "2030-01-09T13:00:00.000Z", "status": "upcoming,past"}
    assert [b.uid for b in page.items] == ["a", "b"]
    assert page.total == 5 and page.has_more is True


def test_get_cancel_and_reschedule(fake, client):
    fake.answer(200, {"status": "success", "data": booking_json("bk_1")})
    fake.answer(200, {"status": "success", "data": booking_json("bk_1", status="cancelled",
                                                                cancellationReason="Kunde hat abgesagt")})
    fake.answer(201, {"status": "success", "data": booking_json("bk_2", rescheduledFromUid="bk_1",
                                                                start="2030-01-09T10:00:00.000Z",
                                                                end="2030-01-09T10:30:00.000Z")})

    assert client.get_booking("bk_1").uid == "bk_1"
    cancelled = client.cancel_booking("bk_1", "Kunde hat abgesagt")
    moved = client.reschedule_booking("bk_1", datetime(2030, 1, 9, 10, 0, tzinfo=timezone.utc), "Kundenwunsch")

    assert [r["path"] for r in fake.requests] == ["/v2/bookings/bk_1", "/v2/bookings/bk_1/cancel",
                                                   "/v2/bookings/bk_1/reschedule"]
    assert fake.requests[1]["json"] == {"cancellationReason": "Kunde hat abgesagt"}
    assert fake.requests[2]["json"] == {"start": "2030-01-09T10:00:00.000Z", "reschedulingReason": "Kundenwunsch"}
    assert cancelled.is_cancelled and cancelled.cancellation_reason == "Kunde hat abgesagt"
    assert moved.uid == "bk_2" and moved.rescheduled_from_uid == "bk_1"


def test_cancelling_an_already_cancelled_booking_is_harmless(fake, client):
    fake.answer(400, error_json(400, "BadRequestException", "This booking has already been cancelled."))
    assert client.cancel_booking("bk_1", "again") is None


# --- every error class ----------------------------------------------------------------


def test_host_already_booked_is_slot_unavailable(fake, client):
    fake.answer(400, error_json(400, "BadRequestException",
                                "User either already has booking at this time or is not available"))
    with pytest.raises(SlotUnavailable) as caught:
        client.create_booking(event_type_id=1001, start=START, attendee=ERIKA, metadata={})
    assert caught.value.status == 400 and caught.value.code == "BadRequestException"
    assert not isinstance(caught.value, RetryableCalcomError)


def test_team_host_already_booked_is_slot_unavailable(fake, client):
    fake.answer(400, error_json(400, "BadRequestException",
                                "One of the hosts either already has booking at this time or is not available"))
    with pytest.raises(SlotUnavailable):
        client.create_booking(event_type_id=1001, start=START, attendee=ERIKA, metadata={})


@pytest.mark.parametrize("status,code,message", [
    (400, "BadRequestException", "Attempting to book a meeting in the past."),
    (404, "NotFoundException", "Event type with id 1003 not found."),
    (401, "UnauthorizedException", "Invalid API Key"),
    (422, "UnprocessableEntityException", "Can't book this team event type because it has no hosts."),
])
def test_other_4xx_is_request_error_with_code_and_message(fake, client, status, code, message):
    fake.answer(status, error_json(status, code, message))
    with pytest.raises(CalcomRequestError) as caught:
        client.create_booking(event_type_id=1003, start=START, attendee=ERIKA, metadata={})
    assert (caught.value.status, caught.value.code, caught.value.message) == (status, code, message)
    assert caught.value.endpoint == "POST /v2/bookings"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retryable_unavailable(fake, client, status):
    fake.answer(status, {"status": "error", "error": {"code": "INTERNAL_SERVER_ERROR",
                                                      "message": "Internal server error."}})
    with pytest.raises(CalcomUnavailable) as caught:
        client.get_booking("bk_1")
    assert caught.value.status == status and isinstance(caught.value, RetryableCalcomError)


def test_5xx_with_html_body_is_still_unavailable(fake, client):
    fake.answer(502, b"<html>Bad Gateway</html>")
    with pytest.raises(CalcomUnavailable) as caught:
        client.get_booking("bk_1")
    assert caught.value.message == "Cal.com answered HTTP 502"


def test_429_with_calcom_default_headers(fake, client):
    fake.answer(429, {"status": "error", "timestamp": "2030-01-01T00:00:00.000Z", "path": "/v2/bookings",
                      "error": {"code": "ThrottlerException",
                                "message": "CustomThrottlerGuard - Too many requests. Please try again later.",
                                "details": "CustomThrottlerGuard - Too many requests. Please try again later."}},
                headers={"X-RateLimit-Limit-Default": "120", "X-RateLimit-Remaining-Default": "0",
                         "X-RateLimit-Reset-Default": "37"})
    with pytest.raises(RateLimited) as caught:
        client.create_booking(event_type_id=1001, start=START, attendee=ERIKA, metadata={})
    assert caught.value.status == 429 and caught.value.code == "ThrottlerException"
    assert caught.value.retry_after == 37


def test_429_with_plain_headers_and_retry_after(fake, client):
    fake.answer(429, {"status": "error", "error": {"code": "ThrottlerException", "message": "Too many requests"}},
                headers={"Retry-After": "12", "X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset": "50"})
    with pytest.raises(RateLimited) as caught:
        client.get_booking("bk_1")
    assert caught.value.retry_after == 12


def test_429_reset_given_as_epoch(clock):
    now = clock.utcnow().timestamp()
    headers = {"X-RateLimit-Remaining-Default": "0", "X-RateLimit-Reset-Default": str(int(now + 20))}
    assert retry_after_seconds(headers) == pytest.approx(20)
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int((now + 5) * 1000))}
    assert retry_after_seconds(headers) == pytest.approx(5)
    assert retry_after_seconds({"Retry-After": "Mon, 07 Dec 2026 08:00:30 GMT"}) == pytest.approx(30)
    assert retry_after_seconds({}) is None


def test_429_without_any_hint_has_no_retry_after(fake, client):
    fake.answer(429, {"status": "error", "error": {"code": "ThrottlerException", "message": "Too many requests"}})
    with pytest.raises(RateLimited) as caught:
        client.get_booking("bk_1")
    assert caught.value.retry_after is None


def test_read_timeout_is_retryable_timeout(fake, client):
    fake.answer(200, {"status": "success", "data": booking_json()}, hang=True)
    with pytest.raises(CalcomTimeout) as caught:
        client.get_booking("bk_1")
    assert caught.value.status is None and caught.value.code == "timeout"
    assert isinstance(caught.value, RetryableCalcomError)


def test_unreachable_is_unavailable(redis):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = CalcomClient(f"http://127.0.0.1:{port}", "cal_test", connect_timeout=0.5, read_timeout=0.5, redis=redis)
    with pytest.raises(CalcomUnavailable) as caught:
        client.get_booking("bk_1")
    assert caught.value.status is None and caught.value.code == "connection_error"


@pytest.mark.parametrize("body", [
    b"<html>not json</html>",
    {"status": "success"},
    {"status": "success", "data": {"id": 1}},
    {"status": "success", "data": booking_json(start="yesterday")},
    {"data": booking_json()},
])
def test_malformed_success_body(fake, client, body):
    fake.answer(200, body)
    with pytest.raises(MalformedResponse):
        client.get_booking("bk_1")


def test_malformed_slots(fake, client):
    fake.answer(200, {"status": "success", "data": [{"start": "2030-01-08T09:00:00Z"}]})
    with pytest.raises(MalformedResponse):
        client.get_slots(1001, START, START + timedelta(days=1), "UTC")


def test_all_errors_share_the_base_and_fields():
    for cls in (CalcomUnavailable, CalcomTimeout, RateLimited, SlotUnavailable, CalcomRequestError, MalformedResponse):
        error = cls("boom", status=400, code="X")
        assert isinstance(error, CalcomError)
        assert (error.status, error.code, error.message) == (400, "X", "boom")


def test_errors_survive_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(RateLimited("slow down", retry_after=7, status=429, code="ThrottlerException")))
    assert (error.retry_after, error.status, error.code, error.message) == (7, 429, "ThrottlerException", "slow down")


# --- the call log -----------------------------------------------------------------------


def test_every_call_is_recorded_with_status_latency_and_headroom(fake, client, redis, clock):
    fake.answer(200, {"status": "success", "data": booking_json()},
                headers={"X-RateLimit-Limit-Default": "120", "X-RateLimit-Remaining-Default": "117",
                         "X-RateLimit-Reset-Default": "60"})
    fake.answer(429, {"status": "error", "error": {"code": "ThrottlerException", "message": "Too many"}},
                headers={"X-RateLimit-Limit-Default": "120", "X-RateLimit-Remaining-Default": "0",
                         "X-RateLimit-Reset-Default": "30"})
    fake.answer(400, error_json(400, "BadRequestException", "Attempting to book a meeting in the past."))
    fake.answer(503, {"status": "error", "error": {"code": "X", "message": "down"}})

    client.get_booking("secret-uid-1")
    for _ in range(3):
        clock.advance(timedelta(seconds=1))
        with pytest.raises(CalcomError):
            client.get_booking("secret-uid-2")

    entries = call_log.calls(redis, 60)
    assert [(e["m"], e["e"], e["s"]) for e in entries] == [("GET", "/v2/bookings/{uid}", s) for s in (200, 429, 400, 503)]
    assert all("secret-uid" not in json.dumps(e) for e in entries)
    summary = call_log.summary(redis, 60)
    assert summary["calls"] == 4
    assert summary["errors"] == 2  # 429 and 503; the 400 was an answer, not trouble
    assert summary["error_rate"] == 0.5
    assert summary["rate_limited"] == 1
    assert summary["client_errors"] == 1
    assert summary["min_remaining"] == 0 and summary["limit"] == 120
    assert summary["p50_ms"] is not None and summary["p95_ms"] >= summary["p50_ms"]


def test_call_log_window_and_retention(redis, clock):
    call_log.record(redis, method="GET", endpoint="/v2/slots", status=200, latency_ms=100, outcome="ok")
    clock.advance(timedelta(minutes=10))
    call_log.record(redis, method="GET", endpoint="/v2/slots", status=None, latency_ms=2500, outcome="timeout")
    assert call_log.summary(redis, 300)["calls"] == 1
    assert call_log.summary(redis, 300)["timeouts"] == 1
    assert call_log.summary(redis, 3600)["calls"] == 2
    clock.advance(timedelta(hours=2))
    call_log.record(redis, method="GET", endpoint="/v2/slots", status=200, latency_ms=50, outcome="ok",
                    retention_seconds=3600)
    assert call_log.summary(redis, 24 * 3600)["calls"] == 1  # older entries trimmed


def test_empty_call_log_summary(redis):
    summary = call_log.summary(redis, 300)
    assert summary == {"calls": 0, "errors": 0, "error_rate": None, "rate_limited": 0, "p50_ms": None,
                       "p95_ms": None, "min_remaining": None, "limit": None, "timeouts": 0, "client_errors": 0,
                       "window_seconds": 300}


def test_recording_survives_redis_being_down(fake):
    broken = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    client = CalcomClient(fake.url, "cal_test", read_timeout=1, redis=broken)
    fake.answer(200, {"status": "success", "data": booking_json()})
    assert client.get_booking("bk_1").uid == "bk_1"


# --- configuration ------------------------------------------------------------------------


def test_get_client_reads_config_and_reuses_one_session(app):
    app.config["CALCOM_AVAILABILITY_TIMEOUT"] = 1.5
    availability = get_client("availability")
    sync = get_client(purpose="sync")
    assert availability is get_client("availability")
    assert availability.timeout == (app.config["CALCOM_CONNECT_TIMEOUT"], 1.5)
    assert sync.timeout[1] == app.config["CALCOM_SYNC_TIMEOUT"] > availability.timeout[1]
    assert availability.base_url == "http://calcom.invalid"
    assert availability.session.headers["Authorization"] == "Bearer cal_test_key"
    with pytest.raises(ValueError):
        get_client("other")
