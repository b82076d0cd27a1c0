"""The six overview tiles, built from the cached sync metrics (monitoring room's
`get_sync_metrics`, see TEAM.md "Sync metrics").

The metrics hold an "overall" scope and one scope per company; a user bound to a
company gets that company's scope only, so no number on the page counts another
company's appointments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import url_for

from dashboard.appointment_queries import AgeLimits
from dashboard.formatting import limit_text

HEALTH_LABELS = {"healthy": "Healthy", "degraded": "Degraded", "critical": "Critical"}
# Tone is the tile's colour *and* its icon; the words on the tile say the same thing,
# so nobody depends on telling colours apart.
HEALTH_TONES = {"healthy": "ok", "degraded": "warn", "critical": "bad"}
SEVERITY_ORDER = ("warning", "critical")

# Display bands for the success-rate tile (the alert rules decide health on their own).
SUCCESS_OK = 0.95
SUCCESS_WARN = 0.80

EMPTY_SCOPE: dict[str, Any] = {
    "success_rate_24h": None, "attempts_24h": 0, "successful_attempts_24h": 0,
    "appointment_success_rate_24h": None, "retry_success_rate_24h": None,
    "pending_total": 0, "pending_stale": 0, "failed_total": 0, "failed_ancient": 0,
    "manual_review": 0, "health": "healthy", "alerts": [],
    "top_failure_reasons": {"24h": [], "7d": []}, "daily_success_rate_30d": [],
}


@dataclass(frozen=True)
class Tile:
    key: str
    title: str
    value: str
    detail: str
    tone: str  # ok | warn | bad | neutral
    status_text: str  # what the tone means, in words
    href: str
    detail_href: str | None = None


def scope_for(metrics: dict[str, Any], company_id: int | None) -> dict[str, Any]:
    """The part of the metrics this user may see."""
    if company_id is None:
        scope = metrics.get("overall") or {}
    else:
        # A company without any appointment yet has no entry: it is all zeros.
        scope = (metrics.get("companies") or {}).get(str(company_id)) or {}
    return {**EMPTY_SCOPE, **scope}


def worst_severity(alerts: list[dict[str, Any]]) -> str | None:
    severities = [a.get("severity") for a in alerts if a.get("severity") in SEVERITY_ORDER]
    return max(severities, key=SEVERITY_ORDER.index) if severities else None


def _list(**args: str) -> str:
    return url_for("dashboard.appointments", **args)


def build_tiles(scope: dict[str, Any], limits: AgeLimits) -> list[Tile]:
    health = scope["health"] if scope["health"] in HEALTH_LABELS else "critical"
    rate = scope["success_rate_24h"]
    attempts, successes = scope["attempts_24h"], scope["successful_attempts_24h"]
    if rate is None:
        rate_tone, rate_status = "neutral", "No attempts"
    elif rate >= SUCCESS_OK:
        rate_tone, rate_status = "ok", "Good"
    elif rate >= SUCCESS_WARN:
        rate_tone, rate_status = "warn", "Low"
    else:
        rate_tone, rate_status = "bad", "Very low"
    pending, stale = scope["pending_total"], scope["pending_stale"]
    failed, ancient = scope["failed_total"], scope["failed_ancient"]
    review = scope["manual_review"]
    alerts = scope["alerts"]
    worst = worst_severity(alerts)
    oldest_first = {"sort": "requested", "direction": "asc"}
    return [
        Tile("health", "Sync Health", HEALTH_LABELS[health],
             f"{len(alerts)} active alert{'s' if len(alerts) != 1 else ''}",
             HEALTH_TONES[health], HEALTH_LABELS[health], _list(sync_status="unsynced", **oldest_first)),
        Tile("success_rate", "Success Rate 24 h", _percent(rate),
             f"{successes} of {attempts} attempts" if attempts else "no sync attempts in 24 h",
             rate_tone, rate_status, _list(had_failures="1", **oldest_first)),
        Tile("pending", "Pending Sync", str(pending), f"{stale} stale (over {limit_text(limits.stale_after)})",
             "warn" if stale else "ok", "Some stale" if stale else "None stale",
             _list(sync_status="pending", **oldest_first),
             _list(sync_status="pending", age="stale", **oldest_first)),
        Tile("failed", "Failed Sync", str(failed), f"{ancient} ancient (over {limit_text(limits.ancient_after)})",
             "bad" if ancient else ("warn" if failed else "ok"),
             "Some ancient" if ancient else ("Some failed" if failed else "None failed"),
             _list(sync_status="failed", **oldest_first),
             _list(sync_status="failed", age="ancient", **oldest_first)),
        Tile("manual_review", "Manual Review", str(review),
             "need a person" if review else "nothing waiting",
             "warn" if review else "ok", "Waiting" if review else "Clear",
             _list(review="1", **oldest_first)),
        Tile("alerts", "Active Alerts", str(len(alerts)),
             f"worst: {worst}" if worst else "no alerts",
             {"critical": "bad", "warning": "warn"}.get(worst or "", "ok"),
             (worst or "none").capitalize(), url_for("dashboard.overview") + "#alerts"),
    ]


def alert_rows(scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Active alerts, critical first, each with a link to the appointments it names."""
    rows = []
    for alert in sorted(scope["alerts"], key=lambda a: -SEVERITY_ORDER.index(a.get("severity", "warning"))):
        ids = [int(i) for i in alert.get("appointment_ids") or []]
        rows.append({
            **alert,
            "href": _list(id_list=",".join(str(i) for i in ids), sort="requested", direction="asc") if ids else None,
        })
    return rows


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"
