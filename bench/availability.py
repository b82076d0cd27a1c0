"""check_availability: Slotguard's own share of the answer, and the slot cache's effect.

* overhead — the whole request through the app (signature, parsing, lookups, the
  segment query, holds in Redis, phrasing) with only the Cal.com slots fetch
  short-circuited (`bench.stub_calcom`) and the slot cache off, so nothing but
  Slotguard's work is timed;
* slot cache — the same questions against the Cal.com emulator answering after
  300 ms: cold (cache emptied before each question) and warm (asked once before).
"""

from __future__ import annotations

import redis as redis_lib

from core.extensions import db

from bench import stats, world
from bench.databases import make_app, redis_url
from bench.emulator_server import emulator_process
from bench.stub_calcom import instant_calcom
from bench.voice import asks, post, request_body

CACHE_LATENCY_MS = 300


def _redis() -> redis_lib.Redis:
    return redis_lib.Redis.from_url(redis_url())


def _forget(client: redis_lib.Redis, pattern: str) -> None:
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)


def overhead(target, p: world.Plan, *, requests: int, seed: int = 11) -> dict:
    app = make_app(target, SLOT_CACHE_SECONDS=0)
    _redis().flushdb()  # the bench's own Redis database
    questions = asks(p, requests + 30, seed=seed)
    samples, available = [], 0
    with app.app_context(), instant_calcom(p):
        client = app.test_client()
        for index, ask in enumerate(questions):
            raw = request_body("check_availability", ask.args(), call_id=f"call_av_{seed}_{index}",
                               to_number=ask.to_number)
            elapsed, body = post(client, "check_availability", raw)
            if not body.get("success"):
                raise RuntimeError(f"check_availability failed: {body}")
            if index >= 30:  # the first 30 warm up connections and caches
                samples.append(elapsed)
                available += bool(body.get("available"))
        db.engine.dispose()
    return stats.summary_ms(samples) | {"available_share": round(available / len(samples), 3)}


def slot_cache(target, p: world.Plan, *, requests: int, seed: int = 12) -> dict:
    app = make_app(target, SLOT_CACHE_SECONDS=300, CALCOM_AVAILABILITY_TIMEOUT=5.0)
    r = _redis()
    r.flushdb()
    questions = asks(p, requests, seed=seed)
    cold, warm = [], []
    with emulator_process(target, latency_ms=CACHE_LATENCY_MS) as url, app.app_context():
        app.config["CALCOM_API_URL"] = url
        client = app.test_client()
        for index, ask in enumerate(questions):
            _forget(r, "slotguard:slots:*")
            _forget(r, "slotguard:hold:*")
            raw = request_body("check_availability", ask.args(), call_id=f"call_cold_{index}",
                               to_number=ask.to_number)
            elapsed, body = post(client, "check_availability", raw)
            if body.get("success"):
                cold.append(elapsed)
            # Warm: the same question again once the cache holds its days.
            _forget(r, "slotguard:hold:*")
            raw = request_body("check_availability", ask.args(), call_id=f"call_warm_{index}",
                               to_number=ask.to_number)
            elapsed, body = post(client, "check_availability", raw)
            if body.get("success"):
                warm.append(elapsed)
        db.engine.dispose()
    cold_s, warm_s = stats.summary_ms(cold), stats.summary_ms(warm)
    ratio = warm_s["p50"] / cold_s["p50"] if cold_s["p50"] and warm_s["p50"] is not None else None
    return {"cold": cold_s, "warm": warm_s, "ratio": ratio, "latency_ms": CACHE_LATENCY_MS}
