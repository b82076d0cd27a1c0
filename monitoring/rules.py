"""Alert rules: from a scope's numbers to alerts an operator can act on, and a health.

The seed's rules are the defaults: critical when any appointment needs manual review
or any failure is older than 24 h; a warning (degraded) when more than 10 are stale
pending. Beyond the seed: a pending backlog and a failure rate that are critical
once they cross their thresholds and a warning (the trend alert) while their
least-squares trend says they will cross within the next hour — the same alert
kind, so crossing is an escalation — and Cal.com API trouble. Every threshold lives
in `MonitoringSettings`.
"""

from __future__ import annotations

from typing import Any

from monitoring.settings import MonitoringSettings, severity_rank
from monitoring.trends import Projection

HEALTHY, DEGRADED, CRITICAL = "healthy", "degraded", "critical"

RETRY_HINT = "`flask --app wsgi appointments retry-sync ID…`"
FAILURE_RATE_ACTION = ("Read the top failure reasons: timeouts and 5xx point at Cal.com (check its status page), "
                       "401/403 at the API key, other 4xx at event types or staff set-up.")


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _alert(kind: str, severity: str, message: str, action: str, appointment_ids: list[int] | None = None) -> dict:
    return {"kind": kind, "severity": severity, "message": message, "action": action,
            "appointment_ids": list(appointment_ids or [])}


def evaluate(
    scope: dict[str, Any],
    ids: dict[str, list[int]],
    settings: MonitoringSettings,
    *,
    failure_rate_1h: float | None,
    attempts_1h: int,
    trend: dict[str, Projection],
    calcom_api: dict[str, Any] | None = None,
    reconciliation: dict[str, Any] | None = None,
) -> list[dict]:
    """The alerts of one scope (a company, or everything), most severe first."""
    alerts: list[dict] = []
    s = settings

    if scope["manual_review"] >= s.manual_review_critical:
        alerts.append(_alert(
            "manual_review", "critical",
            _plural(scope["manual_review"], "appointment needs", "appointments need") + " manual review",
            "Open each one on the dashboard, make Cal.com match it (or retry the sync with "
            f"{RETRY_HINT}), then resolve the review with a note.",
            ids["manual_review"],
        ))
    if scope["failed_ancient"] >= s.failed_ancient_critical:
        alerts.append(_alert(
            "failed_ancient", "critical",
            _plural(scope["failed_ancient"], "appointment", "appointments")
            + f" failed to sync more than {s.ancient_failed_hours} h ago and never reached Cal.com",
            "Cal.com may offer these slots to other callers: retry the sync from the dashboard or with "
            f"{RETRY_HINT}; if Cal.com refuses, fix the booking in Cal.com and resolve it.",
            ids["failed_ancient"],
        ))
    # Backlog and failure rate: critical once crossed; a warning while a least-squares
    # trend says they will cross within the horizon (same kind, so crossing escalates).
    if scope["pending_total"] >= s.pending_backlog_critical:
        alerts.append(_alert(
            "pending_backlog", "critical",
            _plural(scope["pending_total"], "appointment is", "appointments are")
            + f" waiting to sync to Cal.com (critical from {s.pending_backlog_critical})",
            "Check that the RQ workers run (`rq info --url $REDIS_URL`) and that Cal.com answers "
            "(Cal.com API health); start more workers if the calcom-sync queue keeps growing.",
            ids["pending"],
        ))
    elif "pending_backlog" in trend:
        p = trend["pending_backlog"]
        alerts.append(_alert(
            "pending_backlog", "warning",
            f"The pending backlog is rising by about {p.slope_per_hour:.0f} per hour (now {p.current:.0f}); "
            f"at this pace it reaches the critical {p.threshold:.0f} in about {p.minutes_to_threshold:.0f} min",
            "Act before it pages: check that the RQ workers keep up (`rq info --url $REDIS_URL`) and that "
            "Cal.com answers.",
            ids["pending"],
        ))
    if (failure_rate_1h is not None and attempts_1h >= s.failure_rate_min_attempts
            and failure_rate_1h * 100 >= s.failure_rate_critical_percent):
        failed = round(failure_rate_1h * attempts_1h)
        alerts.append(_alert(
            "failure_rate", "critical",
            f"{failure_rate_1h:.0%} of sync attempts failed in the last hour ({failed} of {attempts_1h})",
            FAILURE_RATE_ACTION,
        ))
    elif "failure_rate" in trend:
        p = trend["failure_rate"]
        alerts.append(_alert(
            "failure_rate", "warning",
            f"The sync failure rate is rising by about {p.slope_per_hour * 100:.0f} points per hour "
            f"(now {p.current:.0%}); at this pace it reaches the critical {p.threshold:.0%} "
            f"in about {p.minutes_to_threshold:.0f} min",
            "Act before it pages. " + FAILURE_RATE_ACTION,
        ))
    if scope["pending_stale"] > s.stale_pending_warning:
        alerts.append(_alert(
            "pending_stale", "warning",
            _plural(scope["pending_stale"], "appointment has", "appointments have")
            + f" waited more than {s.stale_pending_minutes} min to sync to Cal.com",
            "Check that the workers run (`rq info --url $REDIS_URL`) and the Cal.com API health; the "
            "stale-pending sweeper re-enqueues them every few minutes. If they stay, read the sync "
            "attempts of the oldest one.",
            ids["pending_stale"],
        ))
    if calcom_api:
        alert = _calcom_api_alert(calcom_api, s)
        if alert:
            alerts.append(alert)
    if reconciliation and reconciliation.get("drift_total", 0) > s.reconcile_drift_alert_threshold:
        alerts.append(_reconcile_alert(reconciliation))
    alerts.sort(key=lambda a: -severity_rank(a["severity"]))  # stable: rule order within a severity
    return alerts


def _calcom_api_alert(summary: dict[str, Any], s: MonitoringSettings) -> dict | None:
    problems = []
    calls = summary.get("calls") or 0
    error_rate = summary.get("error_rate")
    if calls >= s.calcom_min_calls and error_rate is not None and error_rate * 100 >= s.calcom_error_rate_warning_percent:
        problems.append(f"{error_rate:.0%} of {calls} calls failed")
    if summary.get("rate_limited"):
        problems.append(_plural(summary["rate_limited"], "call was", "calls were") + " rate-limited (429)")
    if not problems:
        return None
    minutes = round(s.calcom_window_seconds / 60)
    return _alert(
        "calcom_api", "warning",
        f"Cal.com API trouble in the last {minutes} min: " + "; ".join(problems),
        "Check Cal.com's status page and that CALCOM_API_KEY is valid; on 429s run fewer sync workers. "
        "Failed syncs are retried on their own.",
    )


def _reconcile_alert(run: dict[str, Any]) -> dict:
    """(overall only) The latest drift reconciliation found Cal.com and Slotguard apart."""
    kinds = ", ".join(f"{kind} {count}" for kind, count in (run.get("counts") or {}).items() if count)
    return _alert(
        "reconcile_drift", "warning",
        f"Reconciliation run {run.get('run_id')} found {_plural(run['drift_total'], 'difference', 'differences')} "
        f"with Cal.com ({kinds}): {run.get('repaired', 0)} repaired, {run.get('flagged', 0)} flagged for review",
        "Read the run's findings on the dashboard's trends page; flagged appointments are in manual review. "
        "Drift that keeps coming back points at lost webhooks (check the Cal.com webhook's deliveries) or "
        "bookings changed in Cal.com by hand.",
        run.get("flagged_ids") or [],
    )


def health_of(alerts: list[dict]) -> str:
    severities = {a["severity"] for a in alerts}
    if "critical" in severities:
        return CRITICAL
    if "warning" in severities:
        return DEGRADED
    return HEALTHY
