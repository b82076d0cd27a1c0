"""Which Cal.com event type stands for a staff member doing a service
(`core.event_types`), and the `calcom staff-event-type` command that maps it."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from core.event_types import (
    event_type_for,
    event_types_of_segments,
    event_types_of_staff,
    owner_of_event_type,
    set_staff_event_type,
)
from core.extensions import db
from tests.factories import make_world


@pytest.fixture
def world(app):
    world = make_world()
    colour = world["colour"]
    colour.segments[2].calcom_event_type_id = 1004  # "Auswaschen" is booked as an event type of its own
    db.session.commit()
    return world


def test_the_staff_members_own_event_type_else_the_services(world):
    anna, ben = world["staff"]
    haircut, colour = world["haircut"], world["colour"]
    set_staff_event_type(db.session, anna.id, haircut.id, 100100)
    set_staff_event_type(db.session, anna.id, colour.id, 100300)
    db.session.commit()

    assert event_type_for(db.session, haircut, anna) == 100100
    assert event_type_for(db.session, haircut, ben) == 1001  # unmapped: the team event type
    first, _, last = colour.segments
    assert event_type_for(db.session, colour, anna, first) == 100300
    assert event_type_for(db.session, colour, anna, last) == 1004  # a step's own event type is kept
    assert event_types_of_segments(db.session, colour, anna, 2) == [100300, 1004]
    assert event_types_of_segments(db.session, colour, ben, 2) == [1003, 1004]
    assert owner_of_event_type(db.session, 100300) == (anna, colour)
    assert owner_of_event_type(db.session, 1003) is None
    assert event_types_of_staff(db.session, [anna.id]) == {1001, 1003, 1004, 100100, 100300}
    assert event_types_of_staff(db.session, [ben.id]) == {1001, 1003, 1004}


def test_an_own_event_type_belongs_to_one_staff_member_and_service(world):
    anna, ben = world["staff"]
    set_staff_event_type(db.session, anna.id, world["haircut"].id, 100100)
    db.session.commit()
    with pytest.raises(IntegrityError):
        set_staff_event_type(db.session, ben.id, world["haircut"].id, 100100)
        db.session.commit()
    db.session.rollback()
    world["haircut"].staff = [anna]
    db.session.commit()
    with pytest.raises(LookupError):
        set_staff_event_type(db.session, ben.id, world["haircut"].id, 100111)  # Ben no longer offers it


def test_the_command_shows_sets_and_clears_the_mapping(world, runner):
    anna, ben = world["staff"]
    haircut_id, anna_id, ben_id = world["haircut"].id, anna.id, ben.id

    def run(*args):
        return runner.invoke(args=["calcom", "staff-event-type", *map(str, args)])

    assert run(anna_id, haircut_id).output == "Anna / Herrenhaarschnitt: none (the service's 1001)\n"
    assert run(anna_id, haircut_id, 100100).exit_code == 0
    assert run(anna_id, haircut_id).output == "Anna / Herrenhaarschnitt: own event type 100100\n"
    taken = run(ben_id, haircut_id, 100100)
    assert taken.exit_code == 1 and "already Anna's own for Herrenhaarschnitt" in taken.output
    assert run(ben_id, 999, 100111).exit_code == 2  # no such service
    assert run(anna_id, haircut_id, "--clear").exit_code == 0
    db.session.expire_all()
    assert event_type_for(db.session, world["haircut"], db.session.get(type(anna), anna_id)) == 1001
