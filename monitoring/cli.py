"""The monitoring room's wiring: settings check at start and the alert command.

`flask --app wsgi appointments alert-sync-failures [--verbose] [--dry-run] [--company ID]`
prints the sync health and its alerts, sends what the notifiers have not been told
yet (unless `--dry-run`) and exits 0 when healthy or degraded, 1 when critical, so
cron or a CI job can act on it. A bad `--company` exits 2 with a message.
"""

from __future__ import annotations

import logging

import click
from flask import Flask

from core.cli import appointments_cli
from core.extensions import db
from core.models import Company
from monitoring.alerting import AlertRun, run_alert_check
from monitoring.breakdown import describe_appointments
from monitoring.digest import scope_lines
from monitoring.notifiers import redact
from monitoring.settings import MonitoringSettings


@click.command("alert-sync-failures")
@click.option("--verbose", "-v", is_flag=True, help="Also list the appointments behind each alert.")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send nothing and change nothing.")
@click.option("--company", "company_ref", metavar="ID", help="Only this company (its id or slug).")
def alert_sync_failures_command(verbose: bool, dry_run: bool, company_ref: str | None) -> None:
    """Check sync health, notify, exit 0 (healthy/degraded) or 1 (critical)."""
    company = _find_company(company_ref) if company_ref is not None else None
    run = run_alert_check(db.session, company_id=company.id if company else None,
                          company_name=company.name if company else None, dry_run=dry_run)
    _print_run(run, verbose)
    click.get_current_context().exit(run.exit_code)


def _find_company(ref: str) -> Company:
    ref = ref.strip()
    if not ref:
        raise click.BadParameter("give a company id or slug", param_hint="--company")
    if ref.isdigit():
        company = db.session.get(Company, int(ref))
    else:
        company = db.session.scalar(db.select(Company).where(Company.slug == ref))
    if company is None:
        known = ", ".join(f"{c.id} ({c.slug})" for c in db.session.scalars(db.select(Company).order_by(Company.id)))
        raise click.BadParameter(f"no company {ref!r}; known companies: {known or 'none'}", param_hint="--company")
    return company


def _print_run(run: AlertRun, verbose: bool) -> None:
    echo = click.echo
    echo(f"Sync health: {run.health.upper()} — {run.company_name} ({run.metrics['generated_at']})")
    for line in scope_lines(run.scope):
        echo(f"  {line}")
    if not run.alerts:
        echo("No open alerts.")
    else:
        echo(f"Alerts ({len(run.alerts)}):")
        for alert in run.alerts:
            echo(f"  {alert.severity.upper():8} {alert.headline}")
            echo(f"           What to do: {alert.action_text}")
            if alert.appointment_ids:
                echo("           Appointments: " + ", ".join(map(str, alert.appointment_ids)))
            if alert.dashboard_url:
                echo(f"           Open: {alert.dashboard_url}")
    if verbose:
        ids = list(dict.fromkeys(i for alert in run.alerts for i in alert.appointment_ids))
        echo(f"Appointments behind the alerts ({len(ids)}):" if ids else "No appointments behind the alerts.")
        for line in describe_appointments(db.session, ids):
            echo(f"  {line.render()}")
    _print_notifications(run)


def _print_notifications(run: AlertRun) -> None:
    if run.skipped and run.skipped.startswith("dry run"):
        if not run.planned:
            click.echo("Dry run: nothing new to send.")
        for delivery in run.planned:
            event = delivery.event
            click.echo(f"Dry run: would send to {delivery.channel}: {event.label} {event.headline}")
        return
    if run.skipped:
        click.echo(f"Notifications: {run.skipped}")
        return
    sent: dict[str, int] = {}
    for delivery in run.delivered:
        sent[delivery.channel] = sent.get(delivery.channel, 0) + 1
    parts = [f"{channel} {count} sent" for channel, count in sent.items()]
    parts += [f"{channel} FAILED ({reason})" for channel, reason in run.failures]
    click.echo("Notifications: " + ("; ".join(parts) if parts else "nothing new to send"))


class _RedactSecrets(logging.Filter):
    """Keep secrets out of library debug lines (urllib3 logs the URL path it posts to,
    and a Slack webhook's path is its secret)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            cleaned = redact(message, tuple(self.secrets))
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


_redact_filter = _RedactSecrets()


def init_app(app: Flask) -> None:
    # Checked at start: a wrong threshold or half-configured notifier fails loudly now.
    settings = MonitoringSettings.from_config(app.config)
    app.extensions["monitoring_settings"] = settings
    _redact_filter.secrets.update(settings.secrets)
    logging.getLogger("urllib3.connectionpool").addFilter(_redact_filter)
    appointments_cli.add_command(alert_sync_failures_command)
