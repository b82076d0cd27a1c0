"""Turn the arguments the agent sent into checked values, or a `CallerError`.

The LLM fills the arguments from the conversation, so anything can arrive: missing
fields, numbers as strings, a date it half understood. Each helper either returns a
clean value or raises `CallerError` with an error code and the German sentence that
makes the caller say it again. Nothing is written before all of them passed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Mapping

from sqlalchemy.orm import Session

from booking import phrases
from booking.errors import CallerError
from booking.retell_request import RetellRequest
from booking.services_lookup import (
    bookable_services,
    find_service,
    find_staff,
    staff_for_service,
    wants_any_staff,
)
from booking.spoken_time import (
    NonexistentTime,
    RequestedTime,
    TimeParseError,
    UnparseableTime,
    parse_requested,
    to_local,
)
from core.models import Branch, Service, Staff
from core.phones import country_code_of, to_e164
from core.types import is_valid_id

MAX_NAME = 200
MAX_NOTES = 1000
MAX_TEXT = 500  # any other free text argument
# Appointments are taken this far ahead at most.
MAX_DAYS_AHEAD = 365
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}")


def text(args: Mapping[str, Any], *names: str, limit: int = MAX_TEXT) -> str | None:
    """The first of `names` that holds text; numbers count as text, other types do not."""
    for name in names:
        value = args.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise CallerError("invalid_argument", phrases.ARGUMENT_INVALID)
        value = str(value).strip()
        if not value:
            continue
        if len(value) > limit:
            raise CallerError("invalid_argument", phrases.ARGUMENT_INVALID)
        return value
    return None


def whole_number(args: Mapping[str, Any], name: str) -> int | None:
    """An id the agent sent (`service_id`, `appointment_id`): a positive whole number an
    id column can hold, as a number or as text."""
    value = args.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CallerError("invalid_argument", phrases.ARGUMENT_INVALID)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise CallerError("invalid_argument", phrases.ARGUMENT_INVALID) from None
    if not is_valid_id(number):
        raise CallerError("invalid_argument", phrases.ARGUMENT_INVALID)
    return number


# --- service and staff ----------------------------------------------------------------


def service(session: Session, branch: Branch, args: Mapping[str, Any], *, required: bool = True,
            offered: list[Service] | None = None) -> Service | None:
    """The service the caller named (`offered`: the branch's bookable services, when
    the caller has them already)."""
    if offered is None:
        offered = bookable_services(session, branch)
    names = [s.name for s in offered]
    service_id = whole_number(args, "service_id")
    if service_id is not None:
        match = next((s for s in offered if s.id == service_id), None)
        if match is None:
            raise CallerError("unknown_service", phrases.unknown_service(str(service_id), names))
        return match
    said = text(args, "service", "service_name")
    if said is None:
        if not required:
            return None
        raise CallerError("unknown_service", phrases.service_missing(names))
    match = find_service(offered, said)
    if match.found is not None:
        return match.found
    if match.ambiguous:
        raise CallerError("ambiguous_service", phrases.which_service([s.name for s in match.candidates]))
    raise CallerError("unknown_service", phrases.unknown_service(said, names))


def staff_candidates(session: Session, branch: Branch, service: Service, args: Mapping[str, Any]) -> list[Staff]:
    """The staff members who may take the appointment: the one the caller named, or all
    who offer the service here."""
    offering = staff_for_service(session, branch, service)
    if not offering:
        raise CallerError("unknown_staff", phrases.no_staff_for_service(service.name))
    said = text(args, "staff", "staff_name")
    if wants_any_staff(said):
        return offering
    match = find_staff(offering, said)
    if match.found is not None:
        return [match.found]
    if match.ambiguous:
        raise CallerError("ambiguous_staff", phrases.which_staff([m.name for m in match.candidates]))
    raise CallerError("unknown_staff", phrases.unknown_staff(said, [m.name for m in offering]))


# --- time -----------------------------------------------------------------------------


def requested_time(
    args: Mapping[str, Any], branch: Branch, now: datetime, *, prefix: str = "", time_required: bool = True
) -> RequestedTime:
    """`<prefix>datetime` or `<prefix>date` + `<prefix>time`, in the branch's zone.

    Refuses what cannot be meant: unparseable, a time skipped by DST, the past, more
    than a year ahead.
    """
    datetime_text = text(args, f"{prefix}datetime", f"{prefix}start")
    date_text = text(args, f"{prefix}date")
    time_text = text(args, f"{prefix}time")
    if not datetime_text and not date_text:
        raise CallerError("invalid_argument", phrases.DATE_NOT_UNDERSTOOD)
    try:
        wanted = parse_requested(
            date_text=date_text, time_text=time_text, datetime_text=datetime_text, tz_name=branch.timezone, now=now
        )
    except NonexistentTime:
        raise CallerError("invalid_argument", phrases.TIME_DOES_NOT_EXIST) from None
    except UnparseableTime:
        raise CallerError("invalid_argument", phrases.TIME_NOT_UNDERSTOOD) from None
    except TimeParseError:
        raise CallerError("invalid_argument", phrases.DATE_NOT_UNDERSTOOD) from None
    if wanted.start is None and time_required:
        raise CallerError("invalid_argument", phrases.TIME_NOT_UNDERSTOOD)
    local_today = to_local(now, branch.timezone).date()
    if (wanted.start is not None and wanted.start <= now) or wanted.day < local_today:
        raise CallerError("past_time", phrases.IN_THE_PAST)
    if wanted.day > local_today + timedelta(days=MAX_DAYS_AHEAD):
        raise CallerError("too_far_ahead", phrases.too_far_ahead(MAX_DAYS_AHEAD))
    return wanted


# --- the customer ---------------------------------------------------------------------


def customer_name(args: Mapping[str, Any]) -> str:
    name = text(args, "customer_name", "name", limit=MAX_NAME)
    if name is None:
        raise CallerError("missing_name", phrases.NAME_MISSING)
    name = " ".join(name.split())
    if not any(ch.isalpha() for ch in name) or any(ch in name for ch in "<>{}\\"):
        raise CallerError("invalid_argument", phrases.NAME_INVALID)
    return name


def booking_phone(args: Mapping[str, Any], retell_request: RetellRequest, branch: Branch) -> str:
    """The phone number to book under, E.164: `customer_phone` when given, else the
    number the caller calls from."""
    country = country_code_of(branch.phone_number)
    said = text(args, "customer_phone", "phone")
    if said is not None:
        number = to_e164(said, country_code=country)
        if number is None:
            raise CallerError("invalid_phone", phrases.PHONE_INVALID)
        return number
    number = to_e164(retell_request.from_number, country_code=country)
    if number is None:
        raise CallerError("missing_phone", phrases.CALLER_UNKNOWN)
    return number


def callers_own_phone(retell_request: RetellRequest, branch: Branch) -> str:
    """The number the caller calls from — the only proof of whose appointments are
    theirs. A number said during the call is not accepted here: anyone could say any."""
    number = to_e164(retell_request.from_number, country_code=country_code_of(branch.phone_number))
    if number is None:
        raise CallerError("missing_phone", phrases.CALLER_HIDDEN)
    return number


def customer_email(args: Mapping[str, Any]) -> str | None:
    email = text(args, "customer_email", "email", limit=254)
    if email is None:
        return None
    email = email.replace(" ", "")
    if not _EMAIL.fullmatch(email):
        raise CallerError("invalid_email", phrases.EMAIL_INVALID)
    return email


def notes(args: Mapping[str, Any]) -> str | None:
    value = args.get("notes")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CallerError("invalid_argument", phrases.ARGUMENT_INVALID)
    value = value.strip()
    if len(value) > MAX_NOTES:
        raise CallerError("invalid_argument", phrases.NOTES_TOO_LONG)
    return value or None


__all__ = [
    "MAX_DAYS_AHEAD",
    "booking_phone",
    "callers_own_phone",
    "customer_email",
    "customer_name",
    "notes",
    "requested_time",
    "service",
    "staff_candidates",
    "text",
    "whole_number",
]
