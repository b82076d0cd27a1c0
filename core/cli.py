"""Command-line tools: `seed-demo`, `users create`, and the `appointments` group.

Other rooms add their commands to `appointments_cli` (e.g. monitoring's
`alert-sync-failures`) in their own `init_app`.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from core.accounts import AccountError, create_user, find_user
from core.extensions import db
from core.models import Company, Role
from core.seed import DEMO_SLUGS, seed_demo

users_cli = AppGroup("users", help="Manage dashboard users.")
appointments_cli = AppGroup("appointments", help="Inspect and repair appointments and their Cal.com sync.")


@click.command("seed-demo")
@click.option("--reset", is_flag=True, help="Remove the demo companies first and create them again.")
@click.option("--if-empty", is_flag=True,
              help="Only into a database that holds no company but the demo ones (what `make run` uses): "
                   "exit 1 and change nothing when it holds real data.")
def seed_demo_command(reset: bool, if_empty: bool) -> None:
    """Create demo companies, staff, services and appointments (idempotent)."""
    if if_empty:
        others = db.session.scalar(select(func.count(Company.id)).where(Company.slug.not_in(DEMO_SLUGS)))
        if others:
            click.echo(f"The database holds {others} other compan{'y' if others == 1 else 'ies'}: not a demo "
                       "database, so no demo data was added.", err=True)
            raise click.exceptions.Exit(1)
    result = seed_demo(db.session, reset=reset)
    if result.created:
        click.echo(f"Created {result.companies} demo companies with {result.appointments} appointments.")
    else:
        click.echo("Demo data is already present; nothing changed (use --reset to recreate it).")


@users_cli.command("create")
@click.option("--email", required=True, help="Login email.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.OPERATOR.value, show_default=True)
@click.option("--company", "company_slug", help="Bind the user to one company (by slug); default: all companies.")
@click.option("--password", help="Password; prompted (hidden) when omitted.")
@click.option("--if-missing", is_flag=True, help="Do nothing when the user exists (for scripts).")
def create_user_command(email: str, role: str, company_slug: str | None, password: str | None, if_missing: bool) -> None:
    """Create a dashboard user."""
    if if_missing and find_user(db.session, email) is not None:
        click.echo(f"User {email} already exists.")
        return
    company_id = None
    if company_slug:
        company = db.session.scalar(db.select(Company).where(Company.slug == company_slug))
        if company is None:
            raise click.BadParameter(f"no company with slug {company_slug!r}", param_hint="--company")
        company_id = company.id
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(db.session, email, password, role, company_id)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {user.role.value} {user.email}.")


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(appointments_cli)
