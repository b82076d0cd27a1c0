"""The ids every log line carries: request id, Retell call id, appointment id.

They live in context variables, so each request thread and each job has its own.
The web layer sets the request id (`core.observability`), the Retell route the call
id, the sync job the appointment id; jobs enqueued while they are set carry them in
`job.meta` (`job_meta()`), so one phone call can be followed from the function call
to the worker's Cal.com booking (`from_meta()`).
"""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator, Mapping

request_id: ContextVar[str | None] = ContextVar("slotguard_request_id", default=None)
call_id: ContextVar[str | None] = ContextVar("slotguard_call_id", default=None)
appointment_id: ContextVar[int | None] = ContextVar("slotguard_appointment_id", default=None)

FIELDS = {"request_id": request_id, "call_id": call_id, "appointment_id": appointment_id}

# What we accept as an incoming X-Request-ID: printable, short, no spaces (it goes
# into every log line and back into the response header).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> str | None:
    """An incoming request id when it is safe to reuse, else None (a new one is made)."""
    if value and _REQUEST_ID.fullmatch(value.strip()):
        return value.strip()
    return None


def current() -> dict[str, Any]:
    """The ids that are set right now (for log lines)."""
    found = {}
    for name, var in FIELDS.items():
        value = var.get()
        if value is not None:
            found[name] = value
    return found


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Set some of the ids for the duration of a block (None values are skipped)."""
    tokens = []
    for name, value in ids.items():
        if value is None:
            continue
        tokens.append((FIELDS[name], FIELDS[name].set(value)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def job_meta() -> dict[str, Any]:
    """Ids for an RQ job's `meta`, so the job's log lines carry them too."""
    ids = current()
    return {"log_context": ids} if ids else {}


def from_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    ids = (meta or {}).get("log_context") or {}
    return {name: ids.get(name) for name in FIELDS if ids.get(name) is not None}


__all__ = ["appointment_id", "bound", "call_id", "current", "from_meta", "job_meta", "new_request_id",
           "request_id", "valid_request_id"]
