"""Sign in and sign out."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from core.accounts import check_password, find_user, hash_password
from core.clock import utcnow
from core.extensions import db
from core.models import User
from core.redis_client import get_redis
from dashboard import bp, login_throttle
from dashboard.access import safe_next
from dashboard.forms import LoginForm

# Verified against when the email is unknown, so that "no such user" takes as long
# as "wrong password" and the timing does not reveal which emails exist.
_decoy_user: User | None = None


def _decoy() -> User:
    global _decoy_user
    if _decoy_user is None:
        _decoy_user = User(email="decoy@invalid", password_hash=hash_password("decoy-password-never-matches"))
    return _decoy_user


def _limits() -> login_throttle.LoginLimits:
    config = current_app.config
    return login_throttle.LoginLimits(
        per_account=config["LOGIN_MAX_ATTEMPTS"],
        per_address=config["LOGIN_MAX_ATTEMPTS_PER_IP"],
        window_seconds=config["LOGIN_LOCKOUT_SECONDS"],
    )


def _clear_session() -> None:
    session.clear()
    # Flask-WTF caches this request's CSRF token in `g`; it belonged to the old session.
    g.pop("csrf_token", None)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or url_for("dashboard.overview"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        r, address, email, limits = get_redis(), request.remote_addr or "unknown", form.email.data, _limits()
        wait = login_throttle.seconds_locked(r, address, email, limits)
        if wait:
            minutes = max(1, round(wait / 60))
            form.form_errors.append(f"Too many failed sign-ins. Try again in about {minutes} minute(s).")
            status = 429
        else:
            user = find_user(db.session, email)
            password_ok = check_password(user or _decoy(), form.password.data)
            if user is not None and password_ok and user.active:
                login_throttle.record_success(r, address, email)
                # A fresh session: nothing from before the sign-in carries over.
                _clear_session()
                login_user(user)
                user.last_login_at = utcnow()
                db.session.commit()
                return redirect(safe_next(request.args.get("next")) or url_for("dashboard.overview"))
            login_throttle.record_failure(r, address, email, limits)
            # One message for every failure: it must not tell which emails exist.
            form.form_errors.append("Email or password is wrong, or the account is deactivated.")
            status = 401
    elif request.method == "POST":
        status = 400
    return render_template("dashboard/login.html", form=form), status


@bp.post("/logout")
def logout():
    logout_user()
    _clear_session()
    flash("You are signed out.", "info")
    return redirect(url_for("dashboard.login"))
