"""core.customers: one person is one customer of the company, whether they booked by
phone (voice agent) or in Cal.com (webhook)."""

from __future__ import annotations

from core.customers import find_or_create_customer
from core.extensions import db
from core.models import Customer
from tests.factories import make_world


def test_a_calcom_attendee_with_a_formatted_number_is_the_callers_customer(app):
    world = make_world()
    by_phone = find_or_create_customer(db.session, world["company"].id, name="Karl Siebert", phone="+4915112345678")
    from_calcom = find_or_create_customer(db.session, world["company"].id, name="Karl S.",
                                          phone="+49 151 1234 5678", email="karl@example.com", other_name="reuse")
    assert from_calcom.id == by_phone.id
    assert from_calcom.email == "karl@example.com"  # learned, nothing else overwritten
    assert from_calcom.name == "Karl Siebert"


def test_family_members_sharing_a_phone_stay_apart_on_the_phone(app):
    world = make_world()
    company = world["company"].id
    mother = find_or_create_customer(db.session, company, name="Erika Muster", phone="0151 1111111")
    son = find_or_create_customer(db.session, company, name="Max Muster", phone="+491511111111")
    again = find_or_create_customer(db.session, company, name="erika  muster", phone="+49 151 1111111")
    assert son.id != mother.id and again.id == mother.id
    assert mother.phone == son.phone == "+491511111111"


def test_without_a_number_the_email_finds_the_customer(app):
    world = make_world()
    company = world["company"].id
    known = find_or_create_customer(db.session, company, name="Web Kundin", phone=None, email="web@example.com")
    assert find_or_create_customer(db.session, company, name="W. Kundin", phone="not a number",
                                   email="WEB@example.com").id == known.id
    assert db.session.query(Customer).filter_by(company_id=company).count() == 2  # make_world's own + this one
