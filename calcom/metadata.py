"""The metadata Slotguard puts on Cal.com bookings, and Cal.com's limits on it.

A booking carries our appointment id (and, for a composite service, which busy
segment it is), so that a retried sync finds the booking it already made and a
webhook echoing our own booking back is recognised as ours.
"""

from __future__ import annotations

from typing import Any, Mapping

APPOINTMENT_KEY = "slotguard_appointment_id"
SEGMENT_KEY = "slotguard_segment"

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


def is_ours(metadata: Mapping[str, Any] | None) -> bool:
    return appointment_id_from(metadata) is not None


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
    "SEGMENT_KEY",
    "appointment_id_from",
    "booking_metadata",
    "is_ours",
    "metadata_problem",
    "segment_from",
]
