"""Fixtures for the monitoring tests: fake vendors wired in through the app config."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from monitoring.cli import init_app
from tests.monitoring.fakes import SmtpSink, pagerduty_server, slack_server

SLACK_PATH = "/services/T0SLOT/B0GUARD/sl4ckS3cretT0ken"
ROUTING_KEY = "R0ut1ngK3y-s3cret-0123456789abcd"  # 32 characters, like a real integration key
SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "smtp-p4ssw0rd-s3cret"
BASE_URL = "https://slotguard.example.com"


@pytest.fixture
def vendors(app):
    slack, pagerduty = slack_server(), pagerduty_server()
    smtp = SmtpSink(SMTP_USER, SMTP_PASSWORD)
    app.config.update({
        "PUBLIC_BASE_URL": BASE_URL,
        "SLACK_WEBHOOK_URL": slack.url(SLACK_PATH),
        "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PAGERDUTY_EVENTS_URL": pagerduty.url("/v2/enqueue"),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp.port,
        "SMTP_USERNAME": SMTP_USER,
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "SMTP_STARTTLS": False,
        "ALERT_EMAIL_FROM": "slotguard@example.com",
        "ALERT_EMAIL_TO": "support@example.com, oncall@example.com",
        "NOTIFY_TIMEOUT_SECONDS": 1,
    })
    # pytest-flask builds the app before any test fixture runs: read the config again
    # the way the app does at start.
    init_app(app)
    yield SimpleNamespace(slack=slack, pagerduty=pagerduty, smtp=smtp,
                          secrets=(SLACK_PATH, ROUTING_KEY, SMTP_PASSWORD))
    slack.stop()
    pagerduty.stop()
    smtp.stop()
