"""Drift reconciliation runs on the trends page: the runs table, one run's findings,
drift per night for the chart, what a company-bound user sees, and a run recorded by
the real reconciliation against the Cal.com emulator."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.extensions import db
from core.models import ReconciliationRun, Role
from dashboard.reconciliation_runs import KIND_LABELS
from tests.dashboard_support import HTMX, make_user, sign_in, squash, text_of
from tests.factories import book, make_world
from tests.test_dashboard_list import count_queries

UTC = timezone.utc
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # the `clock` fixture's time (09:00 in Berlin)
TRENDS = "/dashboard/trends"
KINDS = list(KIND_LABELS)


def record_run(started: datetime, *, dry_run=False, trigger="schedule", status="ok", counts=None, repaired=0,
               flagged=0, errors=(), findings=(), finished=True, days=(1, 60)) -> ReconciliationRun:
    """A run as `workers.reconcile` stores it: every kind counted, window from midnight UTC."""
    counts = {kind: 0 for kind in KINDS} | (counts or {})
    midnight = datetime.combine(started.date(), datetime.min.time(), tzinfo=UTC)
    run = ReconciliationRun(
        started_at=started, finished_at=started + timedelta(minutes=3) if finished else None,
        window_from=midnight - timedelta(days=days[0]), window_to=midnight + timedelta(days=days[1] + 1),
        dry_run=dry_run, trigger=trigger, status=status if finished else "running", event_types=6,
        bookings_seen=40, segments_seen=41, calcom_requests=7, drift_total=sum(counts.values()), repaired=repaired,
        flagged=flagged, counts=counts, findings=list(findings), errors=list(errors))
    db.session.add(run)
    db.session.commit()
    return run


def finding(kind, handling, appointment_id=None, uid=None, message="…"):
    return {"kind": kind, "handling": handling, "appointment_id": appointment_id, "booking_uid": uid,
            "event_type_id": None, "message": message}


@pytest.fixture
def nights(app, clock):
    """Three nights of runs, a dry run by hand and a run still going."""
    last_night = NOW.replace(hour=1, minute=30)  # 02:30 in Berlin
    runs = {
        "before": record_run(last_night - timedelta(days=2), counts={"missing_in_calcom": 1}, repaired=1),
        # Two runs on 6 December: the later one counts for the night.
        "early": record_run(last_night - timedelta(days=1, hours=1), counts={"time_mismatch": 5}, flagged=5),
        "yesterday": record_run(last_night - timedelta(days=1),
                                counts={"unknown_in_calcom": 2, "status_mismatch": 1}, repaired=1, flagged=1,
                                status="errors", errors=["event type 1003: could not list Cal.com bookings "
                                                         "(Cal.com answered 503)"]),
        "tonight": record_run(last_night, counts={"missing_in_calcom": 2, "cancelled_here": 1}, repaired=3),
        "dry": record_run(NOW - timedelta(hours=1), dry_run=True, trigger="cli", counts={"time_mismatch": 4},
                          days=(0, 6)),
        "running": record_run(NOW - timedelta(minutes=5), trigger="cli", finished=False),
    }
    return {name: run.id for name, run in runs.items()}


def run_rows(html: str) -> dict[int, str]:
    """Each run's table row as the words a reader sees, by run id."""
    return {int(run_id): squash(row) for run_id, row in
            re.findall(r'<tr data-run-id="(\d+)"[^>]*>(.*?)</tr>', html, re.S)}


def test_the_trends_page_lists_recent_runs_newest_first_with_counts_per_kind(client, nights):
    sign_in(client, make_user(Role.VIEWER))
    html = text_of(client.get(TRENDS))
    rows = run_rows(html)
    assert list(rows) == [nights[n] for n in ("running", "dry", "tonight", "yesterday", "early", "before")]
    header = squash(re.search(r"<thead>.*?</thead>", html, re.S).group(0))
    assert header == ("Started Window (UTC days) Mode · status Drift found Handled Errors Total "
                      "Missing in Cal.com Unknown in Cal.com Cancelled here, live in Cal.com Time mismatch "
                      "Status mismatch Repaired Flagged")
    # started, trigger, age, window, mode, status | total, the five kinds | repaired, flagged | errors
    assert rows[nights["tonight"]] == ("Mon 07.12.2026 02:30 CET nightly · 6 h 30 min ago 06.12.2026 – 05.02.2027 "
                                       "Applied Finished 3 2 0 1 0 0 3 0 0")
    assert rows[nights["yesterday"]].endswith("Finished with errors 3 0 2 0 0 1 1 1 1")
    assert rows[nights["dry"]] == ("Mon 07.12.2026 08:00 CET by hand · 1 h ago 07.12.2026 – 13.12.2026 "
                                   "Dry run Finished 4 0 0 0 4 0 nothing changed 0")
    assert "Running 0 0 0 0 0 0 0 0 0" in rows[nights["running"]]
    # Status in words and a shape, not colour alone.
    assert '<span class="badge run-errors"><span class="icon" aria-hidden="true"></span>Finished with errors' in html


def test_drift_per_night_feeds_the_chart(client, nights):
    sign_in(client, make_user(Role.ADMIN))
    data = client.get(f"{TRENDS}/reconciliation.json").get_json()
    assert len(data["labels"]) == 30 and data["labels"][-3:] == ["2026-12-05", "2026-12-06", "2026-12-07"]
    assert [k["key"] for k in data["kinds"]] == KINDS
    assert data["kinds"][0] == {"key": "missing_in_calcom", "label": "Missing in Cal.com"}
    # Tonight's applied run; the dry run and the running one do not count.
    assert data["run_ids"][-3:] == [nights["before"], nights["yesterday"], nights["tonight"]]
    assert data["drift_total"][-3:] == [1, 3, 3]
    assert data["counts"]["missing_in_calcom"][-3:] == [1, 0, 2]
    assert data["counts"]["unknown_in_calcom"][-3:] == [0, 2, 0]
    assert data["counts"]["time_mismatch"][-3:] == [0, 0, 0]  # the earlier run of the 6th is replaced
    assert data["repaired"][-3:] == [1, 1, 3] and data["flagged"][-3:] == [0, 1, 0]
    assert data["errors"][-3:] == [0, 1, 0]
    # A night without a run is a gap, not zero.
    assert data["drift_total"][0] is None and data["counts"]["cancelled_here"][0] is None


def test_the_page_has_the_drift_chart_with_its_table(client, nights):
    sign_in(client, make_user(Role.VIEWER))
    html = text_of(client.get(TRENDS))
    canvas = re.search(r'<canvas id="chart-reconciliation"[^>]*>', html, re.S).group(0)
    assert 'data-src="/dashboard/trends/reconciliation.json"' in canvas and 'role="img"' in canvas
    assert 'aria-describedby="reconciliation-description"' in canvas
    assert 'data-table-for="reconciliation"' in html


def test_one_run_opens_below_the_table_with_its_findings(client, app, clock):
    world = make_world()
    flagged_a = book(world, NOW + timedelta(days=1))
    flagged_b = book(world, NOW + timedelta(days=1, hours=2))
    run = record_run(NOW - timedelta(hours=6), counts={"time_mismatch": 2, "unknown_in_calcom": 1}, flagged=2,
                     findings=[finding("time_mismatch", "flagged", flagged_a.id, "bk_1",
                                       f"Cal.com booking bk_1 (Web Kundin …) does not match appointment {flagged_a.id}"),
                               finding("time_mismatch", "flagged", flagged_b.id, "bk_2", "…"),
                               finding("unknown_in_calcom", "reported", None, "bk_3",
                                       "Cal.com booking bk_3 was made in Cal.com and is not known here")],
                     errors=["event type 2002: could not list Cal.com bookings (timeout)"], status="errors")
    sign_in(client, make_user(Role.OPERATOR))
    page = text_of(client.get(TRENDS))
    link = re.search(rf'<a href="/dashboard/trends/reconciliation/{run.id}"[^>]*>', page).group(0)
    assert f'hx-get="/dashboard/trends/reconciliation/{run.id}"' in link and 'hx-target="#reconciliation-run"' in link
    assert 'hx-push-url="true"' in link and '<div id="reconciliation-run"></div>' in page

    fragment = client.get(f"{TRENDS}/reconciliation/{run.id}", headers={**HTMX, "HX-Target": "reconciliation-run"})
    body = text_of(fragment)
    assert fragment.status_code == 200 and "<html" not in body and "HX-Request" in fragment.headers["Vary"]
    text = squash(body)
    assert f"Reconciliation run {run.id}: Mon 07.12.2026 03:00 CET" in text
    assert "Compared 6 event types · 40 Cal.com bookings · 41 of our booked segments · 7 Cal.com requests" in text
    assert "Drift 3: Unknown in Cal.com 1, Time mismatch 2" in text
    assert "event type 2002: could not list Cal.com bookings (timeout)" in text
    assert f"Time mismatch flagged for review #{flagged_a.id} bk_1 Cal.com booking bk_1 (Web Kundin …)" in text
    assert "Unknown in Cal.com reported only — bk_3 Cal.com booking bk_3 was made in Cal.com" in text
    flagged_link = re.search(r'<a href="(/dashboard/appointments\?[^"]+)">open the 2 flagged appointments</a>',
                             body).group(1)
    listed = text_of(client.get(flagged_link.replace("&amp;", "&")))
    assert set(map(int, re.findall(r'data-appointment-id="(\d+)"', listed))) == {flagged_a.id, flagged_b.id}

    full = text_of(client.get(f"{TRENDS}/reconciliation/{run.id}"))
    assert "<html" in full and f"<h1 id=\"run-heading\"" in full and 'href="/dashboard/trends#reconciliation"' in full
    assert client.get(f"{TRENDS}/reconciliation/{run.id + 100}").status_code == 404


def test_findings_kept_are_fewer_than_found_says_so(client, app, clock):
    run = record_run(NOW - timedelta(hours=6), counts={"unknown_in_calcom": 250},
                     findings=[finding("unknown_in_calcom", "reported", None, f"bk_{i}") for i in range(200)])
    sign_in(client, make_user(Role.VIEWER))
    text = squash(text_of(client.get(f"{TRENDS}/reconciliation/{run.id}")))
    assert "Findings — the first 200 of 250" in text


def test_a_company_bound_user_sees_when_runs_happened_not_what_they_found(client, nights):
    """Runs compare every company at once: counts, findings and errors are everyone's."""
    company = make_world()["company"]
    sign_in(client, make_user(Role.OPERATOR, company_id=company.id))
    html = text_of(client.get(TRENDS))
    rows = run_rows(html)
    assert rows[nights["yesterday"]] == ("Sun 06.12.2026 02:30 CET nightly · 1 d 6 h ago 05.12.2026 – 04.02.2027 "
                                         "Applied Finished with errors")
    assert "Drift found" not in html and "chart-reconciliation" not in html
    assert f"/dashboard/trends/reconciliation/{nights['yesterday']}" not in html
    assert "your manual-review list" in html and 'href="/dashboard/appointments?review=1' in html
    refused = client.get(f"{TRENDS}/reconciliation.json")
    assert refused.status_code == 403 and "users who see all companies" in refused.get_json()["error"]
    page = client.get(f"{TRENDS}/reconciliation/{nights['yesterday']}")
    assert page.status_code == 403 and "users who see all companies" in text_of(page)


def test_a_late_nightly_run_is_pointed_out(client, app, clock):
    sign_in(client, make_user(Role.VIEWER))
    assert "No nightly run has finished yet" in squash(text_of(client.get(TRENDS)))
    assert "No reconciliation run yet." in text_of(client.get(TRENDS))
    record_run(NOW - timedelta(days=2), trigger="schedule")
    record_run(NOW - timedelta(hours=2), trigger="cli")  # by hand: not the nightly run
    text = squash(text_of(client.get(TRENDS)))
    assert ("late No nightly run has finished for over 36 h: the last one finished Sat 05.12.2026 09:03 CET "
            "(1 d 23 h ago).") in text
    record_run(NOW - timedelta(hours=7), trigger="schedule")
    text = squash(text_of(client.get(TRENDS)))
    assert "Last nightly run finished Mon 07.12.2026 02:03 CET (6 h 57 min ago)." in text and " late " not in text


def test_the_trends_page_query_count_does_not_grow_with_the_runs(client, app, clock):
    sign_in(client, make_user(Role.ADMIN))
    counts = []
    for extra in (2, 18):
        for i in range(extra):
            record_run(NOW - timedelta(days=i, hours=3), findings=[finding("unknown_in_calcom", "reported")] * 50)
        db.session.expire_all()
        statements, stop = count_queries(db.engine)
        try:
            assert client.get(TRENDS).status_code == 200
            assert client.get(f"{TRENDS}/reconciliation.json").status_code == 200
        finally:
            stop()
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def test_every_kind_the_reconciliation_counts_has_a_label():
    from workers.reconcile import KINDS as RECONCILE_KINDS

    assert list(RECONCILE_KINDS) == KINDS


def test_a_run_recorded_by_the_reconciliation_shows_on_the_trends_page(app, client, runner, calcom_emulator, clock):
    """The real thing: a booking made on the Cal.com page that never reached us."""
    make_world()
    calcom_emulator.load_world(db.session, preload_bookings=False)
    calcom_emulator.state.create_booking(
        {"eventTypeId": 1001, "start": "2026-12-08T13:00:00.000Z",
         "attendee": {"name": "Web Kundin", "email": "web@example.com", "timeZone": "Europe/Berlin"}},
        host_id=100, origin="direct")
    result = runner.invoke(args=["appointments", "reconcile", "--from", "2026-12-07", "--to", "2026-12-13"])
    assert result.exit_code == 1, result.output  # drift found
    run = db.session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc())).first()

    sign_in(client, make_user(Role.VIEWER))
    row = run_rows(text_of(client.get(TRENDS)))[run.id]
    assert row.endswith("by hand · just now 07.12.2026 – 13.12.2026 Applied Finished 1 0 1 0 0 0 0 0 0")
    assert client.get(f"{TRENDS}/reconciliation.json").get_json()["run_ids"][-1] == run.id
    detail = squash(text_of(client.get(f"{TRENDS}/reconciliation/{run.id}")))
    assert "Unknown in Cal.com reported only — " in detail and "(Web Kundin with " in detail
    assert "web@example.com" not in detail
