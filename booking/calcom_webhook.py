"""`POST /webhooks/calcom`: signed Cal.com webhooks (its own blueprint, `calcom_webhooks`).

The route only checks the signature and the shape; `booking.reconcile_webhook` does
the work. Order matters: nothing is parsed, let alone stored, before the
`X-Cal-Signature-256` HMAC of the raw body has been verified in constant time.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from booking.reconcile_webhook import MalformedWebhook, handle_event, parse_event
from calcom.webhooks import SIGNATURE_HEADER, verify_signature
from core.extensions import csrf, db

log = logging.getLogger("booking.calcom_webhook")

bp = Blueprint("calcom_webhooks", __name__)


@bp.post("/webhooks/calcom")
def calcom_webhook():
    body = request.get_data(cache=False)
    secret = current_app.config.get("CALCOM_WEBHOOK_SECRET")
    if not secret:
        log.error("a Cal.com webhook arrived but CALCOM_WEBHOOK_SECRET is not set; refused")
        return jsonify(status="error", error="webhook signature cannot be checked: no secret configured"), 401
    if not verify_signature(body, secret, request.headers.get(SIGNATURE_HEADER)):
        log.warning("Cal.com webhook with a missing or wrong %s refused", SIGNATURE_HEADER)
        return jsonify(status="error", error=f"missing or invalid {SIGNATURE_HEADER}"), 401
    try:
        event = parse_event(body)
    except MalformedWebhook as exc:
        return jsonify(status="error", error=str(exc)), 400
    outcome = handle_event(db.session, event)
    return jsonify(outcome.to_json()), 200


@bp.errorhandler(RequestEntityTooLarge)
def on_too_large(_error):
    """JSON like every other answer here, not Werkzeug's HTML page."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return jsonify(status="error", error=f"request bodies are limited to {limit} bytes"), 413


def init_app(app: Flask) -> None:
    csrf.exempt(bp)  # signed by Cal.com, not a browser form
    app.register_blueprint(bp)
