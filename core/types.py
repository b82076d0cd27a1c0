"""Column types shared by the models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

from core.clock import UTC, ensure_utc


class UTCDateTime(TypeDecorator):
    """A timestamp that is always a timezone-aware UTC `datetime` in Python.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so the value is stored
    as naive UTC text and made aware again on the way out. Comparisons in SQL work on
    both because every stored value is UTC in the same format.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("refusing a naive datetime: pass a timezone-aware value")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return ensure_utc(value)


# Every id column (primary keys, foreign keys, Cal.com ids) is an INTEGER: 32-bit signed
# on PostgreSQL. A number outside 1 … MAX_ID names no row and cannot even be sent as a
# query parameter (PostgreSQL: "integer out of range"; SQLite overflows past 2**63), so
# outside input is checked against this bound before it reaches a query.
MAX_ID = 2**31 - 1


def is_valid_id(number: int) -> bool:
    """True for a whole number an id column can hold (1 … MAX_ID)."""
    return 0 < number <= MAX_ID
