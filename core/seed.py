"""Demo data: two companies, their branches, staff, services, customers and a few
hundred appointments in every sync state, so every dashboard tile has something to show.

The first demo branch (Berlin Mitte) books each staff member through their own Cal.com
event type per service (`staff_services.calcom_event_type_id`: 1001 → 100101 for Anna,
100102 for Jonas, …), so Cal.com cannot hand Anna's booking to a colleague; the other
branches use the services' team event types (Cal.com picks the host; the sync warns).

Idempotent: a second run finds the demo companies and changes nothing (`reset=True`
removes them first). Random choices come from a fixed seed, times are relative to now.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.booking_guard import NewAppointment, add_appointment, find_conflicts, guarded_transaction
from core.busy import busy_for, busy_intervals
from core.clock import local_to_utc, utcnow
from core.event_types import set_staff_event_type
from core.models import (
    Appointment,
    AppointmentSegment,
    AppointmentSource,
    AppointmentStatus,
    AuditEvent,
    Branch,
    Company,
    Customer,
    Service,
    ServiceKind,
    ServiceSegment,
    Staff,
    SyncAction,
    SyncAttempt,
    SyncOutcome,
    SyncStatus,
)
from core.opening_hours import open_intervals

DEMO_PHONE = "+4930901820"
DEMO_SLUGS = ("haarstudio-mitte", "werkstatt-krause")

WEEKDAYS_9_TO_6 = {str(d): [["09:00", "18:00"]] for d in range(1, 6)} | {"6": [["09:00", "14:00"]]}
WORKSHOP_HOURS = {str(d): [["07:30", "17:00"]] for d in range(1, 6)}

# (company, branches[(name, phone, hours, staff[(name, cal.com user id, username)])],
#  services[(name, event type id, minutes, price cents, segments[(label, minutes, busy)])])
DEMO = [
    (
        ("Haarstudio Mitte", "haarstudio-mitte"),
        [
            ("Berlin Mitte", DEMO_PHONE, WEEKDAYS_9_TO_6,
             [("Anna Becker", 101, "anna-becker"), ("Jonas Wolf", 102, "jonas-wolf"), ("Lea Hoffmann", 103, "lea-hoffmann")]),
            ("Berlin Kreuzberg", "+4930901821", WEEKDAYS_9_TO_6,
             [("Mehmet Yilmaz", 104, "mehmet-yilmaz"), ("Sophie Klein", 105, "sophie-klein")]),
        ],
        [
            ("Herrenhaarschnitt", 1001, 30, 2800, []),
            ("Damenhaarschnitt", 1002, 60, 4900, []),
            ("Färben", 1003, 100, 8900,
             [("Farbe auftragen", 30, True), ("Einwirkzeit", 40, False), ("Auswaschen und Föhnen", 30, True)]),
        ],
    ),
    (
        ("Werkstatt Krause", "werkstatt-krause"),
        [
            ("Potsdam", "+49331555010", WORKSHOP_HOURS,
             [("Tim Krause", 201, "tim-krause"), ("Paul Neumann", 202, "paul-neumann")]),
        ],
        [
            ("Ölwechsel", 2001, 60, 8900, []),
            ("Reifenwechsel", 2002, 45, 4000, []),
            ("Inspektion", 2003, 120, 24900, []),
        ],
    ),
]

FIRST_NAMES = ["Lena", "Max", "Sophie", "Paul", "Marie", "Felix", "Emma", "Lukas", "Hannah", "Jonas",
               "Mia", "Elias", "Lea", "Noah", "Clara", "Ben", "Emilia", "Finn", "Ida", "Leon"]
LAST_NAMES = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
              "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Braun", "Zimmermann"]

# Realistic failures, as the sync worker records them.
TRANSIENT_ERRORS = [
    ("http_503", 503, "Cal.com answered 503 Service Unavailable"),
    ("timeout", None, "Cal.com did not answer within 10 s"),
    ("rate_limited", 429, "Cal.com rate limit reached (120 requests/minute), retry after 37 s"),
    ("connection_error", None, "Connection to api.cal.com refused"),
]
MANUAL_REVIEW_CASES = [
    ("slot_taken_in_calcom", 400,
     "User either already has booking at this time or is not available",
     "Cal.com refused the booking: the host already has a booking at this time that Slotguard does not know. "
     "Call the customer to move the appointment or cancel the other booking in Cal.com."),
    ("event_type_not_found", 404,
     "Event type with id=1003 not found",
     "The Cal.com event type of this service no longer exists. Fix the service's event type id, then retry."),
    ("invalid_attendee", 400,
     "attendee.email must be an email",
     "Cal.com rejected the customer's contact details. Correct the email or phone number, then retry."),
    ("retries_exhausted", 503,
     "Cal.com answered 503 Service Unavailable (5 attempts over 31 minutes)",
     "Cal.com was unavailable for all 5 attempts. Check Cal.com's status, then retry."),
]


@dataclass
class SeedResult:
    created: bool
    companies: int = 0
    appointments: int = 0


def seed_demo(session: Session, *, reset: bool = False, rng_seed: int = 42) -> SeedResult:
    """Create the demo data unless it is already there."""
    if reset:
        remove_demo(session)
    existing = session.scalar(select(Company).where(Company.slug.in_(DEMO_SLUGS)))
    if existing is not None:
        return SeedResult(created=False)

    rng = random.Random(rng_seed)
    now = utcnow()
    appointments = 0
    # All or nothing: a failed seed leaves no half-made company behind.
    with guarded_transaction(session):
        companies = [_create_company(session, spec) for spec in DEMO]
        for company in companies:
            appointments += _create_appointments(session, company, rng, now)
    return SeedResult(created=True, companies=len(companies), appointments=appointments)


def remove_demo(session: Session) -> None:
    company_ids = session.scalars(select(Company.id).where(Company.slug.in_(DEMO_SLUGS))).all()
    if not company_ids:
        return
    appointment_ids = select(Appointment.id).where(Appointment.company_id.in_(company_ids))
    session.execute(delete(AuditEvent).where(AuditEvent.appointment_id.in_(appointment_ids)))
    session.execute(delete(SyncAttempt).where(SyncAttempt.appointment_id.in_(appointment_ids)))
    session.execute(delete(AppointmentSegment).where(AppointmentSegment.appointment_id.in_(appointment_ids)))
    session.execute(delete(Appointment).where(Appointment.company_id.in_(company_ids)))
    session.execute(delete(Customer).where(Customer.company_id.in_(company_ids)))
    for company in session.scalars(select(Company).where(Company.id.in_(company_ids))):
        for service in company.services:
            session.delete(service)
        for branch in company.branches:
            for staff in branch.staff:
                session.delete(staff)
            session.delete(branch)
        session.delete(company)
    session.commit()


def _create_company(session: Session, spec) -> Company:
    (name, slug), branches, services = spec
    company = Company(name=name, slug=slug)
    session.add(company)
    all_staff = []
    for branch_name, phone, hours, staff_specs in branches:
        branch = Branch(company=company, name=branch_name, phone_number=phone, timezone="Europe/Berlin",
                        opening_hours=hours)
        for staff_name, user_id, username in staff_specs:
            staff = Staff(branch=branch, name=staff_name, calcom_user_id=user_id, calcom_username=username,
                          email=f"{username}@example.com")
            all_staff.append(staff)
        session.add(branch)
    for service_name, event_type_id, minutes, price, segments in services:
        service = Service(
            company=company, name=service_name, calcom_event_type_id=event_type_id, duration_minutes=minutes,
            price_cents=price, kind=ServiceKind.COMPOSITE if segments else ServiceKind.REGULAR,
        )
        service.segments = [
            ServiceSegment(position=i, label=label, duration_minutes=seg_minutes, staff_busy=busy)
            for i, (label, seg_minutes, busy) in enumerate(segments)
        ]
        service.staff = list(all_staff)
        session.add(service)
    session.flush()
    if company.slug == DEMO_SLUGS[0]:
        _give_personal_event_types(session, company)
    return company


def personal_event_type_id(service: Service, position: int) -> int:
    """The demo's id of the `position`-th (1-based) staff member's own event type for a
    service: 1001 → 100101, 100102, …"""
    return service.calcom_event_type_id * 100 + position


def _give_personal_event_types(session: Session, company: Company) -> None:
    """The first branch's staff get their own Cal.com event type for every service."""
    branch = next(b for b in company.branches if b.phone_number == DEMO_PHONE)
    for position, staff in enumerate(branch.staff, start=1):
        for service in company.services:
            set_staff_event_type(session, staff.id, service.id, personal_event_type_id(service, position))


def _opening_window(branch: Branch, day: date) -> tuple[datetime, datetime] | None:
    """The branch's first opening range on local `day` (UTC), or None when closed."""
    intervals = open_intervals(branch.opening_hours, day, branch.timezone)
    return intervals[0] if intervals else None


def _create_appointments(session: Session, company: Company, rng: random.Random, now: datetime) -> int:
    customers = _create_customers(session, company, rng, 40)
    today = now.date()
    plans = []  # (branch, staff, service, start)
    for branch in company.branches:
        for day_offset in range(-30, 15):
            day = today + timedelta(days=day_offset)
            window = _opening_window(branch, day)
            if window is None:
                continue
            for staff in branch.staff:
                cursor = window[0] + timedelta(minutes=30 * rng.randint(0, 3))
                for _ in range(rng.randint(1, 3)):
                    service = rng.choice(company.services)
                    end = cursor + timedelta(minutes=service.duration_minutes)
                    if end > window[1]:
                        break
                    plans.append((branch, staff, service, cursor))
                    cursor = end + timedelta(minutes=30 * rng.randint(1, 4))

    count = 0
    for index, (branch, staff, service, start) in enumerate(plans):
        customer = rng.choice(customers)
        appointment = add_appointment(session, NewAppointment(
            company_id=company.id, branch_id=branch.id, service_id=service.id, staff_id=staff.id,
            customer_id=customer.id, busy=busy_for(session, service, staff, start), starts_at=start,
            ends_at=start + timedelta(minutes=service.duration_minutes),
            source=rng.choice([AppointmentSource.VOICE] * 3 + [AppointmentSource.DASHBOARD, AppointmentSource.CALCOM]),
            call_id=f"call_demo_{company.id}_{index}",
        ))
        _give_history(session, appointment, rng, now)
        count += 1
    if company.slug == DEMO_SLUGS[0]:
        _add_siebert_case(session, company, now)
        count += 1
    return count + _add_problem_cases(session, company, rng, now)


def _create_customers(session: Session, company: Company, rng: random.Random, n: int) -> list[Customer]:
    customers = []
    for i in range(n):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        customer = Customer(
            company_id=company.id, name=f"{first} {last}",
            phone=f"+49151{company.id:02d}{i:05d}",
            email=f"{first.lower()}.{i}@example.com" if rng.random() < 0.6 else None,
        )
        customers.append(customer)
    session.add_all(customers)
    session.flush()
    return customers


def _attempt(session, appointment, at, outcome, number, code=None, status=None, message=None, action=SyncAction.CREATE):
    duration = 180 + number * 40
    session.add(SyncAttempt(
        appointment_id=appointment.id, action=action, attempt_number=number, started_at=at,
        finished_at=at + timedelta(milliseconds=duration), outcome=outcome,
        http_status=status if status is not None else (201 if outcome == SyncOutcome.SUCCESS else None),
        error_code=code, error_message=message, duration_ms=duration,
    ))


def _give_history(session: Session, appointment: Appointment, rng: random.Random, now: datetime) -> None:
    """A plausible past: booked some days before, synced within seconds; past ones completed."""
    lead = timedelta(days=rng.randint(0, 10), hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
    created = min(appointment.starts_at - lead, now - timedelta(minutes=rng.randint(70, 600)))
    if rng.random() < 0.25:
        # Plenty of traffic inside the last 24 hours, so the success rate means something.
        created = now - timedelta(minutes=rng.randint(70, 23 * 60))
    appointment.created_at = created
    appointment.sync_requested_at = created
    if rng.random() < 0.12:
        code, status, message = rng.choice(TRANSIENT_ERRORS)
        _attempt(session, appointment, created + timedelta(seconds=2), SyncOutcome.RETRY, 1, code, status, message)
        _attempt(session, appointment, created + timedelta(seconds=35), SyncOutcome.SUCCESS, 2)
        appointment.sync_attempts = 2
    else:
        _attempt(session, appointment, created + timedelta(seconds=2), SyncOutcome.SUCCESS, 1)
        appointment.sync_attempts = 1
    appointment.sync_status = SyncStatus.SYNCED
    appointment.last_sync_attempt_at = appointment.synced_at = created + timedelta(seconds=35)
    appointment.calcom_booking_uid = f"demo-{appointment.id:05d}"
    appointment.calcom_booking_id = 90000 + appointment.id
    for segment in appointment.segments:
        segment.calcom_booking_uid = f"demo-{appointment.id:05d}-{segment.position}"
    if appointment.ends_at < now:
        roll = rng.random()
        appointment.status = (
            AppointmentStatus.COMPLETED if roll < 0.85
            else AppointmentStatus.NO_SHOW if roll < 0.92 else AppointmentStatus.CANCELLED
        )
        if appointment.status == AppointmentStatus.CANCELLED:
            appointment.cancelled_at = appointment.starts_at - timedelta(hours=rng.randint(2, 48))
            for segment in appointment.segments:
                segment.active = False


def _free_future_slot(session: Session, staff: Staff, service: Service, branch: Branch, day: date, rng) -> datetime:
    """A start time that day when `staff` is free for `service` (tries the whole day)."""
    window = _opening_window(branch, day)
    while window is None:
        day += timedelta(days=1)
        window = _opening_window(branch, day)
    candidates = []
    cursor = window[0]
    while cursor + timedelta(minutes=service.duration_minutes) <= window[1]:
        if not find_conflicts(session, staff.id, busy_intervals(service, cursor)):
            candidates.append(cursor)
        cursor += timedelta(minutes=30)
    if not candidates:
        return _free_future_slot(session, staff, service, branch, day + timedelta(days=1), rng)
    return rng.choice(candidates)


def _add_siebert_case(session: Session, company: Company, now: datetime) -> None:
    """The real incident: booked by phone 5 days ago, never reached Cal.com.

    It sits on a weekday morning at 10:00 in the demo branch, so that asking the
    voice agent for that slot shows Slotguard saying "taken" although Cal.com says free.
    """
    branch = next(b for b in company.branches if b.phone_number == DEMO_PHONE)
    staff = branch.staff[0]
    service = next(s for s in company.services if s.name == "Herrenhaarschnitt")
    customer = Customer(company_id=company.id, name="Karl Siebert", phone="+4915112345678")
    session.add(customer)
    session.flush()
    day = (now + timedelta(days=1)).date()
    while day.isoweekday() > 5:
        day += timedelta(days=1)
    start = local_to_utc(datetime.combine(day, time(10, 0)), branch.timezone)
    intervals = busy_for(session, service, staff, start)
    for other_id in find_conflicts(session, staff.id, intervals):
        # Make room: the seed's random appointment gives way to the named case.
        other = session.get(Appointment, other_id)
        session.delete(other)
    session.flush()
    appointment = add_appointment(session, NewAppointment(
        company_id=company.id, branch_id=branch.id, service_id=service.id, staff_id=staff.id,
        customer_id=customer.id, busy=intervals, source=AppointmentSource.VOICE, call_id="call_siebert_case",
        notes="Siebert case: sync job lost, pending for 5 days",
    ))
    appointment.created_at = appointment.sync_requested_at = now - timedelta(days=5)


def _add_problem_cases(session: Session, company: Company, rng: random.Random, now: datetime) -> int:
    """Upcoming appointments in each unhappy sync state."""
    branch = company.branches[0]
    customers = session.scalars(select(Customer).where(Customer.company_id == company.id).limit(30)).all()
    # (kind, how many, age of the sync request)
    cases = [("pending_fresh", 4, lambda: timedelta(minutes=rng.randint(1, 40))),
             ("pending_stale", 12, lambda: timedelta(hours=rng.randint(2, 20))),
             ("failed_recent", 4, lambda: timedelta(hours=rng.randint(1, 12))),
             ("failed_ancient", 3, lambda: timedelta(hours=rng.randint(30, 96))),
             ("manual_review", len(MANUAL_REVIEW_CASES), lambda: timedelta(hours=rng.randint(2, 40)))]
    if company.slug != DEMO_SLUGS[0]:
        cases = [("pending_fresh", 2, lambda: timedelta(minutes=rng.randint(1, 40))),
                 ("pending_stale", 2, lambda: timedelta(hours=rng.randint(2, 6))),
                 ("failed_recent", 2, lambda: timedelta(hours=rng.randint(1, 12)))]
    for kind, how_many, age in cases:
        for i in range(how_many):
            staff = rng.choice(branch.staff)
            service = rng.choice([s for s in company.services if s.kind == ServiceKind.REGULAR])
            day = (now + timedelta(days=rng.randint(1, 13))).date()
            start = _free_future_slot(session, staff, service, branch, day, rng)
            appointment = add_appointment(session, NewAppointment(
                company_id=company.id, branch_id=branch.id, service_id=service.id, staff_id=staff.id,
                customer_id=rng.choice(customers).id, busy=busy_for(session, service, staff, start),
                source=AppointmentSource.VOICE, call_id=f"call_demo_{kind}_{company.id}_{i}",
            ))
            requested = now - age()
            appointment.created_at = appointment.sync_requested_at = requested
            _give_problem(session, appointment, kind, i, requested, now)
    return sum(how_many for _, how_many, _ in cases)


def _give_problem(session, appointment: Appointment, kind: str, i: int, requested: datetime, now: datetime) -> None:
    if kind == "pending_fresh":
        return
    if kind == "pending_stale":
        # Some were tried and are waiting for their next retry; some were never picked up.
        if i % 2:
            code, status, message = TRANSIENT_ERRORS[i % len(TRANSIENT_ERRORS)]
            _attempt(session, appointment, requested + timedelta(seconds=3), SyncOutcome.RETRY, 1, code, status, message)
            appointment.sync_attempts = 1
            appointment.last_sync_attempt_at = requested + timedelta(seconds=3)
            appointment.sync_error_code, appointment.sync_error_message = code, message
        return
    if kind in ("failed_recent", "failed_ancient"):
        code, status, message = TRANSIENT_ERRORS[i % len(TRANSIENT_ERRORS)]
        at = requested
        for number in range(1, 6):
            at += timedelta(seconds=30 * 2 ** (number - 1))
            outcome = SyncOutcome.RETRY if number < 5 else SyncOutcome.FAILED
            _attempt(session, appointment, at, outcome, number, code, status, message)
        appointment.sync_status = SyncStatus.FAILED
        appointment.sync_attempts = 5
        appointment.last_sync_attempt_at = at
        appointment.sync_error_code, appointment.sync_error_message = code, message
        return
    code, status, message, reason = MANUAL_REVIEW_CASES[i % len(MANUAL_REVIEW_CASES)]
    at = requested + timedelta(seconds=3)
    _attempt(session, appointment, at, SyncOutcome.FAILED, 1, code, status, message)
    appointment.sync_status = SyncStatus.FAILED
    appointment.sync_attempts = 1
    appointment.last_sync_attempt_at = at
    appointment.sync_error_code, appointment.sync_error_message = code, message
    appointment.requires_manual_review = True
    appointment.manual_review_reason = reason
