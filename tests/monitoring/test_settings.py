"""Monitoring settings are checked when the app starts: a wrong value is a clear error."""

from __future__ import annotations

import pytest

from core import create_app
from monitoring.settings import MonitoringSettings


@pytest.mark.parametrize("overrides, message", [
    ({"PAGERDUTY_ROUTING_KEY": "too-short"}, "PAGERDUTY_ROUTING_KEY must be the 32-character integration key"),
    ({"SMTP_HOST": "smtp.example.com"}, "SMTP_HOST is set but ALERT_EMAIL_TO is empty"),
    ({"ALERT_EMAIL_TO": "support@example.com"}, "ALERT_EMAIL_TO is set but SMTP_HOST is empty"),
    ({"SMTP_HOST": "smtp.example.com", "ALERT_EMAIL_TO": "support"}, "not an email address: 'support'"),
    ({"SLACK_MIN_SEVERITY": "info"}, "SLACK_MIN_SEVERITY must be one of warning, critical, got 'info'"),
    ({"MONITORING_FAILURE_RATE_CRITICAL_PERCENT": 0}, "FAILURE_RATE_CRITICAL_PERCENT must be between 1 and 100"),
    ({"MONITORING_TREND_MIN_SAMPLES": 1}, "MONITORING_TREND_MIN_SAMPLES must be at least 2"),
    ({"MONITORING_CACHE_TTL_SECONDS": 0}, "CACHE_TTL_SECONDS must be at least 1"),
])
def test_bad_settings_stop_the_app_with_a_message(base_config, overrides, message):
    with pytest.raises(ValueError) as error:
        create_app({**base_config, **overrides})
    assert message in str(error.value)


def test_a_bad_webhook_url_is_refused_without_echoing_it(base_config):
    with pytest.raises(ValueError) as error:
        create_app({**base_config, "SLACK_WEBHOOK_URL": "hooks.slack.com/services/T1/B2/s3cr3t"})
    assert str(error.value) == "SLACK_WEBHOOK_URL must be an http(s) URL"


def test_settings_come_from_the_config_names():
    settings = MonitoringSettings.from_config({
        "MONITORING_STALE_PENDING_WARNING": 3, "MONITORING_ALERT_ID_LIMIT": 7, "SLACK_WEBHOOK_URL": "https://h/x",
        "ALERT_EMAIL_TO": " a@example.com, b@example.com ,", "SMTP_HOST": "smtp", "PUBLIC_BASE_URL": "https://s.example/",
    })
    assert (settings.stale_pending_warning, settings.alert_id_limit) == (3, 7)
    assert settings.alert_email_to == ("a@example.com", "b@example.com")
    assert settings.public_base_url == "https://s.example"
    assert settings.secrets == ("https://h/x",)
