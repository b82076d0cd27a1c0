"""Bad input: every voice function and the Cal.com webhook, fed hostile requests.

Hypothesis draws bodies in both Retell wire forms (`{name, call, args}` and args only),
raw bytes (invalid UTF-8, not JSON, JSON of the wrong type), hostile values (huge
integers such as 2**70, NaN/Infinity, nested objects where text belongs, control
characters and lone surrogates, oversized text) and wrong content types; for the
webhook, real-looking Cal.com deliveries with fields broken or removed. Signed and
unsigned. For every request:

* never a 5xx, always JSON, always shorter than Retell's 15,000 characters;
* a rejection (4xx, or `success: false`) wrote nothing: the rows of appointments,
  segments, customers, sync attempts, webhook deliveries and audit events, the slot
  holds in Redis and the sync queues are exactly as before;
* bodies over MAX_CONTENT_LENGTH get 413 with a JSON error.

Few examples by default (a fixed set, seconds); `SLOTGUARD_FUZZ=deep` draws hundreds
of fresh ones per test (`SLOTGUARD_FUZZ_EXAMPLES` to choose). See README "Bad input".
"""

from __future__ import annotations

import io
import json
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from booking.functions import FUNCTIONS
from booking.openapi import retell_functions
from booking.responses import FIELDS
from booking.retell_signature import now_ms, sign as retell_sign
from calcom.webhooks import SIGNATURE_HEADER as CAL_SIGNATURE
from calcom.webhooks import sign as cal_sign
from core.extensions import db
from tests.support.bad_input import (  # noqa: F401 (app_config, booked: fixtures)
    CONTENT_TYPES,
    EXTRA_ARGUMENTS,
    FUZZ,
    RAW_BODIES,
    RETELL_ANSWER_LIMIT,
    WEBHOOK_SECRET,
    app_config,
    args_only_headers,
    arguments_for,
    booked,
    broken_webhooks,
    good_arguments,
    good_webhook,
    hostile_instead_of,
    leaf_paths,
    session_is_clean,
    snapshot,
    to_json_bytes,
    wrapped_body,
)
from tests.voice.conftest import BRANCH_PHONE, CALLER, RETELL_KEY, calendar, world  # noqa: F401 (fixtures)

FUNCTION_NAMES = sorted(FUNCTIONS)


class Probe:
    """Sends one request and checks what every request must satisfy."""

    def __init__(self, app, client):
        self.app = app
        self.client = client

    def post(self, path: str, body: bytes, *, content_type: str | None = "application/json", headers=None):
        before = snapshot(self.app)
        all_headers = dict(headers or {})
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        # As a stream: given `data`, the test client would replace an empty multipart body
        # with one of its own, and the signature would no longer match what is sent.
        response = self.client.post(path, input_stream=io.BytesIO(body), content_length=len(body),
                                    headers=all_headers)
        text = response.get_data(as_text=True)
        assert response.status_code < 500, text[:2000]
        assert len(text) < RETELL_ANSWER_LIMIT, f"{len(text)} characters"
        assert response.is_json, text[:500]
        answer = response.get_json()
        assert isinstance(answer, dict)
        if response.status_code >= 400 or answer.get("success") is False:
            db.session.rollback()
            assert snapshot(self.app) == before, f"a rejected request wrote something: {answer}"
        assert session_is_clean()
        db.session.rollback()  # the next request starts from what is committed
        return response, answer

    def voice(self, function: str, body: bytes, *, signed=True, content_type="application/json", headers=None,
              path=None):
        all_headers = dict(headers or {})
        if signed:
            all_headers["X-Retell-Signature"] = retell_sign(body, RETELL_KEY, now_ms())
        response, answer = self.post(path or f"/retell/functions/{function}", body, content_type=content_type,
                                     headers=all_headers)
        if response.status_code == 200:
            assert set(answer) == {"success", "error_code", "message", *FIELDS[function]}, answer
            assert isinstance(answer["message"], str) and answer["message"]
            assert (answer["error_code"] is None) == answer["success"]
        else:
            assert answer["success"] is False and answer["error_code"] and answer["message"], answer
        return response, answer

    def webhook(self, body: bytes, *, signature: str | None | bool = True, content_type="application/json"):
        headers = {}
        if signature is True:
            headers[CAL_SIGNATURE] = cal_sign(body, WEBHOOK_SECRET)
        elif signature:
            headers[CAL_SIGNATURE] = signature
        response, answer = self.post("/webhooks/calcom", body, content_type=content_type, headers=headers)
        if response.status_code >= 400:
            assert answer.get("status") == "error" and answer.get("error"), answer
        else:
            assert answer.get("status") == "ok", answer
        return response, answer


@pytest.fixture
def probe(app, client, booked):
    return Probe(app, client)


# --- voice functions, signed ----------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTION_NAMES)
@FUZZ
@given(data=st.data(), content_type=CONTENT_TYPES)
def test_wrapped_form_survives_anything(probe, function, data, content_type):
    body = data.draw(wrapped_body(function, CALLER, BRANCH_PHONE), label="body")
    response, _ = probe.voice(function, to_json_bytes(body), content_type=content_type)
    assert response.status_code in (200, 400, 413)


@pytest.mark.parametrize("function", FUNCTION_NAMES)
@FUZZ
@given(data=st.data(), headers=args_only_headers(CALLER, BRANCH_PHONE), content_type=CONTENT_TYPES)
def test_args_only_form_survives_anything(probe, function, data, headers, content_type):
    args = data.draw(arguments_for(function), label="args")
    response, _ = probe.voice(function, to_json_bytes(args), headers=headers, content_type=content_type)
    assert response.status_code in (200, 400, 413)


@FUZZ
@given(function=st.sampled_from(FUNCTION_NAMES), body=RAW_BODIES, content_type=CONTENT_TYPES)
def test_raw_bodies_are_refused_cleanly(probe, function, body, content_type):
    response, _ = probe.voice(function, body, content_type=content_type)
    assert response.status_code in (200, 400, 413)


@pytest.mark.parametrize("function", FUNCTION_NAMES)
@FUZZ
@given(data=st.data())
def test_one_hostile_argument_in_a_request_that_would_succeed(probe, booked, function, data):
    """The value most likely to get through to the database: everything else is right."""
    args = good_arguments(function, data.draw(st.integers(0, 15), label="slot"), booked["appointment_ids"])
    names = sorted(set(args) | set(retell_functions()[function]["parameters"]["properties"]) | set(EXTRA_ARGUMENTS))
    name = data.draw(st.sampled_from(names), label="argument")
    args[name] = data.draw(hostile_instead_of(args.get(name, "")), label="value")
    call_id = data.draw(st.sampled_from(["call_fuzz", "call_other"]), label="call_id")
    body = {"name": function, "args": args,
            "call": {"call_id": call_id, "from_number": CALLER, "to_number": BRANCH_PHONE}}
    response, _ = probe.voice(function, to_json_bytes(body))
    assert response.status_code in (200, 413)


# --- voice functions, unsigned or badly signed ------------------------------------------------------

BAD_SIGNATURES = st.one_of(
    st.none(),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90),
    st.just("stale"), st.just("wrong_key"), st.just("other_body"), st.just("future"),
)


def bad_signature(kind, body: bytes) -> dict:
    stamp = now_ms()
    value = {
        "stale": lambda: retell_sign(body, RETELL_KEY, stamp - 6 * 60 * 1000),
        "future": lambda: retell_sign(body, RETELL_KEY, stamp + 6 * 60 * 1000),
        "wrong_key": lambda: retell_sign(body, "not_the_key", stamp),
        "other_body": lambda: retell_sign(body + b" ", RETELL_KEY, stamp),
    }.get(kind, lambda: kind)()
    return {} if value is None else {"X-Retell-Signature": value}


@FUZZ
@given(data=st.data(), function=st.sampled_from(FUNCTION_NAMES), kind=BAD_SIGNATURES)
def test_unsigned_requests_are_refused_and_change_nothing(probe, data, function, kind):
    body = data.draw(wrapped_body(function, CALLER, BRANCH_PHONE), label="body")
    raw = to_json_bytes(body)
    response, answer = probe.voice(function, raw, signed=False, headers=bad_signature(kind, raw))
    assert response.status_code == (413 if len(raw) > probe.app.config["MAX_CONTENT_LENGTH"] else 401), answer



@FUZZ
@given(name=st.text(min_size=1, max_size=3000))
def test_unknown_function_names_get_a_short_404(probe, name):
    # A "/" (even as %2F) or a dot segment makes it another URL, not another function.
    assume(name not in FUNCTIONS and "/" not in name and name.strip() not in (".", ".."))
    body = b'{"args": {}}'
    response, answer = probe.voice(
        "check_availability", body, path=f"/retell/functions/{quote(name, safe='')}",
    )
    assert response.status_code == 404 and answer["error_code"] == "unknown_function", answer


# --- the Cal.com webhook ----------------------------------------------------------------------


@FUZZ
@given(body=broken_webhooks(), content_type=CONTENT_TYPES)
def test_signed_webhooks_with_broken_fields(probe, body, content_type):
    response, _ = probe.webhook(to_json_bytes(body), content_type=content_type)
    assert response.status_code in (200, 400, 413)


@FUZZ
@given(body=RAW_BODIES)
def test_signed_webhooks_that_are_not_cal_com_deliveries(probe, body):
    response, _ = probe.webhook(body)
    assert response.status_code in (200, 400, 413)


@FUZZ
@given(body=broken_webhooks(), signature=st.one_of(
    st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
    st.just("other_body"), st.just("wrong_secret"),
))
def test_unsigned_webhooks_are_refused_and_change_nothing(probe, body, signature):
    raw = to_json_bytes(body)
    header = {"other_body": cal_sign(raw + b"\n", WEBHOOK_SECRET), "wrong_secret": cal_sign(raw, "whsec_other")}.get(
        signature, signature)
    response, _ = probe.webhook(raw, signature=header or False)
    assert response.status_code == (413 if len(raw) > probe.app.config["MAX_CONTENT_LENGTH"] else 401)


@FUZZ
@given(data=st.data())
def test_one_hostile_field_in_a_delivery_that_would_succeed(probe, data):
    """One field at a time, on a BOOKING_CREATED that would otherwise be stored."""
    body = good_webhook(data.draw(st.integers(0, 15), label="slot"))
    path = data.draw(st.sampled_from(leaf_paths(body)), label="field")
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = data.draw(hostile_instead_of(parent[path[-1]]), label="value")
    response, _ = probe.webhook(to_json_bytes(body))
    assert response.status_code in (200, 400, 413)


# --- body size --------------------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid JSON object of exactly `size` bytes."""
    head = b'{"args": {"service": "Herrenhaarschnitt"}, "pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def signed_both_ways(body: bytes) -> dict:
    return {"X-Retell-Signature": retell_sign(body, RETELL_KEY, now_ms()),
            CAL_SIGNATURE: cal_sign(body, WEBHOOK_SECRET)}


@pytest.mark.parametrize("path", [f"/retell/functions/{name}" for name in FUNCTION_NAMES] + ["/webhooks/calcom"])
def test_bodies_over_the_limit_get_413_with_a_json_error(app, probe, path):
    limit = app.config["MAX_CONTENT_LENGTH"]
    too_big = padded(limit + 1)
    response, answer = probe.post(path, too_big, headers=signed_both_ways(too_big))
    assert response.status_code == 413, answer
    assert str(limit) in json.dumps(answer)

    at_limit = padded(limit)
    response, _ = probe.post(path, at_limit, headers=signed_both_ways(at_limit))
    assert response.status_code in (200, 400)
