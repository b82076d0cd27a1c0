"""What goes wrong in the emulator, on purpose: fault rules and Cal.com's rate limit.

Fault kinds (each rule: a share of matching requests, optionally one endpoint,
optionally only the next N hits):

* `latency`    – answer `latency_ms` later;
* `error`      – answer 5xx (default 503) without doing anything;
* `rate_limit` – answer 429 as Cal.com's throttler does, without doing anything;
* `timeout`    – hang for `hang_seconds` (past the client's read timeout), do nothing,
                 then close the connection without an answer;
* `drop`       – do the work (the booking is made, the webhook sent), then close the
                 connection before the answer: the caller cannot know it succeeded.

Decisions come from one `random.Random(seed)`, one draw per matching rule per
request, so the same request sequence meets the same faults every run.

Settings come as JSON (`{"rules": [...], "seed": 7}`), as a flat object
(`{"error_rate": 0.2, "latency_ms": 300, "endpoint": "create", "seed": 7}`) or, for
the environment, as `key=value` pairs (`error_rate=0.2,latency_ms=300,endpoint=create`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

from core.clock import utcnow

KINDS = ("latency", "error", "rate_limit", "timeout", "drop")

ENDPOINTS = {
    "slots": "GET /v2/slots",
    "create": "POST /v2/bookings",
    "list": "GET /v2/bookings",
    "get": "GET /v2/bookings/{uid}",
    "cancel": "POST /v2/bookings/{uid}/cancel",
    "reschedule": "POST /v2/bookings/{uid}/reschedule",
}


class FaultSettingsError(ValueError):
    """Fault settings that cannot be understood; the message says which part."""


def endpoint_name(value: str) -> str:
    """Accept "create" or "POST /v2/bookings"; return the latter."""
    text = " ".join(str(value).split())
    if text in ENDPOINTS:
        return ENDPOINTS[text]
    if text in ENDPOINTS.values():
        return text
    raise FaultSettingsError(
        f"unknown endpoint {value!r}; use one of {', '.join(ENDPOINTS)} or {', '.join(ENDPOINTS.values())}")


@dataclass
class FaultRule:
    kind: str
    rate: float = 1.0
    endpoints: tuple[str, ...] = ()  # empty: every /v2 endpoint
    times: int | None = None  # hit at most this many times
    status: int = 503  # for "error"
    latency_ms: int = 0  # for "latency"
    hang_seconds: float = 30.0  # for "timeout"
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultSettingsError(f"unknown fault kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if not 0 <= float(self.rate) <= 1:
            raise FaultSettingsError(f"{self.kind}: rate must be between 0 and 1, got {self.rate}")
        self.rate = float(self.rate)
        if isinstance(self.endpoints, str):
            self.endpoints = (self.endpoints,)
        self.endpoints = tuple(endpoint_name(e) for e in self.endpoints)
        if self.kind == "error" and not 500 <= int(self.status) <= 599:
            raise FaultSettingsError(f"error: status must be a 5xx, got {self.status}")
        if self.kind == "latency" and int(self.latency_ms) <= 0:
            raise FaultSettingsError("latency: latency_ms must be positive")
        if self.times is not None and int(self.times) < 1:
            raise FaultSettingsError(f"{self.kind}: times must be at least 1")
        if float(self.hang_seconds) <= 0:
            raise FaultSettingsError("timeout: hang_seconds must be positive")

    def applies_to(self, endpoint: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return not self.endpoints or endpoint in self.endpoints


@dataclass
class Decision:
    """What to do to one request."""

    latency_ms: int = 0
    failure: FaultRule | None = None

    @property
    def kind(self) -> str | None:
        return self.failure.kind if self.failure else None


@dataclass
class FaultPlan:
    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {kind: 0 for kind in KINDS}

    def decide(self, endpoint: str) -> Decision:
        decision = Decision()
        with self._lock:
            for rule in self.rules:
                if not rule.applies_to(endpoint):
                    continue
                if self._random.random() >= rule.rate:
                    continue
                if rule.kind == "latency":
                    rule.hits += 1
                    decision.latency_ms += int(rule.latency_ms)
                    self.injected["latency"] += 1
                elif decision.failure is None:
                    rule.hits += 1
                    decision.failure = rule
                    self.injected[rule.kind] += 1
        return decision

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [asdict(r) | {"endpoints": list(r.endpoints)} for r in self.rules],
                "injected": dict(self.injected)}

    @classmethod
    def parse(cls, settings: Any, *, default_seed: int = 0) -> FaultPlan:
        """Build a plan from JSON text, `key=value` pairs, or a mapping (see module doc)."""
        if settings is None or settings == "":
            return cls([], default_seed)
        if isinstance(settings, str):
            settings = _parse_text(settings)
        if not isinstance(settings, Mapping):
            raise FaultSettingsError("fault settings must be an object")
        seed = settings.get("seed", default_seed)
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise FaultSettingsError(f"seed must be a whole number, got {seed!r}") from None
        if "rules" in settings:
            rules_data = settings["rules"]
            if not isinstance(rules_data, list) or not all(isinstance(r, Mapping) for r in rules_data):
                raise FaultSettingsError("rules must be a list of objects")
            return cls([_rule(r) for r in rules_data], seed)
        return cls(_flat_rules(settings), seed)


FLAT_KEYS = {"latency_ms", "latency_rate", "error_rate", "error_status", "rate_limit_rate", "timeout_rate",
             "timeout_seconds", "drop_rate", "endpoint", "endpoints", "times", "seed"}
RULE_KEYS = {"kind", "rate", "endpoint", "endpoints", "times", "status", "latency_ms", "hang_seconds"}


def _rule(data: Mapping[str, Any]) -> FaultRule:
    unknown = set(data) - RULE_KEYS
    if unknown:
        raise FaultSettingsError(f"unknown rule keys: {', '.join(sorted(unknown))}")
    endpoints = data.get("endpoints") or ([data["endpoint"]] if data.get("endpoint") else [])
    if isinstance(endpoints, str):
        endpoints = [endpoints]
    return FaultRule(
        kind=str(data.get("kind")), rate=_number(data, "rate", float, 1.0), endpoints=tuple(endpoints),
        times=_number(data, "times", int, None), status=_number(data, "status", int, 503),
        latency_ms=_number(data, "latency_ms", int, 0), hang_seconds=_number(data, "hang_seconds", float, 30.0),
    )


def _flat_rules(data: Mapping[str, Any]) -> list[FaultRule]:
    unknown = set(data) - FLAT_KEYS
    if unknown:
        raise FaultSettingsError(f"unknown fault settings: {', '.join(sorted(unknown))}; "
                                 f"known: {', '.join(sorted(FLAT_KEYS))}")
    endpoints = data.get("endpoints") or ([data["endpoint"]] if data.get("endpoint") else [])
    if isinstance(endpoints, str):
        endpoints = [e for e in endpoints.replace(";", "|").split("|") if e.strip()]
    common = {"endpoints": tuple(endpoints)}
    if data.get("times") is not None:
        common["times"] = data["times"]
    rules = []
    if data.get("latency_ms"):
        rules.append(_rule({"kind": "latency", "latency_ms": data["latency_ms"],
                            "rate": data.get("latency_rate", 1.0), **common}))
    for kind, key in (("error", "error_rate"), ("rate_limit", "rate_limit_rate"), ("timeout", "timeout_rate"),
                      ("drop", "drop_rate")):
        rate = _number(data, key, float, 0)
        if rate > 0:
            extra = {}
            if kind == "error" and data.get("error_status"):
                extra["status"] = data["error_status"]
            if kind == "timeout" and data.get("timeout_seconds"):
                extra["hang_seconds"] = data["timeout_seconds"]
            rules.append(_rule({"kind": kind, "rate": rate, **common, **extra}))
    return rules


def _number(data: Mapping[str, Any], key: str, cast, default):
    raw = data.get(key)
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except (TypeError, ValueError):
        raise FaultSettingsError(f"{key} must be a number, got {raw!r}") from None


def _parse_text(text: str) -> Any:
    text = text.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise FaultSettingsError(f"fault settings are not valid JSON: {exc}") from None
    settings: dict[str, Any] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise FaultSettingsError(f"expected key=value, got {part.strip()!r}")
        settings[key.strip()] = value.strip()
    return settings


# --- the rate limit -----------------------------------------------------------------------


@dataclass
class _Record:
    hits: int
    expires_at: float
    blocked_until: float | None = None


class RateLimiter:
    """Cal.com's per-API-key throttle (CustomThrottlerGuard): `limit` requests per
    `ttl_seconds`, then blocked for `block_seconds`. Headers on every answer."""

    def __init__(self, limit: int = 120, ttl_seconds: int = 60, block_seconds: int = 60, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        if limit < 1:
            raise ValueError("the rate limit must be at least 1 request per window")
        self.limit = limit
        self.ttl = ttl_seconds
        self.block = block_seconds
        self.clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    def hit(self, tracker: str) -> tuple[bool, dict[str, str]]:
        """Count one request; (allowed, headers)."""
        now = self.clock().timestamp()
        with self._lock:
            record = self._records.get(tracker)
            if record is not None and record.blocked_until is not None and now >= record.blocked_until:
                record = None
            if record is not None and record.blocked_until is None and now >= record.expires_at:
                record = None
            if record is None:
                record = self._records[tracker] = _Record(hits=0, expires_at=now + self.ttl)
            if record.blocked_until is None:
                record.hits += 1
                if record.hits > self.limit:
                    record.blocked_until = now + self.block
            blocked = record.blocked_until is not None
            reset = (record.blocked_until if blocked else record.expires_at) - now
            remaining = 0 if blocked else max(0, self.limit - record.hits)
        headers = {
            "X-RateLimit-Limit-Default": str(self.limit),
            "X-RateLimit-Remaining-Default": str(remaining),
            "X-RateLimit-Reset-Default": str(max(0, math.ceil(reset))),
        }
        return not blocked, headers


def tracker_for(authorization: str | None, remote_addr: str | None) -> str:
    """Whom the limit counts: the API key (hashed, as Cal.com does) or the client address."""
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
        if key.startswith("cal_"):
            key = key[4:]
        return "api_key_" + hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"ip_{remote_addr or 'unknown'}"


__all__ = ["Decision", "FaultPlan", "FaultRule", "FaultSettingsError", "RateLimiter", "endpoint_name", "tracker_for"]
