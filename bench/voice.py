"""Signed Retell custom-function requests, as Retell sends them, through the app's
own routing (Flask test client: everything the server does, without a socket)."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from booking.retell_signature import now_ms, sign

from bench import world
from bench.databases import RETELL_KEY


def request_body(name: str, args: dict, *, call_id: str, to_number: str,
                 from_number: str = "+4915100000000") -> bytes:
    call = {"call_type": "phone_call", "call_id": call_id, "agent_id": "agent_bench", "agent_version": 1,
            "call_status": "ongoing", "direction": "inbound", "from_number": from_number, "to_number": to_number,
            "metadata": {}, "retell_llm_dynamic_variables": {}}
    return json.dumps({"name": name, "call": call, "args": args}).encode()


def signed_headers(raw: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Retell-Signature": sign(raw, RETELL_KEY, now_ms())}


def post(client, name: str, raw: bytes) -> tuple[float, dict]:
    """POST one signed request; (seconds to the answer, answer JSON)."""
    headers = signed_headers(raw)
    started = time.perf_counter()
    response = client.post(f"/retell/functions/{name}", data=raw, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.get_data(as_text=True)[:300]}")
    return elapsed, response.get_json()


@dataclass(frozen=True)
class Ask:
    """One question of a caller: this branch, service, maybe staff member, day and time."""

    branch_id: int
    service: str
    staff: str | None
    day: date
    clock: str  # "HH:MM", Berlin

    @property
    def to_number(self) -> str:
        return f"+49301{self.branch_id:06d}"

    def args(self) -> dict:
        args = {"service": self.service, "date": self.day.isoformat(), "time": self.clock}
        if self.staff:
            args["staff"] = self.staff
        return args


def asks(p: world.Plan, count: int, *, seed: int, days: tuple[int, int] = (1, 14)) -> list[Ask]:
    """`count` realistic questions: any branch, any service, a third name a staff member,
    a working day in the next two weeks, a half-hour start within opening hours."""
    rng = random.Random(seed)
    today = datetime.now(timezone.utc).astimezone(world.TZ).date()
    staff_by_branch: dict[int, list[int]] = {}
    for member in p.staff:
        staff_by_branch.setdefault(member.branch_id, []).append(member.id)
    found = []
    while len(found) < count:
        branch_id, _company = rng.choice(p.branches)
        day = today + timedelta(days=rng.randint(*days))
        hours = world.OPENING_HOURS.get(str(day.isoweekday()))
        if not hours:
            continue
        name, minutes, _, _ = rng.choice(world.SERVICES)
        opens, closes = (int(t[:2]) * 60 + int(t[3:]) for t in hours[0])
        latest = closes - minutes
        start = opens + 30 * rng.randint(0, (latest - opens) // 30)
        staff = f"Mitarbeiter {rng.choice(staff_by_branch[branch_id])}" if rng.random() < 0.33 else None
        found.append(Ask(branch_id, name, staff, day, f"{start // 60:02d}:{start % 60:02d}"))
    return found
