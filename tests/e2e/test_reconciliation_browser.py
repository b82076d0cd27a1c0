"""The reconciliation runs on the trends page, in Debian's Chromium: the drift chart is
drawn by Chart.js from its JSON endpoint with its numbers as a table, and a run's time
loads its findings below the table with htmx (the URL follows)."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest

from core.clock import utcnow
from core.models import Role
from tests.dashboard_support import PASSWORD, make_user
from tests.e2e.test_dashboard_browser import ARTIFACTS, browser_page, served_app  # noqa: F401 (fixtures)
from tests.test_dashboard_reconciliation import finding, record_run

pytestmark = pytest.mark.e2e


def test_drift_chart_and_a_runs_findings_in_chromium(app, served_app, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    admin = make_user(Role.ADMIN, email="admin@example.com")
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=1, microsecond=0)  # so that both runs are on their UTC day
    record_run(today - timedelta(days=1), counts={"missing_in_calcom": 2}, repaired=2)
    run = record_run(today, counts={"time_mismatch": 1, "unknown_in_calcom": 1}, flagged=1,
                     findings=[finding("time_mismatch", "flagged", None, "bk_7",
                                       "Cal.com booking bk_7 does not match appointment 7: one side was moved"),
                               finding("unknown_in_calcom", "reported", None, "bk_8",
                                       "Cal.com booking bk_8 was made in Cal.com and is not known here")])

    page.goto(f"{served_app}/dashboard/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{served_app}/dashboard/trends")
    page.wait_for_load_state("load")

    # Chart.js drew the stacked drift bars from the endpoint, and the table says the same.
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-reconciliation')")
    datasets = page.evaluate("Chart.getChart('chart-reconciliation').data.datasets.map(d => d.label)")
    assert datasets == ["Missing in Cal.com", "Unknown in Cal.com", "Cancelled here, live in Cal.com",
                        "Time mismatch", "Status mismatch"]
    section = page.locator("#reconciliation")
    section.get_by_text("Show the numbers as a table").click()
    last_row = page.locator('[data-table-for="reconciliation"] tbody tr').last
    expect(last_row.locator("td")).to_have_text([now.date().isoformat(), str(run.id), "0", "1", "0", "1", "0",
                                                 "2", "0", "1", "0"])

    # A run's time opens its findings below the table; the address bar follows.
    section.locator(f'tr[data-run-id="{run.id}"] th a').click()
    detail = page.locator("#reconciliation-run")
    expect(detail.locator("table.findings tbody tr")).to_have_count(2)
    expect(detail).to_contain_text("Cal.com booking bk_8 was made in Cal.com and is not known here")
    expect(page).to_have_url(re.compile(rf"/dashboard/trends/reconciliation/{run.id}$"))
    expect(page.locator("#run-heading")).to_be_focused()
    page.screenshot(path=os.path.join(ARTIFACTS, "trends-reconciliation.png"), full_page=True)
