"""A stateful local Cal.com (API v2) with fault injection, for the demo and the tests.

    emulator = Emulator(seed=7, webhook_url="http://127.0.0.1:5000/webhooks/calcom",
                        webhook_secret="…")
    emulator.state.add_host(Host(...)); emulator.state.add_event_type(EventType(...))
    serve it: `flask --app wsgi calcom emulator --port 5555`; the `Emulator` object
    itself is a WSGI app (tests serve it in a thread: `tests/calcom_fixtures.py`).

Cal.com endpoints (documented request validation, `{"status":"success","data":…}`
and `{"status":"error","timestamp","path","error":{code,message,details}}`):

    GET  /v2/slots                          cal-api-version: 2024-09-04
    POST /v2/bookings                       cal-api-version: 2024-08-13 (and below)
    GET  /v2/bookings                       (needs an API key)
    GET  /v2/bookings/<uid>
    POST /v2/bookings/<uid>/cancel
    POST /v2/bookings/<uid>/reschedule

Every /v2 request passes Cal.com's per-key rate limit (headers
`X-RateLimit-{Limit,Remaining,Reset}-Default`, 429 ThrottlerException), then the
fault plan (`calcom.emulator_faults`). Control endpoints (never rate limited or
faulted) live under /_emulator — see `README.md`, section "Cal.com".
"""

from __future__ import annotations

import functools
import json
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

from flask import Flask, current_app, jsonify, request

from calcom.emulator_faults import FaultPlan, FaultSettingsError, RateLimiter, tracker_for
from calcom.emulator_state import ApiError, CalcomState, hosts_and_event_types_from_json
from calcom.emulator_webhooks import WebhookSender
from core.clock import utcnow

SLOTS_VERSION = "2024-09-04"
BOOKINGS_VERSION = "2024-08-13"
THROTTLED = "CustomThrottlerGuard - Too many requests. Please try again later."
DROP_FLAG = "calcom_emulator.drop"


class Emulator:
    """One emulated Cal.com: state, rate limit, faults and webhook deliveries."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utcnow,
        seed: int = 0,
        rate_limit: int = 120,
        faults: Any = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        api_key: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.state = CalcomState(clock=clock, seed=seed)
        self.limiter = RateLimiter(rate_limit, clock=clock)
        self.faults = FaultPlan.parse(faults, default_seed=seed)
        self.webhooks = WebhookSender(webhook_url, webhook_secret, clock=clock)
        # When set, only this key is accepted (401 otherwise); None accepts any `cal_` key.
        self.api_key = api_key
        self.sleep = sleep
        # Set to end hanging "timeout" requests at once (tests, shutdown).
        self.release = threading.Event()
        self.requests_served = 0
        self._flask: Flask | None = None

    # --- control ---------------------------------------------------------------------

    def set_faults(self, settings: Any) -> FaultPlan:
        """Replace the fault plan (raises FaultSettingsError on nonsense)."""
        self.faults = FaultPlan.parse(settings, default_seed=self.seed)
        return self.faults

    def clear_faults(self) -> None:
        self.faults = FaultPlan([], self.seed)

    def reset(self, *, bookings: bool = True, faults: bool = True, rate_limit: bool = True,
              world: bool = False) -> None:
        if bookings or world:
            self.state.reset(keep_world=not world)
        if faults:
            self.clear_faults()
        if rate_limit:
            self.limiter.reset()
        self.webhooks.deliveries.clear()

    def shutdown(self) -> None:
        self.release.set()
        self.webhooks.stop()

    def summary(self) -> dict[str, Any]:
        bookings = list(self.state.bookings.values())
        return {
            "hosts": len(self.state.hosts), "event_types": len(self.state.event_types),
            "bookings": len(bookings), "active_bookings": sum(1 for b in bookings if b.active),
            "requests_served": self.requests_served, "rate_limit": self.limiter.limit,
            "faults": self.faults.to_json(),
            "webhooks": {"url": self.webhooks.url, "secret_set": bool(self.webhooks.secret),
                         "delivered": len(self.webhooks.deliveries)},
            "now": self.clock().isoformat(),
        }

    # --- WSGI ------------------------------------------------------------------------

    @property
    def flask_app(self) -> Flask:
        if self._flask is None:
            self._flask = create_app(self)
        return self._flask

    def __call__(self, environ, start_response):
        """WSGI entry: the Flask app, plus closing the connection for dropped answers."""
        result = self.flask_app(environ, start_response)
        if environ.get(DROP_FLAG):
            if hasattr(result, "close"):
                result.close()
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            # werkzeug's server treats ConnectionError as "client went away": no answer is written.
            raise ConnectionResetError("Cal.com emulator dropped the response on purpose")
        return result


# --- the Flask app ----------------------------------------------------------------------


def create_app(emulator: Emulator) -> Flask:
    app = Flask("calcom_emulator")
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False
    app.extensions["calcom_emulator"] = emulator
    _register_api(app)
    _register_control(app)

    @app.errorhandler(404)
    def not_found(_error):
        return _error_response(ApiError(404, f"Cannot {request.method} {request.full_path.rstrip('?')}"))

    @app.errorhandler(405)
    def not_allowed(_error):
        return _error_response(ApiError(404, f"Cannot {request.method} {request.full_path.rstrip('?')}"))

    return app


def emulator_of() -> Emulator:
    return current_app.extensions["calcom_emulator"]


def _now_iso() -> str:
    return emulator_of().clock().astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_response(error: ApiError, headers: dict[str, str] | None = None):
    body = {"status": "error", "timestamp": _now_iso(), "path": request.full_path.rstrip("?"),
            "error": {"code": error.code, "message": error.message, "details": error.details}}
    response = jsonify(body)
    response.status_code = error.status
    response.headers.update(headers or {})
    return response


def _success(data: Any, status: int = 200, **extra: Any):
    response = jsonify({"status": "success", "data": data, **extra})
    response.status_code = status
    return response


def _json_body() -> Any:
    raw = request.get_data()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "Unexpected token in JSON body: the request body is not valid JSON") from None


def cal_api(template: str, version: str):
    """Wrap a Cal.com endpoint: version header, auth, rate limit, faults, error envelope."""

    def decorate(view):
        @functools.wraps(view)
        def endpoint(**kwargs):
            emulator = emulator_of()
            emulator.requests_served += 1
            name = f"{request.method} {template}"
            if request.headers.get("cal-api-version") != version:
                if version == SLOTS_VERSION:  # the older slots version has no such route (calcom#19402)
                    return _error_response(ApiError(404, f"Cannot {request.method} {request.full_path.rstrip('?')}"))
                return _error_response(ApiError(
                    400, f"cal-api-version {version} is required: without it Cal.com answers {name} in the "
                         "older 2024-04-15 shape, which this emulator does not speak"))
            authorization = request.headers.get("Authorization")
            if authorization and emulator.api_key and authorization != f"Bearer {emulator.api_key}":
                return _error_response(ApiError(401, "CustomThrottlerGuard - Invalid API Key"))
            allowed, headers = emulator.limiter.hit(tracker_for(authorization, request.remote_addr))
            if not allowed:
                return _error_response(ApiError(429, THROTTLED, code="ThrottlerException", details=THROTTLED),
                                       headers)
            decision = emulator.faults.decide(name)
            if decision.latency_ms:
                emulator.sleep(decision.latency_ms / 1000)
            failure = decision.failure
            if failure is not None and failure.kind == "error":
                error = ApiError(failure.status, "Internal server error.", code="INTERNAL_SERVER_ERROR",
                                 details=None)
                return _error_response(error, headers)
            if failure is not None and failure.kind == "rate_limit":
                throttled = dict(headers, **{"X-RateLimit-Remaining-Default": "0"})
                return _error_response(ApiError(429, THROTTLED, code="ThrottlerException", details=THROTTLED),
                                       throttled)
            if failure is not None and failure.kind == "timeout":
                emulator.release.wait(failure.hang_seconds)
                request.environ[DROP_FLAG] = True
                return ("", 204)
            try:
                response = view(**kwargs)
            except ApiError as error:
                response = _error_response(error)
            response.headers.update(headers)
            if failure is not None and failure.kind == "drop":
                request.environ[DROP_FLAG] = True
            return response

        return endpoint

    return decorate


def _apply(change, status: int = 200):
    """Make a change to the state, announce it by webhook, answer with the booking."""
    emulator = emulator_of()
    booking, events = change(emulator.state)
    emulator.webhooks.send(events)
    return _success(emulator.state.booking_json(booking), status)


def _register_api(app: Flask) -> None:
    @app.get("/v2/slots")
    @cal_api("/v2/slots", SLOTS_VERSION)
    def slots():
        return _success(emulator_of().state.slots(request.args.to_dict()))

    @app.post("/v2/bookings")
    @cal_api("/v2/bookings", BOOKINGS_VERSION)
    def create_booking():
        return _apply(lambda state: state.create_booking(_json_body()), 201)

    @app.get("/v2/bookings")
    @cal_api("/v2/bookings", BOOKINGS_VERSION)
    def list_bookings():
        if not request.headers.get("Authorization"):
            raise ApiError(401, "No Authorization header provided")
        emulator = emulator_of()
        page, pagination = emulator.state.list_bookings(request.args.to_dict())
        return _success([emulator.state.booking_json(b) for b in page], pagination=pagination)

    @app.get("/v2/bookings/<uid>")
    @cal_api("/v2/bookings/{uid}", BOOKINGS_VERSION)
    def get_booking(uid):
        emulator = emulator_of()
        return _success(emulator.state.booking_json(emulator.state.get_booking(uid)))

    @app.post("/v2/bookings/<uid>/cancel")
    @cal_api("/v2/bookings/{uid}/cancel", BOOKINGS_VERSION)
    def cancel_booking(uid):
        return _apply(lambda state: state.cancel_booking(uid, _json_body()))

    @app.post("/v2/bookings/<uid>/reschedule")
    @cal_api("/v2/bookings/{uid}/reschedule", BOOKINGS_VERSION)
    def reschedule_booking(uid):
        return _apply(lambda state: state.reschedule_booking(uid, _json_body()), 201)


# --- control endpoints --------------------------------------------------------------------


def control(view):
    """Control endpoints answer plain JSON; refusals are 400 with a message."""

    @functools.wraps(view)
    def endpoint(**kwargs):
        try:
            return view(**kwargs)
        except ApiError as error:
            return _error_response(error)
        except (FaultSettingsError, ValueError, KeyError, TypeError) as error:
            message = str(error) if not isinstance(error, KeyError) else f"missing field {error}"
            return _error_response(ApiError(400, message))

    return endpoint


def _control_booking_json(emulator: Emulator, booking) -> dict[str, Any]:
    return {**emulator.state.booking_json(booking), "hostId": booking.host_id, "origin": booking.origin}


def _register_control(app: Flask) -> None:
    @app.get("/_emulator")
    @control
    def overview():
        return jsonify(emulator_of().summary())

    @app.post("/_emulator/reset")
    @control
    def reset():
        body = _json_body() or {}
        emulator_of().reset(bookings=bool(body.get("bookings", True)), faults=bool(body.get("faults", True)),
                            rate_limit=bool(body.get("rate_limit", True)), world=bool(body.get("world", False)))
        return jsonify(emulator_of().summary())

    @app.get("/_emulator/faults")
    @control
    def get_faults():
        return jsonify(emulator_of().faults.to_json())

    @app.post("/_emulator/faults")
    @control
    def set_faults():
        body = _json_body()
        if body is None:
            raise ApiError(400, "send the fault settings as a JSON object")
        return jsonify(emulator_of().set_faults(body).to_json())

    @app.delete("/_emulator/faults")
    @control
    def clear_faults():
        emulator_of().clear_faults()
        return jsonify(emulator_of().faults.to_json())

    @app.get("/_emulator/event-types")
    @control
    def event_types():
        state = emulator_of().state
        return jsonify({
            "hosts": [h.to_json() | {"workingHours": dict(h.working_hours)} for h in state.hosts.values()],
            "eventTypes": [e.to_json() for e in state.event_types.values()],
        })

    @app.post("/_emulator/event-types")
    @control
    def add_event_types():
        body = _json_body() or {}
        hosts, event_types = hosts_and_event_types_from_json(body)
        state = emulator_of().state
        for host in hosts:
            state.add_host(host)
        for event_type in event_types:
            state.add_event_type(event_type)
        return jsonify({"hosts": len(state.hosts), "eventTypes": len(state.event_types)}), 201

    @app.get("/_emulator/bookings")
    @control
    def find_bookings():
        emulator = emulator_of()
        metadata = {k[len("metadata."):]: v for k, v in request.args.items() if k.startswith("metadata.")}
        found = emulator.state.find(
            metadata=metadata, status=request.args.get("status"),
            host_id=int(request.args["hostId"]) if request.args.get("hostId") else None,
            event_type_id=int(request.args["eventTypeId"]) if request.args.get("eventTypeId") else None,
        )
        return jsonify([_control_booking_json(emulator, b) for b in found])

    @app.post("/_emulator/bookings")
    @control
    def book_directly():
        """A customer books on the Cal.com page (optionally with one host): webhook follows."""
        emulator = emulator_of()
        body = dict(_json_body() or {})
        host_id = body.pop("hostId", None)
        booking, events = emulator.state.create_booking(body, host_id=int(host_id) if host_id else None,
                                                        origin="direct")
        emulator.webhooks.send(events)
        return jsonify(_control_booking_json(emulator, booking)), 201

    @app.post("/_emulator/bookings/<uid>/cancel")
    @control
    def cancel_directly(uid):
        emulator = emulator_of()
        body = _json_body() or {}
        booking, events = emulator.state.cancel_booking(uid, body, by_email=body.get("cancelledBy"))
        emulator.webhooks.send(events)
        return jsonify(_control_booking_json(emulator, booking))

    @app.post("/_emulator/bookings/<uid>/reschedule")
    @control
    def reschedule_directly(uid):
        emulator = emulator_of()
        body = dict(_json_body() or {})
        host_id = body.pop("hostId", None)
        booking, events = emulator.state.reschedule_booking(uid, body, host_id=int(host_id) if host_id else None)
        emulator.webhooks.send(events)
        return jsonify(_control_booking_json(emulator, booking)), 201

    @app.get("/_emulator/webhooks")
    @control
    def webhook_log():
        sender = emulator_of().webhooks
        sender.wait(timeout=float(request.args.get("wait", 0)) or 0.001)
        return jsonify({"url": sender.url, "secret_set": bool(sender.secret), "deliveries": list(sender.deliveries)})

    @app.post("/_emulator/webhooks")
    @control
    def configure_webhooks():
        body = _json_body() or {}
        sender = emulator_of().webhooks
        sender.configure(body.get("url", sender.url), body.get("secret", sender.secret))
        return jsonify({"url": sender.url, "secret_set": bool(sender.secret)})

    @app.post("/_emulator/webhooks/ping")
    @control
    def ping():
        emulator_of().webhooks.ping()
        return jsonify({"queued": bool(emulator_of().webhooks.url)})


__all__ = ["Emulator", "create_app"]
