"""The alert run: fresh metrics, then tell each channel only what it does not know yet.

Run every 15 minutes by the scheduler and by hand as
`flask --app wsgi appointments alert-sync-failures`. For each open alert and each
notifier that takes its severity, the channel's last word on that alert (an
`AlertNotification` row) decides:

- never told, or told it resolved → send it as new;
- told a lower severity → send the escalation;
- told longer ago than `MONITORING_ALERT_REMIND_MINUTES` → send a reminder;
- otherwise → nothing (a lower severity is noted silently, so a new rise is sent).

An alert a channel was told about that is no longer open (for that channel) is sent
as resolved. A channel that fails is logged and tried again on the next run; it does
not stop the others and does not change the result. The company alerts are what is
sent; an alert of the whole set-up is sent too when no single company has it as
severe (a backlog only critical in sum, Cal.com API trouble).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import ensure_utc, utcnow
from core.models import AlertNotification
from core.redis_client import get_redis
from monitoring.metrics import OVERALL_SCOPE, collect_sync_metrics, trend_scope
from monitoring.notifiers import (
    RESOLVE,
    ESCALATE,
    REMIND,
    TRIGGER,
    AlertEvent,
    Notifier,
    appointments_list_url,
    build_notifiers,
    redact,
)
from monitoring.settings import MonitoringSettings, resolve_settings, severity_rank

log = logging.getLogger("calcom")

LOCK_KEY = "slotguard:monitoring:alert-run"
ALL_COMPANIES = "All companies"


@dataclass(frozen=True)
class Delivery:
    channel: str
    event: AlertEvent


@dataclass
class AlertRun:
    metrics: dict[str, Any]
    company_id: int | None
    company_name: str
    scope: dict[str, Any]  # the metrics scope the health is read from
    alerts: list[AlertEvent]  # the open alerts, as they would be sent
    planned: list[Delivery] = field(default_factory=list)
    delivered: list[Delivery] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (channel, what went wrong)
    skipped: str | None = None  # why nothing was sent, when nothing was

    @property
    def health(self) -> str:
        return self.scope["health"]

    @property
    def exit_code(self) -> int:
        """0 healthy or degraded, 1 critical (for cron and the CLI)."""
        return 1 if self.health == "critical" else 0


def run_alert_check(
    session: Session,
    *,
    company_id: int | None = None,
    company_name: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    settings: MonitoringSettings | None = None,
    notifiers: list[Notifier] | None = None,
    redis=None,
) -> AlertRun:
    """Compute fresh metrics, plan notifications and (unless `dry_run`) send them."""
    settings = resolve_settings(settings)
    now = ensure_utc(now) if now else utcnow()
    redis = get_redis() if redis is None else redis
    metrics = collect_sync_metrics(session, now=now, settings=settings, redis=redis)
    notifiers = build_notifiers(settings) if notifiers is None else notifiers

    if company_id is not None:
        scope = metrics["companies"][str(company_id)]
        name = company_name or scope["name"]
        evaluated = {trend_scope(company_id)}
    else:
        scope = metrics["overall"]
        name = ALL_COMPANIES
        evaluated = None  # every scope, including companies that no longer exist
    alerts = open_alerts(metrics, settings, now, company_id=company_id)
    run = AlertRun(metrics=metrics, company_id=company_id, company_name=name, scope=scope, alerts=alerts)

    log.log(logging.ERROR if run.health == "critical" else logging.WARNING if alerts else logging.INFO,
            "sync health %s (%s): %d open alert(s)%s", run.health, name, len(alerts),
            "".join(f"; {a.severity} {a.kind} {a.scope}" for a in alerts))

    if dry_run:
        states = _load_states(session, evaluated)
        run.planned = plan_deliveries(alerts, states, notifiers, evaluated, now, settings, _names(metrics))
        run.skipped = "dry run: nothing sent"
        return run

    lock = _acquire_lock(redis)
    if lock is False:
        run.skipped = "another alert run is sending notifications right now; nothing sent"
        log.warning("alert run: %s", run.skipped)
        return run
    try:
        states = _load_states(session, evaluated)
        run.planned = plan_deliveries(alerts, states, notifiers, evaluated, now, settings, _names(metrics))
        _note_quiet_changes(alerts, states, notifiers)
        _deliver(session, run, notifiers, states, now, settings)
    finally:
        if lock is not None:
            try:
                lock.release()
            except Exception:  # expired or Redis gone: nothing left to release
                pass
    return run


def open_alerts(metrics: dict[str, Any], settings: MonitoringSettings, now: datetime, *,
                company_id: int | None = None) -> list[AlertEvent]:
    """The alerts to notify: each company's, plus set-up-wide ones no company has as
    severe (a backlog critical only in sum, Cal.com trouble)."""
    events: list[AlertEvent] = []
    worst_per_kind: dict[str, int] = {}  # kind -> most severe rank among the companies
    for key, company in metrics["companies"].items():
        cid = int(key)
        if company_id is not None and cid != company_id:
            continue
        for alert in company["alerts"]:
            rank = severity_rank(alert["severity"])
            worst_per_kind[alert["kind"]] = max(rank, worst_per_kind.get(alert["kind"], rank))
            events.append(_event(TRIGGER, alert, trend_scope(cid), cid, company["name"], settings, now))
    if company_id is None:
        for alert in metrics["overall"]["alerts"]:
            if worst_per_kind.get(alert["kind"], -1) < severity_rank(alert["severity"]):
                events.append(_event(TRIGGER, alert, OVERALL_SCOPE, None, ALL_COMPANIES, settings, now))
    events.sort(key=lambda e: -severity_rank(e.severity))
    return events


def _names(metrics: dict[str, Any]) -> dict[str, str]:
    return {trend_scope(int(key)): company["name"] for key, company in metrics["companies"].items()}


def _event(action: str, alert: dict, scope: str, company_id: int | None, company_name: str,
           settings: MonitoringSettings, now: datetime) -> AlertEvent:
    return AlertEvent(
        action=action, scope=scope, company_id=company_id, company_name=company_name, kind=alert["kind"],
        severity=alert["severity"], message=alert["message"], action_text=alert["action"],
        appointment_ids=tuple(alert["appointment_ids"]),
        dashboard_url=appointments_list_url(settings.public_base_url, alert["kind"], company_id), at=now,
    )


StateKey = tuple[str, str, str]  # (scope, kind, channel)


def _load_states(session: Session, scopes: set[str] | None) -> dict[StateKey, AlertNotification]:
    query = select(AlertNotification)
    if scopes is not None:
        query = query.where(AlertNotification.scope.in_(sorted(scopes)))
    return {(row.scope, row.kind, row.channel): row for row in session.scalars(query)}


def plan_deliveries(
    alerts: list[AlertEvent],
    states: dict[StateKey, AlertNotification],
    notifiers: list[Notifier],
    evaluated_scopes: set[str] | None,
    now: datetime,
    settings: MonitoringSettings,
    names: dict[str, str] | None = None,
) -> list[Delivery]:
    """What each channel must be told now (see the module docstring for the rules).

    `names` maps scopes to company names, for resolving alerts no longer in the metrics.
    """
    names = names or {}
    remind_after = timedelta(minutes=settings.alert_remind_minutes)
    deliveries: list[Delivery] = []
    for notifier in notifiers:
        wanted = {(a.scope, a.kind): a for a in alerts if notifier.accepts(a.severity)}
        for (scope, kind), alert in wanted.items():
            state = states.get((scope, kind, notifier.name))
            if state is None or not state.is_open:
                action = TRIGGER
            elif severity_rank(alert.severity) > severity_rank(state.severity):
                action = ESCALATE
            elif now - state.last_sent_at >= remind_after:
                action = REMIND
            else:
                continue
            deliveries.append(Delivery(notifier.name, _with_action(alert, action)))
        for (scope, kind, channel), state in states.items():
            if channel != notifier.name or not state.is_open or (scope, kind) in wanted:
                continue
            if evaluated_scopes is not None and scope not in evaluated_scopes:
                continue
            deliveries.append(Delivery(notifier.name, _resolved(state, names, now)))
    return deliveries


def _with_action(alert: AlertEvent, action: str) -> AlertEvent:
    return replace(alert, action=action)


def _resolved(state: AlertNotification, names: dict[str, str], now: datetime) -> AlertEvent:
    company_id = int(state.scope.split(":", 1)[1]) if state.scope.startswith("company:") else None
    return AlertEvent(
        action=RESOLVE, scope=state.scope, company_id=company_id,
        # A company deleted since the alert opened is named by its scope.
        company_name=ALL_COMPANIES if company_id is None else names.get(state.scope, state.scope),
        kind=state.kind, severity=state.severity, message=f"cleared: {state.message}", action_text="",
        appointment_ids=(), dashboard_url=None, at=now,
    )


def _note_quiet_changes(alerts: list[AlertEvent], states: dict[StateKey, AlertNotification],
                        notifiers: list[Notifier]) -> None:
    """An alert that calmed down (critical → warning) lowers what the channel knows,
    so that rising again is an escalation worth sending."""
    for notifier in notifiers:
        for alert in alerts:
            state = states.get((alert.scope, alert.kind, notifier.name))
            if (state is not None and state.is_open and notifier.accepts(alert.severity)
                    and severity_rank(alert.severity) < severity_rank(state.severity)):
                state.severity = alert.severity
                state.message = alert.message


def _deliver(session: Session, run: AlertRun, notifiers: list[Notifier],
             states: dict[StateKey, AlertNotification], now: datetime, settings: MonitoringSettings) -> None:
    for notifier in notifiers:
        events = [d.event for d in run.planned if d.channel == notifier.name]
        for start in range(0, len(events), notifier.batch_size):
            batch = events[start:start + notifier.batch_size]
            try:
                notifier.send(batch)
            except Exception as exc:  # a vendor's failure must not stop the others
                reason = redact(str(exc) or type(exc).__name__, settings.secrets)
                run.failures.append((notifier.name, reason))
                log.error("alert run: %s notifier failed for %d notification(s): %s", notifier.name, len(batch), reason)
                break  # the rest of this channel waits for the next run, in order
            for event in batch:
                _remember(session, states, notifier.name, event, now)
                run.delivered.append(Delivery(notifier.name, event))
            session.commit()
    session.commit()  # quiet severity changes


def _remember(session: Session, states: dict[StateKey, AlertNotification], channel: str, event: AlertEvent,
              now: datetime) -> None:
    key = (event.scope, event.kind, channel)
    state = states.get(key)
    if state is None:
        state = AlertNotification(scope=event.scope, kind=event.kind, channel=channel, severity=event.severity,
                                  opened_at=now, sent_count=0)
        session.add(state)
        states[key] = state
    if event.action == RESOLVE:
        state.is_open = False
        state.resolved_at = now
    else:
        if event.action == TRIGGER:
            state.opened_at = now
            state.resolved_at = None
        state.is_open = True
        state.severity = event.severity
        state.message = event.message
    state.last_sent_at = now
    state.sent_count = (state.sent_count or 0) + 1


def _acquire_lock(redis):
    """A short Redis lock, so two alert runs (CLI and scheduler) never send twice.

    Returns the lock, False when another run holds it, or None when Redis is down
    (then notifications go out unlocked: a duplicate beats a missed page).
    """
    try:
        lock = redis.lock(LOCK_KEY, timeout=300, blocking=False)
        return lock if lock.acquire() else False
    except Exception as exc:
        log.warning("alert run: Redis lock unavailable (%s); sending without it", type(exc).__name__)
        return None
