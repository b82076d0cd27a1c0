"""Request ids, request latency, an access log line, and `GET /metrics`.

* Every request gets an id: a valid incoming `X-Request-ID` is kept (a load balancer's
  or Retell's), otherwise a new one is made; it is set for the request's log lines
  (`core.log_context`), carried into jobs the request enqueues, and sent back in the
  response's `X-Request-ID`.
* Every request's latency is observed per Flask endpoint (`core.prom`), and one
  `slotguard.access` line is logged with method, path, status and duration.
* `GET /metrics` renders every process's metrics for Prometheus. It is not public:
  with `METRICS_TOKEN` set the scraper must send `Authorization: Bearer <token>`
  (401 otherwise); the client address must be in `METRICS_ALLOWED_NETWORKS` (403
  otherwise; default: this host only when no token is set, anywhere with the token).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time

from flask import Blueprint, Flask, Response, current_app, g, request

from core import log_context, prom
from core.extensions import csrf
from core.queues import DEFAULT_QUEUE, SYNC_QUEUE
from core.redis_client import get_redis

log = logging.getLogger("slotguard.access")

bp = Blueprint("observability", __name__)

REQUEST_ID_HEADER = "X-Request-ID"
LOOPBACK = "127.0.0.0/8,::1/128"


def allowed_networks(config) -> list[ipaddress._BaseNetwork]:
    """The networks that may scrape `/metrics` (see the module docstring)."""
    raw = config.get("METRICS_ALLOWED_NETWORKS")
    if raw is None:
        raw = "0.0.0.0/0,::/0" if config.get("METRICS_TOKEN") else LOOPBACK
    networks = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"METRICS_ALLOWED_NETWORKS: {part!r} is not an IP address or network") from None
    return networks


def _address_allowed(address: str | None, networks) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks if network.version == ip.version)


def _token_ok(expected: str) -> bool:
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@bp.get("/metrics")
def metrics():
    token = current_app.config.get("METRICS_TOKEN")
    if token and not _token_ok(token):
        return Response("metrics need a bearer token\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'},
                        mimetype="text/plain")
    if not _address_allowed(request.remote_addr, current_app.extensions["metrics_networks"]):
        return Response("metrics are not served to this address\n", 403, mimetype="text/plain")
    app = current_app._get_current_object()
    queues = prom.QueueDepthCollector(lambda: get_redis(app), (SYNC_QUEUE, DEFAULT_QUEUE))
    body, content_type = prom.render([queues])
    return Response(body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"})


def _start_request() -> None:
    g._request_started = time.perf_counter()
    request_id = log_context.valid_request_id(request.headers.get(REQUEST_ID_HEADER)) or log_context.new_request_id()
    g.request_id = request_id
    g._log_tokens = [(log_context.request_id, log_context.request_id.set(request_id))]


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("_request_started")
    if started is None:
        return response
    seconds = time.perf_counter() - started
    endpoint = request.endpoint or "unmatched"  # 404s of scanners must not create new series
    if endpoint != "observability.metrics":
        prom.HTTP_REQUEST_SECONDS.labels(endpoint, request.method, str(response.status_code)).observe(seconds)
        log.info("%s %s %s %.1fms", request.method, request.path, response.status_code, seconds * 1000)
    return response


def bind_request_ids(**ids) -> None:
    """Attach ids (the Retell call id, an appointment id) to the rest of this request's
    log lines, including its access line; undone when the request ends."""
    tokens = g.setdefault("_log_tokens", [])
    for name, value in ids.items():
        if value is not None:
            var = log_context.FIELDS[name]
            tokens.append((var, var.set(value)))


def _end_request(_error=None) -> None:
    for var, token in reversed(g.pop("_log_tokens", [])):
        try:
            var.reset(token)
        except ValueError:  # set in another context (streamed response): nothing to undo here
            pass


def init_app(app: Flask) -> None:
    app.extensions["metrics_networks"] = allowed_networks(app.config)  # a wrong value stops the start
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)
    csrf.exempt(bp)
    app.register_blueprint(bp)


__all__ = ["REQUEST_ID_HEADER", "allowed_networks", "bind_request_ids", "init_app"]
