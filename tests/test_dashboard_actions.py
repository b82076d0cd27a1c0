"""Appointment detail and the operator actions: retry sync and resolve review, one row,
in bulk and from the detail panel; with notes, audit, queueing and company scoping."""

from __future__ import annotations

import re

import pytest
from rq import Queue
from sqlalchemy import func, select

from core.extensions import db
from core.models import Appointment, AuditEvent, Company, Customer, Role, SyncStatus
from core.queues import SYNC_QUEUE, sync_job_id
from core.redis_client import get_redis
from tests.dashboard_support import HTMX, csrf_token, htmx_headers, make_user, sign_in, squash, text_of


def review_appointments(company_slug: str | None = None) -> list[Appointment]:
    query = select(Appointment).where(Appointment.requires_manual_review).order_by(Appointment.id)
    if company_slug:
        query = query.join(Company).where(Company.slug == company_slug)
    return list(db.session.scalars(query))


def sync_queue_job_ids() -> list[str]:
    return Queue(SYNC_QUEUE, connection=get_redis()).job_ids


def audit_events(appointment_id: int) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.appointment_id == appointment_id)))


@pytest.fixture
def operator(client, demo):
    return sign_in(client, make_user(Role.OPERATOR))


def test_row_retry_swaps_the_row_and_queues_the_sync(client, clock, operator):
    appointment = review_appointments()[0]
    version = appointment.sync_version
    headers = htmx_headers(client, target=f"appointment-row-{appointment.id}", **{"HX-Prompt": "Cal.com fixed"})
    response = client.post(f"/dashboard/appointments/{appointment.id}/retry", headers=headers)
    assert response.status_code == 200
    row = text_of(response)
    assert row.lstrip().startswith(f'<tr id="appointment-row-{appointment.id}"')
    assert "✓ create sync queued" in row
    assert 'class="badge sync-pending"' in row and "flag-review" not in row
    assert "just now" in row
    db.session.expire_all()
    appointment = db.session.get(Appointment, appointment.id)
    assert appointment.sync_status == SyncStatus.PENDING
    assert not appointment.requires_manual_review
    assert appointment.sync_version == version + 1
    assert sync_queue_job_ids() == [sync_job_id(appointment.id, version + 1)]
    (event,) = audit_events(appointment.id)
    assert (event.action, event.actor, event.user_id, event.note) == ("retry_sync", operator.email, operator.id,
                                                                      "Cal.com fixed")


def test_retry_without_a_note_is_refused_and_changes_nothing(client, clock, operator):
    appointment = review_appointments()[0]
    headers = htmx_headers(client, target=f"appointment-row-{appointment.id}")
    response = client.post(f"/dashboard/appointments/{appointment.id}/retry", data={"note": "   "}, headers=headers)
    assert response.status_code == 422
    assert "Write a note for the audit log: why is this being done?" in text_of(response)
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).requires_manual_review
    assert audit_events(appointment.id) == []
    assert sync_queue_job_ids() == []


def test_retry_of_a_synced_appointment_says_there_is_nothing_to_do(client, clock, operator):
    synced = db.session.scalar(select(Appointment).where(Appointment.sync_status == SyncStatus.SYNCED).limit(1))
    headers = htmx_headers(client, target=f"appointment-row-{synced.id}", **{"HX-Prompt": "try"})
    response = client.post(f"/dashboard/appointments/{synced.id}/retry", headers=headers)
    assert response.status_code == 422
    assert "already synced; nothing to retry" in text_of(response)
    assert sync_queue_job_ids() == []


def test_row_resolve_needs_a_note_and_clears_the_review(client, clock, operator):
    appointment = review_appointments()[0]
    headers = htmx_headers(client, target=f"appointment-row-{appointment.id}")
    refused = client.post(f"/dashboard/appointments/{appointment.id}/resolve", headers=headers)
    assert refused.status_code == 422
    response = client.post(f"/dashboard/appointments/{appointment.id}/resolve",
                           headers={**headers, "HX-Prompt": "Called the customer, moved to Friday"})
    assert response.status_code == 200
    assert "✓ review resolved" in text_of(response)
    db.session.expire_all()
    appointment = db.session.get(Appointment, appointment.id)
    assert not appointment.requires_manual_review
    assert appointment.sync_status == SyncStatus.FAILED  # acknowledged: the failed sync still shows
    (event,) = audit_events(appointment.id)
    assert event.details["resolution"] == "acknowledged"


def test_detail_page_shows_booking_sync_timeline_and_audit(client, clock, operator):
    appointment = review_appointments()[0]
    html = text_of(client.get(f"/dashboard/appointments/{appointment.id}"))
    page = squash(html)
    assert appointment.customer.name in page and appointment.service.name in page and appointment.staff.name in page
    local = appointment.starts_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert local.strftime("%d.%m.%Y %H:%M") in page and "(branch time, Europe/Berlin)" in page
    assert "Needs review" in page and appointment.manual_review_reason in page
    timeline = re.search(r'<table class="timeline">.*?</table>', html, re.S).group(0)
    assert timeline.count("<tr>") - 1 == appointment.sync_attempts == 1
    assert appointment.sync_error_code in timeline and "failed" in timeline
    assert str(appointment.sync_attempt_log[0].http_status) in timeline
    assert "Nobody has acted on this appointment yet." in page
    for label in ("Retry sync — note (required)", "How was it handled? (required)"):
        assert re.search(rf'<label for="[\w-]+">{re.escape(label)}</label>', html)


def test_detail_links_the_calcom_booking(client, clock, operator):
    synced = db.session.scalar(select(Appointment).where(Appointment.calcom_booking_uid.is_not(None)).limit(1))
    html = text_of(client.get(f"/dashboard/appointments/{synced.id}"))
    assert f'href="https://app.cal.com/booking/{synced.calcom_booking_uid}"' in html
    assert "In sync with Cal.com — nothing to do." in html


def test_detail_retry_swaps_the_panel_and_shows_the_audit_entry(client, clock, operator):
    appointment = review_appointments()[1]
    headers = htmx_headers(client, target="appointment-panel")
    response = client.post(f"/dashboard/appointments/{appointment.id}/retry",
                           data={"note": "Event type fixed in Cal.com"}, headers=headers)
    assert response.status_code == 200
    panel = squash(text_of(response))
    assert text_of(response).lstrip().startswith('<div id="appointment-panel"')
    assert "✓ Retry sync: create sync queued." in panel
    assert f"{operator.email}: retry sync — “Event type fixed in Cal.com”" in panel
    assert "Needs review" not in panel


def test_detail_resolve_fixed_in_calcom_counts_as_synced(client, clock, operator):
    appointment = review_appointments()[2]
    headers = htmx_headers(client, target="appointment-panel")
    response = client.post(f"/dashboard/appointments/{appointment.id}/resolve",
                           data={"note": "Booked by hand in Cal.com", "resolution": "fixed_in_calcom"},
                           headers=headers)
    assert response.status_code == 200
    assert "✓ Resolve review: review resolved." in squash(text_of(response))
    db.session.expire_all()
    appointment = db.session.get(Appointment, appointment.id)
    assert appointment.sync_status == SyncStatus.SYNCED and not appointment.requires_manual_review


def test_detail_resolve_with_unknown_resolution_is_refused(client, clock, operator):
    appointment = review_appointments()[0]
    response = client.post(f"/dashboard/appointments/{appointment.id}/resolve",
                           data={"note": "x", "resolution": "deleted"},
                           headers=htmx_headers(client, target="appointment-panel"))
    assert response.status_code == 422
    assert "Resolution must be one of: fixed_in_calcom, acknowledged." in text_of(response)
    db.session.expire_all()
    assert db.session.get(Appointment, appointment.id).requires_manual_review


def test_plain_form_post_without_htmx_redirects_with_a_message(client, clock, operator):
    appointment = review_appointments()[0]
    token = csrf_token(client, f"/dashboard/appointments/{appointment.id}")
    response = client.post(f"/dashboard/appointments/{appointment.id}/retry",
                           data={"note": "no JavaScript here", "csrf_token": token})
    assert response.status_code == 302
    assert response.location == f"/dashboard/appointments/{appointment.id}"
    page = squash(text_of(client.get(response.location)))
    assert f"Appointment {appointment.id}: create sync queued." in page


def test_bulk_retry_acts_on_the_selection_and_reports_each(client, clock, operator):
    chosen = review_appointments()[:3]
    synced = db.session.scalar(select(Appointment).where(Appointment.sync_status == SyncStatus.SYNCED).limit(1))
    headers = htmx_headers(client, target="appointment-list")
    data = {"action": "retry", "note": "Cal.com outage over", "review": "1", "sort": "requested",
            "direction": "asc", "selected": [str(a.id) for a in chosen] + [str(synced.id)]}
    response = client.post("/dashboard/appointments/bulk", data=data, headers=headers)
    assert response.status_code == 200
    body = text_of(response)
    assert body.lstrip().startswith('<section id="appointment-list"')
    outcome = squash(re.search(r'data-testid="bulk-outcome">(.*?)</div>', body, re.S).group(1))
    assert "Retry sync: 3 of 4 done." in outcome
    assert f"#{synced.id}: already synced; nothing to retry" in outcome
    # The list is shown again with the same filters: the retried ones left "review".
    remaining = {int(i) for i in re.findall(r'data-appointment-id="(\d+)"', body)}
    assert remaining == {a.id for a in review_appointments()}
    assert not remaining & {a.id for a in chosen}
    assert len(sync_queue_job_ids()) == 3
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.note == "Cal.com outage over")) == 3


def test_bulk_resolve(client, clock, operator):
    chosen = review_appointments()[:2]
    data = {"action": "resolve", "note": "Customers called", "selected": [str(a.id) for a in chosen]}
    response = client.post("/dashboard/appointments/bulk", data=data,
                           headers=htmx_headers(client, target="appointment-list"))
    assert response.status_code == 200
    assert "Resolve review: 2 of 2 done." in squash(text_of(response))
    assert len(review_appointments()) == 2


@pytest.mark.parametrize("data, message", [
    ({"action": "retry", "selected": ["1"]}, "Write a note for the audit log: why is this being done?"),
    ({"action": "retry", "note": "x"}, "Select at least one appointment."),
    ({"action": "delete", "note": "x", "selected": ["1"]}, "Choose an action: retry sync or resolve review."),
    ({"action": "retry", "note": "x", "selected": ["1; drop"]}, "Select at most 100 appointments from the list."),
    ({"action": "retry", "note": "x", "selected": [str(i) for i in range(1, 102)]},
     "Select at most 100 appointments from the list."),
])
def test_bulk_with_bad_input_changes_nothing(client, clock, operator, data, message):
    before = db.session.execute(select(Appointment.id, Appointment.sync_version).order_by(Appointment.id)).all()
    response = client.post("/dashboard/appointments/bulk", data=data,
                           headers=htmx_headers(client, target="appointment-list"))
    assert response.status_code == 422
    assert message in text_of(response)
    after = db.session.execute(select(Appointment.id, Appointment.sync_version).order_by(Appointment.id)).all()
    assert before == after and sync_queue_job_ids() == []


def test_operator_of_one_company_cannot_see_or_act_on_another(client, clock, demo):
    workshop = db.session.scalar(select(Company).where(Company.slug == "werkstatt-krause"))
    sign_in(client, make_user(Role.OPERATOR, company_id=workshop.id))
    other = review_appointments("haarstudio-mitte")[0]
    assert client.get(f"/dashboard/appointments/{other.id}").status_code == 404
    for action in ("retry", "resolve"):
        headers = htmx_headers(client, target=f"appointment-row-{other.id}", **{"HX-Prompt": "mine now"})
        assert client.post(f"/dashboard/appointments/{other.id}/{action}", headers=headers).status_code == 404
    bulk = client.post("/dashboard/appointments/bulk", data={"action": "retry", "note": "x", "selected": [str(other.id)]},
                       headers=htmx_headers(client, target="appointment-list"))
    assert "#%d: no such appointment" % other.id in squash(text_of(bulk))
    db.session.expire_all()
    assert db.session.get(Appointment, other.id).requires_manual_review
    assert audit_events(other.id) == [] and sync_queue_job_ids() == []
    # Their own company's appointment works.
    own = db.session.scalar(select(Appointment).where(Appointment.company_id == workshop.id,
                                                      Appointment.sync_status == SyncStatus.FAILED).limit(1))
    ok = client.post(f"/dashboard/appointments/{own.id}/retry",
                     headers=htmx_headers(client, target=f"appointment-row-{own.id}", **{"HX-Prompt": "retry"}))
    assert ok.status_code == 200


def test_unknown_appointment_is_404(client, clock, operator):
    response = client.get("/dashboard/appointments/999999")
    assert response.status_code == 404
    assert "There is nothing here, or it belongs to another company." in text_of(response)
    fragment = client.get("/dashboard/appointments/999999", headers={**HTMX, "HX-Target": "appointment-panel"})
    assert "<html" not in text_of(fragment)


def test_detail_panel_alone_for_htmx(client, clock, operator):
    appointment = db.session.scalar(select(Appointment).join(Customer).where(Customer.name == "Karl Siebert"))
    response = client.get(f"/dashboard/appointments/{appointment.id}", headers={**HTMX, "HX-Target": "appointment-panel"})
    assert text_of(response).lstrip().startswith('<div id="appointment-panel"')
    assert "HX-Request" in response.headers["Vary"]
    assert "Siebert case: sync job lost, pending for 5 days" in text_of(response)
