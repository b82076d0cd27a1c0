"""Worlds for the call-scope tests: a sister branch of the same company (in another
time zone) and another company whose customer has the caller's number too."""

from __future__ import annotations

import pytest

from core.extensions import db
from core.models import Branch, Customer, Staff
from tests.factories import OPEN_WEEKDAYS, make_world
from tests.voice.conftest import CALLER

SISTER_PHONE = "+4930222222"
FOREIGN_PHONE = "+4940333333"


@pytest.fixture
def sister(world):
    """A second branch of the same company, in London, with its own staff member."""
    branch = Branch(company_id=world["company"].id, name="London", phone_number=SISTER_PHONE,
                    timezone="Europe/London", opening_hours=OPEN_WEEKDAYS)
    staff = Staff(branch=branch, name="Clara", calcom_user_id=200)
    db.session.add_all([branch, staff])
    db.session.commit()
    return {"branch": branch, "staff": staff}


@pytest.fixture
def foreign(world):
    """Another company whose customer has the caller's number too."""
    other = make_world(phone=FOREIGN_PHONE)
    customer = Customer(company_id=other["company"].id, name="Erika Muster", phone=CALLER)
    db.session.add(customer)
    db.session.commit()
    other["caller"] = customer
    return other


@pytest.fixture
def caller(world):
    customer = Customer(company_id=world["company"].id, name="Erika Muster", phone=CALLER)
    db.session.add(customer)
    db.session.commit()
    return customer
