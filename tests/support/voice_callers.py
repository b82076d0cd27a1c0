"""Many phone callers at once, each doing what Retell does for one call: signed POSTs
to `/retell/functions/<name>` over real HTTP, in the flows a voice agent uses.

* `two_step`: `check_availability` for the wanted slot; when it is free,
  `start_booking` with the returned `lock_key` (or, without holds, the slot itself).
* `direct`: `start_booking` with service, date, time and staff and no lock key (older
  agent flows; Slotguard checks and holds the slot itself).

Every caller ends with one `outcome` a person on the phone would notice: `booked`,
`taken` ("Dieser Termin wurde gerade vergeben." from start_booking), `not_free`
("… ist leider kein Termin frei." from check_availability) — or `unexpected`
(anything else: a 5xx, a 4xx, another error code, a message that is not one of those).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import requests

from booking import phrases
from booking.retell_signature import now_ms, sign

SLOT_TAKEN_START = phrases.slot_taken([]).split(".")[0] + "."  # "Dieser Termin wurde gerade vergeben."
NOT_FREE_PART = "ist leider kein Termin frei."
BOOKED_PART = "Ihr Termin ist gebucht:"


@dataclass(frozen=True)
class WantedSlot:
    """What the caller says: service, local date and time, staff member."""

    service: str
    date: str  # 2026-12-08
    time: str  # 10:30
    staff: str

    def args(self) -> dict:
        return {"service": self.service, "date": self.date, "time": self.time, "staff": self.staff}


@dataclass
class Answer:
    function: str
    status: int
    body: dict | None  # None when the answer was not JSON
    text: str
    seconds: float = 0.0  # how long the caller waited for it


@dataclass
class Caller:
    number: int
    call_id: str
    phone: str
    flow: str  # "two_step" | "direct"
    wanted: WantedSlot
    answers: list[Answer] = field(default_factory=list)
    error: str | None = None  # a transport error (connection refused, timeout)

    @property
    def name(self) -> str:
        return f"Kunde Nummer {self.number}"

    @property
    def outcome(self) -> str:
        if self.error or not self.answers:
            return "unexpected"
        last = self.answers[-1]
        body = last.body or {}
        if last.status != 200 or not isinstance(body.get("message"), str):
            return "unexpected"
        message = body["message"]
        if last.function == "start_booking" and body.get("success") and isinstance(body.get("appointment_id"), int) \
                and BOOKED_PART in message:
            return "booked"
        if last.function == "start_booking" and body.get("error_code") == "slot_taken" \
                and message.startswith(SLOT_TAKEN_START):
            return "taken"
        if last.function == "check_availability" and body.get("success") and body.get("available") is False \
                and NOT_FREE_PART in message:
            return "not_free"
        return "unexpected"

    @property
    def appointment_id(self) -> int | None:
        return self.answers[-1].body.get("appointment_id") if self.outcome == "booked" else None


class RetellClient:
    """Posts custom-function calls signed like Retell (`X-Retell-Signature`)."""

    def __init__(self, base_url: str, api_key: str, to_number: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.to_number = to_number
        self.timeout = timeout

    def call(self, http: requests.Session, caller: Caller, function: str, args: dict) -> Answer:
        body = json.dumps({
            "name": function, "args": args,
            "call": {"call_type": "phone_call", "call_id": caller.call_id, "agent_id": "agent_reliability",
                     "call_status": "ongoing", "direction": "inbound", "from_number": caller.phone,
                     "to_number": self.to_number, "metadata": {}, "retell_llm_dynamic_variables": {}},
        }).encode()
        started = time.monotonic()
        response = http.post(
            f"{self.base_url}/retell/functions/{function}", data=body, timeout=self.timeout,
            headers={"Content-Type": "application/json", "X-Retell-Signature": sign(body, self.api_key, now_ms())},
        )
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        answer = Answer(function, response.status_code, parsed if isinstance(parsed, dict) else None, response.text,
                        time.monotonic() - started)
        caller.answers.append(answer)
        return answer

    def run(self, caller: Caller, after_check: Callable[[Caller], None] | None = None) -> None:
        """One call from start to end; transport errors are recorded, not raised."""
        try:
            with requests.Session() as http:
                if caller.flow == "direct":
                    self.call(http, caller, "start_booking", dict(caller.wanted.args(), customer_name=caller.name))
                    return
                checked = self.call(http, caller, "check_availability", caller.wanted.args())
                if after_check is not None:
                    after_check(caller)
                body = checked.body or {}
                if checked.status != 200 or not body.get("available"):
                    return
                if body.get("lock_key"):
                    args = {"lock_key": body["lock_key"], "customer_name": caller.name}
                else:  # no hold was taken (holds off or Redis down): name the slot again
                    args = dict(caller.wanted.args(), customer_name=caller.name)
                self.call(http, caller, "start_booking", args)
        except requests.RequestException as exc:
            caller.error = f"{type(exc).__name__}: {exc}"


def make_callers(run_id: str, count: int, slots: Sequence[WantedSlot], *, first_number: int = 0) -> list[Caller]:
    """`count` callers spread evenly over `slots`; even numbers check first, odd ones book directly."""
    return [
        Caller(number=n, call_id=f"call-{run_id}-{n}", phone=f"+49151{n:08d}",
               flow="two_step" if n % 2 == 0 else "direct", wanted=slots[n % len(slots)])
        for n in range(first_number, first_number + count)
    ]


def call_all_at_once(client: RetellClient, callers: Sequence[Caller],
                     after_check: Callable[[Caller], None] | None = None) -> None:
    """Every caller in its own thread, released together by a barrier; returns when all are done."""
    barrier = threading.Barrier(len(callers))

    def one(caller: Caller) -> None:
        barrier.wait()
        client.run(caller, after_check)

    threads = [threading.Thread(target=one, args=(c,), name=f"caller-{c.number}", daemon=True) for c in callers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"callers still waiting after 300 s: {stuck[:5]}"


def slowest_answer(callers: Sequence[Caller]) -> float:
    """Seconds of the longest wait any caller had for one answer."""
    return max((a.seconds for c in callers for a in c.answers), default=0.0)


def describe(callers: Sequence[Caller], limit: int = 5) -> str:
    """The first unexpected callers, for an assertion message."""
    odd = [c for c in callers if c.outcome == "unexpected"][:limit]
    return "\n".join(
        f"{c.call_id} ({c.flow}): error={c.error} answers="
        + "; ".join(f"{a.function} {a.status} {a.text[:300]}" for a in c.answers)
        for c in odd
    )


__all__ = ["Caller", "RetellClient", "WantedSlot", "call_all_at_once", "describe", "make_callers", "slowest_answer"]
