"""Reading appointments for the dashboard: the filtered list, one appointment with its
sync timeline, and the choices the filter form offers.

Every function takes the caller's `company_id` scope (None = all companies) and a
session, and loads what a page shows in a fixed number of queries, however many rows
there are: related rows are joined in the same SELECT, never fetched per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import Select, and_, asc, desc, exists, func, or_, select
from sqlalchemy.orm import Session, contains_eager, joinedload

from core.clock import local_day_bounds
from core.models import (
    Appointment,
    AuditEvent,
    Branch,
    Company,
    Customer,
    SyncAttempt,
    SyncOutcome,
    SyncStatus,
)
from dashboard.list_filters import ListFilters
from monitoring.settings import current_settings

RECENT_FAILURES_WINDOW = timedelta(hours=24)
MAX_ID = 2**31 - 1  # the largest value of an INTEGER id column
# The shortest national number a whole-number search accepts ("030 1234" has 7 digits).
MIN_WHOLE_NUMBER_DIGITS = 6


@dataclass(frozen=True)
class AgeLimits:
    """When a pending sync is stale and a failed one ancient, counted from
    `sync_requested_at`. Taken from the monitoring settings, so that the list's
    "stale"/"ancient" filters select exactly what the tiles count."""

    stale_after: timedelta = timedelta(minutes=60)
    ancient_after: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls) -> AgeLimits:
        settings = current_settings()
        return cls(stale_after=timedelta(minutes=settings.stale_pending_minutes),
                   ancient_after=timedelta(hours=settings.ancient_failed_hours))


@dataclass(frozen=True)
class Page:
    items: list[Appointment]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.per_page))

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.page * self.per_page, self.total)


@dataclass(frozen=True)
class FilterChoices:
    companies: list[Company]
    branches: list[Branch]
    error_codes: list[str]


def _conditions(filters: ListFilters, company_id: int | None, now: datetime, tz_name: str, limits: AgeLimits,
                partial_phone: bool) -> list:
    """WHERE clauses for the filters; `company_id` (the user's scope) always wins."""
    where = []
    if company_id is not None:
        where.append(Appointment.company_id == company_id)
    if filters.company_id is not None:
        where.append(Appointment.company_id == filters.company_id)
    if filters.branch_id is not None:
        where.append(Appointment.branch_id == filters.branch_id)
    if filters.sync_status == "unsynced":
        where.append(Appointment.sync_status.in_([SyncStatus.PENDING, SyncStatus.FAILED]))
    elif filters.sync_status is not None:
        where.append(Appointment.sync_status == SyncStatus(filters.sync_status))
    if filters.age == "stale":
        where.append(and_(Appointment.sync_status == SyncStatus.PENDING,
                          Appointment.sync_requested_at < now - limits.stale_after))
    elif filters.age == "ancient":
        where.append(and_(Appointment.sync_status == SyncStatus.FAILED,
                          Appointment.sync_requested_at < now - limits.ancient_after))
    if filters.review:
        where.append(Appointment.requires_manual_review)  # the partial index's own predicate
    if filters.had_failures:
        where.append(exists().where(
            SyncAttempt.appointment_id == Appointment.id,
            SyncAttempt.started_at >= now - RECENT_FAILURES_WINDOW,
            SyncAttempt.outcome.in_([SyncOutcome.RETRY, SyncOutcome.FAILED]),
        ))
    # Dates are calendar days in the business time zone.
    if filters.date_from is not None:
        where.append(Appointment.starts_at >= local_day_bounds(filters.date_from, tz_name)[0])
    if filters.date_to is not None:
        where.append(Appointment.starts_at < local_day_bounds(filters.date_to, tz_name)[1])
    if filters.error_code is not None:
        where.append(Appointment.sync_error_code == filters.error_code)
    if filters.id_list:
        where.append(Appointment.id.in_(filters.id_list))
    if filters.q:
        needle = filters.q.lower()
        matches = [func.lower(Customer.name).contains(needle, autoescape=True)]
        matches += _phone_matches(filters.q, partial=partial_phone)
        # A long run of digits is a phone number, not an id (and would overflow
        # PostgreSQL's integer column).
        if filters.q.isdigit() and int(filters.q) <= MAX_ID:
            matches.append(Appointment.id == int(filters.q))
        where.append(or_(*matches))
    return where


def _phone_matches(typed: str, *, partial: bool) -> list:
    """Conditions on the customer's stored E.164 number for what someone typed."""
    digits = "".join(ch for ch in typed if ch.isdigit())
    if partial:
        return [Customer.phone.contains(number, autoescape=True) for number in sorted(_phone_fragments(digits))]
    return _whole_number_matches(typed.strip(), digits)


def _whole_number_matches(typed: str, digits: str) -> list:
    """For users who see numbers masked: only the whole number finds its customer.

    A part of a number would be an oracle: typing "+49151 1", "+49151 12", … and
    watching which masked rows stay, anyone could read a masked number digit by
    digit. So the number must be complete: international ("+49 151 …", "0049 151 …")
    equal to the stored one; national ("0151 …", or without the 0) equal to all of
    it after a country code of one to three digits.
    """
    if len(digits) < MIN_WHOLE_NUMBER_DIGITS:
        return []
    if typed.startswith("+"):
        return [Customer.phone == "+" + digits]
    if digits.startswith("00"):
        return [Customer.phone == "+" + digits[2:]]
    national = digits[1:] if digits.startswith("0") else digits
    matches = [and_(Customer.phone.endswith(national, autoescape=True),
                    func.length(Customer.phone).between(len(national) + 2, len(national) + 4))]
    if not digits.startswith("0"):  # "4915112345678": international without the plus
        matches.append(Customer.phone == "+" + digits)
    return matches


def _phone_fragments(digits: str) -> set[str]:
    """What to look for in the stored E.164 numbers when someone types a number.

    Callers and staff write German numbers nationally ("0151 …") or with "00"; the
    stored "+49151…" contains the part after the trunk or international prefix.
    """
    if len(digits) < 3:
        return set()
    fragments = {digits}
    if digits.startswith("00"):
        fragments.add(digits[2:])
    elif digits.startswith("0"):
        fragments.add(digits[1:])
    return {f for f in fragments if len(f) >= 3}


SORT_COLUMNS = {
    "requested": Appointment.sync_requested_at,
    "starts": Appointment.starts_at,
    "customer": Customer.name,
    "status": Appointment.sync_status,
    "attempts": Appointment.sync_attempts,
}


def _ordering(filters: ListFilters) -> list:
    order = asc if filters.direction == "asc" else desc
    # The id breaks ties, so that paging through equal values is stable.
    return [order(SORT_COLUMNS[filters.sort]), order(Appointment.id)]


def appointment_page(session: Session, filters: ListFilters, *, company_id: int | None, now: datetime,
                     tz_name: str, limits: AgeLimits = AgeLimits(), partial_phone: bool = True) -> Page:
    """One page of the filtered, sorted list: a count query and a rows query.

    `partial_phone`: a search finds numbers by any part of them (for users who see
    numbers in clear); False: by the whole number only (see `_whole_number_matches`).
    """
    where = _conditions(filters, company_id, now, tz_name, limits, partial_phone)
    total = session.scalar(
        select(func.count(Appointment.id)).join(Appointment.customer).where(*where)
    ) or 0
    pages = max(1, ceil(total / filters.per_page))
    page = min(filters.page, pages)
    rows: Select = (
        select(Appointment)
        .join(Appointment.customer)
        .options(
            contains_eager(Appointment.customer),
            joinedload(Appointment.service),
            joinedload(Appointment.staff),
            joinedload(Appointment.branch),
            joinedload(Appointment.company),
        )
        .where(*where)
        .order_by(*_ordering(filters))
        .limit(filters.per_page)
        .offset((page - 1) * filters.per_page)
    )
    items = list(session.scalars(rows).unique())
    return Page(items=items, total=total, page=page, per_page=filters.per_page)


def appointments_by_id(session: Session, ids: list[int], *, company_id: int | None) -> list[Appointment]:
    """Rows for the given ids (in scope), with everything a list row shows, in one query."""
    if not ids:
        return []
    query = (
        select(Appointment)
        .options(
            joinedload(Appointment.customer),
            joinedload(Appointment.service),
            joinedload(Appointment.staff),
            joinedload(Appointment.branch),
            joinedload(Appointment.company),
        )
        .where(Appointment.id.in_(ids))
    )
    if company_id is not None:
        query = query.where(Appointment.company_id == company_id)
    return list(session.scalars(query).unique())


def filter_choices(session: Session, *, company_id: int | None) -> FilterChoices:
    """Companies, branches and the error codes that occur, for the filter form."""
    companies = select(Company).order_by(Company.name)
    branches = select(Branch).order_by(Branch.company_id, Branch.name)
    codes = select(Appointment.sync_error_code).where(Appointment.sync_error_code.is_not(None)).distinct()
    if company_id is not None:
        companies = companies.where(Company.id == company_id)
        branches = branches.where(Branch.company_id == company_id)
        codes = codes.where(Appointment.company_id == company_id)
    return FilterChoices(
        companies=list(session.scalars(companies)),
        branches=list(session.scalars(branches)),
        error_codes=sorted(session.scalars(codes)),
    )


def load_appointment(session: Session, appointment_id: int, *, company_id: int | None) -> Appointment | None:
    """One appointment with its customer, service, staff, branch and company, if in scope."""
    found = appointments_by_id(session, [appointment_id], company_id=company_id)
    return found[0] if found else None


def sync_timeline(session: Session, appointment_id: int) -> list[SyncAttempt]:
    """Every attempt to carry this appointment to Cal.com, newest first."""
    return list(session.scalars(
        select(SyncAttempt)
        .where(SyncAttempt.appointment_id == appointment_id)
        .order_by(SyncAttempt.started_at.desc(), SyncAttempt.id.desc())
    ))


def audit_trail(session: Session, appointment_id: int) -> list[AuditEvent]:
    """Who did what to this appointment, newest first."""
    return list(session.scalars(
        select(AuditEvent)
        .options(joinedload(AuditEvent.user))
        .where(AuditEvent.appointment_id == appointment_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    ))
