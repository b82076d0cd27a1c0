"""Trend charts' JSON endpoints and page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.extensions import db
from core.models import Role, SyncAction, SyncAttempt, SyncOutcome
from tests.dashboard_support import make_user, sign_in, text_of
from tests.factories import book, make_world

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)  # the `clock` fixture's time


def attempt(appointment, at, outcome, number=1, duration=200, code=None, status=None):
    db.session.add(SyncAttempt(appointment_id=appointment.id, action=SyncAction.CREATE, attempt_number=number,
                               started_at=at, finished_at=at + timedelta(milliseconds=duration), outcome=outcome,
                               duration_ms=duration, error_code=code, http_status=status))


@pytest.fixture
def two_companies(clock):
    """Two companies with known attempts: yesterday and today (UTC days)."""
    salon, garage = make_world(phone="+4930111111"), make_world(phone="+4930222222")
    a = book(salon, NOW + timedelta(days=1))
    b = book(garage, NOW + timedelta(days=1))
    yesterday = NOW - timedelta(days=1, hours=2)  # 06:00 UTC on 6 Dec, outside the last 24 h
    # Salon yesterday: a 503, then a retry that succeeded, then a retry that failed.
    attempt(a, yesterday, SyncOutcome.RETRY, 1, 100, "http_503", 503)
    attempt(a, yesterday + timedelta(minutes=1), SyncOutcome.SUCCESS, 2, 300)
    attempt(a, yesterday + timedelta(minutes=2), SyncOutcome.FAILED, 3, 500, "timeout")
    # Garage today: one success; a skipped stale job does not count as a call.
    attempt(b, NOW - timedelta(hours=1), SyncOutcome.SUCCESS, 1, 250)
    attempt(b, NOW - timedelta(minutes=30), SyncOutcome.SKIPPED, 2, 5)
    db.session.commit()
    return salon["company"], garage["company"]


def test_retry_success_per_day(client, two_companies):
    sign_in(client, make_user(Role.VIEWER))
    data = client.get("/dashboard/trends/retry-success.json").get_json()
    assert len(data["labels"]) == 30 and data["labels"][-1] == "2026-12-07"
    assert data["labels"][-2] == "2026-12-06"
    assert data["retries"][-2] == 2 and data["rate_percent"][-2] == 50.0
    assert data["retries"][-1] == 0 and data["rate_percent"][-1] is None


def test_calcom_calls_per_day(client, two_companies):
    sign_in(client, make_user(Role.ADMIN))
    data = client.get("/dashboard/trends/calcom.json").get_json()
    assert data["calls"][-2:] == [3, 1]
    assert data["avg_ms"][-2:] == [300, 250]
    assert data["max_ms"][-2:] == [500, 250]
    assert data["error_percent"][-2:] == [66.7, 0.0]
    assert data["calls"][0] == 0 and data["avg_ms"][0] is None
    assert "live" in data  # the Cal.com client's rolling window, for unscoped users


def test_trends_are_scoped_to_the_users_company(client, two_companies):
    salon, garage = two_companies
    sign_in(client, make_user(Role.VIEWER, company_id=garage.id))
    calls = client.get("/dashboard/trends/calcom.json").get_json()
    assert calls["calls"][-2:] == [0, 1]
    assert calls["live"] is None  # the API window counts every company's calls
    assert client.get("/dashboard/trends/retry-success.json").get_json()["retries"][-2] == 0


def test_daily_success_and_failure_reasons_come_from_the_metrics(client, two_companies):
    salon, garage = two_companies
    sign_in(client, make_user(Role.VIEWER, company_id=salon.id))
    daily = client.get("/dashboard/trends/daily-success.json").get_json()
    by_day = dict(zip(daily["labels"], zip(daily["rate_percent"], daily["attempts"])))
    assert by_day["2026-12-06"] == (pytest.approx(33.3, abs=0.1), 3)
    reasons = client.get("/dashboard/trends/failure-reasons.json?window=7d").get_json()
    assert reasons == {"window": "7d", "labels": ["http_503", "timeout"], "counts": [1, 1]}
    assert client.get("/dashboard/trends/failure-reasons.json?window=24h").get_json()["labels"] == []


def test_failure_reasons_window_is_validated(client, two_companies):
    sign_in(client, make_user(Role.VIEWER))
    response = client.get("/dashboard/trends/failure-reasons.json?window=1y")
    assert response.status_code == 400
    assert response.get_json() == {"error": "window must be one of: 24h, 7d"}


def test_trends_page_has_four_labelled_charts_fed_by_the_endpoints(client, two_companies):
    sign_in(client, make_user(Role.VIEWER))
    html = text_of(client.get("/dashboard/trends"))
    for src in ("/dashboard/trends/daily-success.json", "/dashboard/trends/failure-reasons.json?window=7d",
                "/dashboard/trends/retry-success.json", "/dashboard/trends/calcom.json"):
        assert f'data-src="{src}"' in html
    assert html.count('role="img"') == 4 and html.count("Show the numbers as a table") == 4
    assert "/static/vendor/chart-4.6.1.umd.min.js" in html and "/static/js/trends.js" in html
