"""X-Retell-Signature (checked against the official retell-sdk), both body forms,
and the 4xx answers for protocol errors."""

from __future__ import annotations

import json
import time

import pytest
from retell import Retell
from retell.lib.webhook_auth import symmetric

from booking import retell_signature
from booking.retell_request import parse_request
from booking.errors import ProtocolError
from core.extensions import db
from core.models import Appointment
from tests.voice.conftest import BRANCH_PHONE, RETELL_KEY

BODY = '{"name":"book_appointment","args":{"start":"2030-01-08T13:00:00Z"}}'
ARGS = {"service": "Herrenhaarschnitt", "date": "2026-12-08", "time": "10:00"}


def test_sdk_test_vector():
    # From /work/notes/retell.md, computed with retell-sdk 6.2.13.
    expected = "v=1700000000000,d=c6e6ad998457c32edd2597c61b81af1f52bcc2a401f0427b9da7044b3a595649"
    assert retell_signature.sign(BODY.encode(), "key_test", 1700000000000) == expected
    assert retell_signature.verify(BODY.encode(), "key_test", expected, at_ms=1700000000000 + 299_999)


def test_agrees_with_official_retell_verify_both_ways():
    now = int(time.time() * 1000)
    ours = retell_signature.sign(BODY.encode(), "key_test", now)
    assert Retell(api_key="key_test").verify(BODY, api_key="key_test", signature=ours)
    theirs = symmetric["sign"](BODY, "key_test", now)
    assert retell_signature.verify(BODY.encode(), "key_test", theirs, at_ms=now)
    for header in [theirs.upper(), theirs.replace(",", ", "), theirs[:-1] + "0", "", "v=1,d=abc"]:
        assert retell_signature.verify(BODY.encode(), "key_test", header, at_ms=now) == bool(
            Retell(api_key="key_test").verify(BODY, api_key="key_test", signature=header)
        )


def test_window_is_five_minutes_inclusive_like_the_sdk():
    stamp = 1_700_000_000_000
    header = retell_signature.sign(BODY.encode(), "key_test", stamp)
    for offset, valid in [(300_000, True), (300_001, False), (-300_000, True), (-300_001, False)]:
        assert retell_signature.verify(BODY.encode(), "key_test", header, at_ms=stamp + offset) is valid
        assert symmetric["verify"](BODY, "key_test", header, {"timestamp": stamp + offset}) is valid


def count_appointments() -> int:
    return db.session.query(Appointment).count()


def test_valid_signature_is_answered(world, voice):
    body = voice("check_availability", ARGS)
    assert body["success"] is True and body["available"] is True


@pytest.mark.parametrize("case", ["missing", "wrong_key", "tampered_body", "malformed", "stale", "future"])
def test_bad_signatures_are_refused_with_401_and_nothing_happens(world, voice, clock, case):
    raw = voice.body("start_booking", dict(ARGS, customer_name="Erika Muster"))
    now = retell_signature.now_ms()
    headers = {
        "missing": {},
        "wrong_key": {"X-Retell-Signature": symmetric["sign"](raw, "other_key", now)},
        "tampered_body": {"X-Retell-Signature": symmetric["sign"](raw.replace("Erika", "Mallory"), RETELL_KEY, now)},
        "malformed": {"X-Retell-Signature": "sha256=" + "0" * 64},
        "stale": {"X-Retell-Signature": symmetric["sign"](raw, RETELL_KEY, now - 5 * 60 * 1000 - 1)},
        "future": {"X-Retell-Signature": symmetric["sign"](raw, RETELL_KEY, now + 5 * 60 * 1000 + 1)},
    }[case]
    response = voice.post("start_booking", raw, headers=headers, sign=False)
    assert response.status_code == 401
    assert response.get_json() == {"success": False, "error_code": "invalid_signature",
                                   "message": "missing, malformed, stale or wrong X-Retell-Signature"}
    assert count_appointments() == 0


def test_signature_four_minutes_old_still_counts(world, voice, clock):
    raw = voice.body("check_availability", ARGS)
    header = symmetric["sign"](raw, RETELL_KEY, retell_signature.now_ms() - 4 * 60 * 1000)
    response = voice.post("check_availability", raw, headers={"X-Retell-Signature": header}, sign=False)
    assert response.status_code == 200


def test_args_only_body_with_call_id_header(world, voice):
    # The dialled number comes from Retell's header, never from the LLM-filled args.
    retell = {"X-Retell-Call-Id": "call_root", "X-Retell-To-Number": BRANCH_PHONE}
    raw = json.dumps(ARGS)
    response = voice.post("check_availability", raw, headers=retell)
    body = response.get_json()
    assert response.status_code == 200 and body["available"] is True
    assert body["lock_key"]

    raw = json.dumps(dict(ARGS, lock_key=body["lock_key"], customer_name="Erika Muster",
                          customer_phone="0151 1234567"))
    booked = voice.post("start_booking", raw, headers=retell).get_json()
    assert booked["success"] is True
    assert db.session.get(Appointment, booked["appointment_id"]).call_id == "call_root"


def test_args_only_signature_is_checked_on_the_flat_body(world, voice):
    raw = json.dumps(dict(ARGS, to_number=BRANCH_PHONE))
    forged = symmetric["sign"](json.dumps({"args": ARGS}), RETELL_KEY, retell_signature.now_ms())
    response = voice.post("check_availability", raw, headers={"X-Retell-Signature": forged}, sign=False)
    assert response.status_code == 401


def test_parse_request_reads_both_forms():
    wrapped = json.dumps({"name": "x", "call": {"call_id": "c1", "from_number": "+4915100000001",
                                                 "to_number": "+4930111111", "metadata": {"branch_id": "7"}},
                          "args": {"service": "Färben"}}).encode()
    parsed = parse_request("check_availability", wrapped, {})
    assert (parsed.call_id, parsed.from_number, parsed.to_number) == ("c1", "+4915100000001", "+4930111111")
    assert parsed.args == {"service": "Färben"} and parsed.setting("branch_id") == "7" and not parsed.args_at_root

    flat = parse_request("check_availability", b'{"service": "F\xc3\xa4rben", "call_id": "c2"}', {})
    assert flat.args_at_root and flat.call_id == "c2" and flat.args["service"] == "Färben"
    header = parse_request("check_availability", b'{"service": "x"}', {"X-Retell-Call-Id": "c3"})
    assert header.call_id == "c3"
    unset = parse_request("check_availability", b'{"service": "x"}', {"X-Retell-Call-Id": "{{call_id}}"})
    assert unset.call_id is None


def test_parse_request_drops_control_characters_everywhere():
    raw = (b'{"name": "x", "call": {"call_id": "call\\u0000_1", "from_number": "+4915\\u001b1"}, '
           b'"args": {"customer_name": "Eri\\u0000ka \\ud800", "nested": [{"k\\u0007": "v\\u009b"}]}}')
    parsed = parse_request("start_booking", raw, {"X-Retell-To-Number": "+49\x7f30"})
    assert parsed.call_id == "call_1" and parsed.from_number == "+49151" and parsed.to_number == "+4930"
    assert parsed.args == {"customer_name": "Erika \ufffd", "nested": [{"k": "v"}]}


@pytest.mark.parametrize("raw", [
    b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"call": {}, "name": "x", "args": [1]}',
    b'{"args": {"appointment_id": ' + b"9" * 5000 + b"}}",  # past Python's int digit limit: was a 500
    b'{"args": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # deeper than Python's recursion limit: was a 500
])
def test_malformed_bodies_are_400(world, voice, raw):
    response = voice.post("check_availability", raw)
    assert response.status_code == 400
    assert response.get_json()["success"] is False
    assert response.get_json()["error_code"] in {"invalid_json", "invalid_args"}
    with pytest.raises(ProtocolError):
        parse_request("check_availability", raw, {})


def test_unknown_function_is_404_json(world, voice):
    response = voice.post("book_everything", voice.body("book_everything", {}))
    assert response.status_code == 404
    assert response.get_json()["error_code"] == "unknown_function"


def test_unknown_function_name_is_not_echoed_at_full_length(world, voice):
    """The name came back whole (as repr: 4 characters per control character)."""
    response = voice.post("x" + "%01" * 5000, voice.body("x", {}))
    assert response.status_code == 404 and len(response.get_data()) < 1000


def test_wrong_method_is_405_json(world, client):
    response = client.get("/retell/functions/check_availability")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.get_json()["error_code"] == "method_not_allowed"


def test_too_large_body_is_413_json(world, voice, app):
    raw = voice.body("check_availability", dict(ARGS, notes="x" * (app.config["MAX_CONTENT_LENGTH"] + 1)))
    response = voice.post("check_availability", raw)
    assert response.status_code == 413
    assert response.get_json()["error_code"] == "payload_too_large"


def test_start_booking_without_any_call_id_is_a_protocol_error(world, voice):
    response = voice.post("start_booking", voice.body("start_booking", dict(ARGS, customer_name="Erika"), call_id=None))
    assert response.status_code == 400
    assert response.get_json()["error_code"] == "missing_call_id"
    assert count_appointments() == 0


def test_csrf_does_not_apply_to_signed_endpoints(world, voice, app):
    app.config["WTF_CSRF_ENABLED"] = True  # production setting; tests usually switch it off
    assert voice("check_availability", ARGS)["success"] is True


def test_without_api_key_development_accepts_unsigned_requests_loudly(world, voice, app, caplog):
    app.config["RETELL_API_KEY"] = None
    response = voice.post("check_availability", voice.body("check_availability", ARGS), sign=False)
    assert response.status_code == 200
    assert "UNSIGNED" in caplog.text


def test_production_refuses_to_start_without_the_key(base_config):
    from core import create_app

    with pytest.raises(RuntimeError, match="RETELL_API_KEY"):
        create_app(dict(base_config, ENV="production", RETELL_API_KEY=None))
