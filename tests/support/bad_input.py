"""Building blocks for the bad-input suite (tests/reliability/test_bad_input.py):
Hypothesis strategies for hostile values and request bodies, and a snapshot of
everything a request could write, to prove a rejected request wrote nothing.

The argument names come from the Retell function definitions the agent is set up
with (`booking/retell_functions/*.json`, via `booking.openapi`), so a new argument
is fuzzed without touching this file.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import select

from booking.openapi import retell_functions
from calcom.metadata import APPOINTMENT_KEY
from calcom.webhooks import BOOKING_CANCELLED, BOOKING_CREATED, BOOKING_RESCHEDULED, PING, booking_payload
from core.extensions import db
from core.models import Appointment, AppointmentSegment, AuditEvent, Customer, SyncAttempt, WebhookDelivery
from core.redis_client import get_redis
from tests.factories import book
from tests.voice.conftest import CALLER, berlin

# --- how hard to try ---------------------------------------------------------------------
# Default: few examples, the same ones every run (CI stays deterministic and fast).
# SLOTGUARD_FUZZ=deep: many more, freshly drawn each run, for a hunt before a release.
settings.register_profile(
    "bad-input", max_examples=15, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "bad-input-deep", max_examples=int(os.environ.get("SLOTGUARD_FUZZ_EXAMPLES", "400")), deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("bad-input-deep" if os.environ.get("SLOTGUARD_FUZZ") == "deep" else "bad-input")

WEBHOOK_SECRET = "whsec_test"  # tests/conftest.py base_config
RETELL_ANSWER_LIMIT = 15_000  # Retell reads at most this many characters of an answer

# --- hostile values -----------------------------------------------------------------------

HUGE_INTEGERS = st.sampled_from([2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**70, -(2**63) - 1, 10**30])
NON_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 5e-324])
# Control characters, format characters (zero-width, bidi overrides), line/paragraph
# separators, private use and lone surrogates (valid JSON escapes, invalid UTF-8).
CONTROL_TEXT = st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Co", "Cs"]), min_size=1, max_size=12)
MIXED_TEXT = st.builds(lambda a, b, c: a + b + c, st.text(max_size=10), CONTROL_TEXT, st.text(max_size=10))
# Past every length limit, yet well under the 64 KiB body limit (as JSON "\u00c4" is 6 bytes).
OVERSIZED_TEXT = st.integers(min_value=250, max_value=3_000).map(lambda n: "Ä" * n)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), HUGE_INTEGERS, st.floats(), NON_FINITE,
    st.text(max_size=40), CONTROL_TEXT, MIXED_TEXT, OVERSIZED_TEXT,
)
JUNK = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)

# Values an agent could plausibly send, so the fuzzing also gets past the first check.
PLAUSIBLE: dict[str, list[Any]] = {
    "service": ["Herrenhaarschnitt", "herren haarschnitt", "Färben", "Dauerwelle"],
    "service_id": [1, "2", 3],
    "date": ["2026-12-08", "morgen", "8. Dezember", "2026-12-06", "2027-12-31"],
    "time": ["10:00", "9:30", "17:45", "25:61", "03:00"],
    "datetime": ["2026-12-08T10:00", "2026-12-08T10:00:00+01:00", "2026-03-29T02:30"],
    "staff": ["Anna", "Ben", "egal", "Zoe"],
    "lock_key": ["h1-1-1-20261208T0900Z", "h1-99999999999999999999-1-20261208T0900Z", "h1-1-1-20261399T9999Z"],
    "customer_name": ["Erika Muster", "A", "<script>"],
    "customer_phone": ["0151 12345678", "+4915112345678", "12"],
    "customer_email": ["erika@example.com", "kein at mail"],
    "notes": ["bitte kurz", ""],
    "appointment_id": [1, 2, "1", 0, -1],
    "reason": ["krank"],
    "new_date": ["2026-12-09", "übermorgen"],
    "new_time": ["11:00", "8:00"],
    "new_datetime": ["2026-12-09T11:00"],
    "branch_id": [1, "1", 2],
    "call_id": ["call_fuzz"],
    "to_number": ["+4930111111"],
}
EXTRA_ARGUMENTS = ["service_id", "branch_id", "call_id", "to_number", "start", "new_start", "name", "phone", "email"]


def value_for(name: str) -> st.SearchStrategy:
    plausible = PLAUSIBLE.get(name, ["x"])
    return st.one_of(st.sampled_from(plausible), JUNK)


def arguments_for(function: str) -> st.SearchStrategy[dict]:
    """Any subset of the function's declared arguments (plus a few it also reads),
    each plausible or hostile, plus unknown keys."""
    declared = list(retell_functions()[function]["parameters"]["properties"])
    names = declared + [n for n in EXTRA_ARGUMENTS if n not in declared]
    known = st.fixed_dictionaries({}, optional={name: value_for(name) for name in names})
    unknown = st.dictionaries(st.text(max_size=12), JUNK, max_size=2)
    return st.builds(lambda extra, args: {**extra, **args}, unknown, known)


CONFIGURED_BRANCH = st.fixed_dictionaries({"branch_id": value_for("branch_id")})


def call_object(caller: str, branch_phone: str) -> st.SearchStrategy[dict]:
    """`call` as Retell sends it, each field sometimes hostile."""
    return st.fixed_dictionaries(
        {
            "call_id": st.one_of(st.just("call_fuzz"), JUNK),
            "from_number": st.one_of(st.just(caller), JUNK),
            "to_number": st.one_of(st.just(branch_phone), JUNK),
        },
        optional={
            "metadata": st.one_of(JUNK, CONFIGURED_BRANCH),
            "retell_llm_dynamic_variables": st.one_of(JUNK, CONFIGURED_BRANCH),
        },
    )


def wrapped_body(function: str, caller: str, branch_phone: str) -> st.SearchStrategy[dict]:
    """The default wire form `{name, call, args}`; now and then a part of the wrong type."""
    return st.fixed_dictionaries({
        "name": st.one_of(st.just(function), JUNK),
        "call": st.one_of(call_object(caller, branch_phone), call_object(caller, branch_phone), JUNK),
        "args": st.one_of(arguments_for(function), arguments_for(function), JUNK),
    })


HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


def args_only_headers(caller: str, branch_phone: str) -> st.SearchStrategy[dict]:
    """The headers an "args only" agent sends (X-Retell-Call-Id and the numbers)."""
    return st.fixed_dictionaries({}, optional={
        "X-Retell-Call-Id": st.one_of(st.just("call_fuzz"), st.just("{{call_id}}"), HEADER_TEXT),
        "X-Retell-From-Number": st.one_of(st.just(caller), HEADER_TEXT),
        "X-Retell-To-Number": st.one_of(st.just(branch_phone), HEADER_TEXT),
    })


CONTENT_TYPES = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=fuzz", "application/octet-stream", "application/json; charset=latin-1", None,
])

# Bodies that are not even JSON objects: random bytes, invalid UTF-8, JSON of another type.
RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([
        b"", b"null", b"[]", b"42", b'"text"', b"{", b'{"args": {"service": "\xff\xfe"}}', b"\xef\xbb\xbf{}",
        b'{"args": NaN}', b'{"args": {"appointment_id": 1e999}}', b'{"args": {"appointment_id": -Infinity}}',
        b'{"call": {"call_id": "\\ud800"}, "args": {}, "name": "x"}', b'{"a":' * 500 + b"1" + b"}" * 500,
        b'{"args": {"appointment_id": ' + b"9" * 5000 + b"}}",  # past Python's 4,300-digit int limit
        b"[" * 20_000 + b"]" * 20_000,  # deeper than Python's recursion limit
    ]),
    JUNK.map(lambda value: json.dumps(value, allow_nan=True).encode()),
)


def to_json_bytes(value: Any) -> bytes:
    """JSON the way a sloppy client might send it: NaN/Infinity literals allowed,
    lone surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


# --- the Cal.com webhook ----------------------------------------------------------------

UTC = timezone.utc
WEBHOOK_START = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # Tuesday 10:00 in Berlin


def webhook_body(trigger: str, *, uid: str, start: datetime, own_appointment: int | None, host: int) -> dict:
    """A delivery in Cal.com's own shape (built by the emulator's helper)."""
    if trigger == PING:
        return {"triggerEvent": PING, "createdAt": "2026-12-07T08:00:00.000Z", "payload": {"type": "Test"}}
    metadata = {APPOINTMENT_KEY: str(own_appointment)} if own_appointment else {}
    previous = {"uid": "cal_uid_1", "id": 500, "start": start - timedelta(hours=1),
                "end": start - timedelta(minutes=30)}
    return booking_payload(
        trigger,
        booking={"uid": uid, "id": 501, "start": start, "end": start + timedelta(minutes=30), "title": "Termin",
                 "metadata": metadata, "cancellation_reason": "krank"},
        event_type={"id": 1001, "slug": "termin", "title": "Termin"},
        organizer={"id": host, "name": "Host", "email": f"host{host}@example.com", "username": f"host-{host}",
                   "timeZone": "Europe/Berlin"},
        attendees=[{"name": "Web Kundin", "email": "web@example.com", "phoneNumber": "+4915199999999",
                    "timeZone": "Europe/Berlin", "language": "de"}],
        created_at=datetime(2026, 12, 7, 8, 0, tzinfo=UTC), previous=previous,
    )


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into nested dicts and lists (for picking what to break)."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        found.append(prefix + (key,))
        found.extend(paths_of(inner, prefix + (key,)))
    return found


@st.composite
def broken_webhooks(draw) -> dict:
    """A real-looking delivery with up to four of its fields replaced by hostile
    values or removed."""
    body = webhook_body(
        draw(st.sampled_from([BOOKING_CREATED, BOOKING_CANCELLED, BOOKING_RESCHEDULED, PING])),
        uid=draw(st.sampled_from(["cal_uid_1", "cal_uid_new", "cal_uid_2"])),
        start=WEBHOOK_START + timedelta(minutes=30 * draw(st.integers(0, 40))),
        own_appointment=draw(st.sampled_from([None, 1, 2])),
        host=draw(st.sampled_from([100, 101, 999])),
    )
    body = copy.deepcopy(body)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = paths_of(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.integers(0, 4)) == 0 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JUNK)
    return body


@pytest.fixture
def app_config(base_config):
    # Holds outlive the run (Redis expires them in real time, the clock is frozen),
    # so a hold expiring between two snapshots is never mistaken for a write.
    return dict(base_config, CALCOM_AVAILABILITY_TIMEOUT=5.0, CALCOM_CONNECT_TIMEOUT=5.0, SLOT_LOCK_TTL=3600)


@pytest.fixture
def booked(world):
    """The caller's two appointments (Tuesday 11:00 with Anna, Wednesday 15:00 with
    Ben), the first known to Cal.com as `cal_uid_1`, so cancel, reschedule, find and
    the webhook have something real to hit."""
    caller = Customer(company_id=world["company"].id, name="Fuzz Anrufer", phone=CALLER)
    db.session.add(caller)
    db.session.commit()
    first = book(world, berlin(2026, 12, 8, 11), customer_id=caller.id)
    second = book(world, berlin(2026, 12, 9, 15), staff=world["staff"][1], customer_id=caller.id)
    db.session.get(Appointment, first.id).calcom_booking_uid = "cal_uid_1"
    db.session.commit()
    return dict(world, appointment_ids=[first.id, second.id])


# --- one hostile field in a request that would otherwise succeed ------------------------------

# Thursday 10 December: free all day in the `booked` world, sixteen half-hour starts.
FREE_DAY = "2026-12-10"
FREE_TIMES = [f"{9 + n // 2:02d}:{30 * (n % 2):02d}" for n in range(16)]


def good_arguments(function: str, slot: int, appointment_ids: list[int]) -> dict:
    """Arguments on which `function` succeeds in the `booked` world (a booking or a
    move to the `slot`-th free time)."""
    when = {"date": FREE_DAY, "time": FREE_TIMES[slot % len(FREE_TIMES)]}
    return {
        "check_availability": {"service": "Herrenhaarschnitt", **when},
        "start_booking": {"service": "Herrenhaarschnitt", **when, "customer_name": "Erika Muster",
                          "customer_email": "erika@example.com", "notes": "bitte pünktlich"},
        "find_appointments": {},
        "cancel_appointment": {"appointment_id": appointment_ids[1], "reason": "krank"},
        "reschedule_appointment": {"appointment_id": appointment_ids[0], "new_date": when["date"],
                                   "new_time": when["time"]},
    }[function]


def tainted(text: str) -> st.SearchStrategy[str]:
    """`text` with hostile characters slipped in, or repeated past every length limit."""
    return st.one_of(
        st.builds(lambda at, bad: text[:at] + bad + text[at:], st.integers(0, len(text)), CONTROL_TEXT),
        st.integers(min_value=2, max_value=400).map(lambda times: (text or "x") * times),
    )


def hostile_instead_of(value: Any) -> st.SearchStrategy:
    return st.one_of(tainted(value), JUNK) if isinstance(value, str) else JUNK


def good_webhook(slot: int) -> dict:
    """A BOOKING_CREATED that Slotguard would store as a new appointment."""
    start = datetime(2026, 12, 10, 8, 0, tzinfo=UTC) + timedelta(minutes=30 * (slot % 16))
    return webhook_body(BOOKING_CREATED, uid=f"cal_fuzz_{slot}", start=start, own_appointment=None, host=100)


def leaf_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    return [path for path in paths_of(value, prefix) if not isinstance(_at(value, path), (dict, list))]


def _at(value: Any, path: tuple) -> Any:
    for key in path:
        value = value[key]
    return value


# --- "nothing was written" ------------------------------------------------------------------

WATCHED_TABLES = [Appointment, AppointmentSegment, Customer, SyncAttempt, WebhookDelivery, AuditEvent]


def snapshot(app) -> dict:
    """Every committed row a voice function or the webhook could write, the slot
    holds in Redis and the length of every RQ queue (a queued sync job)."""
    state: dict[str, Any] = {}
    with db.engine.connect() as conn:
        for model in WATCHED_TABLES:
            table = model.__table__
            state[table.name] = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
    redis = get_redis(app)
    state["holds"] = {key: redis.get(key) for key in redis.scan_iter("slotguard:hold:*")}
    state["queues"] = {key: redis.llen(key) for key in redis.scan_iter("rq:queue:*")}
    return state


def session_is_clean() -> bool:
    """No pending changes left behind in the request's session."""
    return not (db.session.new or db.session.dirty or db.session.deleted)


__all__ = [
    "CONTENT_TYPES", "FUZZ", "JUNK", "RAW_BODIES", "RETELL_ANSWER_LIMIT", "WEBHOOK_SECRET", "app_config",
    "args_only_headers", "arguments_for", "booked", "broken_webhooks", "good_arguments", "good_webhook",
    "hostile_instead_of", "leaf_paths", "session_is_clean", "snapshot", "to_json_bytes", "wrapped_body",
]
