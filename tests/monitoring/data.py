"""Crafted sync data for the monitoring tests: appointments in exact sync states and
attempts at exact times, written straight to the tables (the metrics read nothing
else, and the overlap guard has its own tests)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from core.extensions import db
from core.models import (
    Appointment,
    AppointmentStatus,
    SyncAction,
    SyncAttempt,
    SyncOutcome,
    SyncStatus,
)
from tests.factories import make_world

# The `clock` fixture's frozen "now".
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)

_phones = itertools.count(200001)
_slots = itertools.count()


def company(name: str = "Salon"):
    world = make_world(phone=f"+4930{next(_phones)}")
    world["company"].name = name
    db.session.commit()
    return world


def appointment(
    world,
    *,
    sync: SyncStatus = SyncStatus.PENDING,
    requested: datetime = NOW,
    review: bool = False,
    status: AppointmentStatus = AppointmentStatus.BOOKED,
    action: SyncAction = SyncAction.CREATE,
    attempts: int = 0,
    error_code: str | None = None,
    error_message: str | None = None,
    commit: bool = True,
) -> Appointment:
    start = NOW + timedelta(days=1, minutes=30 * next(_slots))
    row = Appointment(
        company_id=world["company"].id, branch_id=world["branch"].id, service_id=world["haircut"].id,
        staff_id=world["staff"][0].id, customer_id=world["customer"].id, starts_at=start,
        ends_at=start + timedelta(minutes=30), status=status, sync_status=sync, sync_action=action,
        sync_requested_at=requested, requires_manual_review=review, sync_attempts=attempts,
        sync_error_code=error_code, sync_error_message=error_message,
        manual_review_reason="Cal.com refused the booking" if review else None,
    )
    db.session.add(row)
    if commit:
        db.session.commit()
    return row


def attempt(
    appointment_row: Appointment,
    *,
    at: datetime,
    outcome: SyncOutcome,
    number: int = 1,
    code: str | None = None,
    commit: bool = True,
) -> SyncAttempt:
    row = SyncAttempt(
        appointment_id=appointment_row.id, action=SyncAction.CREATE, attempt_number=number, started_at=at,
        finished_at=at + timedelta(seconds=1), outcome=outcome,
        error_code=code if outcome != SyncOutcome.SUCCESS else None,
    )
    db.session.add(row)
    if commit:
        db.session.commit()
    return row
