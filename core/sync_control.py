"""Operator actions on the sync pipeline: retry a sync, resolve a manual review.

One implementation serves the CLI (`appointments retry-sync`) and the dashboard;
each action is written to the audit log with who did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.booking_guard import guarded_transaction, lock_appointments, request_sync
from core.clock import utcnow
from core.models import Appointment, AuditEvent, SyncStatus
from core.queues import enqueue_sync_quietly


@dataclass(frozen=True)
class ActionResult:
    appointment_id: int
    ok: bool
    message: str


def retry_sync(
    session: Session,
    appointment_ids: Iterable[int],
    *,
    actor: str,
    user_id: int | None = None,
    note: str | None = None,
    company_id: int | None = None,
) -> list[ActionResult]:
    """Clear manual review, reset the attempt budget and enqueue a fresh sync.

    Retries the appointment's current sync action (create, cancel or reschedule).
    An appointment already synced is left alone. `company_id` limits the action to
    one company (an operator bound to a company cannot touch others).
    """
    ids = list(dict.fromkeys(int(i) for i in appointment_ids))
    results: list[ActionResult] = []
    to_enqueue: list[Appointment] = []
    with guarded_transaction(session):
        found = _load(session, ids, company_id)
        for appointment_id in ids:
            appointment = found.get(appointment_id)
            result = _retry_one(session, appointment, appointment_id, actor=actor, user_id=user_id, note=note)
            results.append(result)
            if result.ok:
                to_enqueue.append(appointment)
    # Enqueue after the commit, so a worker never reads the old state. Redis down:
    # the retry stands (pending), the sweeper enqueues it later.
    for appointment in to_enqueue:
        enqueue_sync_quietly(appointment.id, appointment.sync_action.value, appointment.sync_version,
                             app=current_app)
    return results


def _retry_one(session: Session, appointment: Appointment | None, appointment_id: int, *, actor: str,
               user_id: int | None, note: str | None) -> ActionResult:
    if appointment is None:
        return ActionResult(appointment_id, False, "no such appointment")
    if appointment.sync_status == SyncStatus.SYNCED and not appointment.requires_manual_review:
        return ActionResult(appointment_id, False, "already synced; nothing to retry")
    previous = {"sync_status": appointment.sync_status.value, "attempts": appointment.sync_attempts,
                "error_code": appointment.sync_error_code}
    request_sync(appointment, appointment.sync_action)
    appointment.requires_manual_review = False
    appointment.manual_review_reason = None
    session.add(AuditEvent(actor=actor, user_id=user_id, action="retry_sync", appointment_id=appointment_id,
                           note=note, details={"previous": previous, "action": appointment.sync_action.value}))
    return ActionResult(appointment_id, True, f"{appointment.sync_action.value} sync queued")


# How a person resolved a review:
#   fixed_in_calcom – they made Cal.com match by hand: the appointment counts as synced;
#   acknowledged    – seen and handled outside Slotguard (e.g. the customer was called);
#                     the sync status stays as it is, so a failed sync still shows.
RESOLUTIONS = ("fixed_in_calcom", "acknowledged")


def resolve_manual_review(
    session: Session,
    appointment_id: int,
    *,
    actor: str,
    note: str,
    resolution: str = "acknowledged",
    user_id: int | None = None,
    company_id: int | None = None,
) -> ActionResult:
    """Mark a manual review as handled by a person (the note says how)."""
    if resolution not in RESOLUTIONS:
        return ActionResult(appointment_id, False, f"resolution must be one of {', '.join(RESOLUTIONS)}")
    if not note or not note.strip():
        return ActionResult(appointment_id, False, "a note is required to resolve a review")
    with guarded_transaction(session):
        appointment = _load(session, [appointment_id], company_id).get(appointment_id)
        if appointment is None:
            return ActionResult(appointment_id, False, "no such appointment")
        if not appointment.requires_manual_review:
            return ActionResult(appointment_id, False, "this appointment does not need review")
        _resolve(session, appointment, actor=actor, user_id=user_id, note=note, resolution=resolution)
    return ActionResult(appointment_id, True, "review resolved")


def _resolve(session: Session, appointment: Appointment, *, actor: str, user_id: int | None, note: str,
             resolution: str) -> None:
    appointment_id = appointment.id
    session.add(AuditEvent(actor=actor, user_id=user_id, action="resolve_review", appointment_id=appointment_id,
                           note=note.strip(), details={"reason": appointment.manual_review_reason,
                                                       "resolution": resolution,
                                                       "sync_status": appointment.sync_status.value}))
    appointment.requires_manual_review = False
    if resolution == "fixed_in_calcom":
        appointment.sync_status = SyncStatus.SYNCED
        appointment.synced_at = utcnow()
        appointment.next_sync_attempt_at = None


def _load(session: Session, ids: list[int], company_id: int | None) -> dict[int, Appointment]:
    """The appointments among `ids` (of `company_id`, when given), each locked like every
    writer locks it (`lock_appointment`), so a sync result or webhook landing meanwhile
    is neither overwritten nor overwrites the operator's action."""
    if not ids:
        return {}
    query = select(Appointment.id).where(Appointment.id.in_(ids))
    if company_id is not None:
        query = query.where(Appointment.company_id == company_id)
    return lock_appointments(session, list(session.scalars(query)))
