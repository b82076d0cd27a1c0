"""Monitoring settings: the thresholds and notifier switches, read once and checked.

`core.config` reads the environment into `app.config`; this turns the monitoring
part into one typed, validated value, so a wrong threshold or a half-configured
notifier stops the app at start with a message instead of surfacing at 3 a.m.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping
from urllib.parse import urlsplit

from flask import current_app

SEVERITIES = ("warning", "critical")


def severity_rank(severity: str) -> int:
    """Order severities so that "more severe" compares greater."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class MonitoringSettings:
    stale_pending_minutes: int = 60
    ancient_failed_hours: int = 24
    stale_pending_warning: int = 10  # warning when MORE than this many are stale
    manual_review_critical: int = 1  # critical when at least this many need review
    failed_ancient_critical: int = 1
    pending_backlog_critical: int = 100
    failure_rate_critical_percent: int = 50
    failure_rate_min_attempts: int = 10
    calcom_error_rate_warning_percent: int = 20
    calcom_min_calls: int = 10
    calcom_window_seconds: int = 3600
    trend_window_minutes: int = 60
    trend_horizon_minutes: int = 60
    trend_min_samples: int = 4
    alert_id_limit: int = 50
    cache_ttl_seconds: int = 360
    alert_remind_minutes: int = 240
    # ops: the latest reconciliation run with more drift than this raises `reconcile_drift`.
    reconcile_drift_alert_threshold: int = 0

    public_base_url: str | None = None
    # The business time zone (TZ_DEFAULT): times in notifications and the digest are said in it.
    tz_default: str = "Europe/Berlin"
    notify_timeout_seconds: int = 10
    slack_webhook_url: str | None = None
    slack_min_severity: str = "warning"
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    alert_email_from: str = "slotguard@localhost"
    alert_email_to: tuple[str, ...] = ()
    alert_email_min_severity: str = "critical"
    pagerduty_routing_key: str | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    pagerduty_min_severity: str = "critical"

    def __post_init__(self) -> None:
        positive = ("stale_pending_minutes", "ancient_failed_hours", "calcom_window_seconds", "trend_window_minutes",
                    "trend_horizon_minutes", "alert_id_limit", "cache_ttl_seconds", "alert_remind_minutes",
                    "notify_timeout_seconds", "manual_review_critical", "failed_ancient_critical",
                    "pending_backlog_critical", "failure_rate_min_attempts", "calcom_min_calls")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name.upper()} must be at least 1, got {getattr(self, name)}")
        if self.reconcile_drift_alert_threshold < 0:
            raise ValueError("RECONCILE_DRIFT_ALERT_THRESHOLD must not be negative")
        if self.stale_pending_warning < 0:
            raise ValueError("MONITORING_STALE_PENDING_WARNING must not be negative")
        if self.trend_min_samples < 2:
            raise ValueError("MONITORING_TREND_MIN_SAMPLES must be at least 2 (a slope needs two points)")
        for name in ("failure_rate_critical_percent", "calcom_error_rate_warning_percent"):
            if not 1 <= getattr(self, name) <= 100:
                raise ValueError(f"MONITORING_{name.upper()} must be between 1 and 100")
        for name in ("slack_min_severity", "alert_email_min_severity", "pagerduty_min_severity"):
            if getattr(self, name) not in SEVERITIES:
                raise ValueError(f"{name.upper()} must be one of {', '.join(SEVERITIES)}, got {getattr(self, name)!r}")
        for name in ("public_base_url", "slack_webhook_url", "pagerduty_events_url"):
            value = getattr(self, name)
            if value is not None and not _is_http_url(value):
                # The value itself may be a secret (a Slack webhook URL): never echo it.
                raise ValueError(f"{name.upper()} must be an http(s) URL")
        if self.pagerduty_routing_key is not None and len(self.pagerduty_routing_key) != 32:
            raise ValueError("PAGERDUTY_ROUTING_KEY must be the 32-character integration key of an Events API v2 integration")
        if self.smtp_host and not self.alert_email_to:
            raise ValueError("SMTP_HOST is set but ALERT_EMAIL_TO is empty: say who receives the alert emails")
        if self.alert_email_to and not self.smtp_host:
            raise ValueError("ALERT_EMAIL_TO is set but SMTP_HOST is empty: say which SMTP server sends them")
        for address in (*self.alert_email_to, self.alert_email_from):
            if "@" not in address or any(c.isspace() for c in address):
                raise ValueError(f"not an email address: {address!r}")
        if self.smtp_ssl and self.smtp_starttls:
            raise ValueError("choose one of SMTP_SSL (implicit TLS, port 465) and SMTP_STARTTLS (port 587)")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line."""
        return tuple(s for s in (self.slack_webhook_url, self.smtp_password, self.pagerduty_routing_key) if s)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MonitoringSettings:
        """Build from an app config (the upper-case names of `core.config`)."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            # Thresholds are MONITORING_<NAME>; notifier settings keep their vendor
            # prefix (SLACK_WEBHOOK_URL, SMTP_HOST, ...).
            for key in ("MONITORING_" + field.name.upper(), field.name.upper()):
                if config.get(key) is not None:
                    values[field.name] = config[key]
                    break
        if isinstance(values.get("alert_email_to"), str):
            values["alert_email_to"] = tuple(a.strip() for a in values["alert_email_to"].split(",") if a.strip())
        if values.get("public_base_url"):
            values["public_base_url"] = values["public_base_url"].rstrip("/")
        return cls(**values)

    def with_overrides(self, **changes: Any) -> MonitoringSettings:
        return replace(self, **changes)


def current_settings() -> MonitoringSettings:
    """The app's settings, built and checked by `monitoring.cli.init_app`."""
    settings = current_app.extensions.get("monitoring_settings")
    if settings is None:
        settings = MonitoringSettings.from_config(current_app.config)
        current_app.extensions["monitoring_settings"] = settings
    return settings


def resolve_settings(settings: MonitoringSettings | Mapping[str, Any] | None) -> MonitoringSettings:
    """Accept settings, a mapping of field names to override, or None (the app's)."""
    if isinstance(settings, MonitoringSettings):
        return settings
    base = current_settings()
    if settings is None:
        return base
    return base.with_overrides(**dict(settings))


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)
