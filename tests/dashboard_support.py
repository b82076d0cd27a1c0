"""Helpers for the dashboard tests: users, signing in, CSRF tokens, htmx headers."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from core.accounts import create_user
from core.extensions import db
from core.models import Appointment, Role, SyncStatus

PASSWORD = "correct-horse-battery"
HTMX = {"HX-Request": "true"}


def make_user(role: Role | str = Role.OPERATOR, company_id: int | None = None, email: str | None = None):
    role = Role(role)
    email = email or f"{role.value}-{company_id or 'all'}@example.com"
    return create_user(db.session, email, PASSWORD, role, company_id)


def sign_in(client, user):
    """Put the user in the session the way Flask-Login does (the login form itself is
    tested in test_dashboard_access); returns the user."""
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
    return user


def sync_counts(now, company_id: int | None = None) -> dict[str, int]:
    """What the tiles should say, counted straight from the table (independent of the
    monitoring room's SQL): stale after 1 h, ancient after 24 h (the defaults)."""

    def count(*where):
        query = select(func.count()).select_from(Appointment).where(*where)
        if company_id is not None:
            query = query.where(Appointment.company_id == company_id)
        return db.session.scalar(query)

    return {
        "pending": count(Appointment.sync_status == SyncStatus.PENDING),
        "stale": count(Appointment.sync_status == SyncStatus.PENDING,
                       Appointment.sync_requested_at < now - timedelta(hours=1)),
        "failed": count(Appointment.sync_status == SyncStatus.FAILED),
        "ancient": count(Appointment.sync_status == SyncStatus.FAILED,
                         Appointment.sync_requested_at < now - timedelta(hours=24)),
        "review": count(Appointment.requires_manual_review.is_(True)),
    }


def csrf_token(client, path: str = "/dashboard/login") -> str:
    page = client.get(path)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.get_data(as_text=True))
    assert match, f"no CSRF meta tag on {path}"
    return match.group(1)


def htmx_headers(client, target: str | None = None, **extra) -> dict[str, str]:
    """What htmx sends: HX-Request, the target's id and the CSRF header from base.html."""
    headers = {**HTMX, "X-CSRFToken": csrf_token(client, "/dashboard/queues")}
    if target:
        headers["HX-Target"] = target
    headers.update(extra)
    return headers


def text_of(response) -> str:
    return response.get_data(as_text=True)


def squash(html: str) -> str:
    """Tags removed and whitespace collapsed, to assert on what a reader sees."""
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
    return re.sub(r" ([:;,.])", r"\1", text)
