"""The daily digest: the last 24 hours of the sync pipeline in one email.

Counts per company, the top failure reasons, the open alerts and the appointments
waiting for a person. Sent once per UTC day (a Redis marker stops a second send when
the job runs twice) by the scheduler's daily job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.clock import ensure_utc, format_span, utcnow
from monitoring.alerting import open_alerts
from monitoring.breakdown import needing_review
from monitoring.metrics import collect_sync_metrics
from monitoring.notifiers import appointments_list_url, email_notifier, redact
from monitoring.settings import MonitoringSettings, resolve_settings

log = logging.getLogger("calcom")

REVIEW_LIST_LIMIT = 200
SENT_MARKER = "slotguard:monitoring:digest-sent:"


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def scope_lines(scope: dict[str, Any]) -> list[str]:
    """A scope's numbers in two readable lines (shared with the CLI)."""
    return [
        f"sync attempts 24 h: {scope['attempts_24h']} ({_percent(scope['success_rate_24h'])} successful; "
        f"per appointment {_percent(scope['appointment_success_rate_24h'])}; "
        f"retries {_percent(scope['retry_success_rate_24h'])} successful)",
        f"pending {scope['pending_total']} ({scope['pending_stale']} stale) · failed {scope['failed_total']} "
        f"({scope['failed_ancient']} ancient) · manual review {scope['manual_review']}",
    ]


def build_daily_digest(session: Session, metrics: dict[str, Any], settings: MonitoringSettings,
                       now: datetime) -> tuple[str, str]:
    """Subject and plain-text body of the digest."""
    overall = metrics["overall"]
    since = now - timedelta(hours=24)
    subject = (f"[Slotguard] Daily sync digest {now:%Y-%m-%d}: {overall['health']}, "
               f"{overall['manual_review']} to review, success {_percent(overall['success_rate_24h'])}")
    out = [f"Slotguard sync digest, {format_span(since, now, settings.tz_default)}", ""]
    out += [f"All companies: {overall['health'].upper()}"] + ["  " + line for line in scope_lines(overall)]
    api = overall.get("calcom_api")
    if api and api.get("calls"):
        out.append(f"  Cal.com API: {api['calls']} calls, error rate {_percent(api['error_rate'])}, "
                   f"{api['rate_limited']} rate-limited, p50 {api['p50_ms']} ms, p95 {api['p95_ms']} ms")
    out.append("")
    for company in metrics["companies"].values():
        out += [f"{company['name']}: {company['health'].upper()}"] + ["  " + line for line in scope_lines(company)]
    out += ["", "Top failure reasons, last 24 h:"]
    reasons = overall["top_failure_reasons"]["24h"]
    out += [f"  {r['code']}: {r['count']}" for r in reasons] or ["  none"]
    out += ["", "Open alerts:"]
    out += [f"  {a.severity.upper()} {a.headline}" for a in open_alerts(metrics, settings, now)] or ["  none"]
    review = needing_review(session, REVIEW_LIST_LIMIT)
    out += ["", f"Waiting for manual review ({overall['manual_review']}):"]
    out += ["  " + line.render() for line in review] or ["  none"]
    if overall["manual_review"] > len(review):
        out.append(f"  … and {overall['manual_review'] - len(review)} more")
    link = appointments_list_url(settings.public_base_url, "manual_review", None)
    if link:
        out.append(f"  Open the list: {link}")
    return subject, "\n".join(out) + "\n"


def send_daily_digest(session: Session, *, now: datetime | None = None,
                      settings: MonitoringSettings | None = None, redis=None, force: bool = False) -> str:
    """Send today's digest by email once; returns what happened, for the job's result."""
    settings = resolve_settings(settings)
    now = ensure_utc(now) if now else utcnow()
    notifier = email_notifier(settings)
    if notifier is None:
        log.info("daily digest skipped: email is not configured (SMTP_HOST, ALERT_EMAIL_TO)")
        return "skipped: email not configured"
    if redis is None:
        from core.redis_client import get_redis

        redis = get_redis()
    marker = f"{SENT_MARKER}{now:%Y-%m-%d}"
    if not force and _already_sent(redis, marker):
        return "skipped: already sent today"
    metrics = collect_sync_metrics(session, now=now, settings=settings, redis=redis)
    subject, body = build_daily_digest(session, metrics, settings, now)
    try:
        notifier.send_message(subject, body)
    except Exception as exc:
        reason = redact(str(exc) or type(exc).__name__, settings.secrets)
        log.error("daily digest: email failed: %s", reason)
        return f"failed: {reason}"
    try:
        redis.set(marker, now.isoformat(), ex=2 * 24 * 3600)
    except Exception:
        pass
    log.info("daily digest sent to %d recipient(s)", len(settings.alert_email_to))
    return "sent"


def _already_sent(redis, marker: str) -> bool:
    try:
        return bool(redis.exists(marker))
    except Exception:
        return False
