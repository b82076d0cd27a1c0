"""The `retell` blueprint: POST /retell/functions/<name> for Retell custom functions.

Thin on purpose: read the raw body (413 beyond MAX_CONTENT_LENGTH), check the
signature on exactly those bytes, parse, hand over to `booking.functions`, answer
JSON. Protocol problems (bad signature, not JSON, unknown function, wrong method)
are 4xx JSON for the operator; everything the caller can fix is a 200 with
`success: false` (see `booking.errors`). The endpoints are signed, so CSRF
protection (for the dashboard's forms) does not apply to them.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from booking import phrases, retell_signature
from booking.errors import ProtocolError
from booking.functions import FUNCTIONS, run
from booking.openapi import openapi_document
from booking.retell_request import parse_request
from core.extensions import csrf, db
from core.observability import bind_request_ids
from core.prom import VOICE_FUNCTION_CALLS

logger = logging.getLogger(__name__)

bp = Blueprint("retell", __name__, url_prefix="/retell")

SIGNATURE_HEADER = retell_signature.HEADER


def json_response(body: dict, status: int = 200) -> Response:
    # UTF-8 as is: the agent's LLM reads the text, "ü" must not arrive as "\\u00fc".
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                    mimetype="application/json")


def protocol_error(status: int, code: str, message: str) -> Response:
    return json_response({"success": False, "error_code": code, "message": message}, status)


@bp.post("/functions/<name>")
def call_function(name: str):
    raw_body = request.get_data(cache=True)
    require_signature(raw_body)
    if name not in FUNCTIONS:
        raise ProtocolError(404, "unknown_function", f"unknown function {name[:80]!r}; known: {', '.join(FUNCTIONS)}")
    retell_request = parse_request(name, raw_body, request.headers)
    bind_request_ids(call_id=retell_request.call_id)
    body = run(db.session, retell_request)
    VOICE_FUNCTION_CALLS.labels(name, outcome_of(name, body)).inc()
    if body.get("appointment_id"):
        bind_request_ids(appointment_id=body["appointment_id"])
    return json_response(body)


def outcome_of(name: str, body: dict) -> str:
    """What the caller got, for `slotguard_voice_function_calls_total`: available /
    not_available (check_availability), booked (start_booking), ok (the others), or
    the caller-facing error code (slot_taken, lock_expired, calendar_unavailable, …)."""
    if not body.get("success"):
        return body.get("error_code") or "error"
    if name == "check_availability":
        return "available" if body.get("available") else "not_available"
    if name == "start_booking":
        return "booked"
    return "ok"


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI description of the Retell functions and the Cal.com webhook (public:
    it holds the shapes operators paste into Retell anyway, no secrets)."""
    return json_response(openapi_document())


@bp.route("/functions/<name>", methods=["GET", "PUT", "PATCH", "DELETE"])
def wrong_method(name: str):
    response = protocol_error(405, "method_not_allowed", "Retell custom functions are called with POST")
    response.headers["Allow"] = "POST"
    return response


def require_signature(raw_body: bytes) -> None:
    """401 unless `X-Retell-Signature` is valid; skipped (loudly) only in development
    without RETELL_API_KEY — production refuses to start without it."""
    api_key = current_app.config.get("RETELL_API_KEY")
    if not api_key:
        if current_app.config.get("ENV") == "production":
            raise ProtocolError(401, "invalid_signature", "RETELL_API_KEY is not configured")
        logger.warning("RETELL_API_KEY is not set: accepting an UNSIGNED Retell request (development only)")
        return
    if not retell_signature.verify(raw_body, api_key, request.headers.get(SIGNATURE_HEADER)):
        raise ProtocolError(401, "invalid_signature", f"missing, malformed, stale or wrong {SIGNATURE_HEADER}")


@bp.errorhandler(ProtocolError)
def on_protocol_error(error: ProtocolError):
    db.session.rollback()
    if request.view_args and request.view_args.get("name") in FUNCTIONS:
        VOICE_FUNCTION_CALLS.labels(request.view_args["name"], "protocol_error").inc()
    if error.status == 401:
        logger.warning("refused Retell request: %s", error.message)
    return protocol_error(error.status, error.code, error.message)


@bp.errorhandler(RequestEntityTooLarge)
def on_too_large(_error):
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return protocol_error(413, "payload_too_large", f"request bodies are limited to {limit} bytes")


@bp.errorhandler(Exception)
def on_unexpected(error: Exception):
    """A bug or an outage (database down): a 500, but still JSON and still words the
    agent can say; nothing half-written stays behind (rollback)."""
    from werkzeug.exceptions import HTTPException

    if isinstance(error, HTTPException):
        return protocol_error(error.code or 500, "http_error", error.description or error.name)
    db.session.rollback()
    if request.view_args and request.view_args.get("name") in FUNCTIONS:
        VOICE_FUNCTION_CALLS.labels(request.view_args["name"], "internal_error").inc()
    logger.exception("Retell function failed")
    return json_response({"success": False, "error_code": "internal_error", "message": phrases.TECHNICAL_ERROR}, 500)


def init_app(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)
    if not app.config.get("RETELL_API_KEY"):
        app.logger.warning(
            "RETELL_API_KEY is not set: Retell requests are NOT authenticated (allowed in development only)"
        )
