"""core.busy: the one definition of when a service keeps its staff member busy, shared
by availability, booking, the Cal.com webhook and the sync worker."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from booking import availability, reconcile_webhook
from core import busy, seed
from core.booking_guard import Interval
from core.event_types import set_staff_event_type
from core.extensions import db
from tests.factories import make_world

TEN = datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)


def test_a_composite_service_leaves_its_processing_gap_free(app):
    world = make_world()
    colour = world["colour"]
    assert [step.label for step in colour.busy_steps] == ["Farbe auftragen", "Auswaschen"]
    assert busy.busy_intervals(colour, TEN) == [
        Interval(TEN, TEN + timedelta(minutes=30), 1003),
        Interval(TEN + timedelta(minutes=70), TEN + timedelta(minutes=100), 1003),
    ]
    assert busy.busy_intervals(world["haircut"], TEN) == [Interval(TEN, TEN + timedelta(minutes=30), 1001)]


def test_busy_for_books_each_interval_as_the_staff_members_own_event_type(app):
    world = make_world()
    anna = world["staff"][0]
    set_staff_event_type(db.session, anna.id, world["haircut"].id, 7001)
    db.session.commit()
    assert busy.busy_for(db.session, world["haircut"], anna, TEN) == [Interval(TEN, TEN + timedelta(minutes=30), 7001)]


def test_every_writer_uses_the_one_definition():
    assert availability.busy_for is busy.busy_for
    assert reconcile_webhook.busy_for is busy.busy_for
    assert seed.busy_intervals is busy.busy_intervals
