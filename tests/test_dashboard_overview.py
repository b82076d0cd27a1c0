"""The overview: six tiles from the cached metrics, self-polling, scoped per company."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from core.extensions import db
from core.models import Appointment, Company, Role
from dashboard.formatting import inline_code
from tests.dashboard_support import HTMX, htmx_headers, make_user, sign_in, squash, sync_counts, text_of


def tile_texts(html: str) -> dict[str, str]:
    tiles = re.findall(r'<li class="tile tone-(\w+)" data-tile="(\w+)">(.*?)</li>', html, re.S)
    return {key: f"{tone} | {squash(body)}" for tone, key, body in tiles}


def test_overview_shows_the_six_tiles_with_the_seeded_numbers(client, clock, demo):
    sign_in(client, make_user(Role.VIEWER))
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    html = text_of(response)
    tiles = tile_texts(html)
    assert list(tiles) == ["health", "success_rate", "pending", "failed", "manual_review", "alerts"]
    n = sync_counts(clock.utcnow())
    # The seed has problems in every state, so nothing can look healthy.
    assert n["review"] == 4 and n["ancient"] >= 3 and n["stale"] >= 13
    assert re.fullmatch(r"bad \| Sync Health Critical Critical \d+ active alerts?", tiles["health"]), tiles["health"]
    assert re.fullmatch(r"\w+ \| Success Rate 24 h \d+\.\d % \w+( \w+)? \d+ of \d+ attempts", tiles["success_rate"])
    assert tiles["pending"] == f"warn | Pending Sync {n['pending']} Some stale {n['stale']} stale (over 1 h)"
    assert tiles["failed"] == f"bad | Failed Sync {n['failed']} Some ancient {n['ancient']} ancient (over 24 h)"
    assert tiles["manual_review"] == f"warn | Manual Review {n['review']} Waiting need a person"
    assert re.fullmatch(r"bad \| Active Alerts \d+ Critical worst: critical", tiles["alerts"]), tiles["alerts"]


def test_success_rate_tile_matches_the_attempts(client, clock, demo):
    from core.models import SyncAttempt, SyncOutcome

    sign_in(client, make_user(Role.VIEWER))
    since = clock.utcnow() - timedelta(hours=24)
    window = (SyncAttempt.started_at >= since, SyncAttempt.started_at <= clock.utcnow(),
              SyncAttempt.outcome.in_([SyncOutcome.SUCCESS, SyncOutcome.RETRY, SyncOutcome.FAILED]))
    attempts = db.session.scalar(select(func.count()).select_from(SyncAttempt).where(*window))
    successes = db.session.scalar(select(func.count()).select_from(SyncAttempt)
                                  .where(*window, SyncAttempt.outcome == SyncOutcome.SUCCESS))
    tiles = tile_texts(text_of(client.get("/dashboard/")))
    assert f"{100 * successes / attempts:.1f} %" in tiles["success_rate"]
    assert f"{successes} of {attempts} attempts" in tiles["success_rate"]


def test_tiles_link_to_their_drill_down_lists(client, clock, demo):
    sign_in(client, make_user(Role.VIEWER))
    html = text_of(client.get("/dashboard/"))
    for key, query in [
        ("health", "sync_status=unsynced"), ("success_rate", "had_failures=1"), ("pending", "sync_status=pending"),
        ("failed", "sync_status=failed"), ("manual_review", "review=1"),
    ]:
        tile = re.search(rf'data-tile="{key}">\s*<a class="tile-link" href="([^"]+)"', html).group(1)
        assert tile.startswith("/dashboard/appointments?") and query in tile, (key, tile)
        assert client.get(tile.replace("&amp;", "&")).status_code == 200
    assert 'href="/dashboard/appointments?sync_status=pending&amp;age=stale' in html
    assert 'href="/dashboard/appointments?sync_status=failed&amp;age=ancient' in html
    assert re.search(r'data-tile="alerts">\s*<a class="tile-link" href="/dashboard/#alerts"', html)


def test_active_alerts_are_listed_with_their_action_text(client, clock, demo):
    from dashboard.metrics_source import current_metrics

    sign_in(client, make_user(Role.VIEWER))
    alerts = current_metrics()["overall"]["alerts"]
    assert alerts, "the demo seed raises alerts"
    page = squash(text_of(client.get("/dashboard/")))
    for alert in alerts:
        assert squash(inline_code(alert["message"])) in page
        assert f"What to do: {squash(inline_code(alert['action']))}" in page
    # Critical alerts come first.
    html = text_of(client.get("/dashboard/"))
    severities = re.findall(r'<li class="alert severity-(\w+)">', html)
    assert severities == sorted(severities, key=lambda s: s != "critical")


def test_commands_in_alert_texts_are_shown_as_code_and_escaped():
    assert str(inline_code("run `rq info --url $REDIS_URL` <now>")) == (
        "run <code>rq info --url $REDIS_URL</code> &lt;now&gt;")
    assert str(inline_code("a ` b")) == "a ` b"


def test_alert_links_open_exactly_its_appointments(client, clock, demo):
    from dashboard.metrics_source import current_metrics

    sign_in(client, make_user(Role.VIEWER))
    alert = next(a for a in current_metrics()["overall"]["alerts"] if a["appointment_ids"])
    html = text_of(client.get("/dashboard/"))
    link = re.search(r'<a href="(/dashboard/appointments\?id_list=[^"]+)">Show the', html).group(1).replace("&amp;", "&")
    listed = text_of(client.get(link))
    shown = {int(i) for i in re.findall(r'data-appointment-id="(\d+)"', listed)}
    first_alert_ids = re.search(r"id_list=([\d%C,]+)", link).group(1).replace("%2C", ",")
    assert shown == {int(i) for i in first_alert_ids.split(",")}
    assert shown <= {i for a in current_metrics()["overall"]["alerts"] for i in a["appointment_ids"]}
    assert alert


def test_tiles_fragment_polls_itself_and_is_sent_alone_to_htmx(app, client, clock, demo):
    app.config["DASHBOARD_POLL_SECONDS"] = 7
    sign_in(client, make_user(Role.VIEWER))
    page = text_of(client.get("/dashboard/"))
    assert '<section id="tiles"' in page and "<html" in page
    assert 'hx-trigger="every 7s"' in page
    fragment = client.get("/dashboard/", headers={**HTMX, "HX-Target": "tiles"})
    body = text_of(fragment)
    assert body.lstrip().startswith('<section id="tiles"')
    assert "<html" not in body and 'hx-trigger="every 7s"' in body
    assert "HX-Request" in fragment.headers["Vary"]
    # Same numbers in the page and in the fragment.
    assert tile_texts(page) == tile_texts(body)
    # Boosted navigation and history restores get the whole page.
    boosted = text_of(client.get("/dashboard/", headers={**HTMX, "HX-Boosted": "true", "HX-Target": "tiles"}))
    assert "<html" in boosted


def test_default_poll_interval_is_five_minutes(client, clock, demo):
    sign_in(client, make_user(Role.VIEWER))
    assert 'hx-trigger="every 300s"' in text_of(client.get("/dashboard/"))


def test_tiles_come_from_the_cache_until_refreshed(client, clock, demo):
    sign_in(client, make_user(Role.OPERATOR))
    before = tile_texts(text_of(client.get("/dashboard/")))
    stale = db.session.scalars(select(Appointment).where(Appointment.requires_manual_review)).all()
    for appointment in stale:
        appointment.requires_manual_review = False
    db.session.commit()
    # The poll reads the cached metrics: unchanged until the next refresh.
    assert tile_texts(text_of(client.get("/dashboard/", headers={**HTMX, "HX-Target": "tiles"}))) == before
    refreshed = client.post("/dashboard/refresh", headers=htmx_headers(client, target="tiles"))
    assert refreshed.status_code == 200
    tiles = tile_texts(text_of(refreshed))
    assert tiles["manual_review"] == "ok | Manual Review 0 Clear nothing waiting"
    assert tile_texts(text_of(client.get("/dashboard/")))["manual_review"] == tiles["manual_review"]


def test_last_updated_time_and_manual_refresh_are_shown(client, clock, demo):
    sign_in(client, make_user(Role.VIEWER))
    page = squash(text_of(client.get("/dashboard/")))
    assert "Metrics computed 07.12.2026 09:00:00 CET" in page
    assert "page checked 09:00:00 CET" in page
    assert "Refresh now" in page


def test_company_bound_user_sees_only_their_company_in_the_tiles(client, clock, demo):
    workshop = db.session.scalar(select(Company).where(Company.slug == "werkstatt-krause"))
    sign_in(client, make_user(Role.OPERATOR, company_id=workshop.id))
    tiles = tile_texts(text_of(client.get("/dashboard/")))
    n = sync_counts(clock.utcnow(), company_id=workshop.id)
    everyone = sync_counts(clock.utcnow())
    assert n["pending"] < everyone["pending"]
    assert f"Pending Sync {n['pending']} " in tiles["pending"]
    assert f"Failed Sync {n['failed']} " in tiles["failed"]
    assert tiles["manual_review"] == "ok | Manual Review 0 Clear nothing waiting"
    # The alert list names no appointment of the other company.
    html = text_of(client.get("/dashboard/"))
    for ids in re.findall(r"id_list=([\d%C]+)", html):
        for appointment_id in ids.split("%2C"):
            assert db.session.get(Appointment, int(appointment_id)).company_id == workshop.id


def test_company_without_appointments_shows_zeros(client, clock):
    company = Company(name="Empty GmbH", slug="empty")
    db.session.add(company)
    db.session.commit()
    sign_in(client, make_user(Role.VIEWER, company_id=company.id))
    tiles = tile_texts(text_of(client.get("/dashboard/")))
    assert tiles["pending"].startswith("ok | Pending Sync 0 ")
    assert tiles["success_rate"] == "neutral | Success Rate 24 h — No attempts no sync attempts in 24 h"
    assert tiles["health"].startswith("ok | Sync Health Healthy")
