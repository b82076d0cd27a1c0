"""The OpenAPI 3.1 description of the endpoints other systems call: the five Retell
custom functions and the Cal.com webhook (served at `GET /retell/openapi.json`).

Built, not written: the arguments of each function are the JSON schemas operators
paste into Retell (`booking/retell_functions/*.json`), and the answer fields come from
`booking.responses.FIELDS`, so the description cannot drift from what the agent is
configured with or what it receives. Only the shapes that exist nowhere else as
data (the `call` object, the answer field types, the Cal.com webhook) are spelled
out here. Fuzzers (schemathesis, tests/reliability) generate requests from it.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from booking.responses import FIELDS
from booking.retell_signature import HEADER as RETELL_SIGNATURE_HEADER
from calcom.webhooks import SIGNATURE_HEADER as CALCOM_SIGNATURE_HEADER

FUNCTIONS_FOLDER = Path(__file__).resolve().parent / "retell_functions"


@lru_cache(maxsize=1)
def retell_functions() -> dict[str, dict[str, Any]]:
    """The Retell tool definitions by function name, as shipped to operators."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(FUNCTIONS_FOLDER.glob("*.json"))
    }


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


_SLOT = {"type": "object", "required": ["start", "end", "staff"], "properties": {
    "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"},
    "staff": {"type": "string"}}}
_ALTERNATIVE = {"allOf": [_SLOT, {"type": "object", "required": ["spoken"],
                                   "properties": {"spoken": {"type": "string"}}}]}
_APPOINTMENT = {"type": "object", "required": ["appointment_id", "service", "staff", "start", "end", "spoken"],
                "properties": {"appointment_id": {"type": "integer"}, "service": {"type": "string"},
                               "staff": {"type": "string"}, "start": {"type": "string", "format": "date-time"},
                               "end": {"type": "string", "format": "date-time"}, "spoken": {"type": "string"}}}
# The type of every answer field a function may carry (which function carries which:
# booking.responses.FIELDS).
ANSWER_FIELDS: dict[str, dict] = {
    "available": {"type": "boolean"},
    "lock_key": _nullable({"type": "string"}),
    "slot": _nullable(_SLOT),
    "alternatives": {"type": "array", "maxItems": 3, "items": _ALTERNATIVE},
    "appointment_id": _nullable({"type": "integer"}),
    "appointments": {"type": "array", "maxItems": 5, "items": _APPOINTMENT},
}

_CALL = {
    "type": "object",
    "description": "The call, as Retell sends it unless \"Payload: args only\" is on.",
    "properties": {
        "call_id": {"type": "string", "maxLength": 128}, "from_number": {"type": "string"},
        "to_number": {"type": "string"}, "metadata": {"type": "object"},
        "retell_llm_dynamic_variables": {"type": "object"},
    },
}
_PROTOCOL_ERROR = {"type": "object", "required": ["success", "error_code", "message"], "properties": {
    "success": {"const": False}, "error_code": {"type": "string"}, "message": {"type": "string"}}}
_WEBHOOK_ERROR = {"type": "object", "required": ["status", "error"], "properties": {
    "status": {"const": "error"}, "error": {"type": "string"}}}
_WEBHOOK_OUTCOME = {"type": "object", "required": ["status", "result", "message"], "properties": {
    "status": {"const": "ok"}, "result": {"type": "string"}, "message": {"type": "string"},
    "appointment_id": {"type": "integer"}, "flagged_for_review": {"type": "array", "items": {"type": "integer"}}}}
_PERSON = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"},
    "phoneNumber": {"type": "string"}, "timeZone": {"type": "string"}}}
_CALCOM_WEBHOOK = {
    "type": "object",
    "required": ["triggerEvent"],
    "description": "A Cal.com webhook delivery (BOOKING_CREATED, BOOKING_CANCELLED, BOOKING_RESCHEDULED; "
                   "other triggers such as PING are acknowledged and ignored).",
    "properties": {
        "triggerEvent": {"type": "string"},
        "createdAt": {"type": "string"},
        "payload": {"type": "object", "properties": {
            "uid": {"type": "string"}, "bookingId": {"type": "integer"}, "eventTypeId": {"type": "integer"},
            "startTime": {"type": "string", "format": "date-time"},
            "endTime": {"type": "string", "format": "date-time"},
            "organizer": _PERSON, "attendees": {"type": "array", "items": _PERSON},
            "metadata": {"type": "object"}, "responses": {"type": "object"},
            "cancellationReason": {"type": "string"}, "rescheduleUid": {"type": "string"},
            "rescheduleId": {"type": "integer"}, "rescheduleStartTime": {"type": "string"},
        }},
    },
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _function_operation(name: str, tool: dict) -> dict:
    args_ref = {"$ref": f"#/components/schemas/{name}_args"}
    return {
        "operationId": name,
        "summary": tool["description"],
        "security": [{"retellSignature": []}],
        "parameters": [
            {"name": header, "in": "header", "required": False, "schema": {"type": "string"},
             "description": "Used when Retell sends only the arguments (\"Payload: args only\")."}
            for header in ("X-Retell-Call-Id", "X-Retell-From-Number", "X-Retell-To-Number")
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"anyOf": [
            {"type": "object", "required": ["name", "call", "args"], "properties": {
                "name": {"type": "string"}, "call": {"$ref": "#/components/schemas/RetellCall"}, "args": args_ref}},
            args_ref,
        ]}}}},
        "responses": {
            "200": _json({"$ref": f"#/components/schemas/{name}_answer"},
                         "The answer for the caller; success false with an error_code for what they can fix."),
            "400": _json({"$ref": "#/components/schemas/ProtocolError"}, "Not JSON, wrong types, no call id."),
            "401": _json({"$ref": "#/components/schemas/ProtocolError"}, "Missing, wrong or stale signature."),
            "413": _json({"$ref": "#/components/schemas/ProtocolError"}, "Body larger than MAX_CONTENT_LENGTH."),
        },
    }


def _answer_schema(name: str) -> dict:
    fields = {field: ANSWER_FIELDS[field] for field in FIELDS[name]}
    return {"type": "object", "required": ["success", "error_code", "message", *fields], "properties": {
        "success": {"type": "boolean"}, "error_code": _nullable({"type": "string"}),
        "message": {"type": "string", "minLength": 1}, **fields}}


@lru_cache(maxsize=1)
def _document() -> dict:
    tools = retell_functions()
    schemas: dict[str, Any] = {"RetellCall": _CALL, "ProtocolError": _PROTOCOL_ERROR,
                               "CalcomWebhook": _CALCOM_WEBHOOK, "CalcomWebhookError": _WEBHOOK_ERROR,
                               "CalcomWebhookOutcome": _WEBHOOK_OUTCOME}
    paths: dict[str, Any] = {}
    for name, tool in tools.items():
        schemas[f"{name}_args"] = tool["parameters"]
        schemas[f"{name}_answer"] = _answer_schema(name)
        paths[f"/retell/functions/{name}"] = {"post": _function_operation(name, tool)}
    paths["/webhooks/calcom"] = {"post": {
        "operationId": "calcom_webhook",
        "summary": "Cal.com booking webhooks, reconciled into Slotguard's appointments.",
        "security": [{"calcomSignature": []}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/CalcomWebhook"}}}},
        "responses": {
            "200": _json({"$ref": "#/components/schemas/CalcomWebhookOutcome"}, "Processed (or a replay, or ignored)."),
            "400": _json({"$ref": "#/components/schemas/CalcomWebhookError"}, "Not a Cal.com webhook."),
            "401": _json({"$ref": "#/components/schemas/CalcomWebhookError"}, "Missing or wrong signature."),
            "413": _json({"$ref": "#/components/schemas/CalcomWebhookError"}, "Body larger than MAX_CONTENT_LENGTH."),
        },
    }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Slotguard webhooks", "version": "1",
                 "description": "Retell custom functions and the Cal.com webhook. See README, "
                                "\"Voice agent (Retell)\" and \"The webhook: POST /webhooks/calcom\"."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "retellSignature": {"type": "apiKey", "in": "header", "name": RETELL_SIGNATURE_HEADER,
                                    "description": "v=<unix ms>,d=<hex HMAC-SHA256 of body + ms, keyed with the "
                                                   "Retell API key>"},
                "calcomSignature": {"type": "apiKey", "in": "header", "name": CALCOM_SIGNATURE_HEADER,
                                    "description": "hex HMAC-SHA256 of the raw body, keyed with the webhook secret"},
            },
        },
    }


def openapi_document() -> dict:
    """A fresh copy of the description (callers may change theirs)."""
    return copy.deepcopy(_document())


__all__ = ["ANSWER_FIELDS", "openapi_document", "retell_functions"]
