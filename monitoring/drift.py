"""The latest drift reconciliation, as the alert rules see it.

`workers.reconcile` stores a summary of each finished run (not dry runs) in Redis;
`collect_sync_metrics` reads it like Cal.com's call log (no extra SQL) and the rule
`reconcile_drift` (monitoring.rules) fires while the latest run found more drift
than `RECONCILE_DRIFT_ALERT_THRESHOLD`. The summary expires after two days, so an
alert clears by itself when reconciliation stops running — the missing nightly run
then shows on the dashboard's trends page.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger("calcom")

KEY = "slotguard:reconcile:latest"
KEEP_SECONDS = 48 * 3600


def record_run(redis, summary: dict[str, Any]) -> None:
    """Remember a finished run's summary; a Redis hiccup only costs the alert."""
    try:
        redis.set(KEY, json.dumps(summary, separators=(",", ":")), ex=KEEP_SECONDS)
    except Exception as exc:
        log.warning("reconciliation summary not stored (%s)", type(exc).__name__)


def latest_run(redis) -> dict[str, Any] | None:
    if redis is None:
        return None
    try:
        raw = redis.get(KEY)
    except Exception as exc:
        log.warning("sync metrics: reconciliation summary unavailable (%s)", type(exc).__name__)
        return None
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


__all__ = ["KEY", "latest_run", "record_run"]
