"""Schemathesis against the published OpenAPI description (`GET /retell/openapi.json`),
in-process over WSGI: every Retell function and the Cal.com webhook, signed the way
Retell and Cal.com sign (an auth provider signs the exact bytes sent), so requests
reach the handlers. Checks: never a server error, every answer matches the schema
declared for its status, a signed request is never refused as unsigned, and a
rejection writes nothing. Example counts follow the bad-input profile
(`SLOTGUARD_FUZZ=deep` for more).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import response_schema_conformance

from booking.openapi import openapi_document
from booking.retell_signature import HEADER as RETELL_SIGNATURE
from booking.retell_signature import now_ms, sign as retell_sign
from calcom.webhooks import SIGNATURE_HEADER as CAL_SIGNATURE
from calcom.webhooks import sign as cal_sign
from core.extensions import db
from tests.support.bad_input import FUZZ, WEBHOOK_SECRET, app_config, booked, snapshot  # noqa: F401 (fixtures)
from tests.voice.conftest import RETELL_KEY, calendar, world  # noqa: F401 (fixtures)


# Schemathesis builds its explicit examples (and signs them) at collection, before the
# `clock` fixture freezes time at this moment; the test checks the two agree.
FROZEN_NOW_MS = int(datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc).timestamp() * 1000)


class SignedLikeTheCallers:
    """Signs each request body as Retell (X-Retell-Signature) or Cal.com
    (X-Cal-Signature-256) would. The body is fixed as bytes first, so what is signed
    is exactly what is sent."""

    def get(self, case, context):
        return "sign"  # no token to fetch; anything but None makes schemathesis call `set`

    def set(self, case, data, context):
        if isinstance(case.body, NotSet):  # a case without a body: sign the empty one
            raw = b""
        else:
            raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
            case.body = raw
        headers = dict(case.headers or {})
        if case.path.startswith("/retell/"):
            headers[RETELL_SIGNATURE] = retell_sign(raw, RETELL_KEY, FROZEN_NOW_MS)
        else:
            headers[CAL_SIGNATURE] = cal_sign(raw, WEBHOOK_SECRET)
        case.headers = headers


# Built from the same document the app serves (checked below); the requests go to the
# test's app in-process. (`from_wsgi` + `pytest.from_fixture` would fetch it from the
# app, but schemathesis' lazy loader does not run under pytest 9.)
schema = schemathesis.openapi.from_dict(openapi_document())
schema.auth(refresh_interval=None)(SignedLikeTheCallers)


def test_the_description_is_served_and_built_from_the_function_files(client):
    response = client.get("/retell/openapi.json")
    assert response.status_code == 200 and response.is_json
    document = response.get_json()
    assert document == openapi_document()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/retell/functions/cancel_appointment", "/retell/functions/check_availability",
        "/retell/functions/find_appointments", "/retell/functions/reschedule_appointment",
        "/retell/functions/start_booking", "/webhooks/calcom",
    }
    assert document["components"]["schemas"]["start_booking_args"]["required"] == ["customer_name"]


@schema.parametrize()
@FUZZ
def test_schemathesis(case, app, booked):
    assert now_ms() == FROZEN_NOW_MS
    before = snapshot(app)
    response = case.call(app=app)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    if not case.operation.schema.is_security_param_negated(case):  # a case left unsigned on purpose
        assert response.status_code != 401, "a signed request was refused as unsigned"
    # Other methods (schemathesis tries TRACE, QUERY, …) get Flask's own 405 page.
    rejected = response.status_code >= 400
    if case.method == "POST":
        assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.status_code
        rejected = rejected or response.json().get("success") is False
    if rejected:
        db.session.rollback()
        assert snapshot(app) == before, "a rejected request wrote something"
    db.session.rollback()
