"""Who may see and do what on the dashboard.

* Every dashboard URL needs a signed-in, active user, except the login page. The
  check runs before every request of the blueprint, so a new route cannot forget it.
* Roles are ordered viewer < operator < admin (`User.can`): viewers read, operators
  retry and resolve, admins also manage users. `role_required` guards a view.
* A user bound to a company sees only that company (`company_scope`); every query
  and every action takes that scope.
* Every state-changing request carries a CSRF token (Flask-WTF's `CSRFProtect`,
  switched on by the factory); htmx sends it in the `X-CSRFToken` header that
  `templates/base.html` sets with `hx-headers`.
"""

from __future__ import annotations

from functools import wraps
from typing import Callable
from urllib.parse import urlsplit

from flask import Flask, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import Forbidden

from core.extensions import db, login_manager
from core.models import Role, User
from dashboard import bp

# Views reachable without a session.
PUBLIC_ENDPOINTS = {"dashboard.login"}


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The session's user; a deactivated user is signed out on their next request."""
    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    return user if user is not None and user.active else None


@bp.before_request
def require_login():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def _wants_json() -> bool:
    return request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def unauthorized():
    """Anonymous: a browser goes to the login page (and comes back afterwards); an
    htmx request gets 401 with `HX-Redirect` so the whole page goes there, not a
    login form inside a table cell; a JSON endpoint gets a 401 body."""
    if _wants_json():
        return jsonify(error="login required"), 401
    back_to = request.full_path.rstrip("?") if request.method == "GET" else None
    if _is_htmx():
        back_to = _path_of(request.headers.get("HX-Current-URL")) or back_to
    login_url = url_for("dashboard.login", next=back_to) if back_to else url_for("dashboard.login")
    if _is_htmx():
        return "", 401, {"HX-Redirect": login_url}
    return redirect(login_url)


def _path_of(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def safe_next(target: str | None) -> str | None:
    """Only follow a `next` that stays on the dashboard of this site (no open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(bp.url_prefix + "/") or "\\" in target:
        return None
    return target


def role_required(role: Role) -> Callable:
    """Refuse (403) a signed-in user whose role is below `role`."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.can(role):
                raise Forbidden(f"This needs the {role.value} role; you are signed in as {current_user.role.value}.")
            return view(*args, **kwargs)

        return wrapper

    return decorate


def company_scope() -> int | None:
    """The company the current user is limited to, or None for all companies."""
    return current_user.company_id


def _error_page(status: int, title: str, message: str):
    if _wants_json():
        return jsonify(error=message), status
    template = "dashboard/_error.html" if _is_htmx() else "dashboard/error.html"
    return render_template(template, status=status, title=title, message=message), status


@bp.errorhandler(403)
def forbidden(error):
    return _error_page(403, "Not allowed", error.description or "You may not do this.")


@bp.errorhandler(404)
def not_found(error):
    return _error_page(404, "Not found", "There is nothing here, or it belongs to another company.")


def csrf_failed(error: CSRFError):
    # Registered app-wide (Flask-WTF raises before blueprint handlers run); other
    # rooms keep the plain 400.
    if request.blueprint != bp.name:
        return error
    return _error_page(400, "Form expired", f"{error.description} Reload the page and try again.")


def init_app(app: Flask) -> None:
    # Blueprint handlers are declared at import time above: a blueprint cannot be
    # changed once registered, and tests build many apps from the same blueprint.
    login_manager.login_view = "dashboard.login"
    login_manager.unauthorized_handler(unauthorized)
    app.register_error_handler(CSRFError, csrf_failed)
