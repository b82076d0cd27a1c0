"""Notifications against local Slack, PagerDuty and SMTP servers: the real payload
shapes, de-duplication, reminders, escalation, "resolved", and failing vendors that
neither stop the others nor leak a secret."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import AlertNotification, SyncStatus
from core.redis_client import get_redis
from monitoring.alerting import LOCK_KEY, run_alert_check
from monitoring.metrics import refresh_sync_metrics
from tests.monitoring.conftest import BASE_URL, ROUTING_KEY, SMTP_PASSWORD, SMTP_USER
from tests.monitoring.data import appointment, company

COMMAND = ["appointments", "alert-sync-failures"]


@pytest.fixture
def review_case(app, clock):
    world = company("Salon A")
    row = appointment(world, sync=SyncStatus.FAILED, review=True)
    return world, row


def _run():
    return run_alert_check(db.session)


def test_first_run_sends_each_vendor_its_real_payload(vendors, runner, review_case):
    world, row = review_case
    cid = world["company"].id
    result = runner.invoke(args=COMMAND)
    assert result.exit_code == 1
    assert "Notifications: log 1 sent; slack 1 sent; email 1 sent; pagerduty 1 sent" in result.output
    list_url = f"{BASE_URL}/dashboard/appointments?review=1&sort=requested&direction=asc&company_id={cid}"

    [slack] = vendors.slack.requests
    assert slack.path == "/services/T0SLOT/B0GUARD/sl4ckS3cretT0ken"
    assert slack.headers["Content-Type"] == "application/json"
    message = slack.body
    assert message["text"] == "CRITICAL Salon A: 1 appointment needs manual review"
    header, section, context = message["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "Slotguard sync alerts: 1 open"}}
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"].splitlines() == [
        ":red_circle: *CRITICAL* · Salon A",
        "1 appointment needs manual review",
        "_Action:_ Open each one on the dashboard, make Cal.com match it (or retry the sync with "
        "`flask --app wsgi appointments retry-sync ID…`), then resolve the review with a note.",
        f"_Appointments:_ {row.id}",
    ]
    assert section["accessory"] == {"type": "button", "text": {"type": "plain_text", "text": "Open list"},
                                    "url": list_url}
    assert context == {"type": "context", "elements": [
        {"type": "mrkdwn", "text": "Slotguard · Mon 07.12.2026 09:00 CET"}]}

    [pd] = vendors.pagerduty.requests
    assert pd.path == "/v2/enqueue"
    assert pd.body == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": f"slotguard/manual_review/company:{cid}",
        "payload": {
            "summary": "Salon A: 1 appointment needs manual review",
            "source": "slotguard.example.com",
            "severity": "critical",
            "timestamp": "2026-12-07T08:00:00+00:00",
            "component": "calcom-sync",
            "group": "Salon A",
            "class": "manual_review",
            "custom_details": {
                "company": "Salon A", "company_id": cid,
                "what_to_do": section["text"]["text"].splitlines()[2].removeprefix("_Action:_ "),
                "appointment_ids": [row.id], "notification": "new",
            },
        },
        "client": "Slotguard",
        "client_url": list_url,
        "links": [{"href": list_url, "text": "Open in the Slotguard dashboard"}],
    }

    [email] = vendors.smtp.messages
    assert vendors.smtp.logins == [(SMTP_USER, SMTP_PASSWORD)]
    assert vendors.smtp.envelopes == [("slotguard@example.com", ["support@example.com", "oncall@example.com"])]
    assert email["Subject"] == "[Slotguard] CRITICAL: Salon A: 1 appointment needs manual review"
    body = email.get_content()
    assert "CRITICAL — Salon A: 1 appointment needs manual review" in body
    assert "  What to do: Open each one on the dashboard" in body
    assert f"  Appointments: {row.id}" in body and f"  Open: {list_url}" in body


def test_an_open_alert_is_not_resent_but_reminded_and_resolved(vendors, review_case, clock):
    world, row = review_case
    first = _run()
    assert len(first.delivered) == 4

    for _ in range(15):  # every 15 minutes for almost four hours: nothing new
        clock.advance(timedelta(minutes=15))
        assert _run().delivered == []
    assert (len(vendors.slack.requests), len(vendors.pagerduty.requests), len(vendors.smtp.messages)) == (1, 1, 1)

    clock.advance(timedelta(minutes=15))  # four hours since the first notice: a reminder
    reminder = _run()
    assert sorted(d.channel for d in reminder.delivered) == ["email", "log", "pagerduty", "slack"]
    assert vendors.slack.requests[-1].body["blocks"][1]["text"]["text"].startswith(
        ":red_circle: *CRITICAL (still open)* · Salon A")
    assert vendors.pagerduty.requests[-1].body["event_action"] == "trigger"
    assert vendors.pagerduty.requests[-1].body["payload"]["custom_details"]["notification"] == "still open"
    assert vendors.smtp.messages[-1]["Subject"].startswith("[Slotguard] CRITICAL (still open): Salon A")

    clock.advance(timedelta(minutes=15))
    row.requires_manual_review = False
    db.session.commit()
    resolved = _run()
    assert resolved.health == "healthy"
    assert sorted(d.channel for d in resolved.delivered) == ["email", "log", "pagerduty", "slack"]
    assert vendors.pagerduty.requests[-1].body == {
        "routing_key": ROUTING_KEY, "event_action": "resolve",
        "dedup_key": f"slotguard/manual_review/company:{world['company'].id}"}
    slack_blocks = vendors.slack.requests[-1].body["blocks"]
    assert slack_blocks[0]["text"]["text"] == "Slotguard sync alerts: 0 open, 1 resolved"
    assert slack_blocks[1]["text"]["text"] == (":white_check_mark: *RESOLVED* · Salon A\n"
                                               "cleared: 1 appointment needs manual review")
    assert "accessory" not in slack_blocks[1]
    assert vendors.smtp.messages[-1]["Subject"] == "[Slotguard] RESOLVED: Salon A: cleared: 1 appointment needs manual review"

    clock.advance(timedelta(minutes=15))
    assert _run().delivered == []  # resolved once, not again
    states = db.session.scalars(select(AlertNotification)).all()
    assert {(s.channel, s.is_open, s.sent_count) for s in states} == {
        ("log", False, 3), ("slack", False, 3), ("email", False, 3), ("pagerduty", False, 3)}

    row.requires_manual_review = True  # the same problem again: a new notice
    db.session.commit()
    assert len(_run().delivered) == 4


def test_a_warning_escalates_to_critical_on_each_channel_that_takes_it(vendors, app, clock):
    app.config["MONITORING_PENDING_BACKLOG_CRITICAL"] = 30
    from monitoring.cli import init_app

    init_app(app)
    world = company("Salon A")
    for _ in range(4):  # +5 pending every 5 minutes: the trend warns before 30
        for _ in range(5):
            appointment(world)
        refresh_sync_metrics()
        clock.advance(timedelta(minutes=5))
    refresh_sync_metrics()
    warning = _run()
    assert warning.health == "degraded"
    assert sorted(d.channel for d in warning.delivered) == ["log", "slack"]  # email/PagerDuty: critical only
    assert vendors.slack.requests[-1].body["blocks"][1]["text"]["text"].startswith(
        ":large_orange_circle: *WARNING* · Salon A\nThe pending backlog is rising")
    assert vendors.pagerduty.requests == [] and vendors.smtp.messages == []

    for _ in range(10):
        appointment(world)
    clock.advance(timedelta(minutes=5))
    critical = _run()
    assert critical.exit_code == 1
    assert {d.channel: d.event.action for d in critical.delivered} == {
        "log": "escalate", "slack": "escalate", "email": "trigger", "pagerduty": "trigger"}
    assert vendors.slack.requests[-1].body["blocks"][1]["text"]["text"].startswith(
        ":red_circle: *CRITICAL (escalated)* · Salon A\n30 appointments are waiting to sync")
    assert vendors.pagerduty.requests[-1].body["dedup_key"] == f"slotguard/pending_backlog/company:{world['company'].id}"


def test_failing_vendors_are_logged_and_do_not_stop_the_others(vendors, runner, review_case, caplog):
    vendors.slack.answer(500, "internal_error")
    vendors.pagerduty.hang()  # no answer within NOTIFY_TIMEOUT_SECONDS
    with caplog.at_level(logging.DEBUG):
        result = runner.invoke(args=COMMAND)
    assert result.exit_code == 1  # critical, whatever the notifiers did
    assert "Notifications: log 1 sent; email 1 sent; slack FAILED (Slack answered 500: internal_error); " \
           "pagerduty FAILED (PagerDuty did not answer in time (ReadTimeout))" in result.output
    assert len(vendors.smtp.messages) == 1
    assert {s.channel for s in db.session.scalars(select(AlertNotification))} == {"log", "email"}
    errors = [r.getMessage() for r in caplog.records if r.name == "calcom" and r.levelno == logging.ERROR]
    assert "alert run: slack notifier failed for 1 notification(s): Slack answered 500: internal_error" in errors
    for secret in vendors.secrets:
        assert secret not in caplog.text
        assert secret not in result.output
    assert '"POST /[redacted] HTTP/1.1" 500' in caplog.text  # urllib3's debug line, path removed

    # The next run retries what failed, and only that.
    result = runner.invoke(args=COMMAND)
    assert "Notifications: slack 1 sent; pagerduty 1 sent" in result.output
    assert len(vendors.smtp.messages) == 1


def test_unreachable_slack_leaks_no_webhook_url(app, clock, caplog, review_case):
    secret_path = "/services/T1/B2/unreachable-secret"
    app.config["SLACK_WEBHOOK_URL"] = "http://127.0.0.1:1" + secret_path
    from monitoring.cli import init_app

    init_app(app)
    with caplog.at_level(logging.DEBUG):
        run = _run()
    assert run.failures == [("slack", "Slack could not be reached (ConnectionError)")]
    assert "unreachable-secret" not in caplog.text


def test_smtp_failure_is_reported_without_the_password(vendors, review_case, caplog):
    from monitoring.cli import init_app
    from flask import current_app

    current_app.config["SMTP_PASSWORD"] = "wrong-" + SMTP_PASSWORD
    init_app(current_app)
    run = _run()
    [(channel, reason)] = [f for f in run.failures]
    assert channel == "email" and reason.startswith("SMTP server refused: 535")
    assert SMTP_PASSWORD not in caplog.text
    assert sorted(d.channel for d in run.delivered) == ["log", "pagerduty", "slack"]


def test_a_second_concurrent_run_sends_nothing(vendors, review_case):
    get_redis().set(LOCK_KEY, "held by another run", ex=60)
    run = _run()
    assert run.exit_code == 1 and run.delivered == [] and vendors.slack.requests == []
    assert run.skipped.startswith("another alert run is sending")


def test_company_run_resolves_only_its_own_alerts(vendors, app, clock):
    a, b = company("Salon A"), company("Werkstatt B")
    appointment(a, sync=SyncStatus.FAILED, review=True)
    b_row = appointment(b, sync=SyncStatus.FAILED, review=True)
    assert len(_run().delivered) == 8
    b_row.requires_manual_review = False
    db.session.commit()
    a_only = run_alert_check(db.session, company_id=a["company"].id)
    assert a_only.delivered == []  # B's alert cleared, but this run only looks at A
    everything = _run()
    assert {d.event.scope for d in everything.delivered} == {f"company:{b['company'].id}"}
    assert {d.event.action for d in everything.delivered} == {"resolve"}


def test_setup_wide_alert_is_sent_when_no_company_has_it(vendors, app, clock):
    app.config["MONITORING_PENDING_BACKLOG_CRITICAL"] = 4
    from monitoring.cli import init_app

    init_app(app)
    a, b = company("Salon A"), company("Werkstatt B")
    for world in (a, a, b, b):
        appointment(world)
    run = _run()  # 2 + 2 pending: critical only in sum
    assert run.health == "critical"
    assert {(d.event.scope, d.event.kind) for d in run.delivered} == {("overall", "pending_backlog")}
    assert vendors.pagerduty.requests[-1].body["dedup_key"] == "slotguard/pending_backlog/overall"
    assert vendors.pagerduty.requests[-1].body["payload"]["summary"] == (
        "All companies: 4 appointments are waiting to sync to Cal.com (critical from 4)")


def test_setup_wide_alert_is_kept_when_companies_have_it_only_less_severe(app):
    from monitoring.alerting import open_alerts
    from monitoring.settings import current_settings
    from tests.monitoring.data import NOW

    def alert(kind, severity):
        return {"kind": kind, "severity": severity, "message": f"{kind} {severity}", "action": "act",
                "appointment_ids": []}

    metrics = {
        "overall": {"alerts": [alert("pending_backlog", "critical"), alert("manual_review", "critical")]},
        "companies": {
            "1": {"name": "A", "alerts": [alert("pending_backlog", "warning"), alert("manual_review", "critical")]},
            "2": {"name": "B", "alerts": []},
        },
    }
    events = open_alerts(metrics, current_settings(), NOW)
    assert sorted((e.scope, e.kind, e.severity) for e in events) == [
        ("company:1", "manual_review", "critical"),
        ("company:1", "pending_backlog", "warning"),
        ("overall", "pending_backlog", "critical"),  # critical only in sum: paged as the whole set-up
    ]
    assert [e.kind for e in open_alerts(metrics, current_settings(), NOW, company_id=2)] == []
