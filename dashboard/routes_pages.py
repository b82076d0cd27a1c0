"""The operator pages: overview tiles, appointment list and detail with retry/resolve,
trends and queues. Routes stay thin: they parse input, call a plain function, render."""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from core.clock import utcnow
from core.extensions import db
from core.models import Appointment, Role
from core.redis_client import get_redis
from core.sync_control import RESOLUTIONS, ActionResult, resolve_manual_review, retry_sync
from dashboard import bp, health_tiles, metrics_source, queue_snapshot, trends
from dashboard.access import company_scope, role_required
from dashboard.appointment_queries import (
    AgeLimits,
    Page,
    appointment_page,
    audit_trail,
    filter_choices,
    load_appointment,
    sync_timeline,
)
from dashboard.formatting import limit_text
from dashboard.list_filters import SORTS, SYNC_STATUSES, FilterError, ListFilters, parse_filters
from dashboard.rendering import fragment, page_or_fragment, wants_fragment

MAX_NOTE = 2000
MAX_BULK = 100


# --- overview ---------------------------------------------------------------------

def _overview_context(refresh: bool = False) -> dict:
    metrics = metrics_source.current_metrics(refresh=refresh)
    scope = health_tiles.scope_for(metrics, company_scope())
    return {
        "tiles": health_tiles.build_tiles(scope, AgeLimits.from_settings()),
        "alerts": health_tiles.alert_rows(scope),
        "generated_at": metrics.get("generated_at"),
        "checked_at": utcnow(),
        "poll_seconds": current_app.config["DASHBOARD_POLL_SECONDS"],
    }


@bp.get("/")
def overview():
    """The six tiles; an htmx poll of this URL gets the tiles fragment alone."""
    return page_or_fragment("dashboard/overview.html", "dashboard/_tiles.html", target="tiles",
                            **_overview_context())


@bp.post("/refresh")
def refresh_metrics():
    """Recompute the metrics now instead of waiting for the next scheduled refresh.

    Changes no appointment, so viewers may use it too; it is a POST because it does
    work and writes the cache."""
    context = _overview_context(refresh=True)
    if wants_fragment():
        return fragment("dashboard/_tiles.html", **context)
    return redirect(url_for("dashboard.overview"))


# --- appointment list -------------------------------------------------------------

def _list_context(filters: ListFilters, errors: list[str] = (), **extra) -> dict:
    scope, limits = company_scope(), AgeLimits.from_settings()
    if errors:
        # Filters that cannot be applied list nothing, rather than everything.
        page = Page(items=[], total=0, page=1, per_page=filters.per_page)
    else:
        page = appointment_page(db.session, filters, company_id=scope, now=utcnow(),
                                tz_name=current_app.config["TZ_DEFAULT"], limits=limits)
    ages = {"stale": f"Stale (pending over {limit_text(limits.stale_after)})",
            "ancient": f"Ancient (failed over {limit_text(limits.ancient_after)})"}
    choices = filter_choices(db.session, company_id=scope)
    options = {  # (value, label) pairs for the filter form's selects
        "companies": [(c.id, c.name) for c in choices.companies],
        "branches": [(b.id, b.name) for b in choices.branches],
        "error_codes": [(code, code) for code in choices.error_codes],
    }
    return {
        "filters": filters, "page": page, "options": options,
        "scoped": scope is not None, "sync_statuses": SYNC_STATUSES, "ages": ages, "sorts": SORTS,
        "can_act": current_user.can(Role.OPERATOR), "errors": list(errors), "action_errors": [], "outcome": None,
        **extra,
    }


def _parse_or_errors(args) -> tuple[ListFilters, list[str]]:
    per_page = current_app.config["DASHBOARD_PAGE_SIZE"]
    try:
        return parse_filters(args, per_page_default=per_page), []
    except FilterError as error:
        return ListFilters(per_page=per_page, default_per_page=per_page), error.messages


@bp.get("/appointments")
def appointments():
    filters, errors = _parse_or_errors(request.args)
    list_url = url_for("dashboard.appointments", **filters.to_args())
    context = _list_context(filters, errors=errors)
    # The address bar shows the canonical URL of the filters (no empty fields), so
    # what an operator copies is the list they see.
    partial = wants_fragment("appointment-list")
    headers = {"HX-Push-Url": list_url} if partial and not errors else None
    # Bad filters: 400 for a page load; 422 for htmx, which swaps 422 (base.html's
    # htmx-config) so the message shows where the list was.
    status = (422 if partial else 400) if errors else 200
    return page_or_fragment("dashboard/appointments.html", "dashboard/_appointment_list.html",
                            target="appointment-list", status=status, headers=headers, **context)


def _note() -> str | None:
    """The operator's note: a form field, or the answer to htmx's `hx-prompt`."""
    note = request.form.get("note")
    if note is None:
        note = request.headers.get("HX-Prompt")
    note = (note or "").strip()
    return note[:MAX_NOTE] if note else None


def _resolution() -> str | None:
    resolution = request.form.get("resolution") or "acknowledged"
    return resolution if resolution in RESOLUTIONS else None


def _run_action(action: str, ids: list[int], note: str, resolution: str) -> list[ActionResult]:
    scope = company_scope()
    if action == "retry":
        return retry_sync(db.session, ids, actor=current_user.email, user_id=current_user.id, note=note,
                          company_id=scope)
    return [resolve_manual_review(db.session, appointment_id, actor=current_user.email, note=note,
                                  resolution=resolution, user_id=current_user.id, company_id=scope)
            for appointment_id in ids]


@bp.post("/appointments/bulk")
@role_required(Role.OPERATOR)
def bulk_action():
    """Retry or resolve the selected rows, then show the list again with what happened."""
    filters, _ = _parse_or_errors(request.form)
    action = request.form.get("action")
    raw_ids = request.form.getlist("selected")
    errors = []
    if action not in ("retry", "resolve"):
        errors.append("Choose an action: retry sync or resolve review.")
    if not raw_ids:
        errors.append("Select at least one appointment.")
    elif len(raw_ids) > MAX_BULK or not all(i.isdigit() for i in raw_ids):
        errors.append(f"Select at most {MAX_BULK} appointments from the list.")
    note = _note()
    if note is None:
        errors.append("Write a note for the audit log: why is this being done?")
    resolution = _resolution()
    if resolution is None:
        errors.append(f"Resolution must be one of: {', '.join(RESOLUTIONS)}.")
    results = [] if errors else _run_action(action, [int(i) for i in raw_ids], note, resolution)
    outcome = {"action": action, "results": results} if results else None
    if not wants_fragment():
        for message in errors:
            flash(message, "error")
        if outcome:
            done = sum(r.ok for r in results)
            flash(f"{done} of {len(results)} appointments: {action} done.", "success")
        return redirect(url_for("dashboard.appointments", **filters.to_args()))
    context = _list_context(filters, action_errors=errors, outcome=outcome)
    # 422 keeps the list on screen with the form's problems (htmx is told to swap it).
    return fragment("dashboard/_appointment_list.html", status=422 if errors else 200, **context)


def _appointment_or_404(appointment_id: int) -> Appointment:
    appointment = load_appointment(db.session, appointment_id, company_id=company_scope())
    if appointment is None:
        abort(404)
    return appointment


def _detail_context(appointment: Appointment, **extra) -> dict:
    return {
        "appointment": appointment,
        "attempts": sync_timeline(db.session, appointment.id),
        "audit_events": audit_trail(db.session, appointment.id),
        "calcom_url": _calcom_url(appointment.calcom_booking_uid),
        "can_act": current_user.can(Role.OPERATOR),
        "resolutions": RESOLUTIONS,
        "outcome": None, "action_errors": [], **extra,
    }


def _calcom_url(uid: str | None) -> str | None:
    return current_app.config["CALCOM_BOOKING_URL"].format(uid=uid) if uid else None


def _single_action(appointment_id: int, action: str):
    """Retry or resolve one appointment; answers with the row or the detail panel,
    whichever the request came from, showing what happened."""
    _appointment_or_404(appointment_id)
    note, resolution = _note(), _resolution()
    errors = []
    if note is None:
        errors.append("Write a note for the audit log: why is this being done?")
    if resolution is None:
        errors.append(f"Resolution must be one of: {', '.join(RESOLUTIONS)}.")
    result = None if errors else _run_action(action, [appointment_id], note, resolution)[0]
    if result is not None and not result.ok:
        errors.append(result.message)
    # Read the appointment again: the action committed and changed it.
    db.session.expire_all()
    appointment = _appointment_or_404(appointment_id)
    outcome = {"action": action, "ok": result.ok if result else False,
               "message": result.message if result and result.ok else None}
    status = 422 if errors else 200
    if wants_fragment(f"appointment-row-{appointment_id}"):
        return fragment("dashboard/_appointment_row.html", status=status, appointment=appointment,
                        can_act=current_user.can(Role.OPERATOR), scoped=company_scope() is not None,
                        row_outcome={**outcome, "errors": errors})
    if wants_fragment():
        return fragment("dashboard/_appointment_panel.html", status=status,
                        **_detail_context(appointment, outcome=outcome, action_errors=errors))
    for message in errors:
        flash(message, "error")
    if result is not None and result.ok:
        flash(f"Appointment {appointment_id}: {result.message}.", "success")
    return redirect(url_for("dashboard.appointment_detail", appointment_id=appointment_id))


@bp.post("/appointments/<int:appointment_id>/retry")
@role_required(Role.OPERATOR)
def retry_appointment(appointment_id: int):
    return _single_action(appointment_id, "retry")


@bp.post("/appointments/<int:appointment_id>/resolve")
@role_required(Role.OPERATOR)
def resolve_appointment(appointment_id: int):
    return _single_action(appointment_id, "resolve")


@bp.get("/appointments/<int:appointment_id>")
def appointment_detail(appointment_id: int):
    appointment = _appointment_or_404(appointment_id)
    return page_or_fragment("dashboard/appointment.html", "dashboard/_appointment_panel.html",
                            target="appointment-panel", **_detail_context(appointment))


# --- trends -----------------------------------------------------------------------

def _scope() -> dict:
    return health_tiles.scope_for(metrics_source.current_metrics(), company_scope())


@bp.get("/trends")
def trends_page():
    return render_template("dashboard/trends.html", failure_windows=trends.FAILURE_WINDOWS,
                           scoped=company_scope() is not None)


@bp.get("/trends/daily-success.json")
def trend_daily_success():
    return jsonify(trends.daily_success(_scope()))


@bp.get("/trends/failure-reasons.json")
def trend_failure_reasons():
    window = request.args.get("window", "7d")
    if window not in trends.FAILURE_WINDOWS:
        return jsonify(error=f"window must be one of: {', '.join(trends.FAILURE_WINDOWS)}"), 400
    return jsonify(trends.failure_reasons(_scope(), window))


@bp.get("/trends/retry-success.json")
def trend_retry_success():
    return jsonify(trends.retry_success(db.session, company_id=company_scope(), now=utcnow()))


@bp.get("/trends/calcom.json")
def trend_calcom():
    scope = company_scope()
    # The Cal.com client's live window counts calls of every company: only for users
    # who may see all companies.
    live = metrics_source.current_metrics().get("overall", {}).get("calcom_api") if scope is None else None
    return jsonify(trends.calcom_calls(db.session, company_id=scope, now=utcnow(), live=live))


# --- queues -----------------------------------------------------------------------

@bp.get("/queues")
def queues():
    snapshot = queue_snapshot.take_snapshot(get_redis())
    return page_or_fragment("dashboard/queues.html", "dashboard/_queues.html", target="queues",
                            snapshot=snapshot, checked_at=utcnow(),
                            poll_seconds=current_app.config["DASHBOARD_POLL_SECONDS"])
