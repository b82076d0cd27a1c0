"""The branch (and so the company) a call acts for comes from what Retell sends
(`call.to_number`, `call.metadata`, the `X-Retell-…` headers); the LLM-filled `args`
may only pick a sister branch of the same company.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from booking import phrases
from booking.branch_lookup import find_branch
from booking.errors import CallerError
from booking.retell_request import parse_request
from core.extensions import db
from core.models import Appointment, AppointmentStatus
from tests.factories import book
from tests.voice.conftest import BRANCH_PHONE, CALLER, FOREIGN_PHONE, berlin

SLOT = {"service": "Herrenhaarschnitt", "date": "2026-12-08", "time": "10:00", "customer_name": "Erika Muster"}

def count_appointments() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(Appointment))

def test_booking_at_another_companys_branch_named_in_args_is_refused(world, voice, foreign):
    body = voice("start_booking", dict(SLOT, branch_id=foreign["branch"].id))
    assert body["success"] is False and body["error_code"] == "branch_mismatch"
    assert body["message"] == phrases.BRANCH_NOT_OURS
    assert body["message"].startswith("Diese Filiale kann ich für Sie leider nicht verwalten.")
    assert count_appointments() == 0

def test_cancelling_at_another_company_by_args_branch_id_changes_nothing(world, voice, foreign):
    theirs = book(foreign, berlin(2026, 12, 8, 10), customer_id=foreign["caller"].id)
    body = voice("cancel_appointment", {"appointment_id": theirs.id, "branch_id": foreign["branch"].id})
    assert body["error_code"] == "branch_mismatch"
    db.session.commit()
    assert db.session.get(Appointment, theirs.id).status == AppointmentStatus.BOOKED

def test_args_branch_id_that_does_not_exist_is_refused(world, voice):
    body = voice("check_availability", {"service": "Herrenhaarschnitt", "date": "2026-12-08", "branch_id": 999})
    assert body["error_code"] == "branch_mismatch"

def _request(body: dict, headers: dict | None = None):
    return parse_request("check_availability", json.dumps(body).encode(), headers or {})

def test_args_branch_id_may_pick_a_sister_branch_of_the_dialled_company(world, sister):
    call = {"call_id": "c1", "from_number": CALLER, "to_number": BRANCH_PHONE}
    request = _request({"name": "check_availability", "call": call, "args": {"branch_id": sister["branch"].id}})
    assert find_branch(db.session, request).id == sister["branch"].id

def test_configured_branch_id_wins_over_the_dialled_number_and_args_cannot_override_it(world, foreign):
    call = {"call_id": "c1", "to_number": FOREIGN_PHONE, "metadata": {"branch_id": str(world["branch"].id)}}
    request = _request({"name": "x", "call": call, "args": {}})
    assert find_branch(db.session, request).id == world["branch"].id
    request = _request({"name": "x", "call": call, "args": {"branch_id": foreign["branch"].id}})
    with pytest.raises(CallerError) as refused:
        find_branch(db.session, request)
    assert refused.value.code == "branch_mismatch"

def test_args_only_body_cannot_name_its_own_branch(world, voice):
    # "Payload: args only": the body is what the LLM filled; a to_number or branch_id
    # in it proves nothing. Without the X-Retell-To-Number header there is no branch.
    for args in ({"to_number": BRANCH_PHONE}, {"branch_id": world["branch"].id}):
        raw = json.dumps(dict(SLOT, **args))
        body = voice.post("check_availability", raw, headers={"X-Retell-Call-Id": "c9"}).get_json()
        assert body["success"] is False and body["error_code"] == "unknown_branch"
        assert body["message"] == phrases.BRANCH_UNKNOWN
    raw = json.dumps(SLOT)
    body = voice.post("check_availability", raw, headers={"X-Retell-Call-Id": "c9",
                                                           "X-Retell-To-Number": BRANCH_PHONE}).get_json()
    assert body["success"] is True
