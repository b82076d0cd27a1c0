"""Cal.com webhooks on the wire: the signature, and payloads in Cal.com's shape.

Cal.com POSTs `{"triggerEvent", "createdAt", "payload"}` with
`X-Cal-Signature-256: hex(HMAC-SHA256(secret, raw body))` (the literal
"no-secret-provided" when the webhook has no secret). Slotguard's receiver verifies
with `verify_signature`; the emulator signs with `sign` and builds payloads with
`booking_payload`, so both sides share one definition of the format.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

SIGNATURE_HEADER = "X-Cal-Signature-256"
VERSION_HEADER = "X-Cal-Webhook-Version"
WEBHOOK_VERSION = "2021-10-20"
NO_SECRET = "no-secret-provided"

BOOKING_CREATED = "BOOKING_CREATED"
BOOKING_CANCELLED = "BOOKING_CANCELLED"
BOOKING_RESCHEDULED = "BOOKING_RESCHEDULED"
PING = "PING"


def sign(body: bytes, secret: str | None) -> str:
    """The `X-Cal-Signature-256` value Cal.com sends for `body`."""
    if not secret:
        return NO_SECRET
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str | None, header: str | None) -> bool:
    """True when `header` is the HMAC of `body` under `secret` (constant-time compare).

    No secret configured, or no header, is never valid: an unsigned request could come
    from anyone.
    """
    if not secret or not header:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), header.strip().lower().encode("ascii", "replace"))


def _utc_z(moment: datetime) -> str:
    """`2024-01-01T10:00:00Z` (BOOKING_CREATED/RESCHEDULED examples)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_offset(moment: datetime) -> str:
    """`2024-01-04T10:00:00+00:00` (dayjs format, BOOKING_CANCELLED example)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _offset_minutes(tz_name: str, at: datetime) -> int:
    try:
        offset = at.astimezone(ZoneInfo(tz_name)).utcoffset()
    except Exception:
        return 0
    return int(offset.total_seconds() // 60) if offset else 0


def _person(person: Mapping[str, Any], at: datetime, *, organizer: bool) -> dict[str, Any]:
    tz_name = person.get("timeZone") or "UTC"
    data: dict[str, Any] = {
        "name": person.get("name") or "",
        "email": person.get("email") or "",
        "timeZone": tz_name,
        "language": {"locale": person.get("language") or "en"},
        "utcOffset": _offset_minutes(tz_name, at),
    }
    if organizer:
        data = {"id": person.get("id"), **data, "username": person.get("username"), "timeFormat": "h:mma"}
    else:
        first, _, last = (person.get("name") or "").partition(" ")
        data.update(firstName=first, lastName=last)
        if person.get("phoneNumber"):
            data["phoneNumber"] = person["phoneNumber"]
    return data


def booking_payload(
    trigger: str,
    *,
    booking: Mapping[str, Any],
    event_type: Mapping[str, Any],
    organizer: Mapping[str, Any],
    attendees: Iterable[Mapping[str, Any]],
    created_at: datetime,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A BOOKING_CREATED / _CANCELLED / _RESCHEDULED delivery body, as Cal.com sends it.

    `booking`: uid, id, start, end (aware), title, status, metadata, cancellation_reason.
    `previous`: for a reschedule, the old booking's uid, id, start, end.
    """
    start, end = booking["start"], booking["end"]
    people = [dict(a) for a in attendees]
    fmt = _utc_offset if trigger == BOOKING_CANCELLED else _utc_z
    primary = people[0] if people else {}
    responses: dict[str, Any] = {
        "name": {"label": "your_name", "value": primary.get("name", "")},
        "email": {"label": "email_address", "value": primary.get("email", "")},
    }
    if primary.get("phoneNumber"):
        responses["attendeePhoneNumber"] = {"label": "phone_number", "value": primary["phoneNumber"]}
    payload: dict[str, Any] = {
        "type": event_type.get("slug"),
        "title": booking.get("title") or event_type.get("title"),
        "description": "",
        "additionalNotes": "",
        "customInputs": {},
        "startTime": fmt(start),
        "endTime": fmt(end),
        "organizer": _person(organizer, start, organizer=True),
        "responses": responses,
        "userFieldsResponses": {},
        "attendees": [_person(a, start, organizer=False) for a in people],
        "location": booking.get("location") or "",
        "destinationCalendar": None,
        "hideCalendarNotes": False,
        "requiresConfirmation": None,
        "eventTypeId": event_type.get("id"),
        "seatsShowAttendees": True,
        "seatsPerTimeSlot": None,
        "uid": booking["uid"],
        "bookingId": booking.get("id"),
        "length": int((end - start).total_seconds() // 60),
        "eventTitle": event_type.get("title"),
        "eventDescription": "",
        "price": 0,
        "currency": "usd",
        "iCalUID": f"{booking['uid']}@Cal.com",
        "iCalSequence": 0,
    }
    if trigger == BOOKING_CANCELLED:
        payload["status"] = "CANCELLED"
        payload["cancellationReason"] = booking.get("cancellation_reason") or ""
        payload["requestReschedule"] = False
        # Cal.com's BOOKING_CANCELLED example carries no metadata: receivers must find
        # the booking by uid.
    else:
        payload["status"] = "ACCEPTED"
        payload["metadata"] = {"videoCallUrl": f"https://app.cal.com/video/{booking['uid']}",
                               **dict(booking.get("metadata") or {})}
    if trigger == BOOKING_RESCHEDULED and previous is not None:
        payload.update(
            rescheduleUid=previous["uid"],
            rescheduleId=previous.get("id"),
            rescheduleStartTime=_utc_z(previous["start"]),
            rescheduleEndTime=_utc_z(previous["end"]),
            rescheduledBy=booking.get("rescheduled_by"),
        )
        payload["iCalSequence"] = 1
    return {"triggerEvent": trigger, "createdAt": created_at.astimezone(timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z"), "payload": payload}


def ping_payload(created_at: datetime) -> dict[str, Any]:
    """The body of Cal.com's "Ping test" button."""
    at = created_at.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "triggerEvent": PING,
        "createdAt": at,
        "payload": {
            "type": "Test", "title": "Test trigger event", "description": "", "startTime": at, "endTime": at,
            "attendees": [{"email": "jdoe@example.com", "name": "John Doe", "timeZone": "Europe/London",
                           "language": {"locale": "en"}}],
            "organizer": {"name": "Cal", "email": "no-reply@cal.com", "timeZone": "Europe/London",
                          "language": {"locale": "en"}},
        },
    }


__all__ = [
    "BOOKING_CANCELLED",
    "BOOKING_CREATED",
    "BOOKING_RESCHEDULED",
    "PING",
    "SIGNATURE_HEADER",
    "booking_payload",
    "ping_payload",
    "sign",
    "verify_signature",
]
