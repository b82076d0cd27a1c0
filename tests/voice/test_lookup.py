"""Forgiving matching of services and staff names."""

from __future__ import annotations

import pytest

from booking.services_lookup import best_match, find_service, find_staff, normalise_name, wants_any_staff
from core.models import Service, Staff

SERVICES = [Service(id=1, name="Herrenhaarschnitt"), Service(id=2, name="Damenhaarschnitt"),
            Service(id=3, name="Färben"), Service(id=4, name="Ölwechsel")]
STAFF = [Staff(id=1, name="Anna Becker"), Staff(id=2, name="Jonas Wolf"), Staff(id=3, name="Anna Schulz")]


@pytest.mark.parametrize("said, expected", [
    ("Herrenhaarschnitt", "Herrenhaarschnitt"),
    ("herren haarschnitt", "Herrenhaarschnitt"),
    ("Herren-Haarschnitt", "Herrenhaarschnitt"),
    ("einen Herrenhaarschnitt bitte", "Herrenhaarschnitt"),
    ("Herrenhaarschnit", "Herrenhaarschnitt"),
    ("herren", "Herrenhaarschnitt"),
    ("Haare färben", "Färben"),
    ("faerben", "Färben"),
    ("Farbe", "Färben"),
    ("oelwechsel", "Ölwechsel"),
])
def test_services_are_found_however_they_are_said(said, expected):
    assert find_service(SERVICES, said).found.name == expected


def test_a_word_fitting_several_services_is_ambiguous():
    match = find_service(SERVICES, "Haarschnitt")
    assert match.found is None and match.ambiguous
    assert {s.name for s in match.candidates} == {"Herrenhaarschnitt", "Damenhaarschnitt"}


@pytest.mark.parametrize("said", ["Massage", "x", "", "Pediküre"])
def test_unknown_services_are_not_guessed(said):
    match = find_service(SERVICES, said)
    assert match.found is None and not match.ambiguous


def test_staff_by_first_last_or_full_name_with_honorifics():
    assert find_staff(STAFF, "Jonas").found.name == "Jonas Wolf"
    assert find_staff(STAFF, "Frau Becker").found.name == "Anna Becker"
    assert find_staff(STAFF, "anna schulz").found.name == "Anna Schulz"
    assert find_staff(STAFF, "Anna").ambiguous


@pytest.mark.parametrize("said", [None, "", "egal", "Egal", "beliebig", "kein Wunsch"])
def test_any_staff(said):
    assert wants_any_staff(said)


def test_normalise_name():
    assert normalise_name("Groß-Färben!") == "grossfaerben"
    assert best_match(["a"], "   ", lambda item: [item]).found is None
