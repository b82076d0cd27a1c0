"""Who gets in and what they may do: login, rate limit, roles, CSRF, cookies."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from core import create_app
from core.extensions import db
from core.models import Appointment, AuditEvent, Role, SyncStatus
from core.redis_client import get_redis
from tests.dashboard_support import PASSWORD, csrf_token, htmx_headers, make_user, sign_in, text_of


def _example_url(rule) -> str:
    """A concrete URL for a rule: 1 for every converter argument."""
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", "1", rule.rule)


def dashboard_rules(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith("dashboard.")]


def test_every_dashboard_route_requires_login(app, client):
    rules = dashboard_rules(app)
    assert len(rules) >= 15, "the walk must see the whole dashboard"
    for rule in rules:
        if rule.endpoint == "dashboard.login":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = _example_url(rule)
            response = client.open(url, method=method)
            if method == "POST":
                # An anonymous POST without a token is refused before anything else.
                assert response.status_code in (302, 400, 401), (method, url, response.status_code)
                headers = {"X-CSRFToken": csrf_token(client)}
                response = client.open(url, method=method, headers=headers)
            assert response.status_code in (302, 401), (method, url, response.status_code)
            if response.status_code == 302:
                assert response.location.startswith("/dashboard/login"), (url, response.location)


def test_anonymous_page_redirects_to_login_and_back(client):
    response = client.get("/dashboard/appointments?review=1")
    assert response.status_code == 302
    assert response.location == "/dashboard/login?next=/dashboard/appointments?review%3D1"


def test_anonymous_htmx_request_gets_401_with_redirect_for_the_whole_page(client):
    response = client.get("/dashboard/", headers={"HX-Request": "true",
                                                  "HX-Current-URL": "http://localhost/dashboard/appointments"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/dashboard/login?next=/dashboard/appointments"


def test_anonymous_json_gets_401_json(client):
    response = client.get("/dashboard/trends/retry-success.json")
    assert response.status_code == 401
    assert response.get_json() == {"error": "login required"}


def _login(client, email, password, next_url=None):
    token = csrf_token(client)
    url = "/dashboard/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": email, "password": password, "csrf_token": token})


def test_login_with_right_password_opens_the_dashboard_and_logout_ends_it(app, client):
    user = make_user(Role.VIEWER)
    response = _login(client, "VIEWER-all@example.com ", PASSWORD, next_url="/dashboard/queues")
    assert response.status_code == 302
    assert response.location == "/dashboard/queues"
    assert client.get("/dashboard/queues").status_code == 200
    db.session.refresh(user)
    assert user.last_login_at is not None

    token = csrf_token(client, "/dashboard/queues")
    assert client.post("/dashboard/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/dashboard/queues").status_code == 302


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "/elsewhere", "/dashboard\\..\\x"])
def test_login_never_redirects_off_the_dashboard(client, next_url):
    make_user(Role.VIEWER)
    response = _login(client, "viewer-all@example.com", PASSWORD, next_url=next_url)
    assert response.status_code == 302
    assert response.location == "/dashboard/"


def test_wrong_password_and_unknown_email_get_the_same_answer(client):
    make_user(Role.VIEWER)
    wrong = _login(client, "viewer-all@example.com", "not-the-password")
    unknown = _login(client, "nobody@example.com", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    message = "Email or password is wrong, or the account is deactivated."
    assert message in text_of(wrong) and message in text_of(unknown)
    assert client.get("/dashboard/queues").status_code == 302


def test_deactivated_user_cannot_sign_in_and_is_signed_out(app, client):
    user = make_user(Role.OPERATOR)
    sign_in(client, user)
    assert client.get("/dashboard/queues").status_code == 200
    user.active = False
    db.session.commit()
    assert client.get("/dashboard/queues").status_code == 302
    assert _login(client, user.email, PASSWORD).status_code == 401


def test_login_is_locked_after_too_many_failures(app, client):
    app.config.update(LOGIN_MAX_ATTEMPTS=3, LOGIN_LOCKOUT_SECONDS=600)
    make_user(Role.VIEWER)
    for _ in range(3):
        assert _login(client, "viewer-all@example.com", "wrong-password").status_code == 401
    locked = _login(client, "viewer-all@example.com", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins. Try again in about 10 minute(s)." in text_of(locked)
    assert client.get("/dashboard/queues").status_code == 302
    # The lock expires with the window; Redis keeps the time.
    keys = [k.decode() for k in get_redis().scan_iter("slotguard:dashboard:login-failures:*")]
    assert keys and all(0 < get_redis().ttl(k) <= 600 for k in keys)
    assert not any("viewer-all@example.com" in k for k in keys), "Redis must not hold login names"
    # Another account from the same address is not locked by this one's failures.
    make_user(Role.OPERATOR)
    assert _login(client, "operator-all@example.com", PASSWORD).status_code == 302


def test_many_accounts_from_one_address_lock_the_address(app, client):
    app.config.update(LOGIN_MAX_ATTEMPTS_PER_IP=4)
    make_user(Role.VIEWER)
    for i in range(4):
        _login(client, f"guess{i}@example.com", "wrong-password")
    assert _login(client, "viewer-all@example.com", PASSWORD).status_code == 429


def test_successful_login_clears_the_failure_count(app, client):
    app.config.update(LOGIN_MAX_ATTEMPTS=3)
    make_user(Role.VIEWER)
    for _ in range(2):
        _login(client, "viewer-all@example.com", "wrong-password")
    assert _login(client, "viewer-all@example.com", PASSWORD).status_code == 302
    token = csrf_token(client, "/dashboard/queues")
    client.post("/dashboard/logout", data={"csrf_token": token})
    for _ in range(2):
        _login(client, "viewer-all@example.com", "wrong-password")
    assert _login(client, "viewer-all@example.com", PASSWORD).status_code == 302


def post_routes(app):
    return [r for r in dashboard_rules(app) if "POST" in r.methods]


def test_every_post_without_csrf_token_is_refused_with_400(app, client, demo):
    admin = make_user(Role.ADMIN)
    sign_in(client, admin)
    before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    for rule in post_routes(app):
        url = _example_url(rule)
        response = client.post(url, data={"note": "x", "action": "retry", "selected": "1", "role": "viewer"})
        assert response.status_code == 400, (url, response.status_code)
        htmx = client.post(url, data={"note": "x"}, headers={"HX-Request": "true"})
        assert htmx.status_code == 400, url
        assert "CSRF token is missing" in text_of(htmx)
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_login_without_csrf_token_is_refused(client):
    make_user(Role.VIEWER)
    response = client.post("/dashboard/login", data={"email": "viewer-all@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/dashboard/queues").status_code == 302


def test_htmx_csrf_header_from_base_template_is_accepted(client, demo):
    """base.html puts the token in hx-headers; that header alone passes the check."""
    user = make_user(Role.OPERATOR)
    sign_in(client, user)
    page = text_of(client.get("/dashboard/queues"))
    header_token = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", page).group(1)
    appointment = db.session.scalar(select(Appointment).where(Appointment.requires_manual_review).limit(1))
    response = client.post(f"/dashboard/appointments/{appointment.id}/retry",
                           headers={"HX-Request": "true", "X-CSRFToken": header_token,
                                    "HX-Prompt": "Cal.com is back", "HX-Target": f"appointment-row-{appointment.id}"})
    assert response.status_code == 200


def test_viewer_cannot_act_and_nothing_changes(app, client, demo):
    viewer = make_user(Role.VIEWER)
    sign_in(client, viewer)
    appointment = db.session.scalar(select(Appointment).where(Appointment.requires_manual_review).limit(1))
    before = (appointment.sync_status, appointment.sync_version, appointment.requires_manual_review)
    headers = htmx_headers(client, target=f"appointment-row-{appointment.id}", **{"HX-Prompt": "let me"})
    for url, data in [
        (f"/dashboard/appointments/{appointment.id}/retry", {"note": "let me"}),
        (f"/dashboard/appointments/{appointment.id}/resolve", {"note": "let me"}),
        ("/dashboard/appointments/bulk", {"action": "retry", "selected": str(appointment.id), "note": "let me"}),
    ]:
        response = client.post(url, data=data, headers=headers)
        assert response.status_code == 403, url
        assert "This needs the operator role; you are signed in as viewer." in text_of(response)
    db.session.expire_all()
    appointment = db.session.get(Appointment, appointment.id)
    assert (appointment.sync_status, appointment.sync_version, appointment.requires_manual_review) == before
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    assert get_redis().llen("rq:queue:calcom-sync") == 0
    # And the page does not offer what the viewer may not do.
    page = text_of(client.get("/dashboard/appointments?review=1"))
    assert "Retry</button>" not in page and 'id="bulk"' not in page


def test_operator_and_viewer_cannot_open_admin_pages(client):
    for role in (Role.VIEWER, Role.OPERATOR):
        sign_in(client, make_user(role))
        assert client.get("/dashboard/users").status_code == 403


def test_session_cookie_is_httponly_and_samesite_lax(client):
    make_user(Role.VIEWER)
    response = _login(client, "viewer-all@example.com", PASSWORD)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development over http


def test_production_session_cookie_is_secure(monkeypatch, base_config):
    monkeypatch.setenv("SLOTGUARD_ENV", "production")
    app = create_app({**base_config, "SECRET_KEY": "a-production-strength-session-key-0123456789"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    with app.app_context():
        db.engine.dispose()


def test_reading_pages_changes_no_appointment(client, demo):
    """Reading every page changes no appointment (GETs are safe)."""
    sign_in(client, make_user(Role.ADMIN))
    before = db.session.execute(select(Appointment.id, Appointment.sync_status, Appointment.sync_version)
                                .order_by(Appointment.id)).all()
    for url in ("/dashboard/appointments", "/dashboard/appointments?sync_status=pending", "/dashboard/queues",
                "/dashboard/trends", "/dashboard/users", f"/dashboard/appointments/{before[0].id}"):
        assert client.get(url).status_code == 200, url
    after = db.session.execute(select(Appointment.id, Appointment.sync_status, Appointment.sync_version)
                               .order_by(Appointment.id)).all()
    assert before == after
    assert all(row.sync_status in SyncStatus for row in after)


def test_csrf_page_is_only_for_the_dashboard(app, client):
    """Other rooms' routes keep Flask-WTF's plain 400 (no dashboard HTML for an API)."""
    app.add_url_rule("/probe", "probe", lambda: "ok", methods=["POST"])
    response = client.post("/probe")
    assert response.status_code == 400
    assert "Form expired" not in text_of(response) and "The CSRF token is missing." in text_of(response)
