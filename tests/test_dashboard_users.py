"""Admins manage users: create, change role, deactivate — within their company."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.accounts import check_password
from core.extensions import db
from core.models import AuditEvent, Company, Role, User
from tests.dashboard_support import csrf_token, htmx_headers, make_user, sign_in, squash, text_of


@pytest.fixture
def companies(app):
    salon, garage = Company(name="Salon", slug="salon"), Company(name="Garage", slug="garage")
    db.session.add_all([salon, garage])
    db.session.commit()
    return salon, garage


def create(client, **fields):
    data = {"email": "new@example.com", "password": "a-long-password", "role": "operator", "company_id": "",
            "csrf_token": csrf_token(client, "/dashboard/users"), **fields}
    return client.post("/dashboard/users", data=data)


def test_admin_creates_a_user_who_can_then_sign_in(client, companies):
    salon, _ = companies
    admin = make_user(Role.ADMIN)
    sign_in(client, admin)
    response = create(client, company_id=str(salon.id))
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "new@example.com"))
    assert user.role == Role.OPERATOR and user.company_id == salon.id and check_password(user, "a-long-password")
    assert "Created operator new@example.com." in squash(text_of(client.get("/dashboard/users")))
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user_created"))
    assert event.actor == admin.email and event.details["user_id"] == user.id


@pytest.mark.parametrize("fields, message", [
    ({"password": "short"}, "Field must be between 10 and 1024 characters long."),
    ({"email": "not-an-email"}, "'not-an-email' is not an email address"),
    ({"role": "superuser"}, "Not a valid choice."),
    ({"email": "admin-all@example.com"}, "a user with email admin-all@example.com already exists"),
])
def test_bad_new_user_is_refused_with_a_reason(client, companies, fields, message):
    sign_in(client, make_user(Role.ADMIN))
    response = create(client, **fields)
    assert response.status_code == 422
    assert message in text_of(response).replace("&#39;", "'")
    assert db.session.scalar(select(User).where(User.email == "new@example.com")) is None


def test_admin_changes_a_role_in_place(client, companies):
    sign_in(client, make_user(Role.ADMIN))
    viewer = make_user(Role.VIEWER)
    response = client.post(f"/dashboard/users/{viewer.id}/role", data={"role": "operator"},
                           headers=htmx_headers(client, target=f"user-{viewer.id}"))
    assert response.status_code == 200
    assert text_of(response).lstrip().startswith(f'<tr id="user-{viewer.id}"') and "Saved." in text_of(response)
    db.session.refresh(viewer)
    assert viewer.role == Role.OPERATOR


def test_admin_deactivates_and_reactivates(client, companies):
    sign_in(client, make_user(Role.ADMIN))
    operator = make_user(Role.OPERATOR)
    response = client.post(f"/dashboard/users/{operator.id}/active", data={"active": "0"},
                           headers=htmx_headers(client, target=f"user-{operator.id}"))
    assert "deactivated" in text_of(response) and "Reactivate" in text_of(response)
    db.session.refresh(operator)
    assert not operator.active
    client.post(f"/dashboard/users/{operator.id}/active", data={"active": "1"},
                headers=htmx_headers(client, target=f"user-{operator.id}"))
    db.session.refresh(operator)
    assert operator.active
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["user_deactivated", "user_activated"]


def test_admin_cannot_demote_or_deactivate_themselves(client, companies):
    admin = make_user(Role.ADMIN)
    sign_in(client, admin)
    headers = htmx_headers(client, target=f"user-{admin.id}")
    demote = client.post(f"/dashboard/users/{admin.id}/role", data={"role": "viewer"}, headers=headers)
    assert demote.status_code == 422 and "you cannot change your own role" in text_of(demote)
    off = client.post(f"/dashboard/users/{admin.id}/active", data={"active": "0"}, headers=headers)
    assert off.status_code == 422 and "you cannot deactivate yourself" in text_of(off)
    db.session.refresh(admin)
    assert admin.role == Role.ADMIN and admin.active


def test_company_admin_manages_only_their_company(client, companies):
    salon, garage = companies
    sign_in(client, make_user(Role.ADMIN, company_id=salon.id))
    theirs = make_user(Role.VIEWER, company_id=garage.id, email="garage@example.com")
    ours = make_user(Role.VIEWER, company_id=salon.id, email="salon@example.com")
    page = text_of(client.get("/dashboard/users"))
    assert "salon@example.com" in page and "garage@example.com" not in page
    assert '<option value="">All companies</option>' not in page
    headers = htmx_headers(client, target=f"user-{theirs.id}")
    assert client.post(f"/dashboard/users/{theirs.id}/role", data={"role": "admin"}, headers=headers).status_code == 404
    assert client.post(f"/dashboard/users/{theirs.id}/active", data={"active": "0"}, headers=headers).status_code == 404
    db.session.refresh(theirs)
    assert theirs.role == Role.VIEWER and theirs.active
    # A new user is bound to the admin's company, whatever the form says.
    refused = create(client, company_id=str(garage.id))
    assert refused.status_code == 422
    assert create(client, email="new2@example.com", company_id=str(salon.id)).status_code == 302
    assert db.session.scalar(select(User).where(User.email == "new2@example.com")).company_id == salon.id
    assert ours.company_id == salon.id


def test_unknown_user_is_404(client, companies):
    sign_in(client, make_user(Role.ADMIN))
    response = client.post("/dashboard/users/4242/role", data={"role": "viewer"},
                           headers=htmx_headers(client, target="user-4242"))
    assert response.status_code == 404


def test_new_user_signs_in_with_their_password(client, companies):
    sign_in(client, make_user(Role.ADMIN))
    create(client, email="fresh@example.com", password="fresh-password-1")
    token = csrf_token(client, "/dashboard/queues")
    client.post("/dashboard/logout", data={"csrf_token": token})
    response = client.post("/dashboard/login", data={"email": "fresh@example.com", "password": "fresh-password-1",
                                                     "csrf_token": csrf_token(client)})
    assert response.status_code == 302
