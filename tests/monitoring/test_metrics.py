"""Sync metrics on crafted data: exact counts, exact 1 h / 24 h boundaries, health
states, capped alert ids, the Redis cache, Cal.com API health, and a bounded number
of queries whatever the data size."""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import redis as redis_lib

from core.extensions import db
from core.models import AppointmentStatus, SyncAction, SyncOutcome, SyncStatus
from monitoring.metrics import CACHE_KEY, collect_sync_metrics, get_sync_metrics
from tests.monitoring.data import NOW, appointment, attempt, company
from tests.support.sql_trace import recorded_statements

H = timedelta(hours=1)
S = timedelta(seconds=1)

SCOPE_KEYS = {
    "success_rate_24h", "attempts_24h", "successful_attempts_24h", "appointment_success_rate_24h",
    "retry_success_rate_24h", "pending_total", "pending_stale", "failed_total", "failed_ancient",
    "manual_review", "health", "alerts", "top_failure_reasons", "daily_success_rate_30d",
}


def _collect(**settings):
    return collect_sync_metrics(db.session, settings=settings or None)


def test_counts_by_status_and_age_with_exact_boundaries(app, clock):
    a, b = company("Salon A"), company("Werkstatt B")
    appointment(a, requested=NOW - H)  # exactly 1 h: pending, not yet stale
    p_stale = appointment(a, requested=NOW - H - S)
    appointment(a, requested=NOW - timedelta(minutes=10))
    # A cancelled appointment whose Cal.com cancel is still pending counts as pending.
    p_cancel = appointment(a, requested=NOW - 2 * H, status=AppointmentStatus.CANCELLED, action=SyncAction.CANCEL)
    appointment(a, sync=SyncStatus.FAILED, requested=NOW - 24 * H)  # exactly 24 h: not ancient
    f_ancient = appointment(a, sync=SyncStatus.FAILED, requested=NOW - 24 * H - S)
    f_review = appointment(a, sync=SyncStatus.FAILED, requested=NOW - 30 * H, review=True)
    s_review = appointment(a, sync=SyncStatus.SYNCED, review=True)  # e.g. a conflict found by the webhook
    appointment(a, sync=SyncStatus.SYNCED)
    appointment(b, requested=NOW - 3 * H)
    b_ancient = appointment(b, sync=SyncStatus.FAILED, requested=NOW - 25 * H)

    metrics = _collect()

    ca, cb = metrics["companies"][str(a["company"].id)], metrics["companies"][str(b["company"].id)]
    counts = ("pending_total", "pending_stale", "failed_total", "failed_ancient", "manual_review")
    assert [ca[k] for k in counts] == [4, 2, 3, 2, 2]
    assert [cb[k] for k in counts] == [1, 1, 1, 1, 0]
    assert [metrics["overall"][k] for k in counts] == [5, 3, 4, 3, 2]
    assert ca["name"] == "Salon A" and cb["name"] == "Werkstatt B"
    assert (ca["health"], cb["health"], metrics["overall"]["health"]) == ("critical", "critical", "critical")

    alerts = {x["kind"]: x for x in ca["alerts"]}
    assert set(alerts) == {"manual_review", "failed_ancient"}
    assert alerts["manual_review"]["appointment_ids"] == [f_review.id, s_review.id]  # oldest first
    assert alerts["failed_ancient"]["appointment_ids"] == [f_review.id, f_ancient.id]
    assert alerts["manual_review"]["message"] == "2 appointments need manual review"
    assert "retry-sync" in alerts["manual_review"]["action"]
    overall = {x["kind"]: x for x in metrics["overall"]["alerts"]}
    assert overall["failed_ancient"]["appointment_ids"] == [f_review.id, b_ancient.id, f_ancient.id]
    # Only the stale ones count: more than 10 would be needed for the warning.
    assert "pending_stale" not in overall
    assert p_stale.id and p_cancel.id


def test_attempt_rates_reasons_and_daily_series_with_exact_windows(app, clock):
    a, b = company("Salon A"), company("Werkstatt B")
    a1, a2, a3, a4, a5, a6 = (appointment(a, sync=SyncStatus.SYNCED) for _ in range(6))
    R, F, OK = SyncOutcome.RETRY, SyncOutcome.FAILED, SyncOutcome.SUCCESS
    attempt(a1, at=NOW - 24 * H, outcome=R, code="timeout")  # exactly 24 h ago: inside
    attempt(a1, at=NOW - 23 * H, outcome=OK, number=2)
    attempt(a2, at=NOW - 24 * H - S, outcome=F, code="http_503")  # just outside 24 h, inside 7 d
    attempt(a2, at=NOW - timedelta(minutes=30), outcome=R, code="http_503")
    attempt(a2, at=NOW - H, outcome=R, number=2, code="timeout")  # exactly 1 h ago: inside the hour
    attempt(a2, at=NOW - timedelta(minutes=5), outcome=F, number=3, code="timeout")
    attempt(a3, at=NOW, outcome=OK)
    attempt(a3, at=NOW - 2 * H, outcome=SyncOutcome.SKIPPED)  # a stale job: not an attempt at Cal.com
    attempt(a3, at=NOW - timedelta(minutes=1), outcome=None)  # still running
    attempt(a4, at=NOW - timedelta(days=8), outcome=F, code="old_code")  # outside 7 d
    attempt(a4, at=NOW - timedelta(days=6), outcome=R, code="http_503")
    attempt(a5, at=NOW + timedelta(minutes=1), outcome=OK)  # after "now": not counted
    attempt(a6, at=NOW.replace(day=8, month=11, hour=0), outcome=OK)  # first day of the 30, 00:00
    attempt(a6, at=NOW.replace(day=8, month=11, hour=0) - S, outcome=OK)  # the day before: outside
    attempt(appointment(b, sync=SyncStatus.SYNCED), at=NOW - 2 * H, outcome=OK)

    metrics = _collect()
    ca = metrics["companies"][str(a["company"].id)]

    assert (ca["attempts_24h"], ca["successful_attempts_24h"], ca["success_rate_24h"]) == (6, 2, 0.3333)
    assert ca["appointment_success_rate_24h"] == 0.6667  # a1 and a3 of a1, a2, a3
    assert ca["retry_success_rate_24h"] == 0.3333  # a1#2 of a1#2, a2#2, a2#3
    assert (ca["attempts_1h"], ca["failure_rate_1h"]) == (4, 0.75)
    assert ca["top_failure_reasons"] == {
        "24h": [{"code": "timeout", "count": 3}, {"code": "http_503", "count": 1}],
        "7d": [{"code": "http_503", "count": 3}, {"code": "timeout", "count": 3}],
    }
    days = {d["date"]: d for d in ca["daily_success_rate_30d"]}
    assert len(ca["daily_success_rate_30d"]) == 30
    assert ca["daily_success_rate_30d"][0]["date"] == "2026-11-08"
    assert ca["daily_success_rate_30d"][-1]["date"] == "2026-12-07"
    assert days["2026-12-07"] == {"date": "2026-12-07", "attempts": 4, "rate": 0.25}
    assert days["2026-12-06"] == {"date": "2026-12-06", "attempts": 3, "rate": 0.3333}
    assert days["2026-12-01"] == {"date": "2026-12-01", "attempts": 1, "rate": 0.0}
    assert days["2026-11-29"] == {"date": "2026-11-29", "attempts": 1, "rate": 0.0}
    assert days["2026-11-08"] == {"date": "2026-11-08", "attempts": 1, "rate": 1.0}
    assert days["2026-11-20"] == {"date": "2026-11-20", "attempts": 0, "rate": None}

    overall = metrics["overall"]
    assert (overall["attempts_24h"], overall["successful_attempts_24h"]) == (7, 3)
    assert overall["success_rate_24h"] == round(3 / 7, 4)
    assert {d["date"]: d["attempts"] for d in overall["daily_success_rate_30d"]}["2026-12-07"] == 5  # B's 06:00


def test_empty_database_is_healthy_with_no_rates(app, clock):
    company("Salon A")
    metrics = _collect()
    overall = metrics["overall"]
    assert overall["health"] == "healthy" and overall["alerts"] == []
    assert overall["success_rate_24h"] is None and overall["retry_success_rate_24h"] is None
    assert overall["top_failure_reasons"] == {"24h": [], "7d": []}
    assert metrics["generated_at"] == "2026-12-07T08:00:00+00:00"


def test_health_states_follow_the_seed_rules_and_configured_thresholds(app, clock):
    a = company()
    for _ in range(10):
        appointment(a, requested=NOW - 2 * H)
    assert _collect()["overall"]["health"] == "healthy"  # 10 stale: not more than 10

    appointment(a, requested=NOW - 2 * H)
    metrics = _collect()
    assert metrics["overall"]["health"] == "degraded"
    [warning] = metrics["overall"]["alerts"]
    assert (warning["kind"], warning["severity"]) == ("pending_stale", "warning")
    assert warning["message"] == "11 appointments have waited more than 60 min to sync to Cal.com"
    assert len(warning["appointment_ids"]) == 11

    assert _collect(stale_pending_warning=20)["overall"]["health"] == "healthy"
    assert _collect(pending_backlog_critical=11)["overall"]["health"] == "critical"

    appointment(a, sync=SyncStatus.FAILED, review=True)
    assert _collect()["overall"]["health"] == "critical"
    assert _collect(manual_review_critical=2)["overall"]["health"] == "degraded"


def test_failure_rate_of_the_last_hour_is_critical_from_its_threshold(app, clock):
    a = company()
    row = appointment(a, sync=SyncStatus.SYNCED)
    for i in range(9):
        attempt(row, at=NOW - timedelta(minutes=i + 1),
                outcome=SyncOutcome.RETRY if i < 5 else SyncOutcome.SUCCESS, code="http_503")
    assert _collect()["overall"]["health"] == "healthy"  # 5 of 9: too few attempts to judge
    attempt(row, at=NOW - timedelta(minutes=20), outcome=SyncOutcome.SUCCESS)
    metrics = _collect()  # 5 of 10 = 50 %
    [alert] = metrics["overall"]["alerts"]
    assert (alert["kind"], alert["severity"]) == ("failure_rate", "critical")
    assert alert["message"] == "50% of sync attempts failed in the last hour (5 of 10)"
    assert _collect(failure_rate_critical_percent=60)["overall"]["health"] == "healthy"


def test_alert_ids_are_capped_oldest_first_across_companies(app, clock):
    a, b = company("A"), company("B")
    a_rows = [appointment(a, requested=NOW - (2 + i) * H) for i in range(5)]
    b_rows = [appointment(b, requested=NOW - (10 + i) * H) for i in range(2)]
    metrics = _collect(alert_id_limit=3, stale_pending_warning=1)
    a_alert = metrics["companies"][str(a["company"].id)]["alerts"][0]
    assert a_alert["appointment_ids"] == [a_rows[4].id, a_rows[3].id, a_rows[2].id]
    overall_alert = metrics["overall"]["alerts"][0]
    assert overall_alert["appointment_ids"] == [b_rows[1].id, b_rows[0].id, a_rows[4].id]
    assert metrics["overall"]["pending_stale"] == 7  # the counts are not capped


def _statements_during(fn):
    with recorded_statements() as statements:
        fn()
    return statements


def _fill(companies: int, per_company: int):
    for c in range(companies):
        world = company(f"Company {c}")
        for i in range(per_company):
            row = appointment(world, sync=[SyncStatus.PENDING, SyncStatus.FAILED, SyncStatus.SYNCED][i % 3],
                              requested=NOW - timedelta(minutes=37 * i), review=i % 7 == 0, commit=False)
            db.session.flush()
            for n in range(1 + i % 3):
                attempt(row, at=NOW - timedelta(hours=5 * i + n), number=n + 1, code=f"code_{i % 4}",
                        outcome=[SyncOutcome.SUCCESS, SyncOutcome.RETRY, SyncOutcome.FAILED][(i + n) % 3],
                        commit=False)
        db.session.commit()


def test_query_count_does_not_grow_with_the_data(app, clock):
    _fill(companies=1, per_company=3)
    db.session.expunge_all()
    small = _statements_during(_collect)
    _fill(companies=4, per_company=60)
    db.session.expunge_all()
    large = _statements_during(_collect)
    selects = [s for s in large if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(large) == len(small), (small, large)
    assert len(selects) == 6  # companies, status counts, attempts, reasons, daily, oldest ids


def test_shape_matches_the_contract_and_is_json(app, clock):
    a = company()
    appointment(a, sync=SyncStatus.FAILED, review=True)
    metrics = _collect()
    assert json.loads(json.dumps(metrics)) == metrics
    assert SCOPE_KEYS <= set(metrics["overall"]) and "calcom_api" in metrics["overall"]
    company_scope = metrics["companies"][str(a["company"].id)]
    assert SCOPE_KEYS | {"name"} <= set(company_scope)
    for alert in company_scope["alerts"]:
        assert set(alert) == {"kind", "severity", "message", "action", "appointment_ids"}


def test_get_sync_metrics_serves_the_cache_and_refreshes_on_demand(app, clock):
    from core.redis_client import get_redis

    a = company()
    appointment(a)
    first = get_sync_metrics()
    assert first["overall"]["pending_total"] == 1
    assert 300 < get_redis().ttl(CACHE_KEY) <= 360

    appointment(a)
    assert get_sync_metrics()["overall"]["pending_total"] == 1  # served from the cache
    assert get_sync_metrics(refresh=True)["overall"]["pending_total"] == 2
    assert get_sync_metrics()["overall"]["pending_total"] == 2


def test_get_sync_metrics_computes_when_redis_is_down(app, clock):
    a = company()
    appointment(a)
    app.extensions["redis"] = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    metrics = get_sync_metrics()
    assert metrics["overall"]["pending_total"] == 1
    assert metrics["overall"]["calcom_api"] is None


def test_calcom_api_health_comes_from_the_clients_call_log(app, clock, calcom_emulator):
    from calcom.client import get_client
    from calcom.errors import CalcomError

    company()
    calcom_emulator.add_host_and_event_type(event_type_id=1001)
    calcom_emulator.set_faults({"rules": [{"kind": "error", "status": 503, "times": 4}]})
    client = get_client("availability")
    failures = 0
    for _ in range(12):  # real requests to the emulator, recorded by the client
        try:
            client.get_slots(1001, NOW + timedelta(days=1), NOW + timedelta(days=2), "Europe/Berlin")
        except CalcomError:
            failures += 1
    assert failures == 4

    metrics = _collect()
    api = metrics["overall"]["calcom_api"]
    assert (api["calls"], api["errors"], api["error_rate"], api["rate_limited"]) == (12, 4, 0.3333, 0)
    assert api["p50_ms"] is not None and api["p95_ms"] >= api["p50_ms"]
    [alert] = metrics["overall"]["alerts"]
    assert (alert["kind"], alert["severity"]) == ("calcom_api", "warning")
    assert alert["message"] == "Cal.com API trouble in the last 60 min: 33% of 12 calls failed"
    assert metrics["overall"]["health"] == "degraded"
    assert all(c["alerts"] == [] for c in metrics["companies"].values())  # set-up wide, not per company
    assert all("calcom_api" not in c for c in metrics["companies"].values())


def test_rate_limited_calls_raise_the_calcom_api_warning(app, clock):
    from calcom import call_log
    from core.redis_client import get_redis

    company()
    for status, outcome in ((200, call_log.OK), (429, call_log.RATE_LIMITED)):
        call_log.record(get_redis(), method="GET", endpoint="/v2/slots", status=status, latency_ms=80,
                        outcome=outcome, remaining=0 if status == 429 else 5, limit=120)
    metrics = _collect()
    assert metrics["overall"]["calcom_api"]["min_remaining"] == 0
    [alert] = metrics["overall"]["alerts"]
    assert alert["message"] == "Cal.com API trouble in the last 60 min: 1 call was rate-limited (429)"


def test_metrics_work_without_the_calcom_client(app, clock, monkeypatch):
    import calcom

    monkeypatch.delattr(calcom, "call_log", raising=False)
    monkeypatch.setitem(sys.modules, "calcom.call_log", None)  # import fails, as in a build without it
    company()
    metrics = _collect()
    assert metrics["overall"]["calcom_api"] is None and metrics["overall"]["health"] == "healthy"
