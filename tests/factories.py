"""Small builders for test data; each returns a committed row."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.booking_guard import Interval, NewAppointment, insert_appointment
from core.extensions import db
from core.models import Branch, Company, Customer, Service, ServiceKind, ServiceSegment, Staff

OPEN_WEEKDAYS = {str(d): [["09:00", "18:00"]] for d in range(1, 7)}


def make_world(*, phone: str = "+4930111111", tz: str = "Europe/Berlin", staff_names=("Anna", "Ben")):
    """A company with one branch, its staff, a 30-minute regular and a composite service."""
    company = Company(name="Test Salon", slug=f"test-{phone[-6:]}")
    branch = Branch(company=company, name="Main", phone_number=phone, timezone=tz, opening_hours=OPEN_WEEKDAYS)
    staff = [Staff(branch=branch, name=name, calcom_user_id=100 + i) for i, name in enumerate(staff_names)]
    haircut = Service(company=company, name="Herrenhaarschnitt", calcom_event_type_id=1001, duration_minutes=30)
    colour = Service(company=company, name="Färben", calcom_event_type_id=1003, duration_minutes=100,
                     kind=ServiceKind.COMPOSITE)
    colour.segments = [
        ServiceSegment(position=0, label="Farbe auftragen", duration_minutes=30, staff_busy=True),
        ServiceSegment(position=1, label="Einwirkzeit", duration_minutes=40, staff_busy=False),
        ServiceSegment(position=2, label="Auswaschen", duration_minutes=30, staff_busy=True),
    ]
    haircut.staff = list(staff)
    colour.staff = list(staff)
    db.session.add_all([company, branch, *staff, haircut, colour])
    db.session.flush()
    customer = Customer(company_id=company.id, name="Erika Mustermann", phone="+4915100000001")
    db.session.add(customer)
    db.session.commit()
    return {"company": company, "branch": branch, "staff": staff, "haircut": haircut, "colour": colour,
            "customer": customer}


def new_appointment(world, start: datetime, minutes: int = 30, *, staff=None, busy=None, **overrides) -> NewAppointment:
    staff = staff or world["staff"][0]
    busy = busy or [Interval(start, start + timedelta(minutes=minutes))]
    fields = dict(
        company_id=world["company"].id, branch_id=world["branch"].id, service_id=world["haircut"].id,
        staff_id=staff.id, customer_id=world["customer"].id, busy=busy,
    )
    fields.update(overrides)
    return NewAppointment(**fields)


def book(world, start: datetime, minutes: int = 30, **kwargs):
    return insert_appointment(db.session, new_appointment(world, start, minutes, **kwargs))


def ids_only(world):
    """The world's ids, safe to use from other threads (no session-bound objects)."""
    from types import SimpleNamespace

    return {
        key: [SimpleNamespace(id=item.id) for item in value] if isinstance(value, list) else SimpleNamespace(id=value.id)
        for key, value in world.items()
    }
