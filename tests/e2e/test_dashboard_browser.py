"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against the
app served by a real WSGI server (werkzeug, threaded) on a free port with the demo seed.

An operator signs in, sees the six tiles with the seeded numbers, watches htmx
refresh them, filters the list (the URL follows), opens the manual-review list,
retries one appointment and sees its row change. Screenshots go to
`tests/e2e/artifacts/` (and to `docs/dashboard.png` with UPDATE_DOCS_SCREENSHOT=1).
"""

from __future__ import annotations

import os
import re
import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from core.clock import utcnow
from core.extensions import db
from core.models import Appointment, AuditEvent, Role, SyncStatus
from tests.dashboard_support import PASSWORD, make_user, sync_counts

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")
DOCS_SCREENSHOT = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "dashboard.png")
POLL_SECONDS = 2


@pytest.fixture
def served_app(app, demo):
    """The app on 127.0.0.1:<free port>, in a thread; stopped before the tables are emptied."""
    app.config["DASHBOARD_POLL_SECONDS"] = POLL_SECONDS
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-wsgi", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def browser_page():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def wait_for_htmx_idle(page) -> None:
    """No htmx request in flight and no swap settling (htmx marks both with classes)."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")


def test_operator_works_the_manual_review_list_in_chromium(app, served_app, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    operator = make_user(Role.OPERATOR, email="operator@example.com")
    expected = sync_counts(utcnow())

    # Sign in: the dashboard sends an anonymous visitor to the login page and back.
    page.goto(f"{served_app}/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    page.get_by_label("Email").fill(operator.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{served_app}/dashboard/")
    page.wait_for_load_state("load")

    # The six tiles with the seeded numbers.
    tiles = page.locator("li.tile")
    expect(tiles).to_have_count(6)
    expect(tiles.locator(".tile-title")).to_have_text(
        ["Sync Health", "Success Rate 24 h", "Pending Sync", "Failed Sync", "Manual Review", "Active Alerts"])

    def tile(key):
        return page.locator(f'li.tile[data-tile="{key}"]')

    expect(tile("health").locator(".tile-value")).to_have_text("Critical")
    expect(tile("pending").locator(".tile-value")).to_have_text(str(expected["pending"]))
    expect(tile("pending").locator(".tile-detail")).to_have_text(f"{expected['stale']} stale (over 1 h)")
    expect(tile("failed").locator(".tile-value")).to_have_text(str(expected["failed"]))
    expect(tile("failed").locator(".tile-detail")).to_have_text(f"{expected['ancient']} ancient (over 24 h)")
    expect(tile("manual_review").locator(".tile-value")).to_have_text(str(expected["review"]))
    expect(tile("success_rate").locator(".tile-value")).to_have_text(re.compile(r"^\d+\.\d %$"))
    expect(page.locator("#alerts li.alert").first).to_contain_text("What to do:")

    # htmx replaces the tiles section on its own after the poll interval, without a
    # layout jump: the tiles keep their size and place.
    box_before = tile("pending").bounding_box()
    page.evaluate("document.getElementById('tiles').dataset.generation = 'first'")
    checked_before = page.get_by_test_id("checked-at").inner_text()
    with page.expect_response(lambda r: r.url == f"{served_app}/dashboard/"
                              and r.request.headers.get("hx-request") == "true") as poll:
        page.wait_for_function("() => !document.getElementById('tiles').dataset.generation",
                               timeout=(POLL_SECONDS + 8) * 1000)
    assert poll.value.status == 200
    expect(tiles).to_have_count(6)
    expect(tile("pending").locator(".tile-value")).to_have_text(str(expected["pending"]))
    assert tile("pending").bounding_box() == box_before
    assert page.get_by_test_id("checked-at").inner_text() != checked_before
    page.screenshot(path=os.path.join(ARTIFACTS, "overview.png"), full_page=True)

    # The Manual Review tile opens its drill-down list.
    tile("manual_review").locator("a.tile-link").click()
    expect(page).to_have_url(re.compile(r"/dashboard/appointments\?review=1"))
    page.wait_for_load_state("load")  # htmx has processed the page (deferred scripts ran)
    rows = page.locator("table.appointments tbody tr")
    expect(rows).to_have_count(expected["review"])

    # Filters are applied by htmx and kept in the URL.
    page.get_by_label("Sync status").select_option("failed")
    expect(page).to_have_url(re.compile(r"/dashboard/appointments\?sync_status=failed&review=1&direction=asc$"))
    expect(rows).to_have_count(expected["review"])  # every review case here has a failed sync
    wait_for_htmx_idle(page)

    # Retry the first one: the prompt asks for the audit note, the row changes in place.
    first = rows.first
    appointment_id = int(first.get_attribute("data-appointment-id"))
    expect(first.get_by_test_id("sync-status")).to_contain_text("failed")
    expect(first.get_by_test_id("sync-status")).to_contain_text("review")
    page.once("dialog", lambda dialog: dialog.accept("Cal.com event type restored"))
    first.get_by_role("button", name="Retry").click()
    changed = page.locator(f"#appointment-row-{appointment_id}")
    expect(changed.get_by_test_id("row-actions")).to_contain_text("✓ create sync queued")
    expect(changed.get_by_test_id("sync-status")).to_contain_text("pending")
    expect(changed.get_by_test_id("sync-status")).not_to_contain_text("review")
    expect(changed).to_contain_text("just now")
    page.screenshot(path=os.path.join(ARTIFACTS, "manual-review-retry.png"), full_page=True)

    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        # The README's picture, with the default refresh interval.
        app.config["DASHBOARD_POLL_SECONDS"] = 300
        page.goto(f"{served_app}/dashboard/")
        expect(tiles).to_have_count(6)
        page.screenshot(path=DOCS_SCREENSHOT)

    # End this thread's read transaction: the server wrote from its own connection.
    db.session.rollback()
    appointment = db.session.get(Appointment, appointment_id)
    assert appointment.sync_status == SyncStatus.PENDING and not appointment.requires_manual_review
    note = db.session.scalar(select(AuditEvent.note).where(AuditEvent.appointment_id == appointment_id))
    assert note == "Cal.com event type restored"
