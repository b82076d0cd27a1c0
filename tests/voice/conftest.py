"""Fixtures for the voice-function tests: the Cal.com emulator (the Cal.com room's,
served on a free port), a small world (one branch, two staff, a regular and a
composite service) known to both Slotguard and the emulator, and `voice`, a helper
that posts signed Retell requests.

The clock is frozen at Monday 2026-12-07 09:00 in Berlin (08:00 UTC); tests ask for
Tuesday 2026-12-08 unless they are about something else.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from retell.lib.webhook_auth import symmetric

from booking.retell_signature import now_ms, sign as sign_bytes
from calcom.emulator_state import EmulatedBooking
from core.extensions import db
from core.models import Branch, Customer, Staff
from tests.factories import OPEN_WEEKDAYS, make_world

RETELL_KEY = "retell_test_key"  # tests/conftest.py base_config
BRANCH_PHONE = "+4930111111"  # tests.factories.make_world
CALLER = "+4915112345678"


def berlin(year, month, day, hour, minute=0) -> datetime:
    """A Berlin wall-clock time as aware UTC (for assertions)."""
    from zoneinfo import ZoneInfo

    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(timezone.utc)


@pytest.fixture
def app_config(base_config):
    # Timeouts generous enough for a loaded CI machine; the tests about a hanging
    # Cal.com set a short one themselves.
    return dict(base_config, CALCOM_AVAILABILITY_TIMEOUT=5.0, CALCOM_CONNECT_TIMEOUT=5.0, CALCOM_SYNC_TIMEOUT=5.0)


class Calendar:
    """The Cal.com emulator as the voice tests use it (see tests/calcom_fixtures.py)."""

    def __init__(self, handle):
        self.handle = handle
        self.state = handle.state
        self._direct = 0

    def load(self) -> None:
        """(Re)build hosts and event types from the database (staff hours = branch hours)."""
        self.state.reset(keep_world=False)
        self.handle.load_world(db.session)

    def book_directly(self, host_id: int, start: datetime, minutes: int, event_type_id: int = 1001):
        """A booking someone made in Cal.com itself, unknown to Slotguard."""
        self._direct += 1
        return self.state.load_booking(EmulatedBooking(
            id=800000 + self._direct, uid=f"direct-{self._direct}", event_type_id=event_type_id, host_id=host_id,
            start=start, end=start + timedelta(minutes=minutes), attendees=[], metadata={}, created_at=start,
            updated_at=start, title="booked in Cal.com", origin="direct"))

    def fail(self, kind: str = "error", **rule) -> None:
        self.handle.set_faults({"rules": [dict(rule, kind=kind)]})

    def heal(self) -> None:
        self.handle.clear_faults()

    @property
    def requests_served(self) -> int:
        return self.handle.emulator.requests_served

    def bookings(self, **filters):
        return self.state.find(**filters)


@pytest.fixture
def calendar(calcom_emulator):
    return Calendar(calcom_emulator)


@pytest.fixture
def world(app, clock, calendar):
    """Branch +4930111111 (Mon–Sat 9–18), Anna (Cal.com user 100) and Ben (101),
    Herrenhaarschnitt (event type 1001, 30 min) and Färben (1003, 30 work / 40 gap /
    30 work); the emulator knows the same hosts and event types."""
    made = make_world(phone=BRANCH_PHONE)
    calendar.load()
    return made


class Voice:
    """Posts Retell custom-function requests the way Retell does (signed, wrapped)."""

    def __init__(self, client):
        self.client = client

    def body(self, name, args, *, call_id="call_A", from_number=CALLER, to_number=BRANCH_PHONE):
        call = {"call_type": "phone_call", "call_id": call_id, "agent_id": "agent_1", "agent_version": 1,
                "call_status": "ongoing", "direction": "inbound", "from_number": from_number, "to_number": to_number,
                "metadata": {}, "retell_llm_dynamic_variables": {}}
        if call_id is None:
            del call["call_id"]
        return json.dumps({"name": name, "call": call, "args": args or {}})

    def post(self, name, raw: str | bytes, *, headers=None, sign=True, timestamp=None):
        all_headers = {"Content-Type": "application/json"}
        if sign and isinstance(raw, bytes):  # maybe not even UTF-8: sign the bytes
            all_headers["X-Retell-Signature"] = sign_bytes(raw, RETELL_KEY, timestamp or now_ms())
        elif sign:  # as Retell does (the official SDK's signer)
            all_headers["X-Retell-Signature"] = symmetric["sign"](raw, RETELL_KEY, timestamp or now_ms())
        all_headers.update(headers or {})
        return self.client.post(f"/retell/functions/{name}", data=raw, headers=all_headers)

    def __call__(self, name, args=None, *, status=200, **call):
        response = self.post(name, self.body(name, args, **call))
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()


@pytest.fixture
def voice(client):
    return Voice(client)


# --- the caller and the other places their number is known --------------------------

SISTER_PHONE = "+4930222222"
FOREIGN_PHONE = "+4940333333"


def _customer_with_callers_number(company_id: int) -> Customer:
    customer = Customer(company_id=company_id, name="Erika Muster", phone=CALLER)
    db.session.add(customer)
    db.session.commit()
    return customer


@pytest.fixture
def caller(world):
    """The caller as a known customer of the branch's company."""
    return _customer_with_callers_number(world["company"].id)


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
    other["caller"] = _customer_with_callers_number(other["company"].id)
    return other
