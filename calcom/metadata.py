"""The metadata Slotguard puts on Cal.com bookings, and Cal.com's limits on it.

A booking carries our appointment id (and, for a composite service, which busy
segment it is), so that a retried sync finds the booking it already made and a
webhook echoing our own booking back is recognised as ours.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

APPOINTMENT_KEY = "slotguard_appointment_id"
SEGMENT_KEY = "slotguard_segment"

# The cancellation reason of bookings the sync worker cancels to undo a partly booked
# composite appointment. It names the appointment, so the BOOKING_CANCELLED webhook
# can tell our undo from a real cancellation (see `rollback_reason`).
ROLLBACK_REASON_PREFIX = "Slotguard rollback"
_ROLLBACK_REASON = re.compile(rf"^\s*{re.escape(ROLLBACK_REASON_PREFIX)} \(appointment (\d+)\)")

# Cal.com's limits (CreateBookingInput_2024_08_13, validate-metadata.ts).
MAX_KEYS = 50
MAX_KEY_LENGTH = 40
MAX_STRING_LENGTH = 500
LIMITS_MESSAGE = (
    "Metadata must have at most 50 keys, each key up to 40 characters, and string values up to 500 characters."
)


def booking_metadata(appointment_id: int, segment_position: int | None = None, **extra: Any) -> dict[str, str]:
    """Metadata for the Cal.com booking of an appointment (or one of its segments)."""
    metadata = {APPOINTMENT_KEY: str(int(appointment_id))}
    if segment_position is not None:
        metadata[SEGMENT_KEY] = str(int(segment_position))
    for key, value in extra.items():
        if value is not None:
            metadata[key] = str(value)
    problem = metadata_problem(metadata)
    if problem:
        raise ValueError(problem)
    return metadata


def metadata_problem(metadata: Any) -> str | None:
    """Why Cal.com would refuse this metadata, or None when it is acceptable.

    Cal.com accepts strings, numbers and booleans as values; nested objects are refused.
    """
    if not isinstance(metadata, Mapping):
        return "metadata must be an object"
    if len(metadata) > MAX_KEYS:
        return LIMITS_MESSAGE
    for key, value in metadata.items():
        if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH:
            return LIMITS_MESSAGE
        if isinstance(value, str):
            if len(value) > MAX_STRING_LENGTH:
                return LIMITS_MESSAGE
        elif not isinstance(value, (int, float, bool)):
            return LIMITS_MESSAGE
    return None


def appointment_id_from(metadata: Mapping[str, Any] | None) -> int | None:
    """Our appointment id from a booking's metadata; None for a booking we did not make."""
    return _int_value(metadata, APPOINTMENT_KEY)


def segment_from(metadata: Mapping[str, Any] | None) -> int | None:
    """The segment position from a booking's metadata; None for a whole appointment."""
    return _int_value(metadata, SEGMENT_KEY)


def rollback_reason(appointment_id: int) -> str:
    """The cancellation reason of a booking cancelled to undo a partial composite booking.

    Why a reason and not metadata: a cancel cannot change a booking's metadata, and
    Cal.com's BOOKING_CANCELLED payload carries no metadata at all (its
    `handleCancelBooking` builds the event without it) — but it does carry
    `cancellationReason`. The reason names the appointment, so the webhook checks that
    the booking it found by uid belongs to the very appointment the reason names.
    """
    return (f"{ROLLBACK_REASON_PREFIX} (appointment {int(appointment_id)}): "
            "the appointment could not be booked in Cal.com completely")


def rolled_back_appointment_id(reason: str | None) -> int | None:
    """The appointment a rollback cancellation reason names; None for any other reason."""
    match = _ROLLBACK_REASON.match(reason or "")
    return int(match.group(1)) if match else None


def is_rollback_of(appointment_id: int, reason: str | None, metadata: Mapping[str, Any] | None = None) -> bool:
    """True when a cancellation is Slotguard's own undo of a booking of this appointment.

    The reason must name this appointment; when the payload does carry the booking's
    metadata (other Cal.com versions or payload templates), it must name it too.
    """
    if rolled_back_appointment_id(reason) != appointment_id:
        return False
    named = appointment_id_from(metadata)
    return named is None or named == appointment_id


def _int_value(metadata: Mapping[str, Any] | None, key: str) -> int | None:
    if not isinstance(metadata, Mapping):
        return None
    raw = metadata.get(key)
    if raw is None or isinstance(raw, bool):
        return None
    try:
        return int(str(raw).strip())
    except ValueError:
        return None


__all__ = [
    "APPOINTMENT_KEY",
    "ROLLBACK_REASON_PREFIX",
    "SEGMENT_KEY",
    "appointment_id_from",
    "booking_metadata",
    "is_rollback_of",
    "metadata_problem",
    "rollback_reason",
    "rolled_back_appointment_id",
    "segment_from",
]
