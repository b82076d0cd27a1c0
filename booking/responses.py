"""The JSON shapes the voice agent receives — stable, documented in the README.

Every function answers with the same envelope, `success`, `error_code` (null on
success) and `message` (German, for the agent to say), plus its own fields, which
are always present (null / empty when they do not apply):

* check_availability:     available, lock_key, slot, alternatives
* start_booking:          appointment_id, alternatives
* find_appointments:      appointments
* cancel_appointment:     appointment_id
* reschedule_appointment: appointment_id, slot, alternatives

Times are ISO 8601 with the branch's UTC offset; `spoken` is the German form.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

from booking import phrases
from booking.spoken_time import local_iso

FIELDS: dict[str, dict[str, Any]] = {
    "check_availability": {"available": False, "lock_key": None, "slot": None, "alternatives": []},
    "start_booking": {"appointment_id": None, "alternatives": []},
    "find_appointments": {"appointments": []},
    "cancel_appointment": {"appointment_id": None},
    "reschedule_appointment": {"appointment_id": None, "slot": None, "alternatives": []},
}


def envelope(function: str, *, success: bool, message: str, error_code: str | None = None, **fields: Any) -> dict:
    body: dict[str, Any] = {"success": success, "error_code": error_code, "message": message}
    body.update(copy.deepcopy(FIELDS[function]))
    for name, value in fields.items():
        if name not in body:
            raise KeyError(f"{function} has no field {name!r}")
        body[name] = value
    return body


def error(function: str, code: str, message: str, alternatives: Sequence[dict] = ()) -> dict:
    """A caller-fixable failure: `success: false` and what to say."""
    extra = {"alternatives": list(alternatives)} if "alternatives" in FIELDS[function] else {}
    return envelope(function, success=False, message=message, error_code=code, **extra)


def slot(staff_name: str, start, end, tz_name: str) -> dict:
    return {"start": local_iso(start, tz_name), "end": local_iso(end, tz_name), "staff": staff_name}


def option(option, tz_name: str) -> dict:
    """A `SlotOption` as the `slot` field."""
    return slot(option.staff_name, option.start, option.end, tz_name)


def alternatives(options: Sequence, tz_name: str) -> list[dict]:
    return [option(o, tz_name) | {"spoken": phrases.spoken_datetime(o.start, tz_name)} for o in options]


def appointment(item, tz_name: str) -> dict:
    return {
        "appointment_id": item.id,
        "service": item.service.name,
        "staff": item.staff.name,
        "start": local_iso(item.starts_at, tz_name),
        "end": local_iso(item.ends_at, tz_name),
        "spoken": phrases.spoken_datetime(item.starts_at, tz_name),
    }


__all__ = ["FIELDS", "alternatives", "appointment", "envelope", "error", "option", "slot"]
