"""A rolling window of Cal.com API calls in Redis, for monitoring Cal.com's health.

Each call the client makes is one member of a sorted set scored by its time:
method, endpoint template (no booking uids), HTTP status (None when there was no
answer), latency and the rate-limit headroom Cal.com reported. Writing is one
pipelined round trip that also trims entries older than the retention, so the set
stays small (at most `MAX_ENTRIES`). `summary()` reads one window and aggregates it
in Python; monitoring calls it every few minutes.

Recording never raises: a Redis hiccup must not fail a booking.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from datetime import datetime
from typing import Any

from core.clock import utcnow

log = logging.getLogger("calcom.call_log")

KEY = "slotguard:calcom:calls"
DEFAULT_RETENTION_SECONDS = 24 * 3600
MAX_ENTRIES = 100_000

# Short outcome codes stored with each call.
OK = "ok"
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
SLOT_UNAVAILABLE = "slot_unavailable"
CLIENT_ERROR = "client_error"
MALFORMED = "malformed"

# Outcomes that say Cal.com itself is unwell (the error rate counts these).
# A 4xx (including a slot conflict) is an answer to our request, not a sign of trouble.
FAILURE_OUTCOMES = {TIMEOUT, CONNECTION_ERROR, RATE_LIMITED, SERVER_ERROR, MALFORMED}


def record(
    redis,
    *,
    method: str,
    endpoint: str,
    status: int | None,
    latency_ms: float,
    outcome: str,
    remaining: int | None = None,
    limit: int | None = None,
    at: datetime | None = None,
    retention_seconds: int = DEFAULT_RETENTION_SECONDS,
) -> None:
    """Remember one call. Safe to call with `redis=None` (does nothing)."""
    if redis is None:
        return
    now = (at or utcnow()).timestamp()
    entry = {
        "t": round(now, 3),
        "m": method,
        "e": endpoint,
        "s": status,
        "l": round(float(latency_ms), 1),
        "o": outcome,
        "r": remaining,
        "L": limit,
        # Two identical calls in the same millisecond must stay two members.
        "n": secrets.token_hex(4),
    }
    try:
        pipe = redis.pipeline(transaction=False)
        pipe.zadd(KEY, {json.dumps(entry, separators=(",", ":")): now})
        pipe.zremrangebyscore(KEY, "-inf", now - retention_seconds)
        pipe.zremrangebyrank(KEY, 0, -(MAX_ENTRIES + 1))
        pipe.expire(KEY, int(retention_seconds) + 60)
        pipe.execute()
    except Exception as exc:  # never let monitoring break a booking
        log.warning("could not record Cal.com call in Redis: %s", exc)


def calls(redis, window_seconds: float, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """The recorded calls of the last `window_seconds`, oldest first."""
    end = (now or utcnow()).timestamp()
    raw = redis.zrangebyscore(KEY, end - window_seconds, end)
    entries = []
    for member in raw:
        try:
            entries.append(json.loads(member))
        except (TypeError, ValueError):
            continue
    return entries


def summary(redis, window_seconds: float, *, now: datetime | None = None) -> dict[str, Any]:
    """Cal.com's health over the last `window_seconds`.

    `{"calls", "errors", "error_rate", "rate_limited", "p50_ms", "p95_ms",
    "min_remaining", "limit"}` plus `timeouts`, `client_errors` and `window_seconds`.
    `errors` counts calls that show Cal.com trouble (no answer, 5xx, 429, malformed
    body); 4xx answers are `client_errors`. Rates, percentiles and headroom are None
    when there were no calls (or no rate-limit headers) in the window.
    """
    entries = calls(redis, window_seconds, now=now)
    latencies = sorted(float(e["l"]) for e in entries if e.get("l") is not None)
    errors = sum(1 for e in entries if e.get("o") in FAILURE_OUTCOMES)
    remaining = [e for e in entries if e.get("r") is not None]
    limits = [e["L"] for e in entries if e.get("L") is not None]
    count = len(entries)
    return {
        "calls": count,
        "errors": errors,
        "error_rate": round(errors / count, 4) if count else None,
        "rate_limited": sum(1 for e in entries if e.get("o") == RATE_LIMITED),
        "p50_ms": _percentile(latencies, 50),
        "p95_ms": _percentile(latencies, 95),
        "min_remaining": min(e["r"] for e in remaining) if remaining else None,
        # The most recent limit Cal.com announced.
        "limit": limits[-1] if limits else None,
        "timeouts": sum(1 for e in entries if e.get("o") == TIMEOUT),
        "client_errors": sum(1 for e in entries if e.get("o") in {CLIENT_ERROR, SLOT_UNAVAILABLE}),
        "window_seconds": window_seconds,
    }


def _percentile(ordered: list[float], pct: float) -> int | None:
    """Nearest-rank percentile of an ascending list, in whole milliseconds."""
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return int(round(ordered[rank - 1]))


__all__ = ["record", "calls", "summary", "KEY"]
