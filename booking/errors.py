"""The two ways a voice function can fail, kept apart on purpose.

* `CallerError`: something the caller can fix (unknown service, a date in the past,
  a missing name). Retell's agent needs words, not a status code, so it is answered
  with HTTP 200, `success: false`, an `error_code` and a German sentence to say.
* `ProtocolError`: the request itself is wrong (not JSON, unknown function, bad
  signature, no call id). Only the operator can fix it, so it is a 4xx with a JSON
  body in English.
"""

from __future__ import annotations

from typing import Any, Sequence


class CallerError(Exception):
    """A problem the caller can fix; nothing has been written when it is raised."""

    def __init__(self, code: str, message: str, *, alternatives: Sequence[Any] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        # Slots the agent can offer instead, already in the response shape.
        self.alternatives = list(alternatives)


class ProtocolError(Exception):
    """A malformed or unauthorised request: answered with `status` and a JSON body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


__all__ = ["CallerError", "ProtocolError"]
