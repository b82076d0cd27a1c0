"""Customers' phone numbers and e-mails: masked for viewers on every dashboard page,
in clear for operators and admins; viewers still find a customer by phone number.

The scan walks every GET route of the dashboard (so a page added later is scanned
too) and looks for every customer's number and address, and for the ones planted in
free text (notes, error messages, review reasons, audit notes), in what comes back.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from flask import url_for
from sqlalchemy import select

from core.extensions import db
from core.models import (
    AppointmentStatus,
    ReconciliationRun,
    AuditEvent,
    Customer,
    Role,
    SyncAction,
    SyncAttempt,
    SyncOutcome,
    SyncStatus,
)
from tests.dashboard_support import HTMX, make_user, sign_in, squash, text_of
from tests.factories import book, make_world

UTC = timezone.utc
TUESDAY = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
LIST = "/dashboard/appointments"

PHONE = "+4917612345678"
EMAIL = "lena.vogel@example.org"
# Personal data that reached free text: a caller dictating a number, Cal.com quoting
# the attendee's address in an error.
NOTE_PHONE = "+4930555123456"
NOTE_EMAIL = "buero@vogel-example.de"


@pytest.fixture
def private_world(app, clock):
    world = make_world()
    world["customer"].email = "erika.mustermann@example.com"
    lena = Customer(company_id=world["company"].id, name="Lena Vogel", phone=PHONE, email=EMAIL)
    db.session.add(lena)
    db.session.commit()

    troubled = book(world, TUESDAY, customer_id=lena.id)
    troubled.notes = f"Bitte vorher anrufen: {NOTE_PHONE}"
    troubled.sync_status = SyncStatus.FAILED
    troubled.sync_error_code = "http_400"
    troubled.sync_error_message = f"attendee.email must be an email (got {EMAIL})"
    troubled.requires_manual_review = True
    troubled.manual_review_reason = f"Cal.com knows the attendee as {NOTE_EMAIL}, {PHONE}"
    db.session.add(SyncAttempt(appointment_id=troubled.id, action=SyncAction.CREATE, attempt_number=1,
                               started_at=clock.utcnow() - timedelta(hours=2), outcome=SyncOutcome.FAILED,
                               http_status=400, error_code="http_400", duration_ms=120,
                               error_message=f"Cal.com: attendee {EMAIL} rejected"))
    db.session.add(AuditEvent(actor="operator@example.com", action="note", appointment_id=troubled.id,
                              note=f"Kundin ruft zurück von {NOTE_PHONE}"))

    cancelled = book(world, TUESDAY + timedelta(hours=2))  # Erika's
    cancelled.status = AppointmentStatus.CANCELLED
    cancelled.cancellation_reason = f"Abgesagt per Mail von {NOTE_EMAIL}"
    # A reconciliation finding names the Cal.com attendee, who may have typed an address as name.
    run = ReconciliationRun(
        started_at=clock.utcnow() - timedelta(hours=6), finished_at=clock.utcnow() - timedelta(hours=5),
        window_from=TUESDAY - timedelta(days=2), window_to=TUESDAY + timedelta(days=5), trigger="schedule",
        status="errors", drift_total=1, flagged=1, counts={"time_mismatch": 1},
        findings=[{"kind": "time_mismatch", "handling": "flagged", "appointment_id": troubled.id,
                   "booking_uid": "bk_9", "event_type_id": None,
                   "message": f"Cal.com booking bk_9 ({NOTE_EMAIL} with Anna, …) does not match …"}],
        errors=[f"appointment {troubled.id}: time_mismatch not handled (attendee {PHONE})"])
    db.session.add(run)
    db.session.commit()
    return {"troubled": troubled.id, "cancelled": cancelled.id, "lena": lena.id, "run": run.id}


def personal_data() -> set[str]:
    """Every customer's number and address, and the ones planted in free text."""
    found = {NOTE_PHONE, NOTE_EMAIL}
    for phone, email in db.session.execute(select(Customer.phone, Customer.email)):
        found |= {value for value in (phone, email) if value}
    return found


def dashboard_urls(app, examples: dict[str, int]) -> list[str]:
    """Every GET page and endpoint of the dashboard, with real ids for its parameters,
    plus the list under the filters and searches people use."""
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith("dashboard.") or "GET" not in rule.methods:
                continue
            if rule.endpoint in ("dashboard.login", "dashboard.logout"):
                continue
            missing = rule.arguments - examples.keys()
            assert not missing, f"add an example value for {missing} of {rule.rule} to this test"
            urls.append(url_for(rule.endpoint, **{name: examples[name] for name in rule.arguments}))
    urls += [f"{LIST}?per_page=100", f"{LIST}?review=1", f"{LIST}?sync_status=failed", f"{LIST}?q=Vogel",
             f"{LIST}?q=0176 1234 5678", f"{LIST}?q=Mustermann&sort=customer",
             f"/dashboard/appointments/{examples['appointment_id']}"]
    return urls


def responses(client, urls):
    """Each URL as a page load and as the htmx fragment request."""
    for url in urls:
        yield url, client.get(url)
        yield f"{url} (htmx)", client.get(url, headers=HTMX)


def examples_for(world) -> dict[str, int]:
    return {"appointment_id": world["troubled"], "run_id": world["run"]}


def test_a_viewer_never_sees_a_phone_number_or_email_anywhere(app, client, private_world):
    sign_in(client, make_user(Role.VIEWER))
    secrets = personal_data()
    seen = 0
    for url, response in responses(client, dashboard_urls(app, examples_for(private_world))):
        body = text_of(response)
        leaked = {secret for secret in secrets if secret in body}
        assert not leaked, f"{url} shows {leaked} to a viewer"
        seen += response.status_code == 200
    assert seen >= 20  # the pages were really rendered, not refused


def test_a_viewer_sees_contact_details_masked_and_no_call_link(client, private_world):
    sign_in(client, make_user(Role.VIEWER))
    detail = text_of(client.get(f"/dashboard/appointments/{private_world['troubled']}"))
    customer = squash(re.search(r"<dt>Customer</dt><dd>.*?</dd>", detail, re.S).group(0))
    assert customer == "Customer Lena Vogel · +49 …78 · l…@example.org"
    assert "tel:" not in detail and "mailto:" not in detail
    # Free text keeps its meaning, the personal part is masked.
    page = squash(detail)
    assert "Bitte vorher anrufen: +49…56" in page
    assert "attendee.email must be an email (got l…@….org)" in page
    assert "Kundin ruft zurück von +49…56" in page
    row = text_of(client.get(f"{LIST}?q=Vogel"))
    assert "+49 …78" in row
    run = squash(text_of(client.get(f"/dashboard/trends/reconciliation/{private_world['run']}")))
    assert "Cal.com booking bk_9 (b…@….de with Anna, …)" in run and "(attendee +49…78)" in run


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
def test_operators_and_admins_see_them_in_clear(client, private_world, role):
    sign_in(client, make_user(role))
    detail = text_of(client.get(f"/dashboard/appointments/{private_world['troubled']}"))
    assert f'<a href="tel:{PHONE}">{PHONE}</a>' in detail and f'<a href="mailto:{EMAIL}">{EMAIL}</a>' in detail
    for free_text in (f"Bitte vorher anrufen: {NOTE_PHONE}", f"(got {EMAIL})", f"as {NOTE_EMAIL}, {PHONE}",
                      f"attendee {EMAIL} rejected", f"zurück von {NOTE_PHONE}"):
        assert free_text in detail
    cancelled = text_of(client.get(f"/dashboard/appointments/{private_world['cancelled']}"))
    assert f"Abgesagt per Mail von {NOTE_EMAIL}" in cancelled
    assert PHONE in text_of(client.get(f"{LIST}?q=Vogel"))
    run = text_of(client.get(f"/dashboard/trends/reconciliation/{private_world['run']}"))
    assert NOTE_EMAIL in run and PHONE in run


def test_the_row_an_operator_acts_on_shows_the_number_in_clear(client, private_world):
    from tests.dashboard_support import htmx_headers

    sign_in(client, make_user(Role.OPERATOR))
    appointment_id = private_world["troubled"]
    response = client.post(f"/dashboard/appointments/{appointment_id}/retry", data={"note": "Cal.com fixed"},
                           headers=htmx_headers(client, target=f"appointment-row-{appointment_id}"))
    assert response.status_code == 200 and PHONE in text_of(response)


def shown_ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'data-appointment-id="(\d+)"', html)}


@pytest.mark.parametrize("typed", ["0176 1234 5678", "0176/12345678", "+49 176 12345678", "0049 176 1234 5678",
                                   "17612345678", "4917612345678"])
def test_a_viewer_finds_a_customer_by_the_whole_number_in_any_notation(client, private_world, typed):
    sign_in(client, make_user(Role.VIEWER))
    response = client.get(LIST, query_string={"q": typed})
    html = text_of(response)
    assert shown_ids(html) == {private_world["troubled"]}
    assert PHONE not in html and "+49 …78" in html


@pytest.mark.parametrize("typed", ["1234 5678", "0176 1234", "+49176", "612345678", "+49 176 1234567"])
def test_part_of_a_number_finds_nothing_for_a_viewer_but_does_for_an_operator(client, private_world, typed):
    """Otherwise a viewer could read a masked number digit by digit."""
    sign_in(client, make_user(Role.VIEWER))
    assert shown_ids(text_of(client.get(LIST, query_string={"q": typed}))) == set()
    sign_in(client, make_user(Role.OPERATOR))
    assert private_world["troubled"] in shown_ids(text_of(client.get(LIST, query_string={"q": typed})))


def test_the_search_field_tells_a_viewer_to_type_the_whole_number(client, private_world):
    sign_in(client, make_user(Role.VIEWER))
    html = text_of(client.get(LIST))
    assert 'aria-describedby="filter-q-hint"' in html and "Phone: type the whole number" in html
    sign_in(client, make_user(Role.OPERATOR))
    assert "filter-q-hint" not in text_of(client.get(LIST))


def test_the_decision_is_made_in_one_place(app, private_world):
    """`shows_contact` is what the filters and the templates ask."""
    from core.privacy import shows_contact

    viewer, operator, admin = (make_user(role) for role in (Role.VIEWER, Role.OPERATOR, Role.ADMIN))
    assert [shows_contact(u) for u in (viewer, operator, admin)] == [False, True, True]
    with app.test_request_context():
        assert shows_contact() is False  # nobody signed in
        assert app.jinja_env.globals["shows_contact"] is shows_contact
