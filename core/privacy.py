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
  replaced, phone and e-mail removed, notes of their appointments cleared); the
  appointments stay, so the calendar, the sync history and the statistics stay
  true. An audit event records that it happened (not what was erased).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.logs import mask_pii
from core.models import Appointment, AuditEvent, Company, Customer, Role
from core.phones import to_e164

ERASED_NAME = "Gelöschte Person"


class PrivacyError(ValueError):
    """Bad input to export/erase (nothing was changed)."""


def mask_phone(phone: str | None) -> str:
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 5:
        return "…"
    return f"+{digits[:2]} …{digits[-2:]}" if phone.strip().startswith("+") else f"…{digits[-2:]}"


def mask_email(email: str | None) -> str:
    if not email:
        return ""
    local, at, domain = email.partition("@")
    if not at:
        return "…"
    return f"{local[:1]}…@{domain}"


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
    return text if shows_contact() else mask_pii(text)


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


def erase_customer(session: Session, customer: Customer, *, actor: str, note: str | None = None) -> int:
    """Anonymise one customer; keep their appointments. Returns how many appointments
    were kept. Committed. Erasing twice is harmless."""
    appointments = session.scalars(select(Appointment).where(Appointment.customer_id == customer.id)).all()
    had = {"name": customer.name != ERASED_NAME, "phone": customer.phone is not None,
           "email": customer.email is not None}
    customer.name = ERASED_NAME
    customer.phone = None
    customer.email = None
    for appointment in appointments:
        appointment.notes = None  # free text a caller may have dictated
    session.add(AuditEvent(actor=actor, action="customer_erased", note=note,
                           details={"customer_id": customer.id, "company_id": customer.company_id,
                                    "appointments_kept": len(appointments), "erased_fields": sorted(
                                        k for k, v in had.items() if v) + ["appointment_notes"]}))
    session.commit()
    return len(appointments)


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def init_app(app: Flask) -> None:
    app.add_template_filter(masked_phone_filter, "masked_phone")
    app.add_template_filter(masked_email_filter, "masked_email")
    app.add_template_filter(masked_text_filter, "masked_text")
    app.add_template_global(shows_contact, "shows_contact")


__all__ = ["ERASED_NAME", "PrivacyError", "erase_customer", "export_customer", "find_customers", "mask_email",
           "mask_phone", "shows_contact", "validate_phone"]
