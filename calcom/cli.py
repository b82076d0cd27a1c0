"""`flask --app wsgi calcom …`: serve the local Cal.com emulator (`emulator`); map a
staff member's own Cal.com event type for a service (`staff-event-type`).

Registered by the factory through `Config.ROOMS` ("calcom.cli").
"""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.serving import make_server

from calcom.emulator import Emulator
from calcom.emulator_faults import FaultSettingsError
from calcom.emulator_state import hosts_and_event_types_from_json
from calcom.emulator_world import load_world
from core.event_types import owner_of_event_type, personal_event_types, set_staff_event_type
from core.extensions import db
from core.models import Service, Staff

calcom_cli = AppGroup("calcom", help="Cal.com tools: the local Cal.com emulator, staff members' own event types.")


def build_emulator(config, *, faults, seed, rate_limit, webhook_url, webhook_secret, api_key) -> Emulator:
    try:
        return Emulator(seed=seed, rate_limit=rate_limit, faults=faults, webhook_url=webhook_url,
                        webhook_secret=webhook_secret, api_key=api_key)
    except (FaultSettingsError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--faults / CALCOM_EMULATOR_FAULTS") from None


@calcom_cli.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5555, show_default=True, type=int, help="Port to listen on.")
@click.option("--from-db/--empty", default=True, show_default=True,
              help="Build hosts and event types from Slotguard's staff, branches and services, and pre-load "
                   "the bookings of appointments already synced.")
@click.option("--world", "world_file", type=click.Path(exists=True, dir_okay=False),
              help='JSON file {"hosts": [...], "eventTypes": [...]} with more hosts and event types.')
@click.option("--webhook-url", help="Where to send signed webhooks [CALCOM_EMULATOR_WEBHOOK_URL].")
@click.option("--faults", help="Fault settings, JSON or key=value pairs [CALCOM_EMULATOR_FAULTS].")
@click.option("--seed", type=int, help="Seed for faults and booking uids [CALCOM_EMULATOR_SEED].")
@click.option("--rate-limit", type=int, help="Requests per minute per API key [CALCOM_EMULATOR_RATE_LIMIT].")
@click.option("--api-key", help="Accept only this API key (default: any key).")
def emulator_command(host, port, from_db, world_file, webhook_url, faults, seed, rate_limit, api_key):
    """Serve a stateful Cal.com API v2 emulator with fault injection."""
    config = current_app.config
    # The webhook secret is read from the environment only, never from the command line.
    secret = config.get("CALCOM_EMULATOR_WEBHOOK_SECRET") or config.get("CALCOM_WEBHOOK_SECRET")
    emulator = build_emulator(
        config,
        faults=faults if faults is not None else config.get("CALCOM_EMULATOR_FAULTS"),
        seed=seed if seed is not None else config["CALCOM_EMULATOR_SEED"],
        rate_limit=rate_limit if rate_limit is not None else config["CALCOM_EMULATOR_RATE_LIMIT"],
        webhook_url=webhook_url or config.get("CALCOM_EMULATOR_WEBHOOK_URL"),
        webhook_secret=secret,
        api_key=api_key,
    )
    if from_db:
        try:
            summary = load_world(emulator.state, db.session)
        except SQLAlchemyError as exc:
            raise click.ClickException(
                f"cannot read Slotguard's database ({type(exc).__name__}); run `flask db upgrade` and "
                "`flask seed-demo` first, or start with --empty") from None
        click.echo(f"Cal.com emulator: {summary.hosts} hosts, {summary.event_types} event types and "
                   f"{summary.bookings} synced bookings from the database.")
        db.session.remove()
    if world_file:
        with open(world_file, encoding="utf-8") as handle:
            try:
                hosts, event_types = hosts_and_event_types_from_json(json.load(handle))
                for item in hosts:
                    emulator.state.add_host(item)
                for item in event_types:
                    emulator.state.add_event_type(item)
            except (ValueError, KeyError, TypeError) as exc:
                raise click.BadParameter(f"{world_file}: {exc}", param_hint="--world") from None
    if emulator.faults.rules:
        click.echo(f"Faults: {json.dumps(emulator.faults.to_json()['rules'])} (seed {emulator.faults.seed})")
    target = emulator.webhooks.url or "nowhere (no --webhook-url)"
    click.echo(f"Webhooks go to {target}{' signed' if secret else ' unsigned'}.")
    click.echo(f"Serving Cal.com API v2 on http://{host}:{port}/v2 — control API at http://{host}:{port}/_emulator")
    server = make_server(host, port, emulator, threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.shutdown()
        server.server_close()


@calcom_cli.command("staff-event-type")
@click.argument("staff_id", type=int)
@click.argument("service_id", type=int)
@click.argument("event_type_id", type=click.IntRange(min=1), required=False)
@click.option("--clear", is_flag=True, help="Book the service's own event type again (Cal.com picks the host).")
def staff_event_type_command(staff_id: int, service_id: int, event_type_id: int | None, clear: bool) -> None:
    """Show or set the staff member's own Cal.com event type for a service.

    A personal event type (or a team one with only this host) makes Cal.com put the
    booking on this staff member's calendar; see README, "Booking one specific staff member".
    """
    staff, service = db.session.get(Staff, staff_id), db.session.get(Service, service_id)
    if staff is None or service is None:
        raise click.BadParameter(f"no {'staff member' if staff is None else 'service'} with id "
                                 f"{staff_id if staff is None else service_id}")
    if clear and event_type_id is not None:
        raise click.UsageError("give an event type id or --clear, not both")
    if event_type_id is None and not clear:
        own = personal_event_types(db.session, service.id, [staff.id]).get(staff.id)
        click.echo(f"{staff.name} / {service.name}: "
                   + (f"own event type {own}" if own else f"none (the service's {service.calcom_event_type_id})"))
        return
    owner = owner_of_event_type(db.session, event_type_id)
    if owner is not None and (owner[0].id, owner[1].id) != (staff.id, service.id):
        raise click.ClickException(f"event type {event_type_id} is already {owner[0].name}'s own for "
                                   f"{owner[1].name}")
    try:
        set_staff_event_type(db.session, staff.id, service.id, event_type_id)
        db.session.commit()
    except LookupError as exc:
        db.session.rollback()
        raise click.ClickException(f"{staff.name} does not offer {service.name} ({exc})") from None
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException(f"event type {event_type_id} is already another staff member's own") from None
    click.echo(f"{staff.name} / {service.name}: "
               + (f"own event type {event_type_id}" if event_type_id else
                  f"own event type removed; the service's {service.calcom_event_type_id} is booked"))


def init_app(app: Flask) -> None:
    app.cli.add_command(calcom_cli)
