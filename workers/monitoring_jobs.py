"""The monitoring room's scheduled RQ jobs (registered by `workers.schedule`).

Each is a thin shell around the monitoring function (in the app context, like every
job: `workers.app_context.job_in_app_context`) that returns a small summary RQ keeps
as the job result (visible on the dashboard's queue page).
"""

from __future__ import annotations

from core.extensions import db
from monitoring.alerting import run_alert_check
from monitoring.digest import send_daily_digest as send_digest
from monitoring.metrics import refresh_sync_metrics as refresh
from workers.app_context import job_in_app_context


@job_in_app_context
def refresh_sync_metrics() -> dict:
    """Every 5 minutes: recompute the sync metrics, cache them, add a trend sample."""
    metrics = refresh()
    return {"generated_at": metrics["generated_at"], "health": metrics["overall"]["health"]}


@job_in_app_context
def alert_sync_failures() -> dict:
    """Every 15 minutes: the same check as `flask appointments alert-sync-failures`."""
    run = run_alert_check(db.session)
    return {
        "health": run.health,
        "alerts": len(run.alerts),
        "sent": len(run.delivered),
        "failed_channels": sorted({channel for channel, _ in run.failures}),
        "skipped": run.skipped,
    }


@job_in_app_context
def send_daily_digest() -> str:
    """Once a day: the last 24 hours by email."""
    return send_digest(db.session)
