"""A customer's personal data: show it masked, export it, erase it.

* `shows_contact(user)` — the one decision: operators and admins see customers' phone
  numbers and e-mails, viewers (and anyone not signed in) see them masked. The Jinja
  filters `masked_phone` / `masked_email` (`+49 …78`, `e…@example.com`) and
  `masked_text` (numbers and addresses inside free text: notes, error messages,
  review reasons) ask it; templates that link a number (`tel:`) ask the template
  global `shows_contact()`. All registered by `init_app`.
* `export_customer(session, customer_id)` → a JSON-serialisable dict of the person
  and their appointments (`flask customers export`).
* `erase_customer(session, customer_id, actor=…)`: the person is anonymised (name
  replaced, phone and e-mail removed, notes of their appointments cleared) and
  every copy of their name, number and address is scrubbed from the texts it was
  copied into (`scrub_copies`: sync errors and attempts, review and cancellation
  reasons, audit notes and details, reconciliation findings, alert messages,
  webhook results; the RQ job records of their appointments in Redis are deleted).
  The appointments stay, so the calendar, the sync history and the statistics stay
  true. An audit event records that it happened (not what was erased).

Recognising and masking personal data in text is `core.pii`'s job; this module
decides who sees what and what an erase covers.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_login import current_user
from sqlalchemy import Text, cast, or_, select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.models import (
    AlertNotification,
    Appointment,
    AuditEvent,
    Company,
    Customer,
    ReconciliationRun,
    Role,
    SyncAttempt,
    WebhookDelivery,
)
from core.phones import to_e164
from core.pii import Scrubber, mask_email, mask_phone, mask_text

log = logging.getLogger("slotguard.privacy")

ERASED_NAME = "Gelöschte Person"


class PrivacyError(ValueError):
    """Bad input to export/erase (nothing was changed)."""


def shows_contact(user=None) -> bool:
    """May `user` (default: the signed-in user) see customers' phone numbers and
    e-mails in clear? Operators and admins call and write to customers; viewers only
    read the dashboard, and nobody signed in sees anything personal."""
    if user is None:
        try:
            user = current_user._get_current_object()
        except Exception:  # no request or no login set-up: show nothing personal
            return False
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return user.can(Role.OPERATOR)


def masked_phone_filter(phone: str | None) -> str:
    return (phone or "") if shows_contact() else mask_phone(phone)


def masked_email_filter(email: str | None) -> str:
    return (email or "") if shows_contact() else mask_email(email)


def masked_text_filter(text: str | None) -> str:
    """Free text a person or Cal.com wrote (notes, error messages, review reasons) may
    hold a phone number or an e-mail: masked inside the text, as in the logs. Numbers
    are recognised in international format (`+49…`, how Slotguard stores them)."""
    if not text:
        return text or ""
    return text if shows_contact() else mask_text(text)


def validate_phone(raw: str) -> str:
    """The stored (E.164) form of a number an operator typed; international only,
    since an operator tool does not know which country a national number is from."""
    phone = to_e164(raw, country_code=None)
    if phone is None:
        raise PrivacyError(f"{raw!r} is not a phone number in international format (e.g. +4915112345678)")
    return phone


def find_customers(session: Session, *, customer_id: int | None = None, phone: str | None = None,
                   company_id: int | None = None) -> list[Customer]:
    """Customers by id or by phone (one person may be a customer of several companies)."""
    if (customer_id is None) == (phone is None):
        raise PrivacyError("give exactly one of --id and --phone")
    query = select(Customer).order_by(Customer.id)
    if customer_id is not None:
        if customer_id < 1:
            raise PrivacyError("--id must be a positive number")
        query = query.where(Customer.id == customer_id)
    else:
        query = query.where(Customer.phone == validate_phone(phone))
    if company_id is not None:
        query = query.where(Customer.company_id == company_id)
    return list(session.scalars(query))


def export_customer(session: Session, customer: Customer) -> dict[str, Any]:
    """Everything Slotguard holds about one person."""
    appointments = session.scalars(select(Appointment).where(Appointment.customer_id == customer.id)
                                   .order_by(Appointment.starts_at)).all()
    company = session.get(Company, customer.company_id)
    return {
        "customer": {
            "id": customer.id, "company_id": customer.company_id, "company": company.name if company else None,
            "name": customer.name, "phone": customer.phone, "email": customer.email,
            "created_at": _iso(customer.created_at), "updated_at": _iso(customer.updated_at),
        },
        "appointments": [
            {
                "id": a.id, "service": a.service.name, "staff": a.staff.name, "branch": a.branch.name,
                "starts_at": _iso(a.starts_at), "ends_at": _iso(a.ends_at), "status": a.status.value,
                "notes": a.notes, "source": a.source.value, "call_id": a.call_id,
                "cancelled_at": _iso(a.cancelled_at), "cancellation_reason": a.cancellation_reason,
                "calcom_booking_uid": a.calcom_booking_uid, "sync_status": a.sync_status.value,
                "created_at": _iso(a.created_at),
            }
            for a in appointments
        ],
        "exported_at": _iso(utcnow()),
    }


# The texts a customer's name, number or address can be copied into, per table.
SCRUBBED_TEXT = {
    Appointment: ("cancellation_reason", "sync_error_message", "manual_review_reason", "notes"),
    SyncAttempt: ("error_message",),
    AuditEvent: ("note",),
    AlertNotification: ("message",),
    WebhookDelivery: ("result",),
}
SCRUBBED_JSON = {
    AuditEvent: ("details",),
    ReconciliationRun: ("findings", "errors"),
}


def erase_customer(session: Session, customer: Customer, *, actor: str, note: str | None = None) -> int:
    """Anonymise one customer and scrub the copies of their data; keep their
    appointments. Returns how many appointments were kept. Committed. Erasing twice
    is harmless."""
    appointments = session.scalars(select(Appointment).where(Appointment.customer_id == customer.id)).all()
    had = {"name": customer.name != ERASED_NAME, "phone": customer.phone is not None,
           "email": customer.email is not None}
    scrubber = Scrubber(name=customer.name, phone=customer.phone, email=customer.email, erased_name=ERASED_NAME)
    customer.name = ERASED_NAME
    customer.phone = None
    customer.email = None
    for appointment in appointments:
        appointment.notes = None  # free text a caller may have dictated
    scrubbed = scrub_copies(session, scrubber)
    session.add(AuditEvent(actor=actor, action="customer_erased", note=scrubber.text(note),
                           details={"customer_id": customer.id, "company_id": customer.company_id,
                                    "appointments_kept": len(appointments), "erased_fields": sorted(
                                        k for k, v in had.items() if v) + ["appointment_notes"],
                                    "copies_scrubbed": scrubbed}))
    session.commit()
    forget_job_records([a.id for a in appointments])
    return len(appointments)


def scrub_copies(session: Session, scrubber: Scrubber) -> dict[str, int]:
    """Replace the person's data in every text it may have been copied into (not
    committed). Returns how many rows changed per table (tables without changes left out).

    A SQL pre-filter finds the candidate rows (their name, address or the last digits
    of their number appear in the text); `Scrubber` decides exactly what is theirs.
    """
    if not scrubber.has_anything:
        return {}
    changed: dict[str, int] = {}
    needles = scrubber.needles()
    for model in {*SCRUBBED_TEXT, *SCRUBBED_JSON}:
        text_columns = SCRUBBED_TEXT.get(model, ())
        json_columns = SCRUBBED_JSON.get(model, ())
        conditions = [getattr(model, name).ilike(f"%{needle}%") for name in text_columns for needle in needles]
        conditions += [cast(getattr(model, name), Text).ilike(f"%{needle}%") for name in json_columns
                       for needle in needles]
        for row in session.scalars(select(model).where(or_(*conditions))):
            before = {name: getattr(row, name) for name in (*text_columns, *json_columns)}
            for name in text_columns:
                setattr(row, name, scrubber.text(before[name]))
            for name in json_columns:
                setattr(row, name, scrubber.value(before[name]))
            if any(getattr(row, name) != value for name, value in before.items()):
                changed[model.__tablename__] = changed.get(model.__tablename__, 0) + 1
    return changed


def forget_job_records(appointment_ids: list[int]) -> int:
    """Delete the finished and failed sync job records of these appointments from
    Redis: a failed job keeps its exception text, which may quote Cal.com's answer
    about the attendee. Jobs still queued or running are left alone (they only carry
    ids). A Redis outage is logged, never fatal: the database part is done."""
    if not appointment_ids:
        return 0
    from core.queues import SYNC_QUEUE, get_queue  # the app's Redis; not needed for the rest

    prefixes = tuple(f"sync-{appointment_id}-" for appointment_id in appointment_ids)
    removed = 0
    try:
        queue = get_queue(SYNC_QUEUE)
        for registry in (queue.finished_job_registry, queue.failed_job_registry):
            for job_id in registry.get_job_ids(cleanup=False):
                if job_id.startswith(prefixes):
                    job = queue.fetch_job(job_id)
                    if job is not None:
                        job.delete()
                    else:
                        registry.remove(job_id)
                    removed += 1
    except Exception as exc:  # noqa: BLE001 - Redis down: the records expire with their TTL
        log.warning("erase: sync job records of appointments %s not removed from Redis (%s); they expire "
                    "with their TTL", appointment_ids, type(exc).__name__)
    return removed


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def init_app(app: Flask) -> None:
    app.add_template_filter(masked_phone_filter, "masked_phone")
    app.add_template_filter(masked_email_filter, "masked_email")
    app.add_template_filter(masked_text_filter, "masked_text")
    app.add_template_global(shows_contact, "shows_contact")


__all__ = ["ERASED_NAME", "PrivacyError", "erase_customer", "export_customer", "find_customers", "mask_email",
           "mask_phone", "scrub_copies", "shows_contact", "validate_phone"]
