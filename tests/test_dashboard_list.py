"""The appointment list: every filter, sorting, paging, the URL, scoping, query count."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, func, select

from core.extensions import db
from core.models import (
    Appointment,
    Branch,
    Company,
    Customer,
    Role,
    SyncAttempt,
    SyncOutcome,
    SyncStatus,
)
from tests.dashboard_support import HTMX, make_user, sign_in, squash, text_of
from tests.factories import book, make_world

LIST = "/dashboard/appointments"


def shown_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-appointment-id="(\d+)"', html)]


def ids_where(*where, company_id=None) -> set[int]:
    query = select(Appointment.id).where(*where)
    if company_id is not None:
        query = query.where(Appointment.company_id == company_id)
    return set(db.session.scalars(query))


def all_ids(client, query: str) -> set[int]:
    """Every id the list shows for `query`, across all pages (100 per page)."""
    found: set[int] = set()
    page = 1
    while True:
        html = text_of(client.get(f"{LIST}?{query}&per_page=100&page={page}"))
        ids = shown_ids(html)
        found |= set(ids)
        if f"Page {page} of" not in html or re.search(rf"Page {page} of {page}\b", html):
            return found
        page += 1


@pytest.fixture
def viewer(client, demo):
    return sign_in(client, make_user(Role.VIEWER))


def test_unfiltered_list_shows_every_appointment_paginated(client, clock, viewer):
    total = db.session.scalar(select(func.count()).select_from(Appointment))
    html = text_of(client.get(LIST))
    assert f"Showing 1–25 of {total} appointments" in squash(html)
    assert len(shown_ids(html)) == 25
    assert all_ids(client, "sort=requested") == ids_where()


@pytest.mark.parametrize("query, where", [
    ("sync_status=pending", lambda now: [Appointment.sync_status == SyncStatus.PENDING]),
    ("sync_status=failed", lambda now: [Appointment.sync_status == SyncStatus.FAILED]),
    ("sync_status=synced", lambda now: [Appointment.sync_status == SyncStatus.SYNCED]),
    ("sync_status=unsynced", lambda now: [Appointment.sync_status != SyncStatus.SYNCED]),
    ("age=stale", lambda now: [Appointment.sync_status == SyncStatus.PENDING,
                               Appointment.sync_requested_at < now - timedelta(hours=1)]),
    ("age=ancient", lambda now: [Appointment.sync_status == SyncStatus.FAILED,
                                 Appointment.sync_requested_at < now - timedelta(hours=24)]),
    ("review=1", lambda now: [Appointment.requires_manual_review.is_(True)]),
    ("error_code=timeout", lambda now: [Appointment.sync_error_code == "timeout"]),
    ("sync_status=failed&review=1", lambda now: [Appointment.sync_status == SyncStatus.FAILED,
                                                 Appointment.requires_manual_review.is_(True)]),
])
def test_status_filters_select_exactly_the_matching_appointments(client, clock, viewer, query, where):
    expected = ids_where(*where(clock.utcnow()))
    assert expected, f"the seed has appointments for {query}"
    assert all_ids(client, query) == expected


def test_had_failures_filter_matches_failed_attempts_in_the_last_24_hours(client, clock, viewer):
    since = clock.utcnow() - timedelta(hours=24)
    expected = set(db.session.scalars(select(SyncAttempt.appointment_id).where(
        SyncAttempt.started_at >= since,
        SyncAttempt.outcome.in_([SyncOutcome.RETRY, SyncOutcome.FAILED]))))
    assert expected
    assert all_ids(client, "had_failures=1") == expected


def test_company_and_branch_filters(client, clock, viewer):
    salon = db.session.scalar(select(Company).where(Company.slug == "haarstudio-mitte"))
    kreuzberg = db.session.scalar(select(Branch).where(Branch.name == "Berlin Kreuzberg"))
    assert all_ids(client, f"company_id={salon.id}") == ids_where(Appointment.company_id == salon.id)
    assert all_ids(client, f"branch_id={kreuzberg.id}") == ids_where(Appointment.branch_id == kreuzberg.id)
    assert all_ids(client, f"company_id={salon.id}&sync_status=failed") == ids_where(
        Appointment.company_id == salon.id, Appointment.sync_status == SyncStatus.FAILED)


def test_date_range_is_in_the_business_time_zone(client, clock):
    world = make_world()
    sign_in(client, make_user(Role.VIEWER))
    # 23:30 Berlin on 8 Dec is 22:30 UTC; 00:30 Berlin on 9 Dec is 23:30 UTC on 8 Dec.
    late = book(world, datetime(2026, 12, 8, 22, 30, tzinfo=timezone.utc))
    after_midnight = book(world, datetime(2026, 12, 8, 23, 30, tzinfo=timezone.utc))
    next_day = book(world, datetime(2026, 12, 9, 9, 0, tzinfo=timezone.utc))
    assert set(shown_ids(text_of(client.get(f"{LIST}?date_from=2026-12-08&date_to=2026-12-08")))) == {late.id}
    assert set(shown_ids(text_of(client.get(f"{LIST}?date_from=2026-12-09")))) == {after_midnight.id, next_day.id}
    assert set(shown_ids(text_of(client.get(f"{LIST}?date_to=2026-12-08")))) == {late.id}


def test_search_by_customer_name_and_phone(client, clock, viewer):
    siebert = db.session.scalar(select(Customer).where(Customer.name == "Karl Siebert"))
    expected = ids_where(Appointment.customer_id == siebert.id)
    assert set(shown_ids(text_of(client.get(f"{LIST}?q=siebert")))) == expected
    assert set(shown_ids(text_of(client.get(f"{LIST}?q=SIEBERT")))) == expected
    assert set(shown_ids(text_of(client.get(f"{LIST}?q=0151 1234 5678")))) == expected
    assert set(shown_ids(text_of(client.get(f"{LIST}?q=%2B49 151 12345678")))) == expected
    assert set(shown_ids(text_of(client.get(f"{LIST}?q=0049151-12345678")))) == expected
    # LIKE wildcards are taken literally.
    assert shown_ids(text_of(client.get(f"{LIST}?q=%25"))) == []


def test_id_list_filter_from_an_alert(client, clock, viewer):
    ids = sorted(ids_where(Appointment.requires_manual_review.is_(True)))[:2]
    html = text_of(client.get(f"{LIST}?id_list={ids[0]},{ids[1]}"))
    assert set(shown_ids(html)) == set(ids)
    assert "(from an alert)" in html


@pytest.mark.parametrize("sort, column", [
    ("requested", Appointment.sync_requested_at), ("starts", Appointment.starts_at),
    ("attempts", Appointment.sync_attempts), ("status", Appointment.sync_status),
])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sorting(client, clock, viewer, sort, column, direction):
    order = column.asc() if direction == "asc" else column.desc()
    tie = Appointment.id.asc() if direction == "asc" else Appointment.id.desc()
    expected = list(db.session.scalars(select(Appointment.id).order_by(order, tie).limit(25)))
    html = text_of(client.get(f"{LIST}?sort={sort}&direction={direction}"))
    assert shown_ids(html) == expected
    assert f'aria-sort="{"ascending" if direction == "asc" else "descending"}"' in html


def test_sort_by_customer_name(client, clock, viewer):
    html = text_of(client.get(f"{LIST}?sort=customer&direction=asc&sync_status=failed"))
    names = [db.session.get(Appointment, i).customer.name for i in shown_ids(html)]
    assert names == sorted(names)


def test_column_headers_flip_the_sort_and_keep_the_filters(client, clock, viewer):
    html = text_of(client.get(f"{LIST}?sync_status=pending&sort=starts&direction=asc"))
    # Descending is the default direction, so it is left out of the URL.
    assert 'href="/dashboard/appointments?sync_status=pending&amp;sort=starts"' in html
    assert 'href="/dashboard/appointments?sync_status=pending&amp;sort=customer&amp;direction=asc"' in html


def test_pagination_walks_the_whole_list_without_overlap(client, clock, viewer):
    query = "sync_status=synced&sort=starts&direction=asc&per_page=40"
    first = shown_ids(text_of(client.get(f"{LIST}?{query}")))
    second_html = text_of(client.get(f"{LIST}?{query}&page=2"))
    second = shown_ids(second_html)
    assert len(first) == len(second) == 40 and not set(first) & set(second)
    assert 'rel="prev"' in second_html and 'rel="next"' in second_html
    assert "page=3" in second_html and "per_page=40" in second_html
    # A page past the end shows the last page.
    total = len(ids_where(Appointment.sync_status == SyncStatus.SYNCED))
    last = text_of(client.get(f"{LIST}?{query}&page=999"))
    assert f"of {total} appointments" in squash(last) and 'rel="next"' not in last


def test_htmx_filter_request_gets_the_list_alone_and_the_canonical_url(client, clock, viewer):
    # The form sends every field, empty ones too; the pushed URL keeps only what filters.
    response = client.get(f"{LIST}?q=&sync_status=failed&age=&branch_id=&review=1&sort=requested&direction=desc",
                          headers={**HTMX, "HX-Target": "appointment-list"})
    assert response.status_code == 200
    body = text_of(response)
    assert body.lstrip().startswith('<section id="appointment-list"')
    assert "<html" not in body and 'id="filters"' not in body
    assert response.headers["HX-Push-Url"] == "/dashboard/appointments?sync_status=failed&review=1"
    assert "HX-Request" in response.headers["Vary"]
    # The same URL loaded in a new tab gives the full page with the same rows.
    full = text_of(client.get(response.headers["HX-Push-Url"]))
    assert "<html" in full and shown_ids(full) == shown_ids(body)
    assert '<option value="failed" selected>' in full and 'name="review" value="1" checked' in full


def test_filter_form_is_wired_for_htmx_and_the_url(client, clock, viewer):
    html = text_of(client.get(LIST))
    form = re.search(r'<form id="filters"[^>]*>', html).group(0)
    assert 'method="get"' in form and 'hx-get="/dashboard/appointments"' in form
    assert 'hx-target="#appointment-list"' in form and 'hx-push-url="true"' in form
    for label in ("Customer name or phone", "Sync status", "Age", "Company", "Branch", "From", "To", "Error code",
                  "Needs manual review", "Failed attempts in 24 h"):
        assert re.search(rf'<label for="[\w-]+">{label}</label>', html), label


@pytest.mark.parametrize("query, message", [
    ("sync_status=lost", "Sync status must be one of: pending, failed, synced, unsynced (got 'lost')."),
    ("age=old", "Age must be one of: stale, ancient (got 'old')."),
    ("date_from=yesterday", "From date must be a date like 2026-12-07 (got 'yesterday')."),
    ("date_from=2026-12-09&date_to=2026-12-01", "From date must not be after To date."),
    ("page=0", "Page must be a whole number at least 1 (got '0')."),
    ("per_page=1000", "Rows per page must be a whole number between 1 and 100 (got '1000')."),
    ("sort=price", "Sort must be one of: requested, starts, customer, status, attempts (got 'price')."),
    ("error_code=<script>", "Error code may contain only letters, digits and _ . : - (at most 100)."),
    ("id_list=1,two", "Appointment ids must be up to 500 numbers separated by commas."),
    ("review=maybe", "Manual review must be 1 or 0 (got 'maybe')."),
])
def test_bad_filters_are_refused_with_a_clear_message(client, clock, viewer, query, message):
    response = client.get(f"{LIST}?{query}")
    assert response.status_code == 400
    page = squash(text_of(response)).replace("&#39;", "'")
    assert squash(message) in page
    # Nothing is listed under filters that could not be applied.
    assert "No appointments match these filters" in page and 'data-appointment-id' not in text_of(response)


def test_bad_filters_from_htmx_are_shown_in_place_of_the_list(client, clock, viewer):
    response = client.get(f"{LIST}?date_from=2026-12-09&date_to=2026-12-01",
                          headers={**HTMX, "HX-Target": "appointment-list"})
    assert response.status_code == 422  # swapped by htmx (base.html's responseHandling)
    body = text_of(response)
    assert body.lstrip().startswith('<section id="appointment-list"')
    assert "From date must not be after To date." in body and "HX-Push-Url" not in response.headers


def test_company_bound_user_sees_only_their_company(client, clock, demo):
    salon, workshop = (db.session.scalar(select(Company).where(Company.slug == slug))
                       for slug in ("haarstudio-mitte", "werkstatt-krause"))
    sign_in(client, make_user(Role.OPERATOR, company_id=workshop.id))
    assert all_ids(client, "sort=requested") == ids_where(company_id=workshop.id)
    # Asking for the other company by filter shows nothing of it.
    assert all_ids(client, f"company_id={salon.id}") == set()
    salon_review = sorted(ids_where(Appointment.requires_manual_review.is_(True), company_id=salon.id))
    assert all_ids(client, "id_list=" + ",".join(map(str, salon_review))) == set()
    html = text_of(client.get(LIST))
    assert "Haarstudio Mitte" not in html and "Berlin Mitte" not in html
    assert 'id="filter-company"' not in html  # no company choice for a bound user


def count_queries(engine):
    statements = []

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    return statements, lambda: event.remove(engine, "before_cursor_execute", before)


def test_list_page_query_count_does_not_grow_with_the_rows(client, clock, viewer):
    """No N+1: customer, service, staff, branch and company come in the same SELECT."""
    counts = {}
    for per_page in (5, 100):
        db.session.expire_all()
        statements, stop = count_queries(db.engine)
        try:
            response = client.get(f"{LIST}?per_page={per_page}")
        finally:
            stop()
        assert response.status_code == 200 and len(shown_ids(text_of(response))) == per_page
        counts[per_page] = len(statements)
    assert counts[5] == counts[100]
    assert counts[100] <= 8, counts


def test_list_fragment_query_count_is_bounded_for_htmx_too(client, clock, viewer):
    statements, stop = count_queries(db.engine)
    try:
        client.get(f"{LIST}?per_page=100&sync_status=synced", headers={**HTMX, "HX-Target": "appointment-list"})
    finally:
        stop()
    assert len(statements) <= 8


def test_rows_show_status_in_words_and_times_in_the_branch_zone(client, clock, viewer):
    siebert = db.session.scalar(select(Appointment).join(Customer).where(Customer.name == "Karl Siebert"))
    html = text_of(client.get(f"{LIST}?q=Siebert"))
    row = squash(re.search(rf'<tr id="appointment-row-{siebert.id}".*?</tr>', html, re.S).group(0))
    assert "pending" in row and "stale" in row
    assert "10:00" in row  # 10:00 in Berlin, whatever UTC says
    assert "5 d ago" in row
    assert "Karl Siebert" in row and "+4915112345678" in row
