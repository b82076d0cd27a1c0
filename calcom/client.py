"""Cal.com API v2 client on `requests`, speaking the documented wire format.

One `requests.Session` per client; every request carries `Authorization: Bearer
<key>` and the `cal-api-version` the endpoint needs (slots `2024-09-04`, bookings
`2024-08-13`; without it Cal.com silently answers in an older shape). Failures
become the typed exceptions of `calcom.errors`. The client never retries by itself:
the sync worker decides (backoff, honouring `RateLimited.retry_after`), and the
voice agent cannot wait anyway. Every call is recorded in `calcom.call_log`.

    client = get_client(purpose="availability")   # short timeouts: a caller waits
    client = get_client(purpose="sync")           # longer timeouts: a worker waits
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Iterable, Mapping
from urllib.parse import quote

import requests
from flask import Flask, current_app

from calcom import call_log, failures
from calcom.errors import (
    CalcomRequestError,
    CalcomTimeout,
    CalcomUnavailable,
    MalformedResponse,
    RateLimited,
    SlotUnavailable,
)
from calcom.metadata import metadata_problem
from core import log_context
from core.clock import ensure_utc, utcnow
from core.prom import CALCOM_REQUEST_SECONDS, CALCOM_REQUESTS

log = logging.getLogger("calcom.client")

SLOTS_VERSION = "2024-09-04"
BOOKINGS_VERSION = "2024-08-13"

# Cal.com's refusal when the host is busy (individual and team event types).
SLOT_TAKEN_PHRASE = "already has booking at this time"
# Cancelling a booking that is already cancelled (core handleCancelBooking).
ALREADY_CANCELLED_PHRASE = "already been cancelled"

PURPOSES = ("availability", "sync")


@dataclass(frozen=True)
class Attendee:
    name: str
    email: str | None = None
    phone_number: str | None = None  # E.164
    time_zone: str = "Europe/Berlin"
    language: str = "de"

    def to_json(self) -> dict[str, str]:
        """The `attendee` object of a create request; refuses what Cal.com would refuse."""
        if not self.name or not self.name.strip():
            raise ValueError("the attendee needs a name")
        if not (self.email or self.phone_number):
            raise ValueError("Attendee must have at least one contact method (email or phone number)")
        body = {"name": self.name.strip(), "timeZone": self.time_zone, "language": self.language}
        if self.email:
            body["email"] = self.email
        if self.phone_number:
            body["phoneNumber"] = self.phone_number
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attendee:
        """Parse an attendee of a booking or webhook. Cal.com stores phone-only
        attendees with a made-up `<digits>@sms.cal.com` email; that becomes None."""
        language = data.get("language")
        if isinstance(language, Mapping):  # webhooks send {"locale": "de"}
            language = language.get("locale")
        return cls(
            name=str(data.get("name") or ""),
            email=real_email(data.get("email")),
            phone_number=data.get("phoneNumber") or None,
            time_zone=data.get("timeZone") or "UTC",
            language=language or "en",
        )


@dataclass(frozen=True)
class Slot:
    start: datetime  # aware UTC
    end: datetime  # aware UTC


@dataclass
class Booking:
    id: int | None
    uid: str
    status: str  # "accepted" | "cancelled" | "pending" | "rejected"
    start: datetime  # aware UTC
    end: datetime  # aware UTC
    event_type_id: int | None
    metadata: dict[str, Any]
    attendees: list[Attendee]
    rescheduled_from_uid: str | None
    raw: dict[str, Any]
    rescheduled_to_uid: str | None = None
    cancellation_reason: str | None = None
    # Cal.com hosts: [{"id": user id, "name", "email", "username", "timeZone"}, …]
    hosts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_cancelled(self) -> bool:
        return self.status == "cancelled"

    @classmethod
    def from_json(cls, data: Any) -> Booking:
        """Parse a `BookingOutput_2024_08_13`; MalformedResponse when it is not one."""
        if isinstance(data, list) and len(data) == 1:  # a recurring uid returns an array
            data = data[0]
        if not isinstance(data, Mapping):
            raise MalformedResponse("booking data is not an object")
        try:
            uid = data["uid"]
            if not isinstance(uid, str) or not uid:
                raise ValueError("uid")
            event_type = data.get("eventType") if isinstance(data.get("eventType"), Mapping) else {}
            event_type_id = data.get("eventTypeId", event_type.get("id"))
            metadata = data.get("metadata") or {}
            if not isinstance(metadata, Mapping):
                raise ValueError("metadata")
            return cls(
                id=int(data["id"]) if data.get("id") is not None else None,
                uid=uid,
                status=str(data["status"]).lower(),
                start=parse_time(data["start"]),
                end=parse_time(data["end"]),
                event_type_id=int(event_type_id) if event_type_id is not None else None,
                metadata=dict(metadata),
                attendees=[Attendee.from_json(a) for a in data.get("attendees") or [] if isinstance(a, Mapping)],
                rescheduled_from_uid=data.get("rescheduledFromUid") or None,
                rescheduled_to_uid=data.get("rescheduledToUid") or None,
                cancellation_reason=data.get("cancellationReason") or None,
                hosts=[dict(h) for h in data.get("hosts") or [] if isinstance(h, Mapping)],
                raw=dict(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(f"booking is missing or has an invalid field ({exc})") from None


@dataclass
class BookingPage:
    items: list[Booking]
    total: int | None
    has_more: bool


PHONE_ONLY_EMAIL_DOMAIN = "@sms.cal.com"


def phone_only_email(phone_number: str) -> str:
    """The email Cal.com gives an attendee who left only a phone number."""
    return "".join(ch for ch in phone_number if ch.isdigit()) + PHONE_ONLY_EMAIL_DOMAIN


def real_email(value: Any) -> str | None:
    """An attendee's email, or None when absent or Cal.com's phone-only placeholder."""
    if not isinstance(value, str) or not value.strip():
        return None
    email = value.strip()
    return None if email.lower().endswith(PHONE_ONLY_EMAIL_DOMAIN) else email


def parse_time(value: Any) -> datetime:
    """An ISO 8601 time from Cal.com (`…Z`, `….000Z` or `+02:00`) as aware UTC."""
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"time without offset: {value!r}")
    return parsed.astimezone(timezone.utc)


def format_time(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and `Z`, as Cal.com writes it."""
    if moment.tzinfo is None:
        raise ValueError("times sent to Cal.com must be timezone-aware")
    utc = ensure_utc(moment)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class CalcomClient:
    """One Cal.com account (API key) at one base URL, with fixed timeouts."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        redis=None,
        call_log_retention: int = call_log.DEFAULT_RETENTION_SECONDS,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.redis = redis
        self.call_log_retention = call_log_retention
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "slotguard/1"})
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    # --- slots ----------------------------------------------------------------------

    def get_slots(
        self,
        event_type_id: int,
        start: datetime,
        end: datetime,
        time_zone: str,
        *,
        duration_minutes: int | None = None,
        username: str | None = None,
        host_user_id: int | None = None,
    ) -> list[Slot]:
        """Free slots of an event type between `start` and `end`, as aware UTC.

        `time_zone` is the zone Cal.com groups days by. `host_user_id` limits a round
        robin event type to one host (`rrHostSubsetIds`). `username` is accepted for
        the contract but Cal.com refuses it next to `eventTypeId`, so it is not sent;
        pass `host_user_id` to ask about one person.
        """
        params: dict[str, Any] = {
            "eventTypeId": int(event_type_id),
            "start": format_time(start),
            "end": format_time(end),
            "timeZone": time_zone,
            "format": "range",
        }
        if duration_minutes is not None:
            params["duration"] = int(duration_minutes)
        if host_user_id is not None:
            params["rrHostSubsetIds"] = str(int(host_user_id))
        body = self._request("GET", "/v2/slots", "/v2/slots", SLOTS_VERSION, params=params)
        data = body.get("data")
        if not isinstance(data, Mapping):
            raise MalformedResponse("slots data is not an object of days", endpoint="GET /v2/slots")
        length = duration_minutes
        slots = []
        try:
            for day_slots in data.values():
                for item in day_slots:
                    slot_start = parse_time(item["start"])
                    if item.get("end"):
                        slot_end = parse_time(item["end"])
                    elif length:
                        slot_end = slot_start + timedelta(minutes=int(length))
                    else:
                        raise ValueError("slot without end")
                    slots.append(Slot(slot_start, slot_end))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(f"invalid slot in response ({exc})", endpoint="GET /v2/slots") from None
        return sorted(slots, key=lambda s: s.start)

    # --- bookings -------------------------------------------------------------------

    def create_booking(
        self,
        *,
        event_type_id: int,
        start: datetime,
        attendee: Attendee,
        length_minutes: int | None = None,
        metadata: dict[str, str],
    ) -> Booking:
        """Book `start` for the attendee. SlotUnavailable when the host is busy."""
        problem = metadata_problem(metadata)
        if problem:
            raise ValueError(problem)
        payload: dict[str, Any] = {
            "start": format_time(start),
            "eventTypeId": int(event_type_id),
            "attendee": attendee.to_json(),
            "metadata": dict(metadata),
        }
        if length_minutes is not None:
            payload["lengthInMinutes"] = int(length_minutes)
        body = self._request("POST", "/v2/bookings", "/v2/bookings", BOOKINGS_VERSION, json=payload)
        return self._booking(body, "POST /v2/bookings")

    def get_booking(self, uid: str) -> Booking:
        path = f"/v2/bookings/{_uid(uid)}"
        body = self._request("GET", path, "/v2/bookings/{uid}", BOOKINGS_VERSION)
        return self._booking(body, "GET /v2/bookings/{uid}")

    def list_bookings(
        self,
        *,
        event_type_id: int | None = None,
        attendee_email: str | None = None,
        attendee_name: str | None = None,
        after_start: datetime | None = None,
        before_end: datetime | None = None,
        status: str | Iterable[str] | None = None,
        take: int = 100,
        skip: int = 0,
    ) -> BookingPage:
        """One page of bookings matching the filters (Cal.com: `take` 1..250)."""
        if not 1 <= int(take) <= 250:
            raise ValueError("take must be between 1 and 250")
        if int(skip) < 0:
            raise ValueError("skip must not be negative")
        params: dict[str, Any] = {"take": int(take), "skip": int(skip)}
        if event_type_id is not None:
            params["eventTypeId"] = int(event_type_id)
        if attendee_email:
            params["attendeeEmail"] = attendee_email
        if attendee_name:
            params["attendeeName"] = attendee_name
        if after_start is not None:
            params["afterStart"] = format_time(after_start)
        if before_end is not None:
            params["beforeEnd"] = format_time(before_end)
        if status:
            params["status"] = status if isinstance(status, str) else ",".join(status)
        endpoint = "GET /v2/bookings"
        body = self._request("GET", "/v2/bookings", "/v2/bookings", BOOKINGS_VERSION, params=params)
        data = body.get("data")
        if not isinstance(data, list):
            raise MalformedResponse("bookings data is not a list", endpoint=endpoint)
        items = [Booking.from_json(item) for item in data]
        pagination = body.get("pagination") if isinstance(body.get("pagination"), Mapping) else {}
        total = pagination.get("totalItems")
        has_more = pagination.get("hasNextPage")
        if has_more is None:
            has_more = total is not None and int(skip) + len(items) < int(total)
        return BookingPage(items=items, total=int(total) if total is not None else None, has_more=bool(has_more))

    def find_bookings(
        self,
        metadata: Mapping[str, Any],
        *,
        event_type_id: int | None = None,
        attendee_email: str | None = None,
        after_start: datetime | None = None,
        before_end: datetime | None = None,
        status: str | Iterable[str] | None = None,
        max_pages: int = 10,
    ) -> list[Booking]:
        """Bookings whose metadata contains every key/value of `metadata`.

        Cal.com's list endpoint cannot filter on metadata, so this pages through
        `list_bookings` with the other filters (keep them narrow: the event type and a
        time window around the appointment) and compares metadata as strings. A sync
        retry uses it to find the booking an earlier, unanswered attempt made.
        """
        wanted = {str(k): str(v) for k, v in metadata.items()}
        found: list[Booking] = []
        skip = 0
        for _ in range(max_pages):
            page = self.list_bookings(event_type_id=event_type_id, attendee_email=attendee_email,
                                      after_start=after_start, before_end=before_end, status=status,
                                      take=100, skip=skip)
            for booking in page.items:
                if all(str(booking.metadata.get(k)) == v for k, v in wanted.items()):
                    found.append(booking)
            if not page.has_more or not page.items:
                break
            skip += len(page.items)
        return found

    def cancel_booking(self, uid: str, reason: str) -> Booking | None:
        """Cancel a booking. Returns the cancelled booking, or None when Cal.com says
        it was already cancelled (cancelling twice is harmless)."""
        path = f"/v2/bookings/{_uid(uid)}/cancel"
        try:
            body = self._request(
                "POST", path, "/v2/bookings/{uid}/cancel", BOOKINGS_VERSION, json={"cancellationReason": reason}
            )
        except CalcomRequestError as exc:
            if exc.status == 400 and ALREADY_CANCELLED_PHRASE in (exc.message or "").lower():
                return None
            raise
        return self._booking(body, "POST /v2/bookings/{uid}/cancel")

    def reschedule_booking(self, uid: str, start: datetime, reason: str | None = None) -> Booking:
        """Move a booking. Cal.com makes a new booking (new uid, `rescheduled_from_uid`
        = the old one) and cancels the old one; the new booking is returned."""
        payload: dict[str, Any] = {"start": format_time(start)}
        if reason:
            payload["reschedulingReason"] = reason
        path = f"/v2/bookings/{_uid(uid)}/reschedule"
        body = self._request("POST", path, "/v2/bookings/{uid}/reschedule", BOOKINGS_VERSION, json=payload)
        return self._booking(body, "POST /v2/bookings/{uid}/reschedule")

    # --- plumbing -------------------------------------------------------------------

    def _booking(self, body: dict[str, Any], endpoint: str) -> Booking:
        if "data" not in body:
            raise MalformedResponse("response has no data", endpoint=endpoint)
        try:
            return Booking.from_json(body["data"])
        except MalformedResponse as exc:
            exc.endpoint = endpoint
            raise

    def _request(
        self,
        method: str,
        path: str,
        template: str,
        version: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> dict[str, Any]:
        """Send one request; return the parsed success envelope or raise a CalcomError."""
        endpoint = f"{method} {template}"
        headers = {"cal-api-version": version}
        request_id = log_context.request_id.get()
        if request_id:  # Cal.com echoes it; lets its support find our request
            headers["X-Request-ID"] = request_id
        started = time.perf_counter()
        status: int | None = None
        remaining = limit = None
        outcome = call_log.OK
        try:
            try:
                response = self.session.request(
                    method, self.base_url + path, params=params, json=json, headers=headers, timeout=self.timeout
                )
                # Read the body inside the timer: a dropped connection shows up here too.
                content = response.content
            except requests.Timeout as exc:
                outcome = call_log.TIMEOUT
                raise CalcomTimeout(
                    f"Cal.com did not answer within {self._timeout_for(exc)} s", code="timeout", endpoint=endpoint
                ) from exc
            except requests.RequestException as exc:
                outcome = call_log.CONNECTION_ERROR
                raise CalcomUnavailable(
                    f"could not reach Cal.com: {type(exc).__name__}", code="connection_error", endpoint=endpoint
                ) from exc
            status = response.status_code
            remaining, limit = rate_limit_headroom(response.headers)
            try:
                body = response.json() if content else None
            except ValueError:
                body = None
            if 200 <= status < 300:
                if not isinstance(body, dict) or body.get("status") != "success":
                    outcome = call_log.MALFORMED
                    raise MalformedResponse(
                        "Cal.com answered without the success envelope", status=status, code="malformed",
                        endpoint=endpoint, details=_snippet(content),
                    )
                return body
            error = self._error_for(status, body, content, response.headers, endpoint)
            outcome = _outcome_of(error)
            raise error
        finally:
            latency_ms = (time.perf_counter() - started) * 1000
            CALCOM_REQUESTS.labels(endpoint, str(status) if status is not None else "none").inc()
            CALCOM_REQUEST_SECONDS.labels(endpoint, outcome).observe(latency_ms / 1000)
            call_log.record(
                self.redis, method=method, endpoint=template, status=status, latency_ms=latency_ms,
                outcome=outcome, remaining=remaining, limit=limit, retention_seconds=self.call_log_retention,
            )
            log.debug("%s -> %s in %.0f ms", endpoint, status if status is not None else outcome, latency_ms)

    def _timeout_for(self, exc: requests.Timeout) -> float:
        return self.timeout[0] if isinstance(exc, requests.ConnectTimeout) else self.timeout[1]

    def _error_for(self, status: int, body: Any, content: bytes, headers, endpoint: str):
        code, message, details = _error_fields(body)
        if message is None:
            message = f"Cal.com answered HTTP {status}"
            details = _snippet(content)
        fields = dict(status=status, code=code, details=details, endpoint=endpoint)
        if status == 429:
            return RateLimited(message, retry_after=retry_after_seconds(headers), **fields)
        if status >= 500:
            return CalcomUnavailable(message, **fields)
        if status == 400 and SLOT_TAKEN_PHRASE in message.lower():
            return SlotUnavailable(message, **fields)
        return CalcomRequestError(message, **fields)


# The call log's outcome of an HTTP error answer, by its kind (`calcom.failures`).
_CALL_LOG_OUTCOME = {
    failures.RATE_LIMITED: call_log.RATE_LIMITED,
    failures.RETRYABLE: call_log.SERVER_ERROR,
    failures.MALFORMED: call_log.MALFORMED,
    failures.SLOT_TAKEN: call_log.SLOT_UNAVAILABLE,
    failures.PERMANENT: call_log.CLIENT_ERROR,
}


def _outcome_of(error: Exception) -> str:
    return _CALL_LOG_OUTCOME[failures.kind_of(error)]


def _error_fields(body: Any) -> tuple[str | None, str | None, Any]:
    """(code, message, details) from Cal.com's error envelope, tolerating older shapes."""
    if not isinstance(body, Mapping):
        return None, None, None
    error = body.get("error")
    if isinstance(error, Mapping):
        message = error.get("message")
        if isinstance(message, list):  # class-validator style lists
            message = "; ".join(str(m) for m in message)
        return (
            str(error["code"]) if error.get("code") is not None else None,
            str(message) if message is not None else (str(body["message"]) if body.get("message") else None),
            error.get("details"),
        )
    if body.get("message"):
        return None, str(body["message"]), None
    return None, None, None


def _snippet(content: bytes, limit: int = 200) -> str:
    return content[:limit].decode("utf-8", "replace")


def _uid(uid: str) -> str:
    if not uid or not isinstance(uid, str):
        raise ValueError("a booking uid is required")
    return quote(uid, safe="")


def _header_number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _rate_limit_headers(headers) -> dict[str, dict[str, float]]:
    """{limit name: {"limit", "remaining", "reset"}} from `X-RateLimit-*[-Name]` headers.

    Cal.com sends one set per named limit (`X-RateLimit-Remaining-Default`); other
    proxies send plain `X-RateLimit-Remaining`. The plain set is named "".
    """
    found: dict[str, dict[str, float]] = {}
    for raw_name, value in headers.items():
        name = raw_name.lower()
        if not name.startswith("x-ratelimit-"):
            continue
        rest = name[len("x-ratelimit-"):]
        kind, _, limit_name = rest.partition("-")
        if kind not in {"limit", "remaining", "reset"}:
            continue
        number = _header_number(value)
        if number is not None:
            found.setdefault(limit_name, {})[kind] = number
    return found


def rate_limit_headroom(headers) -> tuple[int | None, int | None]:
    """(remaining, limit) of the tightest rate limit Cal.com reported."""
    sets = [s for s in _rate_limit_headers(headers).values() if "remaining" in s]
    if not sets:
        return None, None
    tightest = min(sets, key=lambda s: s["remaining"])
    limit = tightest.get("limit")
    return int(tightest["remaining"]), int(limit) if limit is not None else None


def retry_after_seconds(headers, *, now: datetime | None = None) -> float | None:
    """Seconds to wait after a 429: `Retry-After` (seconds or HTTP date), else the
    reset of the exhausted limit (`X-RateLimit-Reset[-Name]`: seconds, or an epoch in
    seconds/milliseconds when large). None when the headers say nothing."""
    now_ts = (now or utcnow()).timestamp()
    retry_after = headers.get("Retry-After")
    if retry_after:
        seconds = _header_number(retry_after)
        if seconds is None:
            try:
                seconds = parsedate_to_datetime(retry_after).timestamp() - now_ts
            except (TypeError, ValueError):
                seconds = None
        if seconds is not None:
            return max(0.0, seconds)
    limits = list(_rate_limit_headers(headers).values())
    # Wait for the limit that is used up; when none says so, for the longest reset.
    exhausted = [values for values in limits if values.get("remaining", 1) <= 0]
    resets = []
    for values in exhausted or limits:
        reset = values.get("reset")
        if reset is None:
            continue
        if reset > 1e12:  # epoch milliseconds
            reset = reset / 1000 - now_ts
        elif reset > 1e9:  # epoch seconds
            reset = reset - now_ts
        resets.append(max(0.0, reset))
    return max(resets) if resets else None


# --- building clients from the app's configuration ----------------------------------


def get_client(purpose: str = "sync", app: Flask | None = None) -> CalcomClient:
    """The app's Cal.com client for `purpose` ("availability": short timeouts because a
    caller is waiting; "sync": longer ones). One client (one connection pool) per
    purpose and configuration, reused across requests and jobs."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}")
    app = app or current_app._get_current_object()
    config = app.config
    read_timeout = config["CALCOM_AVAILABILITY_TIMEOUT"] if purpose == "availability" else config["CALCOM_SYNC_TIMEOUT"]
    key = (purpose, config["CALCOM_API_URL"], config.get("CALCOM_API_KEY"), config["CALCOM_CONNECT_TIMEOUT"],
           read_timeout)
    clients = app.extensions.setdefault("calcom_clients", {})
    client = clients.get(key)
    if client is None:
        from core.redis_client import get_redis

        client = CalcomClient(
            config["CALCOM_API_URL"],
            config.get("CALCOM_API_KEY"),
            connect_timeout=float(config["CALCOM_CONNECT_TIMEOUT"]),
            read_timeout=float(read_timeout),
            redis=get_redis(app),
            call_log_retention=int(config["CALCOM_CALL_LOG_RETENTION"]),
        )
        clients[key] = client
    return client


__all__ = [
    "Attendee",
    "Booking",
    "BookingPage",
    "CalcomClient",
    "Slot",
    "format_time",
    "get_client",
    "parse_time",
    "rate_limit_headroom",
    "retry_after_seconds",
]
