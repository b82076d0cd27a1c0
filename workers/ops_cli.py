"""The operations room's commands.

    flask --app wsgi appointments reconcile [--from DATE --to DATE] [--dry-run]
    flask --app wsgi customers export (--phone +49… | --id N) [--company ID]
    flask --app wsgi customers erase  (--phone +49… | --id N) [--company ID] --yes [--note TEXT]

Registered by this room's `init_app` (`Config.ROOMS` names `workers.ops_cli`).
"""

from __future__ import annotations

import json
from datetime import date

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from calcom.rate_budget import budget_settings
from core.cli import appointments_cli
from core.clock import utcnow
from core.extensions import db
from core.models import ReconciliationRun
from core.privacy import PrivacyError, erase_customer, export_customer, find_customers
from workers.reconcile import KINDS, day_window, default_window, reconcile

customers_cli = AppGroup("customers", help="Export or erase one customer's personal data.")


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from None


@click.command("reconcile")
@click.option("--from", "from_day", metavar="DATE", help="First day (YYYY-MM-DD, UTC); with --to.")
@click.option("--to", "to_day", metavar="DATE", help="Last day, included (YYYY-MM-DD, UTC); with --from.")
@click.option("--dry-run", is_flag=True, help="Report the drift; change nothing here or in Cal.com.")
def reconcile_command(from_day: str | None, to_day: str | None, dry_run: bool) -> None:
    """Compare appointments with Cal.com's bookings; repair what is safe, flag the rest.

    Without --from/--to: from RECONCILE_DAYS_BACK days ago to RECONCILE_DAYS_AHEAD
    days ahead. Exits 0 without drift, 1 with drift, 2 on bad options, 3 when some
    event types could not be compared (Cal.com errors)."""
    start, end = _day(from_day, "--from"), _day(to_day, "--to")
    if (start is None) != (end is None):
        raise click.UsageError("give both --from and --to, or neither")
    config = current_app.config
    if start is None:
        window = default_window(utcnow(), config["RECONCILE_DAYS_BACK"], config["RECONCILE_DAYS_AHEAD"])
    else:
        try:
            window = day_window(start, end)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    run = reconcile(db.session, window, dry_run=dry_run, trigger="cli")
    _print_run(run)
    if run.errors:
        raise click.exceptions.Exit(3)
    if run.drift_total:
        raise click.exceptions.Exit(1)


def _print_run(run: ReconciliationRun) -> None:
    mode = " (dry run: nothing changed)" if run.dry_run else ""
    click.echo(f"Reconciliation run {run.id}{mode}: {run.window_from:%Y-%m-%d %H:%M} – "
               f"{run.window_to:%Y-%m-%d %H:%M} UTC, {run.event_types} event type(s), "
               f"{run.bookings_seen} Cal.com booking(s), {run.segments_seen} local segment(s), "
               f"{run.calcom_requests} Cal.com request(s).")
    click.echo("Drift: " + (", ".join(f"{kind} {run.counts.get(kind, 0)}" for kind in KINDS)
                            if run.drift_total else "none") + f" — repaired {run.repaired}, flagged {run.flagged}.")
    for finding in run.findings:
        click.echo(f"  [{finding['kind']}, {finding['handling']}] {finding['message']}")
    if len(run.findings) < run.drift_total:
        click.echo(f"  … and {run.drift_total - len(run.findings)} more (see the log).")
    for error in run.errors:
        click.echo(f"  ERROR {error}", err=True)


def _customers(phone: str | None, customer_id: int | None, company_id: int | None):
    try:
        found = find_customers(db.session, customer_id=customer_id, phone=phone, company_id=company_id)
    except PrivacyError as exc:
        raise click.UsageError(str(exc)) from None
    if not found:
        raise click.ClickException("no such customer")
    return found


_who = [
    click.option("--phone", help="The customer's phone number (international format)."),
    click.option("--id", "customer_id", type=int, help="The customer's id."),
    click.option("--company", "company_id", type=click.IntRange(min=1), help="Only this company's customer."),
]


def _with_who(command):
    for option in reversed(_who):
        command = option(command)
    return command


@customers_cli.command("export")
@_with_who
def export_command(phone: str | None, customer_id: int | None, company_id: int | None) -> None:
    """Print everything held about a customer (and their appointments) as JSON."""
    found = _customers(phone, customer_id, company_id)
    exports = [export_customer(db.session, customer) for customer in found]
    click.echo(json.dumps(exports[0] if len(exports) == 1 else exports, ensure_ascii=False, indent=2))


@customers_cli.command("erase")
@_with_who
@click.option("--yes", "confirmed", is_flag=True, help="Confirm: this cannot be undone.")
@click.option("--note", help="Why (e.g. the request's ticket number), kept in the audit log.")
def erase_command(phone: str | None, customer_id: int | None, company_id: int | None, confirmed: bool,
                  note: str | None) -> None:
    """Anonymise a customer: name, phone, e-mail and appointment notes are removed;
    the appointments stay. Needs --yes."""
    found = _customers(phone, customer_id, company_id)
    if not confirmed:
        ids = ", ".join(str(c.id) for c in found)
        raise click.UsageError(f"this erases customer {ids} for good; repeat with --yes to confirm")
    for customer in found:
        kept = erase_customer(db.session, customer, actor="cli", note=(note or "").strip() or None)
        click.echo(f"Customer {customer.id} erased; {kept} appointment(s) kept.")


def init_app(app: Flask) -> None:
    # Refuse a nonsensical rate share at start, not in the middle of the night.
    budget_settings(app.config["CALCOM_RATE_LIMIT_PER_MINUTE"], app.config["RECONCILE_RATE_SHARE_PERCENT"])
    appointments_cli.add_command(reconcile_command)
    app.cli.add_command(customers_cli)


__all__ = ["customers_cli", "init_app", "reconcile_command"]
