"""Reconcile Slotguard with what happened in Cal.com, one verified webhook at a time.

* BOOKING_CREATED, our own booking echoed back (Slotguard metadata): remember its
  uid and confirm the sync — nothing else.
* BOOKING_CREATED, a booking made in Cal.com itself: store it as an appointment
  (`source=calcom`, `sync_status=synced`) through the booking guard. When it collides
  with local appointments the guard keeps them and the Cal.com booking is *not*
  stored as an appointment (the database never holds two active bookings of one
  person at one time). Instead every colliding appointment is flagged for manual
  review with a reason naming the Cal.com booking, and the whole booking (uid, times,
  customer, host) is kept in the audit log — the double booking the product exists to
  catch, handed to a person with everything needed to call one customer.
* BOOKING_CANCELLED: cancel the matching appointment locally and free its slot (no
  sync back; for a composite appointment the remaining step bookings are cancelled
  in Cal.com by a normal sync). Our own cancel echoed back confirms the sync. The
  sync worker's own rollback of a partly booked composite appointment (reason
  `Slotguard rollback (appointment <id>)`, see `calcom.metadata.rollback_reason`)
  only forgets that booking's uid: the appointment stays as the sync left it.
* BOOKING_RESCHEDULED: move the matching appointment (new uid) through the guard; a
  refused move flags the appointment for review. Our own reschedule echoed back
  confirms the sync. A reschedule of a booking we never stored is imported like a
  new one.
* Replays change nothing: each delivery is remembered in `WebhookDelivery` (same
  trigger, uid and body), in the same transaction as its changes.
* Every booking event means Cal.com's calendar changed: once the transaction is
  committed, the cached Cal.com slots (`calcom.slot_cache`) of the booking's day —
  and for a reschedule the old day too — are dropped for every event type its host
  takes part in. Redis being down never fails the webhook (the entries then expire
  after `SLOT_CACHE_SECONDS`).

Each handler takes a session and a parsed `CalcomEvent` and returns an `Outcome`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from calcom.client import Attendee, parse_time
from calcom.metadata import appointment_id_from, is_rollback_of, segment_from
from calcom.slot_cache import invalidate_quietly as invalidate_slot_cache
from calcom.webhooks import BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_RESCHEDULED, PING
from core.booking_guard import (
    Interval,
    NewAppointment,
    SlotTaken,
    add_appointment,
    find_conflicts,
    guarded_transaction,
    lock_appointment,
    lock_appointments,
    move_segments,
    release_appointment,
    request_sync,
)
from core.busy import busy_for
from core.clock import format_span, utcnow
from core.customers import find_or_create_customer
from core.event_types import event_types_of_staff, owner_of_event_type
from core.models import (
    Appointment,
    AppointmentSegment,
    AppointmentSource,
    AppointmentStatus,
    AuditEvent,
    Customer,
    Service,
    ServiceKind,
    ServiceSegment,
    Staff,
    SyncAction,
    SyncStatus,
    WebhookDelivery,
)
from core.types import MAX_ID, is_valid_id

log = logging.getLogger("booking.calcom_webhook")

SOURCE = "calcom"
ACTOR = "calcom-webhook"
BOOKING_TRIGGERS = (BOOKING_CREATED, BOOKING_CANCELLED, BOOKING_RESCHEDULED)
MAX_TRIGGER = 60


class MalformedWebhook(ValueError):
    """A body that is not a Cal.com webhook; the message says what is wrong."""


@dataclass(frozen=True)
class CalcomEvent:
    trigger: str
    key: str  # replay key: trigger, uid and a digest of the raw body
    uid: str | None = None
    booking_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    event_type_id: int | None = None
    organizer_id: int | None = None
    organizer_email: str | None = None
    attendees: tuple[Attendee, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    cancellation_reason: str | None = None
    previous_uid: str | None = None
    previous_id: int | None = None
    previous_start: datetime | None = None  # a reschedule's old start


@dataclass
class Outcome:
    result: str  # short machine-readable word: created, confirmed, conflict, cancelled, moved, …
    message: str
    appointment_id: int | None = None
    flagged: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ok", "result": self.result, "message": self.message}
        if self.appointment_id is not None:
            body["appointment_id"] = self.appointment_id
        if self.flagged:
            body["flagged_for_review"] = self.flagged
        return body


# --- parsing -----------------------------------------------------------------------------


def parse_event(body: bytes) -> CalcomEvent:
    """Read a webhook body; MalformedWebhook says what is missing or wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedWebhook("the body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedWebhook("the body must be a JSON object")
    trigger = data.get("triggerEvent")
    if not isinstance(trigger, str) or not trigger.strip():
        raise MalformedWebhook("triggerEvent is missing")
    # Cal.com's triggers are short words; clipping keeps an unknown one from being
    # echoed back (or logged) at full length.
    trigger = trigger.strip().upper()[:MAX_TRIGGER]
    payload = data.get("payload")
    uid = payload.get("uid") if isinstance(payload, dict) else None
    digest = hashlib.sha256(body).hexdigest()[:32]
    key = f"{trigger}:{str(uid)[:100] if uid else '-'}:{digest}"
    if trigger not in BOOKING_TRIGGERS:
        return CalcomEvent(trigger=trigger, key=key)
    if not isinstance(payload, dict):
        raise MalformedWebhook(f"{trigger} needs a payload object")
    if not isinstance(uid, str) or not uid.strip():
        raise MalformedWebhook(f"{trigger} payload.uid is missing")
    start = _time(payload, "startTime", trigger)
    end = _time(payload, "endTime", trigger)
    if end <= start:
        raise MalformedWebhook(f"{trigger} payload.endTime must be after startTime")
    organizer = payload.get("organizer") if isinstance(payload.get("organizer"), dict) else {}
    attendees = payload.get("attendees") or []
    if not isinstance(attendees, list) or not all(isinstance(a, dict) for a in attendees):
        raise MalformedWebhook(f"{trigger} payload.attendees must be a list of objects")
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise MalformedWebhook(f"{trigger} payload.metadata must be an object")
    previous_uid = payload.get("rescheduleUid")
    if trigger == BOOKING_RESCHEDULED and (not isinstance(previous_uid, str) or not previous_uid.strip()):
        raise MalformedWebhook("BOOKING_RESCHEDULED payload.rescheduleUid (the old booking) is missing")
    people = [_attendee(a, payload) for a in attendees]
    return CalcomEvent(
        trigger=trigger, key=key, uid=uid.strip(), booking_id=_int(payload.get("bookingId"), "bookingId"),
        start=start, end=end, event_type_id=_int(payload.get("eventTypeId"), "eventTypeId"),
        organizer_id=_int(organizer.get("id"), "organizer.id"),
        organizer_email=organizer.get("email") if isinstance(organizer.get("email"), str) else None,
        attendees=tuple(people), metadata=metadata,
        cancellation_reason=payload.get("cancellationReason") if isinstance(payload.get("cancellationReason"), str)
        else None,
        previous_uid=previous_uid.strip() if isinstance(previous_uid, str) else None,
        previous_id=_int(payload.get("rescheduleId"), "rescheduleId"),
        previous_start=_optional_time(payload.get("rescheduleStartTime")),
    )


def _time(payload: dict, name: str, trigger: str) -> datetime:
    try:
        return parse_time(payload.get(name))
    except ValueError:
        raise MalformedWebhook(f"{trigger} payload.{name} must be an ISO 8601 time with offset") from None


def _optional_time(value: Any) -> datetime | None:
    """A time only used to find stale cached slots: unreadable is simply unknown."""
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedWebhook(f"payload.{name} must be a number")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
        raise MalformedWebhook(f"payload.{name} must be a number") from None
    if not is_valid_id(number):
        raise MalformedWebhook(f"payload.{name} must be an id from 1 to {MAX_ID}")
    return number


def _attendee(data: dict, payload: dict) -> Attendee:
    attendee = Attendee.from_json(data)
    if attendee.phone_number is None:  # booking page phone field
        responses = payload.get("responses") if isinstance(payload.get("responses"), dict) else {}
        phone = responses.get("attendeePhoneNumber")
        if isinstance(phone, dict):
            phone = phone.get("value")
        if isinstance(phone, str) and phone.strip():
            attendee = Attendee(attendee.name, attendee.email, phone.strip(), attendee.time_zone, attendee.language)
    return attendee


# --- dispatch ----------------------------------------------------------------------------------


def handle_event(session: Session, event: CalcomEvent) -> Outcome:
    """Apply one verified event. Replays and unknown triggers change nothing."""
    if event.trigger == PING:
        return Outcome("pong", "ping received")
    if event.trigger not in BOOKING_TRIGGERS:
        return Outcome("ignored", f"{event.trigger} is not a trigger Slotguard reconciles")
    if _already_processed(session, event):
        _forget_cached_slots(event, _affected_event_types(session, event))
        return Outcome("replay", "this delivery was already processed; nothing changed")
    handler = {BOOKING_CREATED: _created, BOOKING_CANCELLED: _cancelled, BOOKING_RESCHEDULED: _rescheduled}
    try:
        with guarded_transaction(session):
            outcome = handler[event.trigger](session, event)
            session.add(WebhookDelivery(source=SOURCE, event_key=event.key, trigger=event.trigger,
                                        result=f"{outcome.result}: {outcome.message}"[:200]))
            session.flush()
            event_types = _affected_event_types(session, event)
    except IntegrityError:
        # The same delivery processed concurrently by another worker won the unique key.
        if _already_processed(session, event):
            return Outcome("replay", "this delivery was already processed; nothing changed")
        raise
    _forget_cached_slots(event, event_types)  # committed: the next availability check asks Cal.com
    log.info("Cal.com %s %s: %s (%s)", event.trigger, event.uid, outcome.result, outcome.message)
    return outcome


def _affected_event_types(session: Session, event: CalcomEvent) -> set[int]:
    """The event types whose cached slots this booking changes: its own, and every
    other one its host takes part in (Cal.com keeps a host busy across all of them)."""
    staff_ids = {member.id for member in _staff_for(session, event)}
    owner = owner_of_event_type(session, event.event_type_id)
    if owner is not None:
        staff_ids.add(owner[0].id)
    for uid in (event.uid, event.previous_uid):
        appointment = appointment_by_uid(session, uid)[0] if uid else None
        if appointment is not None:
            staff_ids.add(appointment.staff_id)
    event_types = event_types_of_staff(session, staff_ids)
    if event.event_type_id is not None:
        event_types.add(event.event_type_id)
    return event_types


def _forget_cached_slots(event: CalcomEvent, event_types: set[int]) -> None:
    invalidate_slot_cache(event_types, [event.start, event.previous_start],
                          why=f"Cal.com {event.trigger} {event.uid}")


def _already_processed(session: Session, event: CalcomEvent) -> bool:
    return session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.source == SOURCE, WebhookDelivery.event_key == event.key)) is not None


def _audit(session: Session, action: str, appointment_id: int | None, note: str, **details: Any) -> None:
    session.add(AuditEvent(actor=ACTOR, action=action, appointment_id=appointment_id, note=note,
                           details=_jsonable(details)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _booking_details(event: CalcomEvent) -> dict[str, Any]:
    attendee = event.attendees[0] if event.attendees else None
    return {
        "uid": event.uid, "booking_id": event.booking_id, "start": event.start, "end": event.end,
        "event_type_id": event.event_type_id, "host_user_id": event.organizer_id,
        "host_email": event.organizer_email,
        "attendee": {"name": attendee.name, "email": attendee.email, "phone": attendee.phone_number}
        if attendee else None,
    }


# --- lookups ---------------------------------------------------------------------------------------


def appointment_by_uid(session: Session, uid: str) -> tuple[Appointment | None, AppointmentSegment | None]:
    """The appointment whose Cal.com booking (or one of whose step bookings) has `uid`."""
    appointment = session.scalar(select(Appointment).where(Appointment.calcom_booking_uid == uid))
    if appointment is not None:
        return appointment, None
    segment = session.scalar(select(AppointmentSegment).where(AppointmentSegment.calcom_booking_uid == uid))
    if segment is not None:
        return segment.appointment, segment
    return None, None


def _locked_by_uid(session: Session, uid: str) -> tuple[Appointment | None, AppointmentSegment | None]:
    """`appointment_by_uid` for a handler about to change the appointment: locked
    (`lock_appointment`, the lock every writer takes) and looked up again after the
    lock, since a writer we waited for (a sync recording uids) may have changed it."""
    locked: set[int] = set()
    appointment, segment = appointment_by_uid(session, uid)
    while appointment is not None and appointment.id not in locked:
        lock_appointment(session, appointment.id)
        locked.add(appointment.id)
        appointment, segment = appointment_by_uid(session, uid)
    return appointment, segment


def _staff_for(session: Session, event: CalcomEvent) -> list[Staff]:
    conditions = []
    if event.organizer_id is not None:
        conditions.append(Staff.calcom_user_id == event.organizer_id)
    if event.organizer_email:
        conditions.append(Staff.email == event.organizer_email)
    if not conditions:
        return []
    found = session.scalars(select(Staff).where(Staff.active.is_(True), or_(*conditions)).order_by(Staff.id)).all()
    # A user-id match beats an email match.
    return sorted(found, key=lambda s: s.calcom_user_id != event.organizer_id)


def _staff_and_service(session: Session, event: CalcomEvent) -> tuple[Staff | None, Service | None]:
    """Who was booked for what. A staff member's own event type says both at once (it
    has exactly one host); a team event type names the service, the organizer the staff."""
    owner = owner_of_event_type(session, event.event_type_id)
    if owner is not None and owner[0].active and owner[1].active:
        staff, service = owner
        if event.organizer_id is not None and staff.calcom_user_id not in (None, event.organizer_id):
            log.warning("Cal.com booking %s: event type %s is %s's own, but its organizer is Cal.com user %s; "
                        "check staff.calcom_user_id", event.uid, event.event_type_id, staff.name, event.organizer_id)
        return staff, service
    for candidate in _staff_for(session, event):
        service = _service_for(session, candidate.branch.company_id, event.event_type_id)
        if service is not None:
            return candidate, service
    return None, None


def _service_for(session: Session, company_id: int, event_type_id: int | None) -> Service | None:
    if event_type_id is None:
        return None
    service = session.scalar(select(Service).where(
        Service.company_id == company_id, Service.calcom_event_type_id == event_type_id, Service.active.is_(True)))
    if service is not None:
        return service
    return session.scalar(select(Service).join(ServiceSegment).where(
        Service.company_id == company_id, ServiceSegment.calcom_event_type_id == event_type_id,
        Service.active.is_(True)))


def _customer_for(session: Session, company_id: int, attendee: Attendee | None) -> Customer:
    """The attendee as the company's customer; "Erika M." in Cal.com with Erika
    Mustermann's number is her (`other_name="reuse"`)."""
    if attendee is None:
        attendee = Attendee(name="Cal.com customer")
    return find_or_create_customer(session, company_id, name=attendee.name or "Cal.com customer",
                                   phone=attendee.phone_number, email=attendee.email, other_name="reuse")


def _busy_for(session: Session, service: Service, staff: Staff, event: CalcomEvent) -> list[Interval]:
    """What the Cal.com booking keeps its host busy for: the service's busy steps when
    it is the whole service (each as the event type it is booked as for this staff
    member), else the booked interval itself."""
    if event.end - event.start == timedelta(minutes=service.duration_minutes):
        return busy_for(session, service, staff, event.start)
    return [Interval(event.start, event.end, event.event_type_id)]


def _describe(appointment: Appointment) -> str:
    tz = appointment.branch.timezone
    return f"{format_span(appointment.starts_at, appointment.ends_at, tz, zone='name')} with {appointment.staff.name}"


def _describe_event(event: CalcomEvent, tz: str) -> str:
    who = event.attendees[0].name if event.attendees else "a customer"
    return f"Cal.com booking {event.uid} for {who}, {format_span(event.start, event.end, tz, zone='name')}"


# --- BOOKING_CREATED ---------------------------------------------------------------------------------


def _created(session: Session, event: CalcomEvent) -> Outcome:
    ours = appointment_id_from(event.metadata)
    if ours is not None:
        return _confirm_created(session, event, ours)
    existing, _ = appointment_by_uid(session, event.uid)
    if existing is not None:
        return Outcome("known", f"booking {event.uid} is already appointment {existing.id}", existing.id)
    return _import(session, event)


def _confirm_created(session: Session, event: CalcomEvent, appointment_id: int) -> Outcome:
    appointment = lock_appointment(session, appointment_id)
    if appointment is None:
        _audit(session, "calcom_unknown_appointment", None,
               f"Cal.com booking {event.uid} names Slotguard appointment {appointment_id}, which does not exist.",
               booking=_booking_details(event))
        return Outcome("unknown_appointment", f"appointment {appointment_id} named in the metadata does not exist")
    holders = _holders(appointment, event, segment_from(event.metadata))
    if not holders:
        return Outcome("echo", f"our booking {event.uid} matches no current step of appointment {appointment.id}",
                       appointment.id)
    known = holders[0].calcom_booking_uid
    if known and known != event.uid:
        reason = (f"Cal.com has two bookings for this appointment: {known} and {event.uid} "
                  f"(created by a retried sync). Cancel {event.uid} in Cal.com, then resolve this review.")
        outcome = _review(session, appointment, "calcom_duplicate_booking", reason, event)
        outcome.result = "duplicate"
        return outcome
    _remember(holders, event)
    if _all_booked(appointment) and appointment.sync_action == SyncAction.CREATE and appointment.is_active \
            and appointment.sync_status != SyncStatus.SYNCED:
        _mark_synced(appointment)
        _audit(session, "calcom_sync_confirmed", appointment.id, f"Cal.com confirmed booking {event.uid}.",
               uid=event.uid)
        return Outcome("confirmed", f"our booking {event.uid} confirmed appointment {appointment.id}", appointment.id)
    return Outcome("echo", f"our booking {event.uid} of appointment {appointment.id}; nothing to change",
                   appointment.id)


def _active(appointment: Appointment) -> list[AppointmentSegment]:
    return [s for s in appointment.segments if s.active]


def _is_per_step(appointment: Appointment) -> bool:
    """True when the appointment is several Cal.com bookings, one per busy step."""
    return appointment.service.kind == ServiceKind.COMPOSITE and len(_active(appointment)) > 1


def _holders(appointment: Appointment, event: CalcomEvent, position: int | None = None) -> list[Any]:
    """Where this Cal.com booking's uid belongs: the appointment (and its one segment),
    or for a per-step appointment the active step it books (by position, else by time)."""
    if not _is_per_step(appointment):
        return [appointment, *_active(appointment)]  # at most one active segment here
    steps = _active(appointment)
    step = next((s for s in steps if position is not None and s.position == position), None) or next(
        (s for s in steps if s.starts_at == event.start and s.ends_at == event.end), None)
    return [step] if step is not None else []


def _remember(holders: list[Any], event: CalcomEvent) -> None:
    for holder in holders:
        holder.calcom_booking_uid = event.uid
        holder.calcom_booking_id = event.booking_id


def _all_booked(appointment: Appointment) -> bool:
    if _is_per_step(appointment):
        return all(s.calcom_booking_uid for s in _active(appointment))
    return bool(appointment.calcom_booking_uid)


def _mark_synced(appointment: Appointment) -> None:
    appointment.sync_status = SyncStatus.SYNCED
    appointment.synced_at = utcnow()
    appointment.next_sync_attempt_at = None
    appointment.sync_error_code = None
    appointment.sync_error_message = None


def _flag(appointment: Appointment, reason: str) -> None:
    appointment.requires_manual_review = True
    if appointment.manual_review_reason and reason not in appointment.manual_review_reason:
        appointment.manual_review_reason = f"{reason}\n\nEarlier: {appointment.manual_review_reason}"
    else:
        appointment.manual_review_reason = reason


def _review(session: Session, appointment: Appointment, action: str, reason: str, event: CalcomEvent,
            **details: Any) -> Outcome:
    """Flag one appointment for a person, with the Cal.com booking in the audit log."""
    _flag(appointment, reason)
    _audit(session, action, appointment.id, reason, booking=_booking_details(event), **details)
    return Outcome("review", reason, appointment.id, [appointment.id])


def _import(session: Session, event: CalcomEvent) -> Outcome:
    """Store a booking made in Cal.com itself, or flag what it collides with."""
    staff, service = _staff_and_service(session, event)
    if staff is None:
        note = (f"Cal.com booking {event.uid} (event type {event.event_type_id}, host {event.organizer_id} "
                f"{event.organizer_email or ''}) matches no Slotguard staff member and service; not imported.")
        _audit(session, "calcom_booking_unmatched", None, note.strip(), booking=_booking_details(event))
        log.warning(note)
        return Outcome("unmatched", note)
    busy = _busy_for(session, service, staff, event)
    conflicts = find_conflicts(session, staff.id, busy)
    if not conflicts:
        try:
            # The customer is part of the attempt: a refused insert leaves no stray customer.
            with session.begin_nested():
                customer = _customer_for(session, staff.branch.company_id,
                                         event.attendees[0] if event.attendees else None)
                appointment = add_appointment(session, NewAppointment(
                    company_id=staff.branch.company_id, branch_id=staff.branch_id, service_id=service.id,
                    staff_id=staff.id, customer_id=customer.id, busy=busy, starts_at=event.start, ends_at=event.end,
                    source=AppointmentSource.CALCOM, sync_status=SyncStatus.SYNCED,
                    calcom_booking_uid=event.uid, calcom_booking_id=event.booking_id,
                    notes="Booked directly in Cal.com",
                ))
        except SlotTaken as taken:  # PostgreSQL: another writer won the slot after our check
            conflicts = taken.conflicting_appointment_ids or find_conflicts(session, staff.id, busy)
        else:
            _audit(session, "calcom_booking_imported", appointment.id,
                   f"Imported Cal.com booking {event.uid} made directly in Cal.com.", booking=_booking_details(event))
            return Outcome("created", f"stored Cal.com booking {event.uid} as appointment {appointment.id}",
                           appointment.id)
    return _collision(session, event, staff, conflicts)


def _collision(session: Session, event: CalcomEvent, staff: Staff, conflict_ids: list[int]) -> Outcome:
    flagged = []
    for appointment in lock_appointments(session, conflict_ids).values():
        if appointment.sync_status == SyncStatus.SYNCED:
            reason = (f"{_describe_event(event, appointment.branch.timezone)} overlaps this appointment "
                      f"({_describe(appointment)}), which Cal.com already has as booking "
                      f"{appointment.calcom_booking_uid}. Cal.com accepted both: check the host in Cal.com, "
                      f"call one customer to move, then cancel or move one booking.")
        else:
            reason = (f"Double booking: {_describe_event(event, appointment.branch.timezone)} was made directly "
                      f"in Cal.com for the same time as this appointment ({_describe(appointment)}), which had "
                      f"not reached Cal.com yet (sync {appointment.sync_status.value}). Both customers expect "
                      f"this slot: call one of them to move, then cancel or move the other booking "
                      f"(in Cal.com: {event.uid}).")
        _flag(appointment, reason)
        _audit(session, "calcom_double_booking", appointment.id, reason, booking=_booking_details(event),
               staff_id=staff.id)
        flagged.append(appointment.id)
    message = (f"Cal.com booking {event.uid} collides with appointment(s) {', '.join(map(str, flagged))}; "
               "flagged for manual review, not stored")
    log.warning(message)
    return Outcome("conflict", message, None, flagged)


# --- BOOKING_CANCELLED --------------------------------------------------------------------------------


def _cancelled(session: Session, event: CalcomEvent) -> Outcome:
    appointment, segment = _locked_by_uid(session, event.uid)
    if appointment is None:
        return Outcome("unknown", f"no appointment has Cal.com booking {event.uid}; nothing to cancel")
    if appointment.is_active and is_rollback_of(appointment.id, event.cancellation_reason, event.metadata):
        return _rolled_back(session, appointment, event)
    if appointment.status == AppointmentStatus.CANCELLED:
        if appointment.sync_action == SyncAction.CANCEL and appointment.sync_status != SyncStatus.SYNCED \
                and not _other_step_bookings(appointment, event.uid):
            _mark_synced(appointment)
            _audit(session, "calcom_sync_confirmed", appointment.id, f"Cal.com confirmed the cancel of {event.uid}.")
            return Outcome("confirmed", f"Cal.com confirmed the cancel of appointment {appointment.id}",
                           appointment.id)
        return Outcome("already_cancelled", f"appointment {appointment.id} is already cancelled", appointment.id)
    if not appointment.is_active:
        return Outcome("inactive", f"appointment {appointment.id} is {appointment.status.value}; not cancelled",
                       appointment.id)
    reason = event.cancellation_reason or "Cancelled in Cal.com"
    # A composite appointment is several Cal.com bookings: the others must go too,
    # which is an ordinary cancel sync. A single booking is already cancelled there.
    others = _other_step_bookings(appointment, event.uid)
    release_appointment(appointment, reason=f"Cal.com: {reason}"[:500],
                        request=SyncAction.CANCEL if others else None)
    _audit(session, "calcom_cancelled", appointment.id, f"Cancelled in Cal.com ({event.uid}): {reason}",
           uid=event.uid, remaining_step_bookings=others)
    if others:
        _enqueue_after_commit(session, appointment)
    return Outcome("cancelled", f"appointment {appointment.id} cancelled because Cal.com cancelled {event.uid}",
                   appointment.id)


def _rolled_back(session: Session, appointment: Appointment, event: CalcomEvent) -> Outcome:
    """The sync worker cancelled this booking to undo a partly booked composite
    appointment. The customer did not cancel: the appointment keeps its slot and the
    sync state (failed + manual review, or still being worked on) the worker gives it.
    Only the uid goes, so that a retried sync books afresh and nothing later mistakes
    the dead booking for the appointment's."""
    forgotten = []
    for holder in [appointment, *appointment.segments]:
        if holder.calcom_booking_uid == event.uid:
            holder.calcom_booking_uid = None
            holder.calcom_booking_id = None
            forgotten.append("appointment" if holder is appointment else f"segment {holder.position}")
    note = (f"Cal.com cancelled booking {event.uid} because Slotguard rolled back a partly booked composite "
            f"appointment; the appointment stays {appointment.status.value} (sync {appointment.sync_status.value}).")
    _audit(session, "calcom_rollback_seen", appointment.id, note, uid=event.uid, forgotten=forgotten,
           reason=event.cancellation_reason)
    return Outcome("rollback", f"Slotguard's own rollback of {event.uid}; appointment {appointment.id} unchanged",
                   appointment.id)


def _other_step_bookings(appointment: Appointment, uid: str) -> list[str]:
    uids = {s.calcom_booking_uid for s in appointment.segments if s.calcom_booking_uid}
    uids.discard(uid)
    uids.discard(appointment.calcom_booking_uid)
    if appointment.service.kind != ServiceKind.COMPOSITE:
        return []
    return sorted(uids)


def _enqueue_after_commit(session: Session, appointment: Appointment) -> None:
    """Queue the sync job once the transaction is committed (a worker must see it)."""
    from sqlalchemy import event as sa_event
    from sqlalchemy.orm import scoped_session

    real_session = session() if isinstance(session, scoped_session) else session
    appointment_id, action, version = appointment.id, appointment.sync_action.value, appointment.sync_version

    def enqueue(_session):
        from core.queues import enqueue_sync_quietly

        enqueue_sync_quietly(appointment_id, action, version)

    sa_event.listen(real_session, "after_commit", enqueue, once=True)


# --- BOOKING_RESCHEDULED ------------------------------------------------------------------------------


def _rescheduled(session: Session, event: CalcomEvent) -> Outcome:
    current, _ = _locked_by_uid(session, event.uid)
    if current is not None:
        return _confirm_rescheduled(session, current, event)
    appointment, segment = _locked_by_uid(session, event.previous_uid)
    if appointment is None:
        ours = appointment_id_from(event.metadata)
        if ours is not None:
            return _confirm_created(session, event, ours)
        # A booking we never stored (e.g. it collided earlier) moved: take it as new.
        outcome = _import(session, event)
        outcome.message = f"rescheduled from unknown booking {event.previous_uid}: {outcome.message}"
        return outcome
    if not appointment.is_active:
        reason = (f"Cal.com moved booking {event.previous_uid} to {event.uid} "
                  f"({_describe_event(event, appointment.branch.timezone)}), but this appointment is "
                  f"{appointment.status.value} in Slotguard.")
        return _review(session, appointment, "calcom_reschedule_of_inactive", reason, event)
    if _our_pending_move(appointment, event):  # our own reschedule echoed back
        _remember(_holders(appointment, event), event)
        return _confirm_rescheduled(session, appointment, event)
    if _is_per_step(appointment) or (segment is not None and appointment.service.kind == ServiceKind.COMPOSITE):
        reason = (f"One step of this composite appointment was moved in Cal.com ({event.previous_uid} → "
                  f"{event.uid}, {_describe_event(event, appointment.branch.timezone)}); the other steps were not. "
                  f"Move the whole appointment in Slotguard or put the step back in Cal.com.")
        if segment is not None:
            _remember([segment], event)
        return _review(session, appointment, "calcom_step_rescheduled", reason, event)
    busy = _busy_for(session, appointment.service, appointment.staff, event)
    try:
        with session.begin_nested():
            move_segments(session, appointment, busy)
            appointment.starts_at, appointment.ends_at = event.start, event.end
    except SlotTaken as taken:
        _remember([appointment], event)  # later events about the booking still find it
        conflicts = taken.conflicting_appointment_ids or find_conflicts(
            session, appointment.staff_id, busy, ignore_appointment_id=appointment.id)
        reason = (f"Moved in Cal.com to {_describe_event(event, appointment.branch.timezone)}, but Slotguard has "
                  f"appointment(s) {', '.join(map(str, conflicts))} for {appointment.staff.name} then, so this "
                  f"appointment stayed at {_describe(appointment)}. Call the customer, then fix it in Cal.com or here.")
        return _review(session, appointment, "calcom_reschedule_refused", reason, event, conflicts=conflicts)
    _remember(_holders(appointment, event), event)
    if appointment.sync_action == SyncAction.RESCHEDULE and appointment.sync_status != SyncStatus.SYNCED:
        # Our pending reschedule to another time is overtaken by Cal.com's: Cal.com wins.
        _mark_synced(appointment)
    _audit(session, "calcom_rescheduled", appointment.id,
           f"Moved in Cal.com ({event.previous_uid} → {event.uid}).", booking=_booking_details(event))
    return Outcome("moved", f"appointment {appointment.id} moved to {event.start.isoformat()} as Cal.com did",
                   appointment.id)


def _our_pending_move(appointment: Appointment, event: CalcomEvent) -> bool:
    """Slotguard asked Cal.com for this move: a reschedule is pending and the
    appointment (or one of its steps) already sits exactly where Cal.com put it."""
    if appointment.sync_action != SyncAction.RESCHEDULE or appointment.sync_status == SyncStatus.SYNCED:
        return False
    if not _is_per_step(appointment):
        return appointment.starts_at == event.start
    return any(s.starts_at == event.start and s.ends_at == event.end for s in _active(appointment))


def _confirm_rescheduled(session: Session, appointment: Appointment, event: CalcomEvent) -> Outcome:
    if appointment.sync_action == SyncAction.RESCHEDULE and appointment.sync_status != SyncStatus.SYNCED \
            and appointment.is_active and _all_booked(appointment):
        _mark_synced(appointment)
        _audit(session, "calcom_sync_confirmed", appointment.id, f"Cal.com confirmed the reschedule to {event.uid}.")
        return Outcome("confirmed", f"Cal.com confirmed the reschedule of appointment {appointment.id}",
                       appointment.id)
    return Outcome("known", f"appointment {appointment.id} has booking {event.uid}; nothing to change",
                   appointment.id)


__all__ = ["CalcomEvent", "MalformedWebhook", "Outcome", "appointment_by_uid", "handle_event", "parse_event"]
