"""The Cal.com emulator's world: event types, hosts with working hours, bookings.

Plain Python, no HTTP: `CalcomState` answers slots and creates, lists, cancels and
reschedules bookings with Cal.com's rules and error messages (the wire format is
`calcom/client.py`'s; README "The local Cal.com emulator"). Refusals raise `ApiError(status, code, message)`, which
the HTTP layer (`calcom.emulator`) turns into Cal.com's error envelope. Every change
returns the webhook events it caused; the HTTP layer sends them.

Thread-safe: one lock around every read and change (the emulator serves threads).
"""

from __future__ import annotations

import random
import re
import string
import threading
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

from calcom.client import format_time, parse_time, phone_only_email
from calcom.metadata import metadata_problem
from calcom.webhooks import BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_RESCHEDULED
from core.clock import is_valid_timezone, local_to_utc, utcnow

UTC = timezone.utc

STATUS_ERRORS = {
    400: ("BadRequestException", "Bad Request"),
    401: ("UnauthorizedException", "Unauthorized"),
    404: ("NotFoundException", "Not Found"),
    409: ("ConflictException", "Conflict"),
    422: ("UnprocessableEntityException", "Unprocessable Entity"),
}

# Messages Cal.com uses (ErrorsBookingsService_2024_08_13 and friends).
INDIVIDUAL_BUSY = "User either already has booking at this time or is not available"
TEAM_BUSY = "One of the hosts either already has booking at this time or is not available"
IN_THE_PAST = "Attempting to book a meeting in the past."
ALREADY_CANCELLED = "This booking has already been cancelled."
EVENT_TYPE_REQUIRED = "Either eventTypeId or eventTypeSlug + username or eventTypeSlug + teamSlug must be provided"
CONTACT_REQUIRED = "Attendee must have at least one contact method (email or phone number)"
LIST_STATUSES = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")

LANGUAGES = {
    "ar", "ca", "de", "es", "eu", "he", "id", "ja", "lv", "pl", "ro", "sr", "th", "vi", "az", "cs", "el",
    "es-419", "fi", "hr", "it", "km", "nl", "pt", "ru", "sv", "tr", "zh-CN", "bg", "da", "en", "et", "fr", "hu",
    "iw", "ko", "no", "pt-BR", "sk", "ta", "uk", "zh-TW", "bn", "sq", "mk", "lt", "ms", "ne",
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

CREATE_FIELDS = {"start", "attendee", "bookingFieldsResponses", "eventTypeId", "eventTypeSlug", "username",
                 "teamSlug", "organizationSlug", "guests", "meetingUrl", "location", "metadata", "lengthInMinutes",
                 "routing", "emailVerificationCode"}
ATTENDEE_FIELDS = {"name", "email", "timeZone", "phoneNumber", "language"}
CANCEL_FIELDS = {"cancellationReason", "cancelSubsequentBookings", "seatUid"}
RESCHEDULE_FIELDS = {"start", "reschedulingReason", "rescheduledBy", "emailVerificationCode", "seatUid"}
SLOTS_PARAMS = {"eventTypeId", "start", "end", "timeZone", "duration", "format", "bookingUidToReschedule",
                "rrHostSubsetIds"}


class ApiError(Exception):
    """A refusal in Cal.com's terms: HTTP status, `error.code`, `error.message`."""

    def __init__(self, status: int, message: str, code: str | None = None, details: Any = None):
        super().__init__(message)
        self.status = status
        self.message = message
        default_code, reason = STATUS_ERRORS.get(status, ("HttpException", "Error"))
        self.code = code or default_code
        self.details = details if details is not None else {"message": message, "error": reason,
                                                             "statusCode": status}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def property_wrong(prop: str, constraint: str) -> ApiError:
    """class-validator's message as Cal.com's pipes format it."""
    return bad_request(f"{prop} property is wrong,{constraint} ")


@dataclass(frozen=True)
class Host:
    """A Cal.com user who can be booked, with a weekly schedule in their time zone."""

    id: int
    name: str
    email: str
    username: str
    time_zone: str = "Europe/Berlin"
    # ISO weekday ("1" = Monday) → [["09:00", "18:00"], …]; a missing day is off.
    working_hours: Mapping[str, list] = field(default_factory=dict)

    def windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """This host's working intervals on a local calendar day, in UTC."""
        result = []
        for opens, closes in self.working_hours.get(str(day.isoweekday()), []):
            start = local_to_utc(datetime.combine(day, time.fromisoformat(opens)), self.time_zone)
            end = local_to_utc(datetime.combine(day, time.fromisoformat(closes)), self.time_zone)
            if end > start:
                result.append((start, end))
        return result

    def works(self, start: datetime, end: datetime) -> bool:
        local_day = start.astimezone(ZoneInfo(self.time_zone)).date()
        for day in (local_day - timedelta(days=1), local_day):
            if any(w_start <= start and end <= w_end for w_start, w_end in self.windows(day)):
                return True
        return False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "email": self.email, "displayEmail": self.email,
                "username": self.username, "timeZone": self.time_zone}


@dataclass(frozen=True)
class EventType:
    """A bookable Cal.com event type: a length, slot grid and hosts (round robin when several)."""

    id: int
    slug: str
    title: str
    length_minutes: int
    host_ids: tuple[int, ...]
    # Other lengths a booking may ask for (`lengthInMinutes`), e.g. a composite
    # service's single work steps.
    other_lengths: tuple[int, ...] = ()
    slot_interval_minutes: int | None = None
    minimum_booking_notice_minutes: int = 0

    @property
    def lengths(self) -> tuple[int, ...]:
        return (self.length_minutes, *[m for m in self.other_lengths if m != self.length_minutes])

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "slug": self.slug, "title": self.title, "lengthInMinutes": self.length_minutes,
                "lengthInMinutesOptions": list(self.lengths), "hosts": list(self.host_ids),
                "slotIntervalMinutes": self.slot_interval_minutes,
                "minimumBookingNotice": self.minimum_booking_notice_minutes}


@dataclass
class EmulatedBooking:
    id: int
    uid: str
    event_type_id: int
    host_id: int
    start: datetime
    end: datetime
    attendees: list[dict[str, Any]]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    title: str
    status: str = "accepted"
    cancellation_reason: str | None = None
    cancelled_by_email: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_by_email: str | None = None
    rescheduled_from_uid: str | None = None
    rescheduled_to_uid: str | None = None
    # How it was made: "api" (through /v2) or "direct" (a customer on the booking page).
    origin: str = "api"

    @property
    def active(self) -> bool:
        return self.status in ("accepted", "pending")

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True)
class WebhookEvent:
    """A change to announce: the trigger and what the payload needs."""

    trigger: str
    booking: dict[str, Any]
    event_type: dict[str, Any]
    organizer: dict[str, Any]
    attendees: list[dict[str, Any]]
    previous: dict[str, Any] | None = None


class CalcomState:
    """Event types, hosts and bookings of one emulated Cal.com account."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow, seed: int = 0) -> None:
        self.clock = clock
        self.seed = seed
        self._lock = threading.RLock()
        self.reset()

    def reset(self, *, keep_world: bool = False) -> None:
        """Forget all bookings (and, unless `keep_world`, hosts and event types)."""
        with self._lock:
            if not keep_world:
                self.hosts: dict[int, Host] = {}
                self.event_types: dict[int, EventType] = {}
            self.bookings: dict[str, EmulatedBooking] = {}
            self._next_id = 1000
            self._uids = random.Random(f"uids-{self.seed}")

    # --- the world -------------------------------------------------------------------

    def add_host(self, host: Host) -> Host:
        if not is_valid_timezone(host.time_zone):
            raise ValueError(f"host {host.id}: unknown time zone {host.time_zone!r}")
        for day, windows in host.working_hours.items():
            if day not in {"1", "2", "3", "4", "5", "6", "7"}:
                raise ValueError(f"host {host.id}: working hours day must be 1..7, got {day!r}")
            for opens, closes in windows:
                if time.fromisoformat(closes) <= time.fromisoformat(opens):
                    raise ValueError(f"host {host.id}: working hours {opens}-{closes} end before they start")
        with self._lock:
            self.hosts[host.id] = host
        return host

    def add_event_type(self, event_type: EventType) -> EventType:
        if event_type.length_minutes <= 0:
            raise ValueError(f"event type {event_type.id}: length must be positive")
        if not event_type.host_ids:
            raise ValueError(f"event type {event_type.id}: needs at least one host")
        with self._lock:
            missing = [h for h in event_type.host_ids if h not in self.hosts]
            if missing:
                raise ValueError(f"event type {event_type.id}: unknown hosts {missing}")
            self.event_types[event_type.id] = event_type
        return event_type

    def event_type(self, event_type_id: int) -> EventType:
        found = self.event_types.get(event_type_id)
        if found is None:
            raise ApiError(404, f"Event type with id {event_type_id} not found.")
        return found

    # --- slots -------------------------------------------------------------------------

    def slots(self, params: Mapping[str, str]) -> dict[str, list[dict[str, str]]]:
        """`GET /v2/slots` (by eventTypeId): free slot starts grouped by day."""
        for name in params:
            if name not in SLOTS_PARAMS:
                if name in {"eventTypeSlug", "username", "teamSlug", "usernames", "organizationSlug"} and \
                        "eventTypeId" not in params:
                    raise bad_request("The emulator only looks event types up by eventTypeId")
                raise property_wrong(name, f"property {name} should not exist")
        if "eventTypeId" not in params:
            raise bad_request(EVENT_TYPE_REQUIRED)
        event_type_id = _int_param(params, "eventTypeId")
        start = _date_param(params, "start", end_of_day=False)
        end = _date_param(params, "end", end_of_day=True)
        out_tz = params.get("timeZone") or "UTC"
        if not is_valid_timezone(out_tz):
            raise property_wrong("timeZone", "must be a valid IANA time-zone")
        slot_format = (params.get("format") or "time").lower()
        if slot_format not in ("time", "range"):
            raise bad_request("slotFormat must be either 'range' or 'time'")
        duration = _int_param(params, "duration") if params.get("duration") else None
        subset = _int_list(params.get("rrHostSubsetIds"), "rrHostSubsetIds")
        ignore_uid = params.get("bookingUidToReschedule")
        with self._lock:
            event_type = self.event_type(event_type_id)
            length = duration or event_type.length_minutes
            now = self.clock()
            end = min(end, now + timedelta(days=366))
            earliest = max(start, now + timedelta(minutes=event_type.minimum_booking_notice_minutes))
            host_ids = [h for h in event_type.host_ids if not subset or h in subset]
            starts: set[datetime] = set()
            for host_id in host_ids:
                starts.update(self._free_starts(self.hosts[host_id], event_type, length, earliest, end, ignore_uid))
        zone = ZoneInfo(out_tz)
        days: dict[str, list[dict[str, str]]] = {}
        for slot_start in sorted(starts):
            local = slot_start.astimezone(zone)
            item = {"start": _render(slot_start, out_tz)}
            if slot_format == "range":
                item["end"] = _render(slot_start + timedelta(minutes=length), out_tz)
            days.setdefault(local.date().isoformat(), []).append(item)
        return days

    def _free_starts(self, host: Host, event_type: EventType, length: int, earliest: datetime, latest: datetime,
                     ignore_uid: str | None) -> list[datetime]:
        step = timedelta(minutes=event_type.slot_interval_minutes or event_type.length_minutes)
        duration = timedelta(minutes=length)
        busy = [(b.start, b.end) for b in self.bookings.values()
                if b.host_id == host.id and b.active and b.uid != ignore_uid and b.end > earliest]
        zone = ZoneInfo(host.time_zone)
        first_day = earliest.astimezone(zone).date() - timedelta(days=1)
        last_day = latest.astimezone(zone).date()
        result = []
        day = first_day
        while day <= last_day:
            for window_start, window_end in host.windows(day):
                cursor = window_start
                while cursor + duration <= window_end:
                    if earliest <= cursor <= latest and not any(s < cursor + duration and cursor < e for s, e in busy):
                        result.append(cursor)
                    cursor += step
            day += timedelta(days=1)
        return result

    # --- bookings ------------------------------------------------------------------------

    def create_booking(self, body: Any, *, host_id: int | None = None, origin: str = "api") -> tuple[
            EmulatedBooking, list[WebhookEvent]]:
        """`POST /v2/bookings`. `host_id` pins the host (a customer booking one person's
        page directly); the API itself assigns the first free host, round robin style."""
        if not isinstance(body, Mapping):
            raise bad_request("Body should be an object")
        for name in body:
            if name not in CREATE_FIELDS:
                raise property_wrong(name, f"property {name} should not exist")
        if body.get("eventTypeId") in (None, "", 0):
            raise bad_request(EVENT_TYPE_REQUIRED)
        if not isinstance(body.get("eventTypeId"), int) or isinstance(body.get("eventTypeId"), bool):
            raise property_wrong("eventTypeId", "eventTypeId must be an integer number")
        start = _body_time(body, "start")
        attendee = _attendee(body.get("attendee"))
        metadata = body.get("metadata")
        if metadata is not None and metadata_problem(metadata):
            raise bad_request(metadata_problem(metadata))
        metadata = metadata or {}
        length = body.get("lengthInMinutes")
        if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 1):
            raise property_wrong("lengthInMinutes", "lengthInMinutes must not be less than 1")
        with self._lock:
            event_type = self.event_type(body["eventTypeId"])
            length = length or event_type.length_minutes
            if length not in event_type.lengths:
                raise bad_request(f"Invalid lengthInMinutes {length}: this event type can be booked for "
                                  f"{', '.join(str(m) for m in event_type.lengths)} minutes")
            end = start + timedelta(minutes=length)
            self._refuse_past(start)
            host = self._free_host(event_type, start, end, prefer=host_id, only=host_id is not None)
            now = self.clock()
            booking = EmulatedBooking(
                id=self._new_id(), uid=self._new_uid(), event_type_id=event_type.id, host_id=host.id,
                start=start, end=end, attendees=[attendee], metadata=dict(metadata), created_at=now,
                updated_at=now, title=f"{event_type.title} between {host.name} and {attendee['name']}",
                origin=origin,
            )
            self.bookings[booking.uid] = booking
            return booking, [self._event(BOOKING_CREATED, booking)]

    def get_booking(self, uid: str) -> EmulatedBooking:
        with self._lock:
            booking = self.bookings.get(uid)
            if booking is None:
                raise ApiError(404, f"Booking with uid={uid} was not found in the database")
            return booking

    def list_bookings(self, params: Mapping[str, str]) -> tuple[list[EmulatedBooking], dict[str, Any]]:
        """`GET /v2/bookings`: filters, sorting and pagination as Cal.com documents them."""
        take = _int_param(params, "take") if params.get("take") else 100
        skip = _int_param(params, "skip") if params.get("skip") else 0
        if not 1 <= take <= 250:
            raise property_wrong("take", "take must not be greater than 250" if take > 250
                                 else "take must not be less than 1")
        if skip < 0:
            raise property_wrong("skip", "skip must not be less than 0")
        statuses = [s.strip() for s in (params.get("status") or "").split(",") if s.strip()]
        if any(s not in LIST_STATUSES for s in statuses):
            raise bad_request("Invalid status. Allowed are upcoming, recurring, past, cancelled, unconfirmed")
        event_type_ids = set(_int_list(params.get("eventTypeIds"), "eventTypeIds"))
        if params.get("eventTypeId"):
            event_type_ids.add(_int_param(params, "eventTypeId"))
        after_start = _date_param(params, "afterStart", end_of_day=False) if params.get("afterStart") else None
        before_end = _date_param(params, "beforeEnd", end_of_day=True) if params.get("beforeEnd") else None
        after_created = _date_param(params, "afterCreatedAt", end_of_day=False) if params.get(
            "afterCreatedAt") else None
        before_created = _date_param(params, "beforeCreatedAt", end_of_day=True) if params.get(
            "beforeCreatedAt") else None
        email = (params.get("attendeeEmail") or "").replace(" ", "+").lower()
        name = (params.get("attendeeName") or "").lower()
        uid = params.get("bookingUid")
        with self._lock:
            now = self.clock()
            matches = []
            for booking in self.bookings.values():
                if statuses and not any(_has_list_status(booking, s, now) for s in statuses):
                    continue
                if event_type_ids and booking.event_type_id not in event_type_ids:
                    continue
                if after_start and booking.start < after_start:
                    continue
                if before_end and booking.end > before_end:
                    continue
                if after_created and booking.created_at < after_created:
                    continue
                if before_created and booking.created_at > before_created:
                    continue
                if email and not any((a.get("email") or "").lower() == email for a in booking.attendees):
                    continue
                if name and not any(name in (a.get("name") or "").lower() for a in booking.attendees):
                    continue
                if uid and booking.uid != uid:
                    continue
                matches.append(booking)
        matches.sort(key=_sort_key(params))
        page = matches[skip:skip + take]
        total = len(matches)
        pages = (total + take - 1) // take
        pagination = {
            "totalItems": total, "remainingItems": max(0, total - skip - len(page)), "returnedItems": len(page),
            "itemsPerPage": take, "currentPage": skip // take + 1, "totalPages": pages,
            "hasNextPage": skip + len(page) < total, "hasPreviousPage": skip > 0,
        }
        return page, pagination

    def cancel_booking(self, uid: str, body: Any, *, by_email: str | None = None) -> tuple[
            EmulatedBooking, list[WebhookEvent]]:
        """`POST /v2/bookings/{uid}/cancel`."""
        body = body if body is not None else {}
        if not isinstance(body, Mapping):
            raise bad_request("Body should be an object")
        for name in body:
            if name not in CANCEL_FIELDS:
                raise property_wrong(name, f"property {name} should not exist")
        reason = body.get("cancellationReason")
        if reason is not None and not isinstance(reason, str):
            raise property_wrong("cancellationReason", "cancellationReason must be a string")
        with self._lock:
            booking = self.get_booking(uid)
            if booking.status == "cancelled":
                raise bad_request(ALREADY_CANCELLED)
            booking.status = "cancelled"
            booking.cancellation_reason = reason
            booking.cancelled_by_email = by_email
            booking.updated_at = self.clock()
            return booking, [self._event(BOOKING_CANCELLED, booking)]

    def reschedule_booking(self, uid: str, body: Any, *, host_id: int | None = None) -> tuple[
            EmulatedBooking, list[WebhookEvent]]:
        """`POST /v2/bookings/{uid}/reschedule`: a new booking (new uid, `rescheduledFromUid`);
        the old one becomes cancelled with `rescheduledToUid`."""
        if not isinstance(body, Mapping):
            raise bad_request("Body should be an object")
        for name in body:
            if name not in RESCHEDULE_FIELDS:
                raise property_wrong(name, f"property {name} should not exist")
        start = _body_time(body, "start")
        by = body.get("rescheduledBy")
        if by is not None and (not isinstance(by, str) or not EMAIL.match(by)):
            raise bad_request("Invalid rescheduledBy email format")
        reason = body.get("reschedulingReason")
        with self._lock:
            old = self.get_booking(uid)
            if old.status == "cancelled":
                if old.rescheduled_to_uid:
                    raise bad_request(
                        f"Can't reschedule booking with uid={uid} because it has been cancelled and rescheduled "
                        f"already to booking with uid={old.rescheduled_to_uid}. You probably want to reschedule "
                        f"{old.rescheduled_to_uid} instead by passing it within the request URL.")
                raise bad_request(f"Can't reschedule booking with uid={uid} because it has been cancelled. "
                                  "Please provide uid of a booking that is not cancelled.")
            event_type = self.event_type(old.event_type_id)
            end = start + (old.end - old.start)
            self._refuse_past(start)
            host = self._free_host(event_type, start, end, prefer=host_id or old.host_id, ignore_uid=old.uid,
                                   only=host_id is not None)
            now = self.clock()
            new = replace(
                old, id=self._new_id(), uid=self._new_uid(), host_id=host.id, start=start, end=end,
                attendees=[dict(a) for a in old.attendees], metadata=dict(old.metadata), created_at=now,
                updated_at=now, status="accepted", cancellation_reason=None, cancelled_by_email=None,
                rescheduling_reason=reason, rescheduled_by_email=by, rescheduled_from_uid=old.uid,
                rescheduled_to_uid=None,
            )
            old.status = "cancelled"
            old.rescheduled_to_uid = new.uid
            old.rescheduled_by_email = by
            old.rescheduling_reason = reason
            old.updated_at = now
            self.bookings[new.uid] = new
            previous = {"uid": old.uid, "id": old.id, "start": old.start, "end": old.end}
            return new, [self._event(BOOKING_RESCHEDULED, new, previous=previous)]

    def load_booking(self, booking: EmulatedBooking) -> EmulatedBooking:
        """Put an existing booking in place as is (demo pre-load); no webhook."""
        with self._lock:
            if booking.event_type_id not in self.event_types:
                raise ValueError(f"booking {booking.uid}: unknown event type {booking.event_type_id}")
            if booking.host_id not in self.hosts:
                raise ValueError(f"booking {booking.uid}: unknown host {booking.host_id}")
            self.bookings[booking.uid] = booking
            self._next_id = max(self._next_id, booking.id + 1)
            return booking

    def find(self, *, metadata: Mapping[str, str] | None = None, status: str | None = None,
             host_id: int | None = None, event_type_id: int | None = None) -> list[EmulatedBooking]:
        """Bookings for the control API and tests (metadata values compared as strings)."""
        wanted = {str(k): str(v) for k, v in (metadata or {}).items()}
        with self._lock:
            found = [
                b for b in self.bookings.values()
                if all(str(b.metadata.get(k)) == v for k, v in wanted.items())
                and (status is None or b.status == status)
                and (host_id is None or b.host_id == host_id)
                and (event_type_id is None or b.event_type_id == event_type_id)
            ]
        return sorted(found, key=lambda b: (b.start, b.id))

    # --- JSON ------------------------------------------------------------------------------

    def booking_json(self, booking: EmulatedBooking) -> dict[str, Any]:
        """`BookingOutput_2024_08_13`; optional fields are left out when empty, as in Cal.com."""
        with self._lock:
            event_type = self.event_types.get(booking.event_type_id)
            host = self.hosts.get(booking.host_id)
        data: dict[str, Any] = {
            "id": booking.id, "uid": booking.uid, "title": booking.title, "description": "",
            "hosts": [host.to_json()] if host else [], "status": booking.status,
        }
        for key, value in (("cancellationReason", booking.cancellation_reason),
                           ("cancelledByEmail", booking.cancelled_by_email),
                           ("reschedulingReason", booking.rescheduling_reason),
                           ("rescheduledByEmail", booking.rescheduled_by_email),
                           ("rescheduledFromUid", booking.rescheduled_from_uid),
                           ("rescheduledToUid", booking.rescheduled_to_uid)):
            if value:
                data[key] = value
        data.update({
            "start": format_time(booking.start), "end": format_time(booking.end),
            "duration": int((booking.end - booking.start).total_seconds() // 60),
            "eventTypeId": booking.event_type_id,
            "eventType": {"id": booking.event_type_id, "slug": event_type.slug if event_type else None},
            "location": "", "absentHost": False,
            "createdAt": format_time(booking.created_at), "updatedAt": format_time(booking.updated_at),
            "metadata": dict(booking.metadata), "icsUid": f"{booking.uid}@Cal.com",
            "attendees": [{**{k: v for k, v in a.items() if v is not None}, "displayEmail": a.get("email"),
                           "absent": False} for a in booking.attendees],
            "guests": [],
            "bookingFieldsResponses": _responses(booking.attendees[0]) if booking.attendees else {},
        })
        return data

    # --- helpers -----------------------------------------------------------------------------

    def _refuse_past(self, start: datetime) -> None:
        if start < self.clock():
            raise bad_request(IN_THE_PAST)

    def _free_host(self, event_type: EventType, start: datetime, end: datetime, *, prefer: int | None = None,
                   ignore_uid: str | None = None, only: bool = False) -> Host:
        """The host who takes the booking: `prefer` when free, else the first free host in
        the event type's order; Cal.com's 400 when nobody is free."""
        candidates = list(event_type.host_ids)
        if prefer is not None:
            if prefer not in candidates:
                raise bad_request(f"User with id {prefer} is not a host of event type {event_type.id}")
            candidates = [prefer] if only else [prefer] + [h for h in candidates if h != prefer]
        for host_id in candidates:
            host = self.hosts[host_id]
            if not host.works(start, end):
                continue
            if any(b.host_id == host_id and b.active and b.uid != ignore_uid and b.overlaps(start, end)
                   for b in self.bookings.values()):
                continue
            return host
        raise bad_request(TEAM_BUSY if len(event_type.host_ids) > 1 else INDIVIDUAL_BUSY)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _new_uid(self) -> str:
        alphabet = string.ascii_letters + string.digits
        while True:
            uid = "".join(self._uids.choice(alphabet) for _ in range(22))
            if uid not in self.bookings:
                return uid

    def _event(self, trigger: str, booking: EmulatedBooking, previous: dict | None = None) -> WebhookEvent:
        event_type = self.event_types[booking.event_type_id]
        host = self.hosts[booking.host_id]
        return WebhookEvent(
            trigger=trigger,
            booking={"uid": booking.uid, "id": booking.id, "start": booking.start, "end": booking.end,
                     "title": booking.title, "metadata": dict(booking.metadata),
                     "cancellation_reason": booking.cancellation_reason,
                     "rescheduled_by": booking.rescheduled_by_email},
            event_type={"id": event_type.id, "slug": event_type.slug, "title": event_type.title},
            organizer={"id": host.id, "name": host.name, "email": host.email, "username": host.username,
                       "timeZone": host.time_zone, "language": "en"},
            attendees=[dict(a) for a in booking.attendees],
            previous=previous,
        )


# --- parsing requests --------------------------------------------------------------------


def _int_param(params: Mapping[str, Any], name: str) -> int:
    raw = params.get(name)
    try:
        return int(str(raw).strip())
    except (TypeError, ValueError):
        raise property_wrong(name, f"{name} must be a number conforming to the specified constraints") from None


def _int_list(raw: str | None, name: str) -> list[int]:
    if not raw:
        return []
    try:
        return [int(part.strip()) for part in str(raw).split(",") if part.strip()]
    except ValueError:
        raise property_wrong(name, f"each value in {name} must be a number") from None


def _date_param(params: Mapping[str, Any], name: str, *, end_of_day: bool) -> datetime:
    raw = params.get(name)
    if not raw:
        raise property_wrong(name, f"{name} must be a valid ISO 8601 date string")
    text = str(raw).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(23, 59, 59) if end_of_day else time(0, 0), tzinfo=UTC)
            return moment
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise property_wrong(name, f"{name} must be a valid ISO 8601 date string") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _body_time(body: Mapping[str, Any], name: str) -> datetime:
    raw = body.get(name)
    if not isinstance(raw, str) or not raw.strip():
        raise property_wrong(name, f"{name} must be a valid ISO 8601 date string")
    try:
        return parse_time(raw)
    except ValueError:
        try:  # ISO without offset: Cal.com reads it as UTC
            parsed = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise property_wrong(name, f"{name} must be a valid ISO 8601 date string") from None
        return parsed.replace(tzinfo=UTC)


def _attendee(raw: Any) -> dict[str, Any]:
    if raw is None:
        raise property_wrong("attendee", "attendee should not be null or undefined")
    if not isinstance(raw, Mapping):
        raise property_wrong("attendee", "nested property attendee must be either object or array")
    for name in raw:
        if name not in ATTENDEE_FIELDS:
            raise property_wrong("attendee", f"property {name} should not exist")
    problems = []
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        problems.append("name must be a string")
    time_zone = raw.get("timeZone")
    if not isinstance(time_zone, str) or not is_valid_timezone(time_zone):
        problems.append("must be a valid IANA time-zone")
    email, phone = raw.get("email"), raw.get("phoneNumber")
    if email and (not isinstance(email, str) or not EMAIL.match(email)):
        problems.append("Invalid email format")
    if phone and (not isinstance(phone, str) or not E164.match(phone)):
        problems.append("Invalid phone number format. Please use international format.")
    if not email and not phone:
        problems.append(CONTACT_REQUIRED)
    language = raw.get("language")
    if language is not None and language not in LANGUAGES:
        problems.append("language must be one of the following values: " + ", ".join(sorted(LANGUAGES)))
    if problems:
        raise bad_request("attendee property is wrong, " + ", ".join(problems) + " ")
    attendee = {"name": raw["name"].strip(), "email": email or phone_only_email(phone), "timeZone": time_zone,
                "language": language or "en"}
    if phone:
        attendee["phoneNumber"] = phone
    return attendee


def _responses(attendee: Mapping[str, Any]) -> dict[str, Any]:
    responses = {"name": attendee.get("name"), "email": attendee.get("email")}
    if attendee.get("phoneNumber"):
        responses["attendeePhoneNumber"] = attendee["phoneNumber"]
    return responses


def _render(moment: datetime, tz_name: str) -> str:
    if tz_name == "UTC":
        return format_time(moment)
    return moment.astimezone(ZoneInfo(tz_name)).isoformat(timespec="milliseconds")


def _has_list_status(booking: EmulatedBooking, status: str, now: datetime) -> bool:
    if status == "cancelled":
        return booking.status in ("cancelled", "rejected")
    if status == "unconfirmed":
        return booking.status == "pending" and booking.end >= now
    if status == "upcoming":
        return booking.active and booking.end >= now
    if status == "past":
        return booking.end < now and booking.status not in ("cancelled", "rejected")
    return False  # recurring: the emulator has no recurring bookings


def _sort_key(params: Mapping[str, str]):
    for param, attribute in (("sortStart", "start"), ("sortEnd", "end"), ("sortCreated", "created_at"),
                             ("sortUpdatedAt", "updated_at")):
        direction = params.get(param)
        if direction:
            if direction not in ("asc", "desc"):
                raise property_wrong(param, f"{param} must be one of the following values: asc, desc")
            if direction == "desc":
                return lambda b, a=attribute: (-getattr(b, a).timestamp(), -b.id)
            return lambda b, a=attribute: (getattr(b, a).timestamp(), b.id)
    return lambda b: (b.start.timestamp(), b.id)


def hosts_and_event_types_from_json(data: Mapping[str, Any]) -> tuple[list[Host], list[EventType]]:
    """Read `{"hosts": [...], "eventTypes": [...]}` (control API, JSON files)."""
    hosts = [
        Host(id=int(h["id"]), name=h["name"], email=h.get("email") or f"{h.get('username', h['id'])}@example.com",
             username=h.get("username") or str(h["id"]), time_zone=h.get("timeZone", "Europe/Berlin"),
             working_hours={str(k): [list(w) for w in v] for k, v in (h.get("workingHours") or {}).items()})
        for h in data.get("hosts") or []
    ]
    event_types = [
        EventType(id=int(e["id"]), slug=e.get("slug") or f"event-{e['id']}", title=e.get("title") or e.get(
            "slug") or f"Event {e['id']}", length_minutes=int(e["lengthInMinutes"]),
            host_ids=tuple(int(h) for h in e["hosts"]),
            other_lengths=tuple(int(m) for m in e.get("lengthInMinutesOptions") or ()),
            slot_interval_minutes=e.get("slotIntervalMinutes"),
            minimum_booking_notice_minutes=int(e.get("minimumBookingNotice") or 0))
        for e in data.get("eventTypes") or []
    ]
    return hosts, event_types


__all__ = [
    "ApiError",
    "CalcomState",
    "EmulatedBooking",
    "EventType",
    "Host",
    "WebhookEvent",
    "hosts_and_event_types_from_json",
]
