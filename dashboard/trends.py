"""Data behind the trend charts, as plain JSON-ready dicts.

Daily success rate and top failure reasons come from the cached sync metrics (the
same numbers the tiles use). The daily retry success rate and the daily Cal.com
sync-call duration and error rate are aggregated here with one GROUP BY query each
over `sync_attempts` (indexed by `started_at`), bucketed by UTC day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.models import Appointment, SyncAttempt, SyncOutcome
from monitoring.metrics import utc_date

TREND_DAYS = 30
FAILURE_WINDOWS = ("24h", "7d")


def _days(now: datetime, days: int) -> list[date]:
    today = now.date()
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def daily_success(scope: dict[str, Any]) -> dict[str, Any]:
    points = scope.get("daily_success_rate_30d") or []
    return {
        "labels": [p["date"] for p in points],
        "rate_percent": [None if p["rate"] is None else round(p["rate"] * 100, 1) for p in points],
        "attempts": [p["attempts"] for p in points],
    }


def failure_reasons(scope: dict[str, Any], window: str) -> dict[str, Any]:
    reasons = (scope.get("top_failure_reasons") or {}).get(window) or []
    return {"window": window, "labels": [r["code"] for r in reasons], "counts": [r["count"] for r in reasons]}


def _attempt_buckets(session: Session, *, company_id: int | None, now: datetime, days: int, retries_only: bool):
    start = datetime.combine(now.date() - timedelta(days=days - 1), datetime.min.time(), tzinfo=now.tzinfo)
    day = utc_date(SyncAttempt.started_at).label("day")
    failed = SyncAttempt.outcome.in_([SyncOutcome.RETRY, SyncOutcome.FAILED])
    query = (
        select(
            day,
            func.count().label("attempts"),
            func.sum(case((SyncAttempt.outcome == SyncOutcome.SUCCESS, 1), else_=0)).label("successes"),
            func.sum(case((failed, 1), else_=0)).label("errors"),
            func.avg(SyncAttempt.duration_ms).label("avg_ms"),
            func.max(SyncAttempt.duration_ms).label("max_ms"),
        )
        .where(SyncAttempt.started_at >= start, SyncAttempt.started_at <= now,
               # A skipped attempt never called Cal.com.
               SyncAttempt.outcome.is_not(None), SyncAttempt.outcome != SyncOutcome.SKIPPED)
        .group_by(day)
    )
    if retries_only:
        query = query.where(SyncAttempt.attempt_number > 1)
    if company_id is not None:
        query = query.join(Appointment, Appointment.id == SyncAttempt.appointment_id).where(
            Appointment.company_id == company_id)
    return {str(row.day): row for row in session.execute(query)}


def retry_success(session: Session, *, company_id: int | None, now: datetime, days: int = TREND_DAYS) -> dict[str, Any]:
    """Per day: of the attempts that were retries (attempt 2 or later), the share that succeeded."""
    buckets = _attempt_buckets(session, company_id=company_id, now=now, days=days, retries_only=True)
    labels, rates, retries = [], [], []
    for day in _days(now, days):
        row = buckets.get(day.isoformat())
        labels.append(day.isoformat())
        retries.append(int(row.attempts) if row else 0)
        rates.append(round(100 * int(row.successes) / int(row.attempts), 1) if row and row.attempts else None)
    return {"labels": labels, "rate_percent": rates, "retries": retries}


def calcom_calls(session: Session, *, company_id: int | None, now: datetime, days: int = TREND_DAYS,
                 live: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per day: Cal.com sync calls' average and slowest duration and their error rate.

    `live` is the Cal.com client's rolling-window summary (monitoring's `calcom_api`),
    shown beside the history when the user may see all companies.
    """
    buckets = _attempt_buckets(session, company_id=company_id, now=now, days=days, retries_only=False)
    labels, avg_ms, max_ms, error_percent, calls = [], [], [], [], []
    for day in _days(now, days):
        row = buckets.get(day.isoformat())
        labels.append(day.isoformat())
        calls.append(int(row.attempts) if row else 0)
        avg_ms.append(round(float(row.avg_ms)) if row and row.avg_ms is not None else None)
        max_ms.append(int(row.max_ms) if row and row.max_ms is not None else None)
        error_percent.append(round(100 * int(row.errors) / int(row.attempts), 1) if row and row.attempts else None)
    return {"labels": labels, "avg_ms": avg_ms, "max_ms": max_ms, "error_percent": error_percent,
            "calls": calls, "live": live}
