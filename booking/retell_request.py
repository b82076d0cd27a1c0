"""Read a Retell custom-function request, in either of its two body forms.

* Default form: `{"name": …, "call": {"call_id", "from_number", "to_number",
  "metadata", "retell_llm_dynamic_variables", …}, "args": {…}}`.
* "Payload: args only" (`args_at_root`): the body *is* the arguments and there is no
  `call` object. The call id then comes from the `X-Retell-Call-Id` header (configure
  it in Retell as `{{call_id}}`) or a `call_id` argument; the numbers from
  `X-Retell-From-Number` / `X-Retell-To-Number` (`{{user_number}}`,
  `{{agent_number}}`).

What Retell itself sends (the `call` object, the headers the operator configured) is
kept apart from `args`, which the LLM fills from the conversation: a caller can talk
the LLM into any argument, so the numbers and the operator's settings never come
from `args`.

The function name comes from the URL, not from the body's `name`, so an operator can
name a tool freely in Retell as long as it points at the right URL. Control
characters and lone surrogates are dropped from every string as the body is read
(`core.types.storable_json`): nothing the LLM sends can carry one into the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from booking.errors import ProtocolError
from core.types import storable_json, storable_text

CALL_ID_HEADER = "X-Retell-Call-Id"
FROM_NUMBER_HEADER = "X-Retell-From-Number"
TO_NUMBER_HEADER = "X-Retell-To-Number"
MAX_CALL_ID_LENGTH = 128  # Appointment.call_id


@dataclass(frozen=True)
class RetellRequest:
    function: str
    args: dict[str, Any]
    call_id: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    # `call.metadata` and `call.retell_llm_dynamic_variables`, for a configured branch_id.
    metadata: dict[str, Any] = field(default_factory=dict)
    dynamic_variables: dict[str, Any] = field(default_factory=dict)
    args_at_root: bool = False

    def setting(self, name: str) -> Any:
        """A value the operator configured for the call (metadata, then dynamic
        variables), e.g. `branch_id`. Never from `args`: the LLM fills those."""
        for source in (self.metadata, self.dynamic_variables):
            value = source.get(name)
            if value not in (None, ""):
                return value
        return None


def parse_request(function: str, raw_body: bytes, headers: Mapping[str, str]) -> RetellRequest:
    """Build a `RetellRequest`, or raise `ProtocolError` (400) for a malformed body."""
    try:
        body = storable_json(json.loads(raw_body.decode("utf-8")))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, a number of over 4,300 digits, nested too deep
        raise ProtocolError(400, "invalid_json", "the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ProtocolError(400, "invalid_json", "the request body must be a JSON object")

    wrapped = isinstance(body.get("call"), dict) or ("args" in body and "name" in body)
    if wrapped:
        call = body.get("call") or {}
        if not isinstance(call, dict):
            raise ProtocolError(400, "invalid_call", "`call` must be an object")
        args = body.get("args")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ProtocolError(400, "invalid_args", "`args` must be an object")
    else:
        call, args = {}, body

    call_id = _text(call.get("call_id")) or _text(headers.get(CALL_ID_HEADER)) or _text(args.get("call_id"))
    if call_id is not None and len(call_id) > MAX_CALL_ID_LENGTH:
        raise ProtocolError(400, "invalid_call_id", f"call_id is longer than {MAX_CALL_ID_LENGTH} characters")
    return RetellRequest(
        function=function,
        args=args,
        call_id=call_id,
        # Never from the arguments: the LLM fills those, and the caller's number is
        # what proves whose appointments these are.
        from_number=_text(call.get("from_number")) or _text(headers.get(FROM_NUMBER_HEADER)),
        to_number=_text(call.get("to_number")) or _text(headers.get(TO_NUMBER_HEADER)),
        metadata=call.get("metadata") if isinstance(call.get("metadata"), dict) else {},
        dynamic_variables=(
            call.get("retell_llm_dynamic_variables")
            if isinstance(call.get("retell_llm_dynamic_variables"), dict)
            else {}
        ),
        args_at_root=not wrapped,
    )


def _text(value: Any) -> str | None:
    """A non-empty string (numbers are accepted and turned into text), else None.

    Retell fills unset dynamic variables in headers literally (`{{call_id}}`), which
    is treated as missing."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = storable_text(value).strip()
    if not value or (value.startswith("{{") and value.endswith("}}")):
        return None
    return value


__all__ = ["RetellRequest", "parse_request", "CALL_ID_HEADER", "FROM_NUMBER_HEADER", "TO_NUMBER_HEADER"]
