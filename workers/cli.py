"""The sync room's command: `flask --app wsgi appointments retry-sync ID… [--note]`.

Registered on the shared `appointments` group (see `core.cli`) by this room's
`init_app`, which the factory calls because `Config.ROOMS` names `workers.cli`.
"""

from __future__ import annotations

import click
from flask import Flask

from core.cli import appointments_cli
from core.extensions import db
from core.sync_control import retry_sync
from workers.backoff import BackoffPolicy


@click.command("retry-sync")
@click.argument("appointment_ids", nargs=-1, required=True, type=click.IntRange(min=1))
@click.option("--note", help="Why the sync is retried (kept in the audit log).")
def retry_sync_command(appointment_ids: tuple[int, ...], note: str | None) -> None:
    """Retry the Cal.com sync of appointments: clears manual review, resets the
    attempt budget and enqueues a fresh sync. Exits 1 if any id could not be retried."""
    note = note.strip() if note and note.strip() else None
    results = retry_sync(db.session, appointment_ids, actor="cli", note=note)
    failures = 0
    for result in results:
        if result.ok:
            click.echo(f"{result.appointment_id}: {result.message}")
        else:
            failures += 1
            click.echo(f"{result.appointment_id}: not retried: {result.message}", err=True)
    if failures:
        raise click.exceptions.Exit(1)


def init_app(app: Flask) -> None:
    # Refuse a nonsensical retry policy when the app starts, not at the first failure.
    BackoffPolicy.from_config(app.config)
    appointments_cli.add_command(retry_sync_command)


__all__ = ["init_app", "retry_sync_command"]
