"""The monitoring room's scheduled RQ jobs (registered by `workers.schedule`).

Each is a thin shell: get an app context, call the monitoring function, return a
small summary that RQ keeps as the job result (visible on the dashboard's queue page).
"""

from __future__ import annotations

from workers.app_context import app_context


def refresh_sync_metrics() -> dict:
    """Every 5 minutes: recompute the sync metrics, cache them, add a trend sample."""
    with app_context():
        from monitoring.metrics import refresh_sync_metrics as refresh

        metrics = refresh()
        return {"generated_at": metrics["generated_at"], "health": metrics["overall"]["health"]}


def alert_sync_failures() -> dict:
    """Every 15 minutes: the same check as `flask appointments alert-sync-failures`."""
    with app_context():
        from core.extensions import db
        from monitoring.alerting import run_alert_check

        run = run_alert_check(db.session)
        return {
            "health": run.health,
            "alerts": len(run.alerts),
            "sent": len(run.delivered),
            "failed_channels": sorted({channel for channel, _ in run.failures}),
            "skipped": run.skipped,
        }


def send_daily_digest() -> str:
    """Once a day: the last 24 hours by email."""
    with app_context():
        from core.extensions import db
        from monitoring.digest import send_daily_digest as send

        return send(db.session)
