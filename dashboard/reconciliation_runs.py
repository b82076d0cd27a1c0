"""Drift reconciliation runs on the trends page: the recent runs, one run's findings,
and drift per night for the chart.

`workers.reconcile` records every run as a `ReconciliationRun` (window, counts per
drift kind, repaired, flagged, the first findings, errors). One run compares the
bookings of every company at once — Cal.com event types are not per company — so
its counts, findings and errors span all companies. Users who see all companies get
them; a user bound to a company sees when the runs happened and whether they
finished (`runs_in_full`), and finds what a run flagged of theirs in their own
manual-review list (the reason starts with "Reconciliation:").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from core.models import ReconciliationRun

# The drift kinds in the order of the README's table, with what an operator reads.
# A kind a later version of the reconciliation adds shows up under its own name.
KIND_LABELS = {
    "missing_in_calcom": "Missing in Cal.com",
    "unknown_in_calcom": "Unknown in Cal.com",
    "cancelled_here": "Cancelled here, live in Cal.com",
    "time_mismatch": "Time mismatch",
    "status_mismatch": "Status mismatch",
}
HANDLING_LABELS = {
    "repaired": "repaired",
    "flagged": "flagged for review",
    "reported": "reported only",
    "would_repair": "would be repaired (dry run)",
    "would_flag": "would be flagged (dry run)",
    "changed_meanwhile": "skipped: the appointment changed meanwhile",
}
STATUS_LABELS = {"running": "Running", "ok": "Finished", "errors": "Finished with errors", "failed": "Failed"}
RECENT_RUNS = 20
CHART_NIGHTS = 30
# The run is nightly: without a finished one for a day and a half, something is wrong.
NIGHTLY_LATE_AFTER = timedelta(hours=36)


def runs_in_full(company_id: int | None) -> bool:
    """Counts, findings and errors of a run span every company: only for users who see all."""
    return company_id is None


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind) or kind.replace("_", " ").capitalize()


def kinds_of(runs: Iterable[ReconciliationRun]) -> list[str]:
    """The known kinds, then any other kind the runs counted."""
    kinds = list(KIND_LABELS)
    for run in runs:
        kinds += [kind for kind in (run.counts or {}) if kind not in kinds]
    return kinds


def recent_runs(session: Session, limit: int = RECENT_RUNS) -> list[ReconciliationRun]:
    """The latest runs, newest first, in one query (their findings are not loaded)."""
    return list(session.scalars(
        select(ReconciliationRun)
        .options(defer(ReconciliationRun.findings))
        .order_by(ReconciliationRun.started_at.desc(), ReconciliationRun.id.desc())
        .limit(limit)
    ))


def load_run(session: Session, run_id: int) -> ReconciliationRun | None:
    return session.get(ReconciliationRun, run_id)


def latest_nightly(session: Session) -> ReconciliationRun | None:
    """The last finished run the scheduler started (None: it never ran)."""
    return session.scalars(
        select(ReconciliationRun)
        .options(defer(ReconciliationRun.findings))
        .where(ReconciliationRun.trigger == "schedule", ReconciliationRun.finished_at.is_not(None))
        .order_by(ReconciliationRun.started_at.desc(), ReconciliationRun.id.desc())
        .limit(1)
    ).first()


def nightly_is_late(run: ReconciliationRun | None, now: datetime) -> bool:
    """No scheduled run finished within `NIGHTLY_LATE_AFTER` (the scheduler or its
    worker is down, or the runs crash): the drift alert cannot fire either, because
    it reads the latest run."""
    return run is None or now - run.finished_at > NIGHTLY_LATE_AFTER


def window_days(run: ReconciliationRun) -> tuple[date, date]:
    """The window's first and last UTC day (its end is exclusive, usually a midnight)."""
    return run.window_from.date(), (run.window_to - timedelta(microseconds=1)).date()


@dataclass(frozen=True)
class FindingsSummary:
    findings: list[dict[str, Any]]
    flagged_ids: list[int]  # the appointments the run flagged, as far as its findings are kept
    truncated: bool  # the run found more than it kept


def findings_of(run: ReconciliationRun) -> FindingsSummary:
    findings = [f for f in (run.findings or []) if isinstance(f, dict)]
    flagged = [f.get("appointment_id") for f in findings if f.get("handling") == "flagged"]
    flagged_ids = list(dict.fromkeys(i for i in flagged if isinstance(i, int)))
    return FindingsSummary(findings=findings, flagged_ids=flagged_ids, truncated=run.drift_total > len(findings))


def drift_per_night(session: Session, *, now: datetime, nights: int = CHART_NIGHTS) -> dict[str, Any]:
    """Per UTC day of the last `nights`: the drift the day's run found, by kind.

    A day's run is its last finished run that was not a dry run (each run looks at
    the whole window, so adding up two runs of one day would count drift twice). A
    day without one is a gap (null), not zero: a night the reconciliation did not
    run should be seen.
    """
    days = [now.date() - timedelta(days=offset) for offset in range(nights - 1, -1, -1)]
    first = datetime.combine(days[0], time(0), tzinfo=now.tzinfo)
    runs = session.scalars(
        select(ReconciliationRun)
        .options(defer(ReconciliationRun.findings))
        .where(ReconciliationRun.started_at >= first, ReconciliationRun.started_at <= now,
               ReconciliationRun.finished_at.is_not(None), ReconciliationRun.dry_run.is_(False))
        .order_by(ReconciliationRun.started_at, ReconciliationRun.id)
    ).all()
    of_day: dict[date, ReconciliationRun] = {}
    for run in runs:  # oldest first: the day's last run wins
        of_day[run.started_at.date()] = run
    kinds = kinds_of(of_day.values())

    def series(value) -> list:
        return [value(of_day[day]) if day in of_day else None for day in days]

    return {
        "labels": [day.isoformat() for day in days],
        "kinds": [{"key": kind, "label": kind_label(kind)} for kind in kinds],
        "counts": {kind: series(lambda run, kind=kind: int((run.counts or {}).get(kind, 0))) for kind in kinds},
        "drift_total": series(lambda run: run.drift_total),
        "repaired": series(lambda run: run.repaired),
        "flagged": series(lambda run: run.flagged),
        "errors": series(lambda run: len(run.errors or [])),
        "run_ids": series(lambda run: run.id),
    }
