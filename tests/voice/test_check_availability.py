"""check_availability: Cal.com ∩ no local overlap ∩ no foreign hold, over HTTP."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from booking.holds import cell_keys
from calcom import slot_cache
from core.booking_guard import Interval
from core.clock import frozen_at
from core.extensions import db
from core.models import Appointment, SyncStatus
from core.redis_client import get_redis
from tests.factories import book, ids_only
from tests.support.sql_trace import recorded_statements
from tests.voice.conftest import berlin

TUESDAY_10 = {"service": "Herrenhaarschnitt", "date": "2026-12-08", "time": "10:00"}


def hold_keys(app) -> list[bytes]:
    return list(get_redis(app).scan_iter(match="slotguard:hold:*"))


def test_free_slot_is_held_for_the_caller(world, voice, app):
    body = voice("check_availability", TUESDAY_10)
    assert body == {
        "success": True, "error_code": None, "available": True,
        "lock_key": f"h1-{world['staff'][0].id}-{world['haircut'].id}-20261208T0900Z",
        "slot": {"start": "2026-12-08T10:00:00+01:00", "end": "2026-12-08T10:30:00+01:00", "staff": "Anna"},
        "alternatives": [],
        "message": "Am Dienstag, 8. Dezember, um 10:00 Uhr ist bei Anna ein Termin frei. "
                   "Ich halte ihn kurz für Sie fest. Auf welchen Namen darf ich buchen?",
    }
    redis = get_redis(app)
    keys = cell_keys(world["staff"][0].id, [Interval(berlin(2026, 12, 8, 10), berlin(2026, 12, 8, 10, 30))])
    assert redis.mget(keys) == [b"call_A"] * len(keys)
    assert 0 < redis.pttl(keys[0]) <= 120_000


@pytest.mark.parametrize("sync_status", [SyncStatus.PENDING, SyncStatus.FAILED, SyncStatus.SYNCED])
def test_siebert_case_local_appointment_blocks_although_calcom_says_free(world, voice, calendar, clock, sync_status):
    """Booked by phone five days ago, sync still pending: Cal.com offers the slot, we must not."""
    appointment = book(world, berlin(2026, 12, 8, 10), 30, staff=world["staff"][0], sync_status=sync_status)
    appointment.sync_requested_at = clock.utcnow() - timedelta(days=5)
    db.session.commit()
    assert not calendar.bookings()  # Cal.com knows nothing about it

    body = voice("check_availability", dict(TUESDAY_10, staff="Anna"))

    assert body["success"] is True and body["available"] is False and body["lock_key"] is None
    assert "10:00" not in [a["start"][11:16] for a in body["alternatives"]]
    assert body["message"].startswith("Am Dienstag, 8. Dezember, um 10:00 Uhr ist leider kein Termin frei.")


def test_overlapping_local_appointment_blocks_partially(world, voice):
    book(world, berlin(2026, 12, 8, 10, 15), 30, staff=world["staff"][0])
    assert voice("check_availability", dict(TUESDAY_10, staff="Anna"))["available"] is False
    assert voice("check_availability", dict(TUESDAY_10, staff="Anna", time="10:45"))["available"] is True


def test_without_a_staff_wish_the_free_colleague_gets_it(world, voice):
    book(world, berlin(2026, 12, 8, 10), 30, staff=world["staff"][0])
    body = voice("check_availability", TUESDAY_10)
    assert body["available"] is True and body["slot"]["staff"] == "Ben"


def test_two_calls_on_one_slot_second_sees_the_hold(world, voice):
    first = voice("check_availability", dict(TUESDAY_10, staff="Anna"), call_id="call_A")
    second = voice("check_availability", dict(TUESDAY_10, staff="Anna"), call_id="call_B")
    assert first["available"] is True
    assert second["available"] is False and second["lock_key"] is None
    assert len(second["alternatives"]) == 3
    # Without a staff wish the second caller gets the same time with the colleague, then nobody is left.
    assert voice("check_availability", TUESDAY_10, call_id="call_C")["slot"]["staff"] == "Ben"
    assert voice("check_availability", TUESDAY_10, call_id="call_D")["available"] is False


def test_the_same_call_asking_again_gets_its_slot_again(world, voice, app):
    first = voice("check_availability", dict(TUESDAY_10, staff="Anna"))
    keys = [k for k in hold_keys(app)]
    for key in keys:
        get_redis(app).pexpire(key, 1_000)
    again = voice("check_availability", dict(TUESDAY_10, staff="Anna"))
    assert again["available"] is True and again["lock_key"] == first["lock_key"]
    assert all(get_redis(app).pttl(key) > 60_000 for key in keys)


def test_calcom_busy_means_not_available(world, voice, calendar):
    calendar.book_directly(100, berlin(2026, 12, 8, 10), 30)  # Anna (Cal.com user 100) booked in Cal.com itself
    body = voice("check_availability", dict(TUESDAY_10, staff="Anna"))
    assert body["available"] is False


def test_composite_gap_is_bookable_by_another_customer_busy_steps_are_not(world, voice):
    # Färben 10:00: busy 10:00–10:30, gap 10:30–11:10, busy 11:10–11:40.
    start = berlin(2026, 12, 8, 10)
    book(world, start, staff=world["staff"][0], service_id=world["colour"].id,
         busy=[Interval(start, start + timedelta(minutes=30)),
               Interval(start + timedelta(minutes=70), start + timedelta(minutes=100))],
         starts_at=start, ends_at=start + timedelta(minutes=100))

    def free(time_text, service="Herrenhaarschnitt", call_id="call_B"):
        return voice("check_availability", {"service": service, "date": "2026-12-08", "time": time_text,
                                            "staff": "Anna"}, call_id=call_id)["available"]

    assert free("10:30") is True  # inside the processing gap
    assert free("10:00", call_id="call_C") is False
    assert free("11:00", call_id="call_C") is False  # would run into the second busy step
    assert free("11:30", call_id="call_C") is False
    assert free("11:40", call_id="call_C") is True
    # Another Färben interleaves: busy 11:40–12:10 and 12:50–13:20 (gap over nothing).
    assert free("11:40", service="Färben", call_id="call_D") is False  # 11:40 held by call_C now
    assert free("12:10", service="Färben", call_id="call_E") is True


def test_a_held_composite_leaves_its_gap_to_other_callers(world, voice):
    assert voice("check_availability", {"service": "Färben", "date": "2026-12-08", "time": "10:00",
                                        "staff": "Anna"}, call_id="call_A")["available"] is True
    gap = voice("check_availability", dict(TUESDAY_10, time="10:30", staff="Anna"), call_id="call_B")
    busy = voice("check_availability", dict(TUESDAY_10, time="11:15", staff="Anna"), call_id="call_B")
    assert gap["available"] is True and busy["available"] is False


def test_alternatives_nearest_that_day_then_the_next_days(world, voice, calendar):
    anna = 100
    # Tuesday in Cal.com: busy 9:00–15:00 and 15:30–18:00 → only 15:00 left that day.
    calendar.book_directly(anna, berlin(2026, 12, 8, 9), 6 * 60)
    calendar.book_directly(anna, berlin(2026, 12, 8, 15, 30), 150)
    body = voice("check_availability", dict(TUESDAY_10, staff="Anna"))
    assert body["available"] is False
    assert [(a["start"], a["staff"]) for a in body["alternatives"]] == [
        ("2026-12-08T15:00:00+01:00", "Anna"),
        ("2026-12-09T09:00:00+01:00", "Anna"),
        ("2026-12-09T09:30:00+01:00", "Anna"),
    ]
    assert [a["spoken"] for a in body["alternatives"]] == [
        "Dienstag, 8. Dezember, um 15:00 Uhr", "Mittwoch, 9. Dezember, um 9:00 Uhr",
        "Mittwoch, 9. Dezember, um 9:30 Uhr",
    ]
    assert body["message"] == (
        "Am Dienstag, 8. Dezember, um 10:00 Uhr ist leider kein Termin frei. Ich kann Ihnen anbieten: um 15:00 Uhr, "
        "am Mittwoch, 9. Dezember, um 9:00 Uhr oder am Mittwoch, 9. Dezember, um 9:30 Uhr."
    )


def test_alternatives_closest_first_and_skip_held_slots(world, voice):
    book(world, berlin(2026, 12, 8, 10), 30, staff=world["staff"][0])
    voice("check_availability", dict(TUESDAY_10, time="10:30", staff="Anna"), call_id="call_other")
    body = voice("check_availability", dict(TUESDAY_10, staff="Anna"), call_id="call_B")
    # 10:30 is as near as 9:30 but held by another call; 9:00 and 11:00 tie, the earlier first.
    assert [a["start"][11:16] for a in body["alternatives"]] == ["09:30", "09:00", "11:00"]


def test_day_without_time_offers_the_first_free_times(world, voice):
    body = voice("check_availability", {"service": "Herrenhaarschnitt", "date": "morgen", "staff": "Anna"})
    assert body["success"] is True and body["available"] is False and body["slot"] is None
    assert [a["start"] for a in body["alternatives"]] == [
        "2026-12-08T09:00:00+01:00", "2026-12-08T09:30:00+01:00", "2026-12-08T10:00:00+01:00"]
    assert body["message"].startswith("Für Dienstag, 8. Dezember kann ich Ihnen zum Beispiel anbieten: um 9:00 Uhr")


def test_outside_opening_hours_offers_the_nearest_open_times(world, voice, app):
    body = voice("check_availability", dict(TUESDAY_10, time="19:00", staff="Anna"))
    assert body["success"] is False and body["error_code"] == "outside_hours"
    assert body["message"].startswith("Zu dieser Zeit haben wir leider geschlossen. Wir haben Montag bis Samstag von "
                                      "9 bis 18 Uhr geöffnet.")
    assert [a["start"][11:16] for a in body["alternatives"]] == ["17:30", "17:00", "16:30"]
    assert hold_keys(app) == []


def test_calcom_down_is_never_free(world, voice, calendar, app):
    calendar.fail("error", status=503)
    body = voice("check_availability", TUESDAY_10)
    assert body["success"] is False and body["error_code"] == "calendar_unavailable"
    assert body["available"] is False and body["lock_key"] is None
    assert body["message"] == ("Ich kann den Kalender gerade nicht abrufen. "
                               "Bitte versuchen Sie es in einem Moment noch einmal.")
    assert hold_keys(app) == []


def test_calcom_timeout_is_never_free(world, voice, calendar, app):
    app.config["CALCOM_AVAILABILITY_TIMEOUT"] = 0.2
    calendar.fail("timeout", hang_seconds=5)
    body = voice("check_availability", TUESDAY_10)
    assert body["error_code"] == "calendar_unavailable" and body["available"] is False
    assert hold_keys(app) == []


def test_slots_are_cached_briefly_and_invalidated_explicitly(world, voice, calendar, app, clock):
    voice("check_availability", dict(TUESDAY_10, staff="Anna"))
    asked = calendar.requests_served
    assert voice("check_availability", dict(TUESDAY_10, time="11:00", staff="Anna"))["available"] is True
    assert calendar.requests_served == asked  # served from the cache

    calendar.book_directly(100, berlin(2026, 12, 8, 12), 30)  # a booking made in Cal.com …
    assert slot_cache.invalidate(1001, berlin(2026, 12, 8, 12)) >= 1  # … and its webhook
    assert voice("check_availability", dict(TUESDAY_10, time="12:00", staff="Anna"))["available"] is False
    assert calendar.requests_served == asked + 1

    clock.advance(timedelta(seconds=app.config["SLOT_CACHE_SECONDS"] + 1))
    voice("check_availability", dict(TUESDAY_10, time="13:00", staff="Anna"))
    assert calendar.requests_served == asked + 2  # stale entry refetched


@pytest.mark.parametrize("event_type_id", [
    1001,  # the same service: Slotguard imports the booking as an appointment
    4242,  # an event type only Cal.com has (Anna's "Beratung"): only Cal.com can say she is busy
])
def test_a_booking_made_in_calcom_reaches_the_next_check_through_the_webhook(
        world, voice, calendar, calcom_emulator, live_slotguard, app, event_type_id):
    from calcom.emulator_state import EventType

    calendar.state.add_event_type(EventType(id=4242, slug="beratung", title="Beratung", length_minutes=30,
                                            host_ids=(100,), slot_interval_minutes=30))
    calcom_emulator.send_webhooks_to(live_slotguard + "/webhooks/calcom", app.config["CALCOM_WEBHOOK_SECRET"])
    assert voice("check_availability", dict(TUESDAY_10, time="12:00", staff="Anna"))["available"] is True
    asked = calendar.requests_served  # the day is cached now (SLOT_CACHE_SECONDS, frozen clock)

    response = calcom_emulator.control("POST", "/bookings", json={
        "eventTypeId": event_type_id, "hostId": 100, "start": "2026-12-08T11:00:00Z",
        "attendee": {"name": "Web Kundin", "email": "web@example.com", "timeZone": "Europe/Berlin"}})
    assert response.status_code == 201
    calcom_emulator.wait_for_webhooks()
    assert [d["status"] for d in calcom_emulator.deliveries] == [200]

    body = voice("check_availability", dict(TUESDAY_10, time="12:00", staff="Anna"), call_id="call_B")
    assert body["available"] is False
    assert calendar.requests_served > asked  # asked Cal.com again, without waiting for the TTL


def test_the_sync_worker_drops_the_cached_slots_it_makes_stale(world, voice, calendar, app):
    """A caller cancels; once the worker has cancelled the Cal.com booking, the slot is
    offered again at once (no webhook needed, no TTL to wait for)."""
    from core.booking_guard import cancel_appointment
    from core.queues import enqueue_sync
    from tests.support.sync_helpers import reload, run_sync_jobs

    noon = dict(TUESDAY_10, time="12:00", staff="Anna")
    appointment = book(world, berlin(2026, 12, 8, 12), 30, staff=world["staff"][0])
    enqueue_sync(appointment.id, "create", appointment.sync_version)
    run_sync_jobs(app)
    assert calendar.bookings(status="accepted")
    cancel_appointment(db.session, appointment.id)
    appointment = reload(appointment.id)
    enqueue_sync(appointment.id, "cancel", appointment.sync_version)
    assert voice("check_availability", noon)["available"] is False  # Cal.com still has it (and it is cached)

    run_sync_jobs(app)

    assert reload(appointment.id).sync_status == SyncStatus.SYNCED and not calendar.bookings(status="accepted")
    assert voice("check_availability", noon, call_id="call_B")["available"] is True


def test_a_staff_member_with_an_own_event_type_is_asked_about_and_booked_through_it(
        world, voice, calendar, monkeypatch):
    """Anna has her own Cal.com event type for the haircut: Cal.com is asked about it as
    it is (one host), Ben (unmapped) through the team event type with his host id; the
    booking records Anna's event type for the sync."""
    from core.event_types import set_staff_event_type

    anna = world["staff"][0]
    set_staff_event_type(db.session, anna.id, world["haircut"].id, 100100)
    db.session.commit()
    calendar.load()
    asked = []
    slots = calendar.state.slots
    monkeypatch.setattr(calendar.state, "slots", lambda params: asked.append(dict(params)) or slots(params))

    assert voice("check_availability", TUESDAY_10)["slot"]["staff"] == "Anna"
    assert sorted((p["eventTypeId"], p.get("rrHostSubsetIds")) for p in asked) == [
        ("1001", "101"), ("100100", None)]
    body = voice("start_booking", dict(TUESDAY_10, staff="Anna", customer_name="Erika Muster"))
    appointment = db.session.get(Appointment, body["appointment_id"])
    assert [s.calcom_event_type_id for s in appointment.segments] == [100100]


def test_an_own_event_type_that_cal_com_does_not_offer_means_not_available(world, voice, calendar):
    """Cal.com is asked about Anna's own event type, not the team one: what it says counts."""
    from calcom.emulator_state import EventType
    from core.event_types import set_staff_event_type

    anna = world["staff"][0]
    set_staff_event_type(db.session, anna.id, world["haircut"].id, 100100)
    db.session.commit()
    calendar.load()
    calendar.state.add_event_type(EventType(id=100100, slug="anna-haircut", title="Herrenhaarschnitt (Anna)",
                                            length_minutes=30, host_ids=(100,), slot_interval_minutes=30,
                                            minimum_booking_notice_minutes=3 * 24 * 60))

    assert voice("check_availability", dict(TUESDAY_10, staff="Anna"))["available"] is False
    assert voice("check_availability", TUESDAY_10, call_id="call_B")["slot"]["staff"] == "Ben"


def test_local_part_is_a_bounded_number_of_queries(world, voice, app):
    """However many appointments exist, a check costs the same few indexed queries."""
    world = ids_only(world)

    def statements_for_check(time_text: str) -> int:
        db.session.remove()
        with recorded_statements() as sent:
            body = voice("check_availability", dict(TUESDAY_10, time=time_text), call_id=f"q{time_text}")
        assert body["available"] is True
        return len([s for s in sent if s.upper().startswith("SELECT")])

    # branch by phone, services, staff, service segments, the staff's own event types,
    # the staff's segments that day
    few = statements_for_check("10:00")
    for day in range(1, 40):  # a busy calendar: many appointments of both staff members
        for member in world["staff"]:
            for hour in (9, 11, 13, 15):
                book(world, berlin(2026, 12, 8, hour) + timedelta(days=day), 30, staff=member)
    many = statements_for_check("10:30")
    assert few == many <= 6


def test_response_stays_small(world, voice):
    body = voice("check_availability", dict(TUESDAY_10, time="19:00"))
    import json

    assert len(json.dumps(body, ensure_ascii=False)) < 2000


@contextmanager
def dst_world(world, calendar, moment):
    """Open seven days a week (so the DST Sundays count), in Slotguard and the emulator."""
    branch = world["branch"]
    branch.opening_hours = {str(d): [["09:00", "18:00"]] for d in range(1, 8)}
    db.session.commit()
    calendar.load()
    with frozen_at(moment):
        yield


@pytest.mark.parametrize("day, local_offset, utc_hour", [
    ("2026-10-24", "+02:00", 8),  # Saturday, still summer time
    ("2026-10-25", "+01:00", 9),  # Sunday, clocks went back at 03:00
    ("2026-10-26", "+01:00", 9),
    ("2026-03-28", "+01:00", 9),
    ("2026-03-29", "+02:00", 8),  # Sunday, clocks went forward at 02:00
])
def test_dst_weekends_speak_and_store_the_right_times(world, voice, calendar, day, local_offset, utc_hour):
    with dst_world(world, calendar, datetime(2026, 3, 20, 8, tzinfo=timezone.utc)):
        body = voice("check_availability", dict(TUESDAY_10, date=day, staff="Anna"))
        assert body["available"] is True
        assert body["slot"]["start"] == f"{day}T10:00:00{local_offset}"
        assert body["lock_key"].endswith(f"{day.replace('-', '')}T{utc_hour:02d}00Z")
        assert "um 10:00 Uhr" in body["message"]


def test_dst_alternatives_across_the_autumn_change(world, voice, calendar):
    with dst_world(world, calendar, datetime(2026, 10, 20, 8, tzinfo=timezone.utc)):
        calendar.book_directly(100, berlin(2026, 10, 24, 9), 9 * 60 - 30)  # Saturday full until 17:30
        body = voice("check_availability", {"service": "Herrenhaarschnitt", "date": "2026-10-24", "time": "10:00",
                                            "staff": "Anna"})
        assert [a["start"] for a in body["alternatives"]] == [
            "2026-10-24T17:30:00+02:00", "2026-10-25T09:00:00+01:00", "2026-10-25T09:30:00+01:00"]
        assert body["alternatives"][1]["spoken"] == "Sonntag, 25. Oktober, um 9:00 Uhr"


def test_time_skipped_by_the_spring_change_is_refused(world, voice, calendar):
    with dst_world(world, calendar, datetime(2026, 3, 20, 8, tzinfo=timezone.utc)):
        body = voice("check_availability", dict(TUESDAY_10, date="2026-03-29", time="02:30"))
        assert body["success"] is False and body["error_code"] == "invalid_argument"
        assert "Zeitumstellung" in body["message"]


def test_nothing_is_ever_written_by_check_availability(world, voice):
    voice("check_availability", TUESDAY_10)
    assert db.session.query(Appointment).count() == 0


def test_redis_down_means_no_hold_but_bookings_still_work(world, voice, app):
    """A hold only improves the experience; without Redis the database guard still decides."""
    import redis as redis_lib

    from booking.holds import SlotHolds

    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    app.extensions["slotguard_holds"] = SlotHolds(dead, app.config["SLOT_LOCK_TTL"])
    body = voice("check_availability", dict(TUESDAY_10, staff="Anna"))
    assert body["available"] is True and body["lock_key"] is None
    assert voice("start_booking", dict(TUESDAY_10, staff="Anna", customer_name="Erika Muster"))["success"] is True
    second = voice("start_booking", dict(TUESDAY_10, staff="Anna", customer_name="Max Muster"), call_id="call_B")
    assert second["error_code"] == "slot_taken"
    assert db.session.query(Appointment).count() == 1
