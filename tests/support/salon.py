"""A salon to load the sync with: staff with their own Cal.com event types, many
appointments booked through the booking code path, and what Cal.com (the emulator)
holds for each of them, read through its inspection API.

Every staff member gets a personal event type per service (as a real salon that books
one specific person would set Cal.com up), so Cal.com never hands a booking to a
colleague: a refusal in these suites can only mean a real problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from booking.booking_flow import queue_sync
from calcom.client import parse_time
from calcom.metadata import APPOINTMENT_KEY, SEGMENT_KEY
from core.booking_guard import NewAppointment, insert_appointment
from core.clock import local_to_utc
from core.event_types import as_booked_by, set_staff_event_type
from core.extensions import db
from core.models import Appointment, AppointmentSource, Service, Staff, SyncStatus
from core.seed import busy_intervals
from tests.factories import make_world

LIVE = ("accepted", "pending")
STAFF_NAMES = ("Anna", "Ben", "Cem", "Dora", "Emil", "Fritzi")
FIRST_REGULAR, LAST_REGULAR = time(9, 0), time(15, 30)  # haircuts every 30 min
COMPOSITE_AT = time(16, 0)  # colour: busy 16:00–16:30 and 17:10–17:40, the day's last appointment


@dataclass(frozen=True)
class Planned:
    staff_id: int
    start: datetime
    composite: bool


def make_salon(emulator, *, staff: int = 2) -> dict:
    """The factories' world with `staff` hairdressers, each with own event types, in
    Slotguard's database and in the emulator."""
    world = make_world(staff_names=STAFF_NAMES[:staff])
    for rank, member in enumerate(world["staff"]):
        set_staff_event_type(db.session, member.id, world["haircut"].id, 2001 + rank)
        set_staff_event_type(db.session, member.id, world["colour"].id, 3001 + rank)
    db.session.commit()
    emulator.load_world(db.session, preload_bookings=False)
    return {"company_id": world["company"].id, "branch_id": world["branch"].id,
            "customer_id": world["customer"].id, "haircut_id": world["haircut"].id,
            "colour_id": world["colour"].id, "staff_ids": [s.id for s in world["staff"]]}


def working_days(after: datetime, count: int) -> list[date]:
    """`count` working days (Monday–Saturday) starting three days after `after`."""
    days, day = [], (after + timedelta(days=3)).date()
    while len(days) < count:
        if day.isoweekday() != 7:
            days.append(day)
        day += timedelta(days=1)
    return days


def plan_appointments(salon: dict, now: datetime, count: int, *, composite_share: int = 15) -> list[Planned]:
    """`count` non-overlapping appointments over the next working days: per staff and
    day, haircuts every half hour from 9:00 to 15:30 and one colour (composite) at 16:00.
    Every `composite_share`-th appointment is a colour while the day still has room."""
    tz = "Europe/Berlin"
    plan: list[Planned] = []
    per_day = len(salon["staff_ids"]) * 15
    for day in working_days(now, count // per_day + 2):
        for staff_id in salon["staff_ids"]:
            regular = []
            moment = datetime.combine(day, FIRST_REGULAR)
            while moment.time() <= LAST_REGULAR:
                regular.append(Planned(staff_id, local_to_utc(moment, tz), False))
                moment += timedelta(minutes=30)
            colour = Planned(staff_id, local_to_utc(datetime.combine(day, COMPOSITE_AT), tz), True)
            for slot in [colour] + regular:
                plan.append(slot)
    # Interleave composites at the wanted share, regular ones elsewhere.
    composites = [p for p in plan if p.composite]
    regulars = [p for p in plan if not p.composite]
    chosen = []
    while len(chosen) < count:
        if composites and (len(chosen) % composite_share == 0):
            chosen.append(composites.pop(0))
        else:
            chosen.append(regulars.pop(0))
    return chosen


def book_planned(salon: dict, planned: Planned, *, call_id: str | None = None) -> int:
    """Book like `start_booking` does after the slot check: one guarded insert of the
    appointment and its busy segments (each with the event type it is booked as),
    then `queue_sync` enqueues the Cal.com sync. Returns the appointment id."""
    session = db.session
    service = session.get(Service, salon["colour_id"] if planned.composite else salon["haircut_id"])
    staff = session.get(Staff, planned.staff_id)
    busy = as_booked_by(session, service, staff, busy_intervals(service, planned.start))
    appointment = insert_appointment(session, NewAppointment(
        company_id=salon["company_id"], branch_id=salon["branch_id"], service_id=service.id,
        staff_id=staff.id, customer_id=salon["customer_id"], busy=busy, starts_at=planned.start,
        ends_at=planned.start + timedelta(minutes=service.duration_minutes), source=AppointmentSource.VOICE,
        sync_status=SyncStatus.PENDING, call_id=call_id))
    queue_sync(appointment, "create")
    return appointment.id


# --- what Cal.com holds -----------------------------------------------------------------


def emulator_bookings(emulator, appointment_id: int) -> list[dict]:
    """Every booking (live or not) carrying the appointment's id, from the emulator's
    inspection API (`GET /_emulator/bookings?metadata.slotguard_appointment_id=…`)."""
    response = emulator.control("GET", "/bookings", params={f"metadata.{APPOINTMENT_KEY}": str(appointment_id)})
    response.raise_for_status()
    return response.json()


def live_by_segment(bookings: list[dict]) -> dict[int, list[dict]]:
    """Live bookings grouped by segment number (0 for a regular appointment)."""
    grouped: dict[int, list[dict]] = {}
    for booking in bookings:
        if booking["status"] in LIVE:
            segment = int(booking["metadata"].get(SEGMENT_KEY, 0))
            grouped.setdefault(segment, []).append(booking)
    return grouped


def duplicates_in_calcom(emulator) -> list[tuple[str, str, int]]:
    """(appointment id, segment, count) for every appointment segment with more than one
    live booking in the emulator: what "never double-booked in Cal.com" forbids."""
    response = emulator.control("GET", "/bookings")
    response.raise_for_status()
    counts: dict[tuple[str, str], int] = {}
    for booking in response.json():
        appointment = booking["metadata"].get(APPOINTMENT_KEY)
        if appointment is None or booking["status"] not in LIVE:
            continue
        key = (appointment, booking["metadata"].get(SEGMENT_KEY, "0"))
        counts[key] = counts.get(key, 0) + 1
    return [(a, s, n) for (a, s), n in sorted(counts.items()) if n > 1]


def check_synced_exactly_once(emulator, appointment: Appointment) -> list[str]:
    """Problems with a synced appointment: each busy segment must have exactly one live
    booking in Cal.com, at the segment's time, and it must be the uid we recorded."""
    problems = []
    segments = sorted((s for s in appointment.segments if s.active), key=lambda s: s.starts_at)
    live = live_by_segment(emulator_bookings(emulator, appointment.id))
    composite = len(segments) > 1 or appointment.service.kind.value == "composite"
    for rank, segment in enumerate(segments):
        found = live.get(rank if composite else 0, [])
        if len(found) != 1:
            problems.append(f"appointment {appointment.id} segment {rank}: {len(found)} live bookings")
            continue
        booking = found[0]
        if booking["uid"] != segment.calcom_booking_uid:
            problems.append(f"appointment {appointment.id} segment {rank}: Cal.com has {booking['uid']}, "
                            f"we recorded {segment.calcom_booking_uid}")
        if parse_time(booking["start"]) != segment.starts_at:
            problems.append(f"appointment {appointment.id} segment {rank}: booked at {booking['start']}, "
                            f"segment starts {segment.starts_at.isoformat()}")
    return problems


def appointments(ids) -> list[Appointment]:
    db.session.expire_all()
    return list(db.session.scalars(select(Appointment).where(Appointment.id.in_(list(ids)))
                                   .order_by(Appointment.id)))


__all__ = ["Planned", "appointments", "book_planned", "check_synced_exactly_once", "duplicates_in_calcom",
           "emulator_bookings", "live_by_segment", "make_salon", "plan_appointments", "working_days"]
