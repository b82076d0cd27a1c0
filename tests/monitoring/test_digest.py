"""The daily digest email, received by a local SMTP server."""

from __future__ import annotations

from datetime import timedelta

from core.extensions import db
from core.models import SyncOutcome, SyncStatus
from monitoring.digest import send_daily_digest
from tests.monitoring.conftest import BASE_URL
from tests.monitoring.data import NOW, appointment, attempt, company
from workers import monitoring_jobs


def test_daily_digest_has_counts_reasons_and_the_review_list_once_a_day(vendors, app, clock):
    a, b = company("Salon A"), company("Werkstatt B")
    first = appointment(a, sync=SyncStatus.FAILED, review=True, requested=NOW - timedelta(hours=3),
                        error_code="http_422", error_message="unknown event type")
    second = appointment(a, sync=SyncStatus.FAILED, review=True, requested=NOW - timedelta(hours=2))
    attempt(first, at=NOW - timedelta(hours=3), outcome=SyncOutcome.FAILED, code="http_422")
    attempt(second, at=NOW - timedelta(hours=2), outcome=SyncOutcome.RETRY, code="timeout")
    attempt(second, at=NOW - timedelta(hours=2) + timedelta(minutes=1), outcome=SyncOutcome.FAILED, code="timeout",
            number=2)
    attempt(appointment(b, sync=SyncStatus.SYNCED), at=NOW - timedelta(hours=1), outcome=SyncOutcome.SUCCESS)

    assert send_daily_digest(db.session) == "sent"
    [message] = vendors.smtp.messages
    assert message["Subject"] == "[Slotguard] Daily sync digest 2026-12-07: critical, 2 to review, success 25.0%"
    assert message["To"] == "support@example.com, oncall@example.com"
    body = message.get_content().replace("\r\n", "\n")
    assert "Slotguard sync digest, Sun 06.12.2026 09:00 – Mon 07.12.2026 09:00 CET" in body
    assert "All companies: CRITICAL\n  sync attempts 24 h: 4 (25.0% successful; per appointment 33.3%; " \
           "retries 0.0% successful)\n  pending 0 (0 stale) · failed 2 (0 ancient) · manual review 2" in body
    assert "Werkstatt B: HEALTHY" in body
    assert "Top failure reasons, last 24 h:\n  timeout: 2\n  http_422: 1" in body
    assert "  CRITICAL Salon A: 2 appointments need manual review" in body
    review_section = body.split("Waiting for manual review (2):\n", 1)[1]
    lines = review_section.splitlines()
    assert lines[0].startswith(f"  #{first.id} · Salon A · Erika Mustermann · ")
    assert "error http_422: unknown event type · review: Cal.com refused the booking" in lines[0]
    assert lines[1].startswith(f"  #{second.id} · Salon A")
    assert lines[2] == f"  Open the list: {BASE_URL}/dashboard/appointments?review=1&sort=requested&direction=asc"

    assert send_daily_digest(db.session) == "skipped: already sent today"
    assert monitoring_jobs.send_daily_digest() == "skipped: already sent today"  # the scheduled job
    assert len(vendors.smtp.messages) == 1

    clock.advance(timedelta(days=1))
    assert monitoring_jobs.send_daily_digest() == "sent"
    assert len(vendors.smtp.messages) == 2


def test_digest_is_skipped_without_email_settings(app, clock):
    company()
    assert send_daily_digest(db.session) == "skipped: email not configured"
