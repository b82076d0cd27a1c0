"""The links monitoring puts in its alerts (Slack's "Open list" button, the e-mail, the
daily digest, PagerDuty) open the dashboard list filtered to exactly the alert's
appointments — for every alert kind, for all companies and for one company."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import Appointment, Role, SyncAction, SyncAttempt, SyncOutcome, SyncStatus
from core.redis_client import get_redis
from monitoring import drift
from monitoring.alerting import open_alerts
from monitoring.metrics import collect_sync_metrics
from monitoring.notifiers import ALERT_LIST_FILTERS, appointments_list_url
from monitoring.settings import current_settings
from tests.dashboard_support import csrf_token, make_user, sign_in, squash, text_of
from tests.factories import book, make_world
from tests.test_dashboard_reconciliation import record_run

UTC = timezone.utc
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # the `clock` fixture's time
BASE = "https://slotguard.example"
LIST = "/dashboard/appointments"


def shown_ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-appointment-id="(\d+)"', html)}


def _appointment(world, hours_from_now, *, status, requested_hours_ago, review=False, attempts=()):
    appointment = book(world, NOW + timedelta(hours=hours_from_now))
    appointment.sync_status = status
    appointment.sync_requested_at = NOW - timedelta(hours=requested_hours_ago)
    appointment.requires_manual_review = review
    if review:
        appointment.manual_review_reason = "Cal.com refused the booking"
    if status == SyncStatus.FAILED:
        appointment.sync_error_code = "http_400"
    for minutes_ago, outcome in attempts:
        db.session.add(SyncAttempt(appointment_id=appointment.id, action=SyncAction.CREATE, attempt_number=1,
                                   started_at=NOW - timedelta(minutes=minutes_ago), outcome=outcome,
                                   duration_ms=150))
    return appointment


@pytest.fixture
def troubled(app, clock):
    """Two companies with every kind of sync trouble the alert rules know."""
    salon, garage = make_world(phone="+4930111111"), make_world(phone="+4930222222")
    retry, failed, ok = SyncOutcome.RETRY, SyncOutcome.FAILED, SyncOutcome.SUCCESS
    P, F, S = SyncStatus.PENDING, SyncStatus.FAILED, SyncStatus.SYNCED
    _appointment(salon, 24, status=F, requested_hours_ago=30, review=True, attempts=[(50, failed)])
    _appointment(salon, 25, status=F, requested_hours_ago=28)
    _appointment(salon, 26, status=F, requested_hours_ago=2, attempts=[(40, failed)])
    _appointment(salon, 27, status=P, requested_hours_ago=3, attempts=[(30, retry), (20, retry)])
    _appointment(salon, 28, status=P, requested_hours_ago=2, attempts=[(10, retry)])
    _appointment(salon, 29, status=P, requested_hours_ago=0.1)
    _appointment(salon, 30, status=S, requested_hours_ago=0.5, attempts=[(25, ok)])
    _appointment(salon, 31, status=S, requested_hours_ago=5, review=True,
                 attempts=[(5 * 60, ok)])  # synced, then flagged by the reconciliation
    _appointment(garage, 24, status=F, requested_hours_ago=40, review=True, attempts=[(15, failed), (5, retry)])
    _appointment(garage, 25, status=P, requested_hours_ago=4)
    _appointment(garage, 26, status=P, requested_hours_ago=0.2, attempts=[(3, ok)])
    db.session.commit()
    run = record_run(NOW - timedelta(hours=6), counts={"time_mismatch": 1}, flagged=1)
    drift.record_run(get_redis(), {"run_id": run.id, "finished_at": run.finished_at.isoformat(), "status": "ok",
                                   "drift_total": 1, "repaired": 0, "flagged": 1, "counts": run.counts,
                                   "flagged_ids": []})
    return {"salon": salon["company"].id, "garage": garage["company"].id, "run": run.id}


@pytest.fixture
def settings(app):
    """Thresholds low enough that this small world raises every alert."""
    return replace(current_settings(), public_base_url=BASE, stale_pending_warning=0, pending_backlog_critical=2,
                   failure_rate_min_attempts=2, failure_rate_critical_percent=50)


def failing_recently(company_id: int | None) -> set[int]:
    """What the failure-rate alert is about: appointments with a failed or retried
    attempt in the last hour (the alert carries no ids, it counts attempts)."""
    query = (select(SyncAttempt.appointment_id).join(Appointment)
             .where(SyncAttempt.started_at >= NOW - timedelta(hours=1),
                    SyncAttempt.outcome.in_([SyncOutcome.RETRY, SyncOutcome.FAILED])))
    if company_id is not None:
        query = query.where(Appointment.company_id == company_id)
    return set(db.session.scalars(query))


def alert_links(metrics, settings) -> list[tuple[str, int | None, dict, str]]:
    """(kind, company, alert, link) for every alert of every scope, built by the notifiers' own function."""
    scopes = [(None, metrics["overall"])] + [(int(cid), scope) for cid, scope in metrics["companies"].items()]
    return [(alert["kind"], company_id, alert, appointments_list_url(settings.public_base_url, alert["kind"], company_id))
            for company_id, scope in scopes for alert in scope["alerts"]]


def test_every_alert_link_opens_exactly_the_alerts_appointments(client, troubled, settings):
    metrics = collect_sync_metrics(db.session, now=NOW, settings=settings)
    links = alert_links(metrics, settings)
    kinds = {kind for kind, *_ in links}
    assert kinds >= set(ALERT_LIST_FILTERS) | {"reconcile_drift"}, kinds  # every kind was raised
    sign_in(client, make_user(Role.VIEWER))
    for kind, company_id, alert, link in links:
        assert link.startswith(f"{BASE}/dashboard/"), link
        parts = urlsplit(link)
        response = client.get(f"{parts.path}?{parts.query}" if parts.query else parts.path)
        assert response.status_code == 200, (link, squash(text_of(response))[:300])
        if kind not in ALERT_LIST_FILTERS:
            continue
        expected = set(alert["appointment_ids"]) if alert["appointment_ids"] else failing_recently(company_id)
        assert expected, (kind, company_id)
        assert shown_ids(text_of(response)) == expected, (kind, company_id, link)


def test_the_notified_events_carry_those_links(client, troubled, settings):
    metrics = collect_sync_metrics(db.session, now=NOW, settings=settings)
    events = open_alerts(metrics, settings, NOW)
    assert events
    sign_in(client, make_user(Role.ADMIN))
    for event in events:
        assert event.dashboard_url == appointments_list_url(BASE, event.kind, event.company_id)
    review = next(e for e in events if e.kind == "manual_review" and e.company_id == troubled["garage"])
    assert review.dashboard_url == (f"{BASE}/dashboard/appointments?review=1&sort=requested&direction=asc"
                                    f"&company_id={troubled['garage']}")


def test_the_drift_alert_opens_the_reconciliation_runs(client, troubled, settings):
    link = appointments_list_url(BASE, "reconcile_drift", None)
    assert link == f"{BASE}/dashboard/trends#reconciliation"
    sign_in(client, make_user(Role.VIEWER))
    html = text_of(client.get(urlsplit(link).path))
    assert 'id="reconciliation"' in html and f'data-run-id="{troubled["run"]}"' in html


def test_a_company_users_link_shows_their_company_only(client, troubled, settings):
    metrics = collect_sync_metrics(db.session, now=NOW, settings=settings)
    garage = troubled["garage"]
    (alert,) = [a for a in metrics["companies"][str(garage)]["alerts"] if a["kind"] == "pending_stale"]
    link = urlsplit(appointments_list_url(BASE, "pending_stale", garage))
    sign_in(client, make_user(Role.OPERATOR, company_id=garage))
    assert shown_ids(text_of(client.get(f"{link.path}?{link.query}"))) == set(alert["appointment_ids"])
    # The other company's link shows nothing of the other company.
    other = urlsplit(appointments_list_url(BASE, "pending_stale", troubled["salon"]))
    assert shown_ids(text_of(client.get(f"{other.path}?{other.query}"))) == set()


@pytest.mark.parametrize("query, name", [("manual_review=1", "manual_review"), ("sync_status=failed&ancient=1", "ancient"),
                                         ("review=1&company=3", "company")])
def test_a_link_with_a_parameter_the_list_does_not_know_is_refused_not_ignored(client, troubled, query, name):
    """An unknown parameter must not quietly show the whole list (as the old alert links did)."""
    sign_in(client, make_user(Role.VIEWER))
    response = client.get(f"{LIST}?{query}")
    assert response.status_code == 400
    text = squash(text_of(response)).replace("&#39;", "'")
    assert f"Unknown filter '{name}'" in text and "No appointments match these filters" in text
    assert 'data-appointment-id' not in text_of(response)


def test_the_overview_sends_the_drift_alert_to_the_reconciliation_runs(client, troubled):
    sign_in(client, make_user(Role.ADMIN))
    html = text_of(client.post("/dashboard/refresh", headers={"HX-Request": "true",
                                                             "X-CSRFToken": csrf_token(client, "/dashboard/queues")}))
    drift_alert = re.search(r'<li class="alert severity-warning">(?:(?!</li>).)*Reconciliation run(?:(?!</li>).)*</li>',
                            html, re.S).group(0)
    assert '<a href="/dashboard/trends#reconciliation">Open the reconciliation runs and their findings</a>' in drift_alert
