"""Sync metrics: how well appointments reach Cal.com, per company and overall.

`collect_sync_metrics()` computes everything with six queries whatever the number of
appointments (the company names, then aggregates: counts by status and age, attempt
outcomes, failure reasons, daily rates, and the oldest few appointment ids per
alert), then applies the alert rules. `get_sync_metrics()` serves the result from Redis, where the scheduler
refreshes it every 5 minutes; without a cached copy it computes one.

Shape (JSON-serialisable, the contract the dashboard builds on; rates are ratios
0..1, None when there was nothing to divide; times ISO 8601 UTC):

    {"generated_at": "...", "overall": SCOPE + {"calcom_api": {...} | None},
     "companies": {"<company_id>": SCOPE + {"name": str}}}

SCOPE holds `success_rate_24h`, `attempts_24h`, `successful_attempts_24h`,
`appointment_success_rate_24h`, `retry_success_rate_24h`, `pending_total`,
`pending_stale`, `failed_total`, `failed_ancient`, `manual_review`, `health`,
`alerts`, `top_failure_reasons` {"24h", "7d"}, `daily_success_rate_30d`, and the
inputs of the failure-rate rule, `failure_rate_1h` and `attempts_1h`.

Definitions:
- an attempt is a `SyncAttempt` that reached an outcome success, retry or failed
  (a skipped stale job or one still running is not an attempt at Cal.com);
  windows include their start: "last 24 h" is `now-24h <= started_at <= now`;
- stale pending: `sync_status='pending' AND sync_requested_at < now-60min`;
  ancient failed: `sync_status='failed' AND sync_requested_at < now-24h` (both
  configurable); every appointment counts whatever its booking status;
- per-appointment success rate: of the appointments attempted in the last 24 h,
  the share with a successful attempt in that window; retry success rate: the share
  of retries (attempt number > 1) that succeeded.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Mapping

from flask import has_app_context
from sqlalchemy import String, and_, case, func, literal, or_, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from core.clock import UTC, ensure_utc, utcnow
from core.extensions import db
from core.models import Appointment, Company, SyncAttempt, SyncOutcome, SyncStatus
from core.prom import METRICS_COLLECT_SECONDS
from core.redis_client import get_redis
from monitoring import drift, rules, trends
from monitoring.settings import MonitoringSettings, current_settings, resolve_settings

log = logging.getLogger("calcom")

CACHE_KEY = "slotguard:monitoring:sync-metrics"
OVERALL_SCOPE = "overall"
TOP_REASONS = 5
DAILY_DAYS = 30

A, S = Appointment, SyncAttempt
ATTEMPT_OUTCOMES = (SyncOutcome.SUCCESS, SyncOutcome.RETRY, SyncOutcome.FAILED)
FAILURE_OUTCOMES = (SyncOutcome.RETRY, SyncOutcome.FAILED)


class utc_date(FunctionElement):
    """`YYYY-MM-DD` of a stored UTC timestamp, in each database's own words."""

    type = String()
    inherit_cache = True


@compiles(utc_date)
def _utc_date_postgresql(element, compiler, **kw):
    return "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD')" % compiler.process(element.clauses, **kw)


@compiles(utc_date, "sqlite")
def _utc_date_sqlite(element, compiler, **kw):
    # SQLite keeps UTCDateTime as naive UTC text (core.types).
    return "strftime('%%Y-%%m-%%d', %s)" % compiler.process(element.clauses, **kw)


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def trend_scope(company_id: int | None) -> str:
    return OVERALL_SCOPE if company_id is None else f"company:{company_id}"


@dataclass
class _Raw:
    """The numbers of one scope as they come from SQL; scopes add up to `overall`."""

    pending_total: int = 0
    pending_stale: int = 0
    failed_total: int = 0
    failed_ancient: int = 0
    manual_review: int = 0
    attempts: int = 0
    successes: int = 0
    retries: int = 0
    retry_successes: int = 0
    attempts_1h: int = 0
    failures_1h: int = 0
    appointments_attempted: int = 0
    appointments_succeeded: int = 0
    reasons_24h: Counter = field(default_factory=Counter)
    reasons_7d: Counter = field(default_factory=Counter)
    daily: dict[str, list[int]] = field(default_factory=dict)  # day -> [attempts, successes]
    # Oldest few appointments per list, as (sync_requested_at, id), oldest first.
    oldest: dict[str, list[tuple[datetime, int]]] = field(
        default_factory=lambda: {"pending": [], "failed": [], "manual_review": []})

    COUNTS = ("pending_total", "pending_stale", "failed_total", "failed_ancient", "manual_review", "attempts",
              "successes", "retries", "retry_successes", "attempts_1h", "failures_1h",
              "appointments_attempted", "appointments_succeeded")

    def add(self, other: _Raw, id_limit: int) -> None:
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reasons_24h.update(other.reasons_24h)
        self.reasons_7d.update(other.reasons_7d)
        for day, (attempts, successes) in other.daily.items():
            totals = self.daily.setdefault(day, [0, 0])
            totals[0] += attempts
            totals[1] += successes
        for name, rows in other.oldest.items():
            self.oldest[name] = sorted(self.oldest[name] + rows)[:id_limit]

    @property
    def failure_rate_1h(self) -> float | None:
        return _ratio(self.failures_1h, self.attempts_1h)


@dataclass(frozen=True)
class _Clock:
    now: datetime
    stale_before: datetime
    ancient_before: datetime
    since_1h: datetime
    since_24h: datetime
    since_7d: datetime
    first_day: datetime

    @classmethod
    def at(cls, now: datetime, settings: MonitoringSettings) -> _Clock:
        first_day = datetime.combine(now.date() - timedelta(days=DAILY_DAYS - 1), time(0), tzinfo=UTC)
        return cls(now=now,
                   stale_before=now - timedelta(minutes=settings.stale_pending_minutes),
                   ancient_before=now - timedelta(hours=settings.ancient_failed_hours),
                   since_1h=now - timedelta(hours=1), since_24h=now - timedelta(hours=24),
                   since_7d=now - timedelta(days=7), first_day=first_day)


def collect_sync_metrics(
    session: Session,
    now: datetime | None = None,
    settings: MonitoringSettings | Mapping[str, Any] | None = None,
    *,
    redis=None,
    record_trend: bool = False,
) -> dict[str, Any]:
    """Compute the sync metrics (see the module docstring for the shape).

    `redis` (the app's by default) holds the trend history and Cal.com's call log;
    when it is unreachable the metrics come without trend alerts and `calcom_api`.
    `record_trend=True` (the scheduled refresh) adds this moment to the trend history.
    """
    with METRICS_COLLECT_SECONDS.time():
        return _collect(session, now, settings, redis=redis, record_trend=record_trend)


def _collect(session: Session, now, settings, *, redis, record_trend: bool) -> dict[str, Any]:
    settings = resolve_settings(settings)
    clock = _Clock.at(ensure_utc(now) if now else utcnow(), settings)
    limit = settings.alert_id_limit

    companies = session.execute(select(Company.id, Company.name).order_by(Company.id)).all()
    raw: dict[int, _Raw] = {company_id: _Raw() for company_id, _ in companies}
    _status_counts(session, clock, raw)
    _attempt_counts(session, clock, raw)
    _failure_reasons(session, clock, raw)
    _daily_counts(session, clock, raw)
    _oldest_ids(session, limit, raw)

    overall = _Raw()
    for company_raw in raw.values():
        overall.add(company_raw, limit)

    if redis is None and has_app_context():
        redis = get_redis()
    scopes = {OVERALL_SCOPE: overall} | {trend_scope(cid): r for cid, r in raw.items()}
    projections = _trend_projections(redis, scopes, clock.now, settings, record=record_trend)
    calcom_api = _calcom_api_health(redis, settings.calcom_window_seconds)
    reconciliation = drift.latest_run(redis)

    result_overall = _scope(overall, clock, settings, projections[OVERALL_SCOPE], calcom_api, reconciliation)
    result_overall["calcom_api"] = calcom_api
    result_overall["reconciliation"] = reconciliation
    return {
        "generated_at": clock.now.isoformat(timespec="seconds"),
        "overall": result_overall,
        "companies": {
            str(company_id): _scope(raw[company_id], clock, settings, projections[trend_scope(company_id)]) | {"name": name}
            for company_id, name in companies
        },
    }


# --- the six queries ---------------------------------------------------------------


def _status_counts(session: Session, clock: _Clock, raw: dict[int, _Raw]) -> None:
    """Pending/failed by age and manual review, from the (company, status, requested) indexes."""
    pending = A.sync_status == SyncStatus.PENDING
    failed = A.sync_status == SyncStatus.FAILED
    query = (
        select(
            A.company_id,
            _count_if(pending),
            _count_if(and_(pending, A.sync_requested_at < clock.stale_before)),
            _count_if(failed),
            _count_if(and_(failed, A.sync_requested_at < clock.ancient_before)),
            _count_if(A.requires_manual_review),
        )
        .where(or_(A.sync_status.in_([SyncStatus.PENDING, SyncStatus.FAILED]), A.requires_manual_review))
        .group_by(A.company_id)
    )
    for company_id, *counts in session.execute(query):
        scope = raw.setdefault(company_id, _Raw())
        (scope.pending_total, scope.pending_stale, scope.failed_total, scope.failed_ancient,
         scope.manual_review) = (int(c) for c in counts)


def _attempt_window(since: datetime, now: datetime):
    return and_(S.started_at >= since, S.started_at <= now, S.outcome.in_(ATTEMPT_OUTCOMES))


def _attempt_counts(session: Session, clock: _Clock, raw: dict[int, _Raw]) -> None:
    """Outcomes of the last 24 h (and the last hour) from the (started_at, outcome) index."""
    ok = S.outcome == SyncOutcome.SUCCESS
    retry = S.attempt_number > 1
    last_hour = S.started_at >= clock.since_1h
    query = (
        select(
            A.company_id,
            func.count(),
            _count_if(ok),
            _count_if(retry),
            _count_if(and_(retry, ok)),
            _count_if(last_hour),
            _count_if(and_(last_hour, S.outcome.in_(FAILURE_OUTCOMES))),
            func.count(S.appointment_id.distinct()),
            func.count(case((ok, S.appointment_id)).distinct()),
        )
        .select_from(S)
        .join(A, A.id == S.appointment_id)
        .where(_attempt_window(clock.since_24h, clock.now))
        .group_by(A.company_id)
    )
    for company_id, *counts in session.execute(query):
        scope = raw.setdefault(company_id, _Raw())
        (scope.attempts, scope.successes, scope.retries, scope.retry_successes, scope.attempts_1h,
         scope.failures_1h, scope.appointments_attempted, scope.appointments_succeeded) = (int(c) for c in counts)


def _failure_reasons(session: Session, clock: _Clock, raw: dict[int, _Raw]) -> None:
    """Failed attempts by error code over 7 days, with the last 24 h counted alongside."""
    code = func.coalesce(S.error_code, "unknown")
    query = (
        select(A.company_id, code, func.count(), _count_if(S.started_at >= clock.since_24h))
        .select_from(S)
        .join(A, A.id == S.appointment_id)
        .where(S.started_at >= clock.since_7d, S.started_at <= clock.now, S.outcome.in_(FAILURE_OUTCOMES))
        .group_by(A.company_id, code)
    )
    for company_id, error_code, count_7d, count_24h in session.execute(query):
        scope = raw.setdefault(company_id, _Raw())
        scope.reasons_7d[error_code] += int(count_7d)
        if count_24h:
            scope.reasons_24h[error_code] += int(count_24h)


def _daily_counts(session: Session, clock: _Clock, raw: dict[int, _Raw]) -> None:
    """Attempts and successes per UTC day over the last 30 days (today included)."""
    day = utc_date(S.started_at)
    query = (
        select(A.company_id, day, func.count(), _count_if(S.outcome == SyncOutcome.SUCCESS))
        .select_from(S)
        .join(A, A.id == S.appointment_id)
        .where(_attempt_window(clock.first_day, clock.now))
        .group_by(A.company_id, day)
    )
    for company_id, day_text, attempts, successes in session.execute(query):
        raw.setdefault(company_id, _Raw()).daily[day_text] = [int(attempts), int(successes)]


def _oldest_ids(session: Session, limit: int, raw: dict[int, _Raw]) -> None:
    """The oldest `limit` pending, failed and manual-review appointments of each company.

    One query: a row number per company in each list, cut at `limit`, so the rows
    returned stay bounded by companies x lists x limit.
    """
    def oldest(name: str, condition):
        position = func.row_number().over(partition_by=A.company_id, order_by=(A.sync_requested_at, A.id))
        ranked = (
            select(literal(name, String).label("list"), A.company_id, A.id, A.sync_requested_at,
                   position.label("position"))
            .where(condition)
            .subquery()
        )
        return select(ranked.c.list, ranked.c.company_id, ranked.c.id, ranked.c.sync_requested_at).where(
            ranked.c.position <= limit)

    query = union_all(
        oldest("pending", A.sync_status == SyncStatus.PENDING),
        oldest("failed", A.sync_status == SyncStatus.FAILED),
        oldest("manual_review", A.requires_manual_review),
    )
    for name, company_id, appointment_id, requested_at in session.execute(query):
        raw.setdefault(company_id, _Raw()).oldest[name].append((ensure_utc(requested_at), appointment_id))
    for scope in raw.values():
        for rows in scope.oldest.values():
            rows.sort()


# --- from numbers to the contract's shape -------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _ids(scope: _Raw, clock: _Clock) -> dict[str, list[int]]:
    pending, failed = scope.oldest["pending"], scope.oldest["failed"]
    return {
        "pending": [i for _, i in pending],
        # The oldest pending are the stale ones, so the capped list already holds them first.
        "pending_stale": [i for at, i in pending if at < clock.stale_before],
        "failed_ancient": [i for at, i in failed if at < clock.ancient_before],
        "manual_review": [i for _, i in scope.oldest["manual_review"]],
    }


def _top(counter: Counter) -> list[dict[str, Any]]:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
    return [{"code": code, "count": count} for code, count in ranked]


def _daily(scope: _Raw, clock: _Clock) -> list[dict[str, Any]]:
    days = []
    for offset in range(DAILY_DAYS):
        day = (clock.first_day + timedelta(days=offset)).date().isoformat()
        attempts, successes = scope.daily.get(day, (0, 0))
        days.append({"date": day, "attempts": attempts, "rate": _ratio(successes, attempts)})
    return days


def _scope(scope: _Raw, clock: _Clock, settings: MonitoringSettings, projections: dict, calcom_api=None,
           reconciliation=None) -> dict:
    counts = {
        "success_rate_24h": _ratio(scope.successes, scope.attempts),
        "attempts_24h": scope.attempts,
        "successful_attempts_24h": scope.successes,
        "appointment_success_rate_24h": _ratio(scope.appointments_succeeded, scope.appointments_attempted),
        "retry_success_rate_24h": _ratio(scope.retry_successes, scope.retries),
        "pending_total": scope.pending_total,
        "pending_stale": scope.pending_stale,
        "failed_total": scope.failed_total,
        "failed_ancient": scope.failed_ancient,
        "manual_review": scope.manual_review,
        "failure_rate_1h": scope.failure_rate_1h,
        "attempts_1h": scope.attempts_1h,
    }
    alerts = rules.evaluate(counts, _ids(scope, clock), settings, failure_rate_1h=scope.failure_rate_1h,
                            attempts_1h=scope.attempts_1h, trend=projections, calcom_api=calcom_api,
                            reconciliation=reconciliation)
    return counts | {
        "health": rules.health_of(alerts),
        "alerts": alerts,
        "top_failure_reasons": {"24h": _top(scope.reasons_24h), "7d": _top(scope.reasons_7d)},
        "daily_success_rate_30d": _daily(scope, clock),
    }


# --- Redis: trend history, Cal.com call log, the cache -------------------------------


def _trend_projections(redis, scopes: dict[str, _Raw], now: datetime, settings: MonitoringSettings,
                       *, record: bool) -> dict[str, dict[str, trends.Projection]]:
    projections: dict[str, dict[str, trends.Projection]] = {scope: {} for scope in scopes}
    if redis is None:
        return projections
    window = timedelta(minutes=settings.trend_window_minutes)
    current = {
        scope: trends.Sample(
            at=now.timestamp(),
            # Too few attempts make a rate that jumps around: leave it out of the trend.
            failure_rate=raw.failure_rate_1h if raw.attempts_1h >= settings.failure_rate_min_attempts else None,
            pending=raw.pending_total,
        )
        for scope, raw in scopes.items()
    }
    try:
        if record:
            trends.record_samples(redis, current, window=window)
        history = trends.load_history(redis, scopes, now=now, window=window)
    except Exception as exc:  # Redis down: metrics without trends beat no metrics
        log.warning("sync metrics: trend history unavailable (%s)", type(exc).__name__)
        return projections
    horizon = timedelta(minutes=settings.trend_horizon_minutes)
    for scope, sample in current.items():
        failure, backlog = trends.series(history.get(scope, []), sample)
        for name, points, threshold in (
            ("failure_rate", failure, settings.failure_rate_critical_percent / 100),
            ("pending_backlog", backlog, float(settings.pending_backlog_critical)),
        ):
            projection = trends.project_crossing(points, threshold=threshold, horizon=horizon,
                                                 min_samples=settings.trend_min_samples)
            if projection is not None:
                projections[scope][name] = projection
    return projections


def _calcom_api_health(redis, window_seconds: int) -> dict[str, Any] | None:
    """Cal.com's health from the client's call log; None when it cannot be read."""
    if redis is None:
        return None
    try:
        from calcom import call_log
    except ImportError:  # the Cal.com client is not installed in this build
        return None
    try:
        return call_log.summary(redis, window_seconds)
    except Exception as exc:
        log.warning("sync metrics: Cal.com call log unavailable (%s)", type(exc).__name__)
        return None


def get_sync_metrics(refresh: bool = False) -> dict[str, Any]:
    """The cached sync metrics; computed (and cached) when missing or `refresh=True`."""
    redis = get_redis()
    if not refresh:
        try:
            cached = redis.get(CACHE_KEY)
        except Exception as exc:
            log.warning("sync metrics: cache unavailable (%s); computing", type(exc).__name__)
            cached = None
        if cached:
            return json.loads(cached)
    return _store(collect_sync_metrics(db.session, redis=redis), redis)


def refresh_sync_metrics() -> dict[str, Any]:
    """The scheduled refresh: compute, add a trend sample, replace the cached copy."""
    redis = get_redis()
    return _store(collect_sync_metrics(db.session, redis=redis, record_trend=True), redis)


def _store(metrics: dict[str, Any], redis) -> dict[str, Any]:
    try:
        redis.set(CACHE_KEY, json.dumps(metrics, separators=(",", ":")), ex=current_settings().cache_ttl_seconds)
    except Exception as exc:
        log.warning("sync metrics: could not cache (%s)", type(exc).__name__)
    return metrics
