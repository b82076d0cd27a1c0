"""Typed Cal.com failures, so callers act on the kind of failure without parsing text.

    CalcomError
    ├── RetryableCalcomError      try again later (with backoff)
    │   ├── CalcomUnavailable     no connection, connection dropped, or a 5xx
    │   ├── CalcomTimeout         no answer within the timeout
    │   │                         (after a timeout or a dropped connection, status None,
    │   │                         the request may have reached Cal.com: a create may
    │   │                         have happened — look the booking up by metadata
    │   │                         (`CalcomClient.find_bookings`) before creating again)
    │   └── RateLimited           429; `retry_after` seconds from the rate-limit headers
    ├── SlotUnavailable           the 400 "… already has booking at this time …"
    ├── CalcomRequestError        any other 4xx: retrying cannot fix it
    └── MalformedResponse         a 2xx whose body is not the documented JSON

Every error carries `status` (HTTP status or None when there was no answer), `code`
(Cal.com's `error.code`, e.g. "BadRequestException", or our own short code such as
"timeout") and `message` (Cal.com's `error.message` or a description).
"""

from __future__ import annotations

from typing import Any


class CalcomError(Exception):
    """Base of every failure talking to Cal.com."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: Any = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details
        # "POST /v2/bookings" etc.: which call failed, for logs and sync attempts.
        self.endpoint = endpoint

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        if self.endpoint:
            parts.append(self.endpoint)
        return " | ".join(parts)

    def __reduce__(self):  # keep the keyword fields when pickled (RQ, multiprocessing)
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls, message, state):
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class RetryableCalcomError(CalcomError):
    """A transient failure: the same request may succeed later."""


class CalcomUnavailable(RetryableCalcomError):
    """Cal.com could not be reached, dropped the connection, or answered 5xx."""


class CalcomTimeout(RetryableCalcomError):
    """Cal.com did not answer in time. For a create the booking may exist anyway."""


class RateLimited(RetryableCalcomError):
    """429 Too Many Requests. `retry_after` is seconds to wait (None: headers gave no hint)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class SlotUnavailable(CalcomError):
    """Cal.com refused the booking: the host already has a booking at this time."""


class CalcomRequestError(CalcomError):
    """Cal.com refused the request (4xx other than a slot conflict); retrying won't help."""


class MalformedResponse(CalcomError):
    """A successful status with a body that is not the documented JSON."""


__all__ = [
    "CalcomError",
    "RetryableCalcomError",
    "CalcomUnavailable",
    "CalcomTimeout",
    "RateLimited",
    "SlotUnavailable",
    "CalcomRequestError",
    "MalformedResponse",
]
