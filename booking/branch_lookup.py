"""Which branch a call is for.

An explicit `branch_id` the operator configured for the agent (call metadata or a
dynamic variable, or an argument) wins; otherwise the number that was called
(`call.to_number`) is matched against `Branch.phone_number` (unique, indexed).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from booking.phone_numbers import to_e164
from booking.retell_request import RetellRequest
from core.models import Branch
from core.types import is_valid_id


def find_branch(session: Session, retell_request: RetellRequest) -> Branch | None:
    configured = retell_request.setting("branch_id")
    if configured is not None:
        try:
            branch_id = int(str(configured).strip())
        except ValueError:
            return None
        return session.get(Branch, branch_id) if is_valid_id(branch_id) else None
    number = to_e164(retell_request.to_number)
    if number is None:
        return None
    return session.scalar(select(Branch).where(Branch.phone_number == number))


__all__ = ["find_branch"]
