"""The appointments behind an alert, as a person reads them: who, when, what failed.

Used by `alert-sync-failures --verbose` and by the daily digest; always for a
bounded list of appointments (the ids an alert carries, or the first N in review).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import format_local
from core.models import Appointment, Branch, Company, Customer


@dataclass(frozen=True)
class AppointmentLine:
    id: int
    company: str
    customer: str
    starts_at: datetime  # UTC, as stored
    timezone: str
    sync_status: str
    sync_action: str
    attempts: int
    error: str | None
    review_reason: str | None

    def render(self) -> str:
        parts = [f"#{self.id}", self.company, self.customer, format_local(self.starts_at, self.timezone),
                 f"{self.sync_status}/{self.sync_action}", f"attempts {self.attempts}"]
        if self.error:
            parts.append(f"error {self.error}")
        if self.review_reason:
            parts.append(f"review: {self.review_reason}")
        return " · ".join(parts)


def _query():
    return (
        select(Appointment.id, Company.name, Customer.name, Appointment.starts_at, Branch.timezone,
               Appointment.sync_status, Appointment.sync_action, Appointment.sync_attempts,
               Appointment.sync_error_code, Appointment.sync_error_message, Appointment.manual_review_reason)
        .join(Company, Company.id == Appointment.company_id)
        .join(Customer, Customer.id == Appointment.customer_id)
        .join(Branch, Branch.id == Appointment.branch_id)
    )


def _line(row) -> AppointmentLine:
    (appointment_id, company, customer, starts_at, tz, status, action, attempts, code, message, reason) = row
    error = None
    if code or message:
        text = (message or "").strip().replace("\n", " ")
        error = f"{code or 'error'}: {text[:160]}" if text else code
    return AppointmentLine(appointment_id, company, customer, starts_at, tz, status.value,
                           action.value, attempts, error, reason)


def describe_appointments(session: Session, ids: list[int]) -> list[AppointmentLine]:
    """The given appointments (one query), in the order given."""
    if not ids:
        return []
    rows = {row[0]: _line(row) for row in session.execute(_query().where(Appointment.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def needing_review(session: Session, limit: int, company_id: int | None = None) -> list[AppointmentLine]:
    """The oldest `limit` appointments waiting for manual review."""
    query = _query().where(Appointment.requires_manual_review)
    if company_id is not None:
        query = query.where(Appointment.company_id == company_id)
    query = query.order_by(Appointment.sync_requested_at, Appointment.id).limit(limit)
    return [_line(row) for row in session.execute(query)]
