"""Managing appointments by voice finds only the caller's own appointments (by
the number they call from) at the branch they called, with times in its time zone."""

from __future__ import annotations

from core.extensions import db
from core.models import Appointment, AppointmentStatus
from tests.factories import book
from tests.voice.conftest import SISTER_PHONE, berlin


def test_find_lists_only_this_branchs_appointments_of_the_caller(world, voice, caller, sister, foreign):
    here = book(world, berlin(2026, 12, 8, 10), customer_id=caller.id)
    book(world, berlin(2026, 12, 8, 11), staff=sister["staff"], branch_id=sister["branch"].id,
         customer_id=caller.id)  # same caller, sister branch
    book(foreign, berlin(2026, 12, 8, 12), customer_id=foreign["caller"].id)  # same number, other company

    body = voice("find_appointments", {})
    assert [a["appointment_id"] for a in body["appointments"]] == [here.id]

def test_sister_branch_appointment_is_not_found_by_id_and_stays_booked(world, voice, caller, sister):
    there = book(world, berlin(2026, 12, 8, 10), staff=sister["staff"], branch_id=sister["branch"].id,
                 customer_id=caller.id)
    body = voice("cancel_appointment", {"appointment_id": there.id})
    assert body["error_code"] == "not_found"
    db.session.commit()
    assert db.session.get(Appointment, there.id).status == AppointmentStatus.BOOKED

def test_times_are_spoken_in_the_called_branchs_time_zone(world, voice, caller, sister):
    there = book(world, berlin(2026, 12, 8, 10), staff=sister["staff"], branch_id=sister["branch"].id,
                 customer_id=caller.id)  # 10:00 in Berlin is 9:00 in London

    body = voice("find_appointments", {}, to_number=SISTER_PHONE)
    assert [a["appointment_id"] for a in body["appointments"]] == [there.id]
    assert body["appointments"][0]["start"] == "2026-12-08T09:00:00+00:00"
    assert body["appointments"][0]["spoken"] == "Dienstag, 8. Dezember, um 9:00 Uhr"
    # …and a day named by the caller is the London day.
    cancelled = voice("cancel_appointment", {"date": "2026-12-08", "time": "09:00"}, to_number=SISTER_PHONE)
    assert cancelled["success"] is True and cancelled["appointment_id"] == there.id
