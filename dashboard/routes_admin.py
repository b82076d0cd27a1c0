"""Admin pages: the users of the dashboard."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from core.accounts import AccountError
from core.extensions import db
from core.models import Role, User
from dashboard import bp, user_admin
from dashboard.access import role_required
from dashboard.forms import ROLE_CHOICES, NewUserForm
from dashboard.rendering import fragment, wants_fragment

ALL_COMPANIES = ""


def _new_user_form() -> NewUserForm:
    form = NewUserForm()
    companies = user_admin.assignable_companies(db.session, current_user)
    choices = [SelectChoice(str(c.id), c.name) for c in companies]
    if current_user.company_id is None:
        choices.insert(0, SelectChoice(ALL_COMPANIES, "All companies"))
    form.company_id.choices = choices
    return form


def _users_page(form: NewUserForm, status: int = 200, errors: list[str] | None = None):
    users = user_admin.manageable_users(db.session, current_user)
    return render_template("dashboard/users.html", users=users, form=form, roles=ROLE_CHOICES,
                           errors=errors or []), status


@bp.get("/users")
@role_required(Role.ADMIN)
def users():
    return _users_page(_new_user_form())


@bp.post("/users")
@role_required(Role.ADMIN)
def create_user():
    form = _new_user_form()
    if not form.validate_on_submit():
        return _users_page(form, 422)
    company_id = int(form.company_id.data) if form.company_id.data not in (None, ALL_COMPANIES) else None
    try:
        user = user_admin.add_user(db.session, current_user, email=form.email.data, password=form.password.data,
                                   role=form.role.data, company_id=company_id)
    except AccountError as error:
        db.session.rollback()
        return _users_page(form, 422, [str(error)])
    flash(f"Created {user.role.value} {user.email}.", "success")
    return redirect(url_for("dashboard.users"))


def _user_change(user_id: int, change):
    """Apply one change to a user; answer with the user's row (htmx) or the page."""
    error = None
    try:
        user = change()
    except LookupError:
        abort(404)
    except AccountError as exc:
        db.session.rollback()
        error = str(exc)
        user = db.session.get(User, user_id)
    if wants_fragment(f"user-{user_id}"):
        return fragment("dashboard/_user_row.html", status=422 if error else 200, user=user, roles=ROLE_CHOICES,
                        row_message=error or "Saved.", row_ok=error is None)
    flash(error or f"Saved {user.email}.", "error" if error else "success")
    return redirect(url_for("dashboard.users"))


@bp.post("/users/<int:user_id>/role")
@role_required(Role.ADMIN)
def change_user_role(user_id: int):
    return _user_change(user_id, lambda: user_admin.change_role(db.session, current_user, user_id,
                                                                request.form.get("role", "")))


@bp.post("/users/<int:user_id>/active")
@role_required(Role.ADMIN)
def change_user_active(user_id: int):
    active = request.form.get("active") == "1"
    return _user_change(user_id, lambda: user_admin.set_active(db.session, current_user, user_id, active))
