"""The benchmark's data: a realistic book of appointments of any size, as plain rows.

How a size maps to a world (the same model for every database):

* staff grow with the square root of the size (6 at 1k, 20 at 10k, 63 at 100k,
  200 at 1M), four per branch, three branches per company: a bigger install has
  more salons *and* a longer history (1k ≈ 3 weeks, 1M ≈ 2 years per staff member);
* every staff member works the branch's hours (Mon–Fri 9–18, Sat 9–14, Berlin) with
  about seven appointments a day and gaps between them; the book ends three weeks
  ahead and fills up as days come closer (tomorrow nearly full, in three weeks a
  third), the same at every size, so the days the voice agent asks about look alike;
* four services per company: 30, 45 and 60 minutes, and a 100-minute composite
  (30 work, 40 processing gap, 30 work) that writes two busy segments;
* statuses: past ones completed 85 %, no-show 5 %, cancelled 10 %; future ones
  booked 88 %, confirmed 2 %, cancelled 10 % (a cancelled one's segments are inactive);
* sync: created in the last 5 minutes → pending, no attempt yet; in the last 3 days
  0.4 % pending after a failed try; in the last 30 days 0.2 % failed after 5 tries
  and 0.1 % failed and waiting for manual review; everything else synced — 88 % on the
  first try, 12 % after a retry — and cancelled ones carry a second (cancel) attempt.
  Attempts are kept for the whole history (as with RETENTION_SYNC_ATTEMPTS_DAYS=0:
  the worst case for the metrics queries).

Rows are generated in chunks (a few staff members at a time) so that a million
appointments never sit in memory at once. Times are whole epoch seconds (UTC);
`bench.loader` formats them for each database.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo

TZ_NAME = "Europe/Berlin"
TZ = ZoneInfo(TZ_NAME)
STAFF_PER_BRANCH = 4
BRANCHES_PER_COMPANY = 3
DAYS_AHEAD = 21
OPENING_HOURS = {str(d): [["09:00", "18:00"]] for d in range(1, 6)} | {"6": [["09:00", "14:00"]]}
# (name, minutes, busy steps as (offset, minutes) or None for one interval, weight)
SERVICES = [
    ("Herrenhaarschnitt", 30, None, 40),
    ("Bartpflege", 45, None, 20),
    ("Damenhaarschnitt", 60, None, 25),
    ("Färben", 100, [(0, 30), (70, 30)], 15),
]
SERVICE_WEIGHTS = [weight for *_, weight in SERVICES]
TRANSIENT = [("http_503", 503, "Cal.com answered 503 Service Unavailable"),
             ("timeout", None, "Cal.com did not answer within 15 s"),
             ("rate_limited", 429, "Cal.com rate limit reached, retry after 37 s")]
REVIEW = [("slot_taken_in_calcom", 400, "User either already has booking at this time or is not available",
           "Cal.com refused the booking: the host is busy at this time."),
          ("invalid_attendee", 400, "attendee.email must be an email",
           "Cal.com rejected the customer's contact details.")]

APPOINTMENT_COLUMNS = (
    "id", "company_id", "branch_id", "service_id", "staff_id", "customer_id", "starts_at", "ends_at", "status",
    "cancelled_at", "cancellation_reason", "sync_status", "sync_action", "sync_requested_at", "sync_version",
    "sync_attempts", "last_sync_attempt_at", "synced_at", "sync_error_code", "sync_error_message",
    "requires_manual_review", "manual_review_reason", "calcom_booking_uid", "calcom_booking_id", "call_id",
    "source", "created_at", "updated_at",
)
SEGMENT_COLUMNS = ("id", "appointment_id", "staff_id", "position", "starts_at", "ends_at", "active",
                   "calcom_booking_uid", "calcom_booking_id", "calcom_event_type_id")
ATTEMPT_COLUMNS = ("id", "appointment_id", "action", "attempt_number", "started_at", "finished_at", "outcome",
                   "http_status", "error_code", "error_message", "duration_ms", "job_id")
# Columns that hold times (epoch seconds in the rows).
TIME_COLUMNS = {"starts_at", "ends_at", "cancelled_at", "sync_requested_at", "last_sync_attempt_at", "synced_at",
                "created_at", "updated_at", "started_at", "finished_at"}


def parse_size(text: str) -> int:
    """"1k" → 1000, "1M" → 1000000, "2500" → 2500."""
    text = text.strip()
    factor = {"k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}.get(text[-1:], 1)
    number = float(text[:-1] if factor > 1 else text)
    if number <= 0:
        raise ValueError(f"a size must be positive: {text!r}")
    return int(number * factor)


def size_label(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000}k"
    return str(size)


def staff_count(size: int) -> int:
    return max(6, min(200, round(math.sqrt(size) / 5)))


@dataclass
class Staff:
    id: int
    branch_id: int
    company_id: int


@dataclass
class Company:
    id: int
    customer_first: int  # customer ids of this company: [first, first + count)
    customer_count: int
    service_ids: list[int] = field(default_factory=list)
    event_type_ids: list[int] = field(default_factory=list)


@dataclass
class Plan:
    """The fixed part of a world: companies, branches, staff, services, customers."""

    size: int
    now: int  # epoch seconds
    companies: list[Company]
    branches: list[tuple[int, int]]  # (id, company id)
    staff: list[Staff]
    per_staff: list[int]  # appointments per staff member (sums to size)

    @property
    def customers(self) -> int:
        return sum(c.customer_count for c in self.companies)


def plan(size: int, now: datetime) -> Plan:
    n_staff = staff_count(size)
    n_branches = math.ceil(n_staff / STAFF_PER_BRANCH)
    n_companies = math.ceil(n_branches / BRANCHES_PER_COMPANY)
    base, extra = divmod(size, n_staff)
    per_staff = [base + (1 if i < extra else 0) for i in range(n_staff)]
    staff = [Staff(i + 1, i // STAFF_PER_BRANCH + 1, (i // STAFF_PER_BRANCH) // BRANCHES_PER_COMPANY + 1)
             for i in range(n_staff)]
    branches = [(b + 1, b // BRANCHES_PER_COMPANY + 1) for b in range(n_branches)]
    companies, first = [], 1
    for c in range(1, n_companies + 1):
        appointments = sum(p for s, p in zip(staff, per_staff) if s.company_id == c)
        count = max(20, appointments // 4)  # regulars: a customer comes about four times
        company = Company(c, first, count)
        company.service_ids = [(c - 1) * len(SERVICES) + k + 1 for k in range(len(SERVICES))]
        company.event_type_ids = [c * 100 + k + 1 for k in range(len(SERVICES))]
        companies.append(company)
        first += count
    return Plan(size, int(now.timestamp()), companies, branches, staff, per_staff)


# --- the fixed tables -----------------------------------------------------------------


def fixed_rows(p: Plan) -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
    """Rows of companies, branches, staff, services, service steps, staff_services, customers."""
    now = p.now
    companies = [(c.id, f"Salon {c.id:03d}", f"salon-{c.id:03d}", now, now) for c in p.companies]
    branches = [(b, company, f"Filiale {b:03d}", f"+49301{b:06d}", TZ_NAME, OPENING_HOURS, now, now)
                for b, company in p.branches]
    staff = [(s.id, s.branch_id, f"Mitarbeiter {s.id}", f"staff{s.id}@example.com", 5000 + s.id, f"staff-{s.id}",
              True, now, now) for s in p.staff]
    services, steps, step_id = [], [], 0
    for c in p.companies:
        for k, (name, minutes, busy, _) in enumerate(SERVICES):
            kind = "composite" if busy else "regular"
            services.append((c.service_ids[k], c.id, name, c.event_type_ids[k], minutes, 2000 + 1000 * k, kind,
                             True, now, now))
            if busy:
                for position, (label, step_minutes, staff_busy) in enumerate(
                        [("Farbe auftragen", 30, True), ("Einwirkzeit", 40, False), ("Auswaschen", 30, True)]):
                    step_id += 1
                    steps.append((step_id, c.service_ids[k], position, label, step_minutes, staff_busy, None))
    staff_services = [(s.id, service_id, None) for s in p.staff
                      for service_id in p.companies[s.company_id - 1].service_ids]
    rng = random.Random(7)
    customers = []
    for c in p.companies:
        for i in range(c.customer_count):
            cid = c.customer_first + i
            email = f"kunde{cid}@example.com" if rng.random() < 0.6 else None
            customers.append((cid, c.id, f"Kunde {cid}", f"+49151{cid:08d}", email, now, now))
    return {
        "companies": (("id", "name", "slug", "created_at", "updated_at"), companies),
        "branches": (("id", "company_id", "name", "phone_number", "timezone", "opening_hours", "created_at",
                      "updated_at"), branches),
        "staff": (("id", "branch_id", "name", "email", "calcom_user_id", "calcom_username", "active", "created_at",
                   "updated_at"), staff),
        "services": (("id", "company_id", "name", "calcom_event_type_id", "duration_minutes", "price_cents", "kind",
                      "active", "created_at", "updated_at"), services),
        "service_segments": (("id", "service_id", "position", "label", "duration_minutes", "staff_busy",
                              "calcom_event_type_id"), steps),
        "staff_services": (("staff_id", "service_id", "calcom_event_type_id"), staff_services),
        "customers": (("id", "company_id", "name", "phone", "email", "created_at", "updated_at"), customers),
    }


# --- the appointments -------------------------------------------------------------------


@dataclass
class Chunk:
    appointments: list[tuple] = field(default_factory=list)
    segments: list[tuple] = field(default_factory=list)
    attempts: list[tuple] = field(default_factory=list)


class _Ids:
    def __init__(self) -> None:
        self.appointment = self.segment = self.attempt = 0


def _open_days(last: date) -> Iterator[tuple[date, int, int]]:
    """(day, opens, closes) in epoch seconds, going back in time from `last`."""
    day = last
    while True:
        hours = OPENING_HOURS.get(str(day.isoweekday()))
        if hours:
            opens, closes = hours[0]
            start = datetime.combine(day, time.fromisoformat(opens), TZ)
            end = datetime.combine(day, time.fromisoformat(closes), TZ)
            yield day, int(start.timestamp()), int(end.timestamp())
        day -= timedelta(days=1)


def appointment_chunks(p: Plan, *, seed: int = 1, chunk_size: int = 20_000) -> Iterator[Chunk]:
    """All appointments with their segments and sync attempts, in chunks."""
    rng = random.Random(seed)
    ids = _Ids()
    today = datetime.fromtimestamp(p.now, timezone.utc).astimezone(TZ).date()
    last_day = today + timedelta(days=DAYS_AHEAD)
    chunk = Chunk()
    for member, count in zip(p.staff, p.per_staff):
        company = p.companies[member.company_id - 1]
        made = 0
        for day, opens, closes in _open_days(last_day):
            if made >= count:
                break
            # Days ahead fill up as they come closer: tomorrow is nearly full, in three
            # weeks about a third is booked.
            keep = 1.0 - 0.7 * max(0, (day - today).days) / DAYS_AHEAD
            cursor = opens + 1800 * rng.randint(0, 2)
            starts = []
            while True:
                k = rng.choices(range(len(SERVICES)), SERVICE_WEIGHTS)[0]
                end = cursor + SERVICES[k][1] * 60
                if end > closes:
                    break
                starts.append((cursor, k))
                cursor = end + 900 * rng.randint(0, 3)
            for start, k in reversed(starts):  # the day's latest first: we walk backwards
                if made >= count:
                    break
                if keep < 1.0 and rng.random() > keep:
                    continue
                _appointment(chunk, ids, rng, p.now, member, company, k, start)
                made += 1
            if len(chunk.appointments) >= chunk_size:
                yield chunk
                chunk = Chunk()
    if chunk.appointments:
        yield chunk


def _appointment(chunk: Chunk, ids: _Ids, rng: random.Random, now: int, member: Staff, company: Company, k: int,
                 start: int) -> None:
    name, minutes, busy, _ = SERVICES[k]
    ids.appointment += 1
    aid = ids.appointment
    end = start + minutes * 60
    event_type = company.event_type_ids[k]
    # Booked up to three weeks ahead, never in the future: about as many bookings a day
    # are made as there are appointments a day.
    latest = min(start, now - 60)
    created = rng.randint(min(start - DAYS_AHEAD * 86400, latest - 3600), latest)
    if created > now - 86400 and rng.random() < 0.02:
        created = now - rng.randint(5, 300)  # the last few minutes: not synced yet
    roll = rng.random()
    if end <= now:
        status = "completed" if roll < 0.85 else "no_show" if roll < 0.90 else "cancelled"
    else:
        status = "booked" if roll < 0.88 else "confirmed" if roll < 0.90 else "cancelled"
    cancelled = status == "cancelled"
    cancelled_at = min(now - 30, max(created + 600, start - rng.randint(3600, 2 * 86400))) if cancelled else None
    source_roll = rng.random()
    source = "voice" if source_roll < 0.6 else "dashboard" if source_roll < 0.8 else "calcom"

    age = now - created
    sync_roll = rng.random()
    attempts: list[tuple] = []
    error_code = error_message = review_reason = None
    review = False
    action, version = "create", 1
    requested = created
    if age < 300:
        sync_status, synced_at, uid = "pending", None, None
    elif age < 3 * 86400 and sync_roll < 0.004:
        sync_status, synced_at, uid = "pending", None, None
        error_code, http, error_message = TRANSIENT[aid % len(TRANSIENT)]
        attempts.append(("create", 1, created + 2, "retry", http, error_code, error_message))
    elif age < 30 * 86400 and sync_roll < 0.006:
        sync_status, synced_at, uid = "failed", None, None
        error_code, http, error_message = TRANSIENT[aid % len(TRANSIENT)]
        at = created
        for number in range(1, 6):
            at += 30 * 2 ** number
            attempts.append(("create", number, at, "retry" if number < 5 else "failed", http, error_code,
                             error_message))
    elif age < 30 * 86400 and sync_roll < 0.007:
        sync_status, synced_at, uid = "failed", None, None
        error_code, http, error_message, review_reason = REVIEW[aid % len(REVIEW)]
        review = True
        attempts.append(("create", 1, created + 3, "failed", http, error_code, error_message))
    else:
        sync_status, uid = "synced", f"bk{aid}"
        if rng.random() < 0.12:
            code, http, message = TRANSIENT[aid % len(TRANSIENT)]
            attempts.append(("create", 1, created + 2, "retry", http, code, message))
            attempts.append(("create", 2, created + 35, "success", 201, None, None))
            synced_at = created + 36
        else:
            attempts.append(("create", 1, created + 2, "success", 201, None, None))
            synced_at = created + 3
        if cancelled:
            action, version, requested = "cancel", 2, cancelled_at
            attempts.append(("cancel", 1, cancelled_at + 2, "success", 200, None, None))
            synced_at = cancelled_at + 3
    last_attempt = attempts[-1][2] if attempts else None
    call_id = f"call_b{aid}" if source == "voice" else None
    chunk.appointments.append((
        aid, company.id, member.branch_id, company.service_ids[k], member.id, company.customer_first
        + rng.randrange(company.customer_count), start, end, status, cancelled_at,
        "cancelled by the caller" if cancelled else None, sync_status, action, requested, version, len(attempts),
        last_attempt, synced_at, error_code, error_message, review, review_reason, uid,
        (700000 + aid) if uid else None, call_id, source, created, max(created, synced_at or created),
    ))
    steps = busy or [(0, minutes)]
    for position, (offset, step_minutes) in enumerate(steps):
        ids.segment += 1
        chunk.segments.append((
            ids.segment, aid, member.id, position, start + offset * 60, start + (offset + step_minutes) * 60,
            not cancelled, f"{uid}-{position}" if uid else None, None, event_type,
        ))
    for action_name, number, at, outcome, http, code, message in attempts:
        ids.attempt += 1
        duration = 180 + 40 * number
        chunk.attempts.append((ids.attempt, aid, action_name, number, at, at + 1, outcome, http, code, message,
                               duration, f"sync-{aid}-v{1 if action_name == 'create' else 2}"))


__all__ = ["APPOINTMENT_COLUMNS", "ATTEMPT_COLUMNS", "SEGMENT_COLUMNS", "Plan", "appointment_chunks", "fixed_rows",
           "parse_size", "plan", "size_label", "staff_count"]
