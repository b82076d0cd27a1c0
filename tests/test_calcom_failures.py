"""How Cal.com failures become codes, operator reasons and retry decisions."""

from __future__ import annotations

import pytest

from calcom.errors import (
    CalcomRequestError,
    CalcomTimeout,
    CalcomUnavailable,
    MalformedResponse,
    RateLimited,
    SlotUnavailable,
)
from calcom.failures import classify
from core.pii import redact_text as redact

DOING = "book Herrenhaarschnitt with Anna on Tue 08.12.2026 10:00 (Europe/Berlin) in Cal.com"


@pytest.mark.parametrize("error, code, retryable", [
    (CalcomUnavailable("Internal server error.", status=503), "http_503", True),
    (CalcomUnavailable("could not reach Cal.com: ConnectionError", code="connection_error"), "connection_error", True),
    (CalcomTimeout("Cal.com did not answer within 15 s", code="timeout"), "timeout", True),
    (RateLimited("Too many requests", status=429, retry_after=37), "rate_limited", True),
    (MalformedResponse("Cal.com answered without the success envelope", status=200), "malformed_response", True),
    (SlotUnavailable("User either already has booking at this time or is not available", status=400),
     "slot_taken_in_calcom", False),
    (CalcomRequestError("Event type with id 4242 not found.", status=404, code="NotFoundException"),
     "event_type_not_found", False),
    (CalcomRequestError("attendee property is wrong, Invalid email format ", status=400), "invalid_attendee", False),
    (CalcomRequestError("Attempting to book a meeting in the past.", status=400), "booking_in_past", False),
    (CalcomRequestError('The event type can\'t be booked at the "start" time provided.', status=400),
     "outside_booking_window", False),
    (CalcomRequestError("CustomThrottlerGuard - Invalid API Key", status=401), "calcom_auth", False),
    (CalcomRequestError("Something else entirely", status=422), "calcom_rejected", False),
])
def test_failures_are_classified(error, code, retryable):
    failure = classify(error, doing=DOING, event_type_id=4242)
    assert (failure.code, failure.retryable) == (code, retryable)
    assert failure.reason.startswith(f"Could not {DOING}: ")
    assert failure.http_status == error.status


def test_a_429_carries_the_wait_and_says_it():
    failure = classify(RateLimited("Too many requests", status=429, retry_after=37), doing=DOING)
    assert failure.retry_after == 37 and "Cal.com asks to wait 37 s" in failure.reason


def test_operator_reasons_say_what_to_do():
    taken = classify(SlotUnavailable("User either already has booking at this time", status=400), doing=DOING)
    assert "Move or cancel one of the two bookings, then retry the sync." in taken.reason
    unknown = classify(CalcomRequestError("Event type with id 4242 not found.", status=404), doing=DOING,
                       event_type_id=4242)
    assert "Fix the service's Cal.com event type id, then retry" in unknown.reason


def test_unexpected_exceptions_are_retried_and_named():
    failure = classify(KeyError("start"), doing=DOING)
    assert failure.retryable and failure.code == "unexpected_error" and "KeyError" in failure.reason


def test_contact_details_are_masked():
    text = "Attendee erika.mustermann+test@example.co.uk (+49 151 0000 0001) can't book"
    assert redact(text) == "Attendee [email] ([phone]) can't book"
    assert redact("call 0151 23456789 now") == "call [phone] now"
    kept = "Can't reschedule booking 900123456 at 2026-12-08T09:00:00.000Z for event type 1001"
    assert redact(kept) == kept
    failure = classify(CalcomRequestError("attendee email erika@example.com is invalid", status=400), doing=DOING)
    assert "erika@example.com" not in failure.reason and "[email]" in failure.reason


@pytest.mark.parametrize("error, kind", [
    (CalcomUnavailable("Internal server error.", status=503), "retryable"),
    (CalcomTimeout("no answer", code="timeout"), "retryable"),
    (RateLimited("Too many requests", status=429), "rate_limited"),
    (MalformedResponse("no envelope", status=200), "malformed"),
    (SlotUnavailable("already has booking at this time", status=400), "slot_taken"),
    (CalcomRequestError("Invalid API Key", status=401), "permanent"),
])
def test_every_failure_has_one_kind_and_retrying_follows_from_it(error, kind):
    failure = classify(error, doing=DOING)
    assert failure.kind == kind
    assert failure.retryable == (kind in {"retryable", "rate_limited", "malformed"})


def test_the_sync_worker_reconcile_the_voice_path_and_the_call_log_share_the_one_classifier():
    """No other module decides on Cal.com exception types by itself."""
    import inspect

    import booking.sync_booking
    import calcom.client
    import workers.reconcile
    import workers.sync_calcom
    from calcom import call_log

    for module in (booking.sync_booking, workers.reconcile, workers.sync_calcom):
        source = inspect.getsource(module)
        assert "classify(" in source, module.__name__
        assert "RetryableCalcomError" not in source and "isinstance(exc, SlotUnavailable)" not in source
    assert calcom.client._outcome_of(RateLimited("x", status=429)) == call_log.RATE_LIMITED
    assert calcom.client._outcome_of(SlotUnavailable("x", status=400)) == call_log.SLOT_UNAVAILABLE
    assert calcom.client._outcome_of(CalcomRequestError("x", status=422)) == call_log.CLIENT_ERROR
    assert calcom.client._outcome_of(CalcomUnavailable("x", status=502)) == call_log.SERVER_ERROR
