"""A small stateful Cal.com stand-in for the voice tests, speaking Cal.com API v2's wire
format (`/work/notes/calcom-api.md`): GET /v2/slots (`cal-api-version: 2024-09-04`,
`format=range`, `rrHostSubsetIds`) and POST /v2/bookings (`2024-08-13`, 201 with the
booking, 400 "User either already has booking at this time or is not available" on a
conflict). Hosts work fixed local hours; slots start on the event type's slot interval.

`fail_with(status)` / `hang()` make every following request fail, to test the
voice functions when Cal.com is down or slow.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

from core.clock import utcnow

UTC = timezone.utc


@dataclass
class EventType:
    id: int
    length: int  # minutes
    interval: int  # minutes between slot starts


@dataclass
class FakeBooking:
    id: int
    uid: str
    host: int
    event_type_id: int
    start: datetime
    end: datetime
    metadata: dict
    attendee: dict


@dataclass
class FakeCalcom:
    hosts: list[int] = field(default_factory=lambda: [100, 101])
    tz: str = "Europe/Berlin"
    # Local working hours per ISO weekday.
    hours: dict[int, tuple[time, time]] = field(
        default_factory=lambda: {d: (time(9), time(18)) for d in range(1, 7)}
    )
    event_types: dict[int, EventType] = field(default_factory=lambda: {
        1001: EventType(1001, 30, 30), 1002: EventType(1002, 60, 30), 1003: EventType(1003, 100, 30),
    })
    bookings: list[FakeBooking] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    url: str = ""
    _failure: tuple[int, dict] | None = None
    _hang: threading.Event | None = None

    # --- controls -----------------------------------------------------------------

    def book(self, host: int, start: datetime, minutes: int, event_type_id: int = 1001) -> FakeBooking:
        """A booking made directly in Cal.com (unknown to Slotguard)."""
        booking = FakeBooking(len(self.bookings) + 1, f"fake-{len(self.bookings) + 1}", host, event_type_id,
                              start, start + timedelta(minutes=minutes), {}, {})
        self.bookings.append(booking)
        return booking

    def fail_with(self, status: int = 503) -> None:
        body = {"status": "error", "timestamp": "2026-12-07T08:00:00.000Z", "path": "/v2/slots",
                "error": {"code": "InternalServerErrorException", "message": "Service Unavailable"}}
        self._failure = (status, body)

    def hang(self) -> threading.Event:
        """Every request waits until the returned event is set (a client timeout)."""
        self._hang = threading.Event()
        return self._hang

    def recover(self) -> None:
        self._failure = None
        if self._hang is not None:
            self._hang.set()
            self._hang = None

    def slot_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/v2/slots"]

    # --- the API ------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.requests.append({"method": request.method, "path": request.path, "args": dict(request.args),
                              "headers": dict(request.headers), "body": request.get_data(as_text=True)})
        if self._hang is not None:
            self._hang.wait(10)
        if self._failure is not None:
            status, body = self._failure
            return self._json(body, status)(environ, start_response)
        if request.method == "GET" and request.path == "/v2/slots":
            response = self._slots(request)
        elif request.method == "POST" and request.path == "/v2/bookings":
            response = self._create(request)
        else:
            response = self._json(self._error(404, "NotFoundException", f"Cannot {request.method} {request.path}"), 404)
        return response(environ, start_response)

    def _slots(self, request: Request) -> Response:
        assert request.headers.get("cal-api-version") == "2024-09-04"
        event_type = self.event_types.get(int(request.args["eventTypeId"]))
        if event_type is None:
            return self._json(self._error(404, "NotFoundException", "Event type not found"), 404)
        start = _parse(request.args["start"])
        end = _parse(request.args["end"])
        zone = ZoneInfo(request.args.get("timeZone", "UTC"))
        subset = request.args.get("rrHostSubsetIds")
        hosts = [int(h) for h in subset.split(",")] if subset else self.hosts
        data: dict[str, list] = {}
        for host in hosts:
            for slot_start in self._free_starts(host, event_type, start, end):
                local_start = slot_start.astimezone(zone)
                items = data.setdefault(local_start.date().isoformat(), [])
                item = {"start": local_start.isoformat(timespec="milliseconds"),
                        "end": (slot_start + timedelta(minutes=event_type.length)).astimezone(zone).isoformat(
                            timespec="milliseconds")}
                if item not in items:
                    items.append(item)
        for items in data.values():
            items.sort(key=lambda i: i["start"])
        return self._json({"status": "success", "data": dict(sorted(data.items()))})

    def _free_starts(self, host: int, event_type: EventType, start: datetime, end: datetime):
        zone = ZoneInfo(self.tz)
        day = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date()
        length = timedelta(minutes=event_type.length)
        while day <= last:
            hours = self.hours.get(day.isoweekday())
            if hours:
                cursor = datetime.combine(day, hours[0], tzinfo=zone).astimezone(UTC)
                closes = datetime.combine(day, hours[1], tzinfo=zone).astimezone(UTC)
                while cursor + length <= closes:
                    if start <= cursor < end and cursor > utcnow() and self._free(host, cursor, cursor + length):
                        yield cursor
                    cursor += timedelta(minutes=event_type.interval)
            day += timedelta(days=1)

    def _free(self, host: int, start: datetime, end: datetime) -> bool:
        return not any(b.host == host and b.start < end and start < b.end for b in self.bookings)

    def _create(self, request: Request) -> Response:
        assert request.headers.get("cal-api-version") == "2024-08-13"
        body = json.loads(request.get_data(as_text=True))
        event_type = self.event_types[int(body["eventTypeId"])]
        start = _parse(body["start"])
        minutes = int(body.get("lengthInMinutes") or event_type.length)
        end = start + timedelta(minutes=minutes)
        host = next((h for h in self.hosts if self._free(h, start, end)), None)
        if host is None:
            message = "User either already has booking at this time or is not available"
            return self._json(self._error(400, "BadRequestException", message), 400)
        booking = FakeBooking(len(self.bookings) + 1, f"uid-{len(self.bookings) + 1}", host, event_type.id, start, end,
                              body.get("metadata") or {}, body["attendee"])
        self.bookings.append(booking)
        return self._json({"status": "success", "data": {
            "id": booking.id, "uid": booking.uid, "title": "Termin", "status": "accepted",
            "start": _format(start), "end": _format(end), "duration": minutes,
            "eventTypeId": event_type.id, "eventType": {"id": event_type.id, "slug": f"et-{event_type.id}"},
            "hosts": [{"id": host, "name": f"Host {host}", "email": f"h{host}@example.com", "username": f"h{host}",
                       "timeZone": self.tz}],
            "metadata": booking.metadata, "attendees": [body["attendee"]], "location": "",
            "createdAt": _format(utcnow()), "updatedAt": _format(utcnow()),
        }}, 201)

    @staticmethod
    def _error(status: int, code: str, message: str) -> dict:
        return {"status": "error", "timestamp": _format(utcnow()), "path": "/v2",
                "error": {"code": code, "message": message,
                          "details": {"message": message, "error": "Bad Request", "statusCode": status}}}

    @staticmethod
    def _json(body: dict, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json",
                        headers={"X-RateLimit-Limit-Default": "120", "X-RateLimit-Remaining-Default": "119",
                                 "X-RateLimit-Reset-Default": "60"})


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
