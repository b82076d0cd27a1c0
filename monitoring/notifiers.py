"""Where alerts go: the log (always), Slack, email and PagerDuty (each when configured).

A notifier takes `AlertEvent`s — an alert that opened, escalated, is being recalled
after the reminder interval, or resolved — and delivers them in the vendor's own wire
format. It raises `NotifierError` when the vendor did not take them (timeout,
connection refused, 4xx/5xx); `monitoring.alerting` logs that, carries on with the
other notifiers and tries again on the next run. No notifier ever logs or raises a
secret (webhook URL, routing key, SMTP password).

- Slack: incoming webhook, one message per run with Block Kit blocks and a button to
  the dashboard's appointment list (`PUBLIC_BASE_URL`). Slack answers 200 `ok`.
- Email: one plain-text message per run over SMTP (STARTTLS or implicit TLS), and the
  daily digest (`monitoring.digest`).
- PagerDuty: Events API v2, one event per alert: `trigger` with a stable `dedup_key`
  per alert kind and scope (so PagerDuty folds repeats into one incident), `resolve`
  with the same key. PagerDuty answers 202.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from urllib.parse import urlencode, urlsplit

import requests

from core.clock import format_local
from monitoring.settings import MonitoringSettings, severity_rank

log = logging.getLogger("calcom")

# Notification actions.
TRIGGER, ESCALATE, REMIND, RESOLVE = "trigger", "escalate", "remind", "resolve"
ACTION_WORDS = {TRIGGER: "new", ESCALATE: "escalated", REMIND: "still open", RESOLVE: "resolved"}

# The dashboard's appointment list, filtered to what an alert is about — in the list's
# own query parameters (dashboard/list_filters.py; it refuses names it does not know),
# oldest request first like the alert's ids. tests/test_dashboard_alert_links.py opens
# each link and checks it lists exactly the alert's appointments.
OLDEST_FIRST = {"sort": "requested", "direction": "asc"}
ALERT_LIST_FILTERS = {
    "manual_review": {"review": "1", **OLDEST_FIRST},
    "failed_ancient": {"sync_status": "failed", "age": "ancient", **OLDEST_FIRST},
    "pending_stale": {"sync_status": "pending", "age": "stale", **OLDEST_FIRST},
    "pending_backlog": {"sync_status": "pending", **OLDEST_FIRST},
    # The rate counts failed and retried attempts (most of them on still-pending
    # appointments): the list of appointments with such an attempt in the last 24 h.
    "failure_rate": {"had_failures": "1", **OLDEST_FIRST},
}
# Alerts about something other than a set of appointments open a dashboard page.
ALERT_PAGES = {
    "reconcile_drift": "/dashboard/trends#reconciliation",  # the runs and their findings
}


class NotifierError(Exception):
    """A vendor did not accept a notification; the message holds no secret."""


@dataclass(frozen=True)
class AlertEvent:
    action: str  # trigger | escalate | remind | resolve
    scope: str  # "overall" | "company:<id>"
    company_id: int | None
    company_name: str
    kind: str
    severity: str
    message: str
    action_text: str
    appointment_ids: tuple[int, ...]
    dashboard_url: str | None
    at: datetime

    @property
    def dedup_key(self) -> str:
        """Stable per alert kind and scope: PagerDuty's incident key, our state key."""
        return f"slotguard/{self.kind}/{self.scope}"

    @property
    def headline(self) -> str:
        return f"{self.company_name}: {self.message}"

    @property
    def label(self) -> str:
        """`CRITICAL`, `WARNING (escalated)`, `RESOLVED` … for subjects and log lines."""
        if self.action == RESOLVE:
            return "RESOLVED"
        word = ACTION_WORDS[self.action]
        return self.severity.upper() + ("" if self.action == TRIGGER else f" ({word})")


def appointments_list_url(base_url: str | None, kind: str, company_id: int | None) -> str | None:
    """The dashboard page for an alert: the filtered appointment list, or the overview."""
    if not base_url:
        return None
    if kind not in ALERT_LIST_FILTERS:
        return base_url + ALERT_PAGES.get(kind, "/dashboard/")
    params = dict(ALERT_LIST_FILTERS[kind])
    if company_id is not None:
        params["company_id"] = str(company_id)
    return f"{base_url}/dashboard/appointments?{urlencode(params)}"


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Remove secrets (and the path of a secret URL) from a message before it is logged."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "[redacted]")
        path = urlsplit(secret).path if secret.startswith(("http://", "https://")) else ""
        if len(path) > 1:
            text = text.replace(path, "/[redacted]")
    return text


def _post_json(vendor: str, url: str, body: dict, *, timeout: float, expect: int) -> None:
    """POST `body` as JSON; raise `NotifierError` unless the vendor answers `expect`."""
    try:
        response = requests.post(url, json=body, timeout=timeout)
    # `str(exc)` of a requests error quotes the URL, and a Slack webhook URL is a
    # secret: say what kind of failure it was, nothing more.
    except requests.Timeout as exc:
        raise NotifierError(f"{vendor} did not answer in time ({type(exc).__name__})") from None
    except requests.ConnectionError as exc:
        raise NotifierError(f"{vendor} could not be reached ({type(exc).__name__})") from None
    except requests.RequestException as exc:
        raise NotifierError(f"{vendor} request failed ({type(exc).__name__})") from None
    if response.status_code != expect:
        raise NotifierError(f"{vendor} answered {response.status_code}: {response.text[:200]}")


class Notifier:
    name = "notifier"
    # How many events go into one delivery (one Slack message, one email).
    batch_size = 100

    def __init__(self, min_severity: str = "warning") -> None:
        self.min_severity = min_severity

    def accepts(self, severity: str) -> bool:
        return severity_rank(severity) >= severity_rank(self.min_severity)

    def send(self, events: list[AlertEvent]) -> None:
        raise NotImplementedError


class LogNotifier(Notifier):
    """Always on: every notification is a line in the `calcom` log."""

    name = "log"

    def send(self, events: list[AlertEvent]) -> None:
        for event in events:
            level = logging.INFO if event.action == RESOLVE else (
                logging.ERROR if event.severity == "critical" else logging.WARNING)
            log.log(level, "alert %s [%s] %s — action: %s%s", event.label, event.dedup_key, event.headline,
                    event.action_text, _ids_suffix(event.appointment_ids))


def _ids_suffix(ids: tuple[int, ...]) -> str:
    return f" (appointments {', '.join(map(str, ids))})" if ids else ""


class SlackNotifier(Notifier):
    name = "slack"
    # 2 blocks per event + header + context stays far below Slack's 50 blocks.
    batch_size = 20

    EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", RESOLVE: ":white_check_mark:"}

    def __init__(self, webhook_url: str, *, timeout: float, min_severity: str = "warning",
                 tz_name: str = "Europe/Berlin") -> None:
        super().__init__(min_severity)
        self._webhook_url = webhook_url
        self.timeout = timeout
        self.tz_name = tz_name

    def payload(self, events: list[AlertEvent]) -> dict:
        open_count = sum(1 for e in events if e.action != RESOLVE)
        resolved = len(events) - open_count
        title = f"Slotguard sync alerts: {open_count} open" + (f", {resolved} resolved" if resolved else "")
        blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}}]
        for event in events:
            emoji = self.EMOJI[RESOLVE if event.action == RESOLVE else event.severity]
            lines = [f"{emoji} *{event.label}* · {_mrkdwn_escape(event.company_name)}",
                     _mrkdwn_escape(event.message)]
            if event.action != RESOLVE:
                lines.append(f"_Action:_ {_mrkdwn_escape(event.action_text)}")
                if event.appointment_ids:
                    lines.append("_Appointments:_ " + ", ".join(map(str, event.appointment_ids[:20]))
                                 + (" …" if len(event.appointment_ids) > 20 else ""))
            section: dict = {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}}
            if event.dashboard_url and event.action != RESOLVE:
                section["accessory"] = {"type": "button", "text": {"type": "plain_text", "text": "Open list"},
                                        "url": event.dashboard_url}
            blocks.append(section)
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"Slotguard · {format_local(events[0].at, self.tz_name)}"}]})
        # `text` is the notification fallback when blocks cannot be shown.
        fallback = "; ".join(f"{e.label} {e.headline}" for e in events)
        return {"text": fallback[:3000], "blocks": blocks}

    def send(self, events: list[AlertEvent]) -> None:
        _post_json("Slack", self._webhook_url, self.payload(events), timeout=self.timeout, expect=200)


def _mrkdwn_escape(text: str) -> str:
    """Slack asks for &, < and > to be escaped in mrkdwn text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class EmailNotifier(Notifier):
    name = "email"

    def __init__(self, settings: MonitoringSettings) -> None:
        super().__init__(settings.alert_email_min_severity)
        self.settings = settings

    def send(self, events: list[AlertEvent]) -> None:
        worst = max((e for e in events if e.action != RESOLVE), key=lambda e: severity_rank(e.severity), default=None)
        lead = worst or events[0]
        extra = f" (+{len(events) - 1} more)" if len(events) > 1 else ""
        subject = f"[Slotguard] {lead.label}: {lead.headline}{extra}"
        body = ["Slotguard sync alerts", ""]
        for event in events:
            body.append(f"{event.label} — {event.headline}")
            if event.action != RESOLVE:
                body.append(f"  What to do: {event.action_text}")
                if event.appointment_ids:
                    body.append("  Appointments: " + ", ".join(map(str, event.appointment_ids)))
                if event.dashboard_url:
                    body.append(f"  Open: {event.dashboard_url}")
            body.append("")
        body.append(f"Generated {format_local(lead.at, self.settings.tz_default)} by Slotguard.")
        self.send_message(subject, "\n".join(body))

    def send_message(self, subject: str, text: str) -> None:
        s = self.settings
        # RFC 5322 allows 998 characters a line; Python's default of 78 folds a long
        # subject right after "Subject:", which some clients show with a leading space.
        message = EmailMessage(policy=policy.default.clone(max_line_length=998))
        message["Subject"] = subject[:200]
        message["From"] = s.alert_email_from
        message["To"] = ", ".join(s.alert_email_to)
        message.set_content(text)
        try:
            client_class = smtplib.SMTP_SSL if s.smtp_ssl else smtplib.SMTP
            with client_class(s.smtp_host, s.smtp_port, timeout=s.notify_timeout_seconds) as client:
                if s.smtp_starttls:
                    client.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    client.login(s.smtp_username, s.smtp_password or "")
                client.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raise NotifierError(f"SMTP server refused: {exc.smtp_code} {_decode(exc.smtp_error)[:200]}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifierError(f"SMTP delivery failed ({type(exc).__name__})") from None


def _decode(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class PagerDutyNotifier(Notifier):
    name = "pagerduty"
    batch_size = 1  # one Events API call per alert

    def __init__(self, routing_key: str, *, events_url: str, timeout: float, source: str,
                 min_severity: str = "critical") -> None:
        super().__init__(min_severity)
        self._routing_key = routing_key
        self.events_url = events_url
        self.timeout = timeout
        self.source = source

    def payload(self, event: AlertEvent) -> dict:
        if event.action == RESOLVE:
            return {"routing_key": self._routing_key, "event_action": "resolve", "dedup_key": event.dedup_key}
        body = {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": event.dedup_key,
            "payload": {
                "summary": event.headline[:1024],
                "source": self.source,
                "severity": event.severity,
                "timestamp": event.at.isoformat(),
                "component": "calcom-sync",
                "group": event.company_name,
                "class": event.kind,
                "custom_details": {
                    "company": event.company_name,
                    "company_id": event.company_id,
                    "what_to_do": event.action_text,
                    "appointment_ids": list(event.appointment_ids),
                    "notification": ACTION_WORDS[event.action],
                },
            },
            "client": "Slotguard",
        }
        if event.dashboard_url:
            body["client_url"] = event.dashboard_url
            body["links"] = [{"href": event.dashboard_url, "text": "Open in the Slotguard dashboard"}]
        return body

    def send(self, events: list[AlertEvent]) -> None:
        for event in events:
            _post_json("PagerDuty", self.events_url, self.payload(event), timeout=self.timeout, expect=202)


def build_notifiers(settings: MonitoringSettings) -> list[Notifier]:
    """The log notifier plus every notifier whose environment variables are set."""
    notifiers: list[Notifier] = [LogNotifier("warning")]
    if settings.slack_webhook_url:
        notifiers.append(SlackNotifier(settings.slack_webhook_url, timeout=settings.notify_timeout_seconds,
                                       min_severity=settings.slack_min_severity, tz_name=settings.tz_default))
    if settings.smtp_host and settings.alert_email_to:
        notifiers.append(EmailNotifier(settings))
    if settings.pagerduty_routing_key:
        source = (urlsplit(settings.public_base_url).hostname if settings.public_base_url else None) \
            or socket.gethostname()
        notifiers.append(PagerDutyNotifier(settings.pagerduty_routing_key, events_url=settings.pagerduty_events_url,
                                           timeout=settings.notify_timeout_seconds, source=source,
                                           min_severity=settings.pagerduty_min_severity))
    return notifiers


def email_notifier(settings: MonitoringSettings) -> EmailNotifier | None:
    return EmailNotifier(settings) if settings.smtp_host and settings.alert_email_to else None
