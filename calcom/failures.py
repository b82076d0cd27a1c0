"""What went wrong talking to Cal.com, in words an operator can act on: the one place.

Every Cal.com failure — in the sync worker, in reconciliation, and on the voice path
(`FEATURE_ASYNC_BOOKING=false` books while the caller waits) — goes through
`classify(error, doing=…)`, which gives

* a `kind`: `retryable` (unreachable, 5xx, timeout), `rate_limited` (429),
  `malformed` (a 2xx whose body is not the documented JSON: retried, and a create
  may have happened), `slot_taken` (Cal.com has another booking at that time) or
  `permanent` (any other 4xx: retrying cannot fix it, manual review at once);
* a short stable `code` (for counts and filters on the dashboard, `sync_error_code`);
* an operator-readable `reason` that starts with what we were doing, without
  personal data.

`kind_of(error)` is the same decision without the words, for callers that only branch.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from core.pii import redact_text

RETRYABLE = "retryable"
RATE_LIMITED = "rate_limited"
MALFORMED = "malformed"
SLOT_TAKEN = "slot_taken"
PERMANENT = "permanent"
RETRY_HELPS = frozenset({RETRYABLE, RATE_LIMITED, MALFORMED})


@dataclass(frozen=True)
class Failure:
    code: str
    reason: str
    retryable: bool
    http_status: int | None = None
    retry_after: float | None = None
    # For composite appointments: which busy segment (0-based) failed.
    segment_index: int | None = None
    # One of the kinds above; failures made by hand get it from `retryable`.
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", RETRYABLE if self.retryable else PERMANENT)


def kind_of(error: Exception) -> str:
    """The kind of a Cal.com failure (anything that is not a `CalcomError` counts as
    retryable: an unexpected bug may be gone on the next try, and the attempts are capped)."""
    if isinstance(error, RateLimited):
        return RATE_LIMITED
    if isinstance(error, MalformedResponse):
        return MALFORMED
    if isinstance(error, RetryableCalcomError):
        return RETRYABLE
    if isinstance(error, SlotUnavailable):
        return SLOT_TAKEN
    if isinstance(error, CalcomError):
        return PERMANENT
    return RETRYABLE


def describe(error: CalcomError) -> str:
    """Cal.com's own words, shortened and without personal data."""
    parts = []
    if error.status is not None:
        parts.append(f"HTTP {error.status}")
    if error.code:
        parts.append(str(error.code))
    message = redact_text(error.message or "") or ""
    if len(message) > 300:
        message = message[:297] + "..."
    head = " ".join(parts)
    return f"{head}: {message}" if head and message else head or message


def classify(error: Exception, *, doing: str, event_type_id: int | None = None,
             segment_index: int | None = None) -> Failure:
    """Turn an exception from a Cal.com call into a `Failure`.

    `doing` says what we were trying, e.g. "book Herrenhaarschnitt with Anna on
    Tue 08.12. 10:00" — it starts every reason.
    """
    failure = _classify(error, doing, event_type_id, segment_index)
    kind = kind_of(error)  # the retry decision; the words below only explain it
    return Failure(failure.code, failure.reason, kind in RETRY_HELPS, failure.http_status, failure.retry_after,
                   failure.segment_index, kind)


def _classify(error: Exception, doing: str, event_type_id: int | None, segment_index: int | None) -> Failure:
    if isinstance(error, RateLimited):
        wait = f" (Cal.com asks to wait {error.retry_after:.0f} s)" if error.retry_after else ""
        return Failure("rate_limited", f"Could not {doing}: Cal.com's rate limit was reached{wait}.", True,
                       error.status, error.retry_after, segment_index)
    if isinstance(error, CalcomTimeout):
        return Failure("timeout", f"Could not {doing}: Cal.com did not answer in time.", True,
                       error.status, None, segment_index)
    if isinstance(error, CalcomUnavailable):
        if error.status is None:
            return Failure("connection_error", f"Could not {doing}: Cal.com could not be reached "
                           f"({describe(error)}).", True, None, None, segment_index)
        return Failure(f"http_{error.status}", f"Could not {doing}: Cal.com had a server error "
                       f"({describe(error)}).", True, error.status, None, segment_index)
    if isinstance(error, MalformedResponse):
        return Failure("malformed_response", f"Could not {doing}: Cal.com's answer was not understood "
                       f"({describe(error)}).", True, error.status, None, segment_index)
    if isinstance(error, RetryableCalcomError):
        return Failure("calcom_unavailable", f"Could not {doing}: {describe(error)}.", True,
                       error.status, None, segment_index)
    if isinstance(error, SlotUnavailable):
        return Failure(
            "slot_taken_in_calcom",
            f"Could not {doing}: Cal.com already has another booking at this time that Slotguard "
            "does not know about (perhaps made directly in Cal.com). Move or cancel one of the two "
            "bookings, then retry the sync.",
            False, error.status, None, segment_index)
    if isinstance(error, CalcomRequestError):
        return _request_failure(error, doing, event_type_id, segment_index)
    if isinstance(error, CalcomError):
        return Failure("calcom_error", f"Could not {doing}: {describe(error)}.", False,
                       error.status, None, segment_index)
    return Failure("unexpected_error", f"Could not {doing}: unexpected error {type(error).__name__}: "
                   f"{redact_text(str(error))[:300]}.", True, None, None, segment_index)


def _request_failure(error: CalcomRequestError, doing: str, event_type_id: int | None,
                     segment_index: int | None) -> Failure:
    """A 4xx other than a slot conflict: name the likely cause."""
    message = (error.message or "").lower()
    status = error.status
    said = describe(error)

    def failure(code: str, advice: str) -> Failure:
        return Failure(code, f"Could not {doing}: {advice} (Cal.com said {said}).", False, status, None,
                       segment_index)

    if status in (401, 403):
        return failure("calcom_auth", "Cal.com refused Slotguard's API key or its permissions. "
                       "Check CALCOM_API_KEY")
    if "event type" in message and ("not found" in message or status == 404):
        return failure("event_type_not_found", f"Cal.com does not know event type {event_type_id}. "
                       "Fix the service's Cal.com event type id, then retry")
    if status == 404:
        return failure("booking_not_found", "the booking does not exist in Cal.com")
    if "attendee" in message or "email" in message or "phone" in message or "timezone" in message \
            or "time zone" in message:
        return failure("invalid_attendee", "Cal.com refused the customer's details. "
                       "Correct the customer's name, e-mail or phone number, then retry")
    if "in the past" in message:
        return failure("booking_in_past", "the appointment lies in the past")
    if "can't be booked at the" in message or "minimum booking notice" in message or "too far" in message:
        return failure("outside_booking_window", "the time is outside the event type's booking window "
                       "(minimum notice or how far ahead it can be booked)")
    if "cancelled" in message and "reschedule" in message:
        return failure("cancelled_in_calcom", "the booking was cancelled in Cal.com, so it cannot be moved. "
                       "Book it again (retry) or cancel the appointment")
    if "metadata" in message:
        return failure("invalid_metadata", "Cal.com refused the booking metadata")
    if "maximum number of active bookings" in message:
        return failure("booking_limit", "the customer reached the event type's limit of active bookings")
    if "lengthinminutes" in message or ("length" in message and "event type" in message):
        return failure("invalid_length", "the event type does not accept this duration")
    return failure("calcom_rejected", "Cal.com refused the request")


__all__ = ["MALFORMED", "PERMANENT", "RATE_LIMITED", "RETRYABLE", "RETRY_HELPS", "SLOT_TAKEN", "Failure", "classify",
           "describe", "kind_of"]
