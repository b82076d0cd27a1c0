"""Which branch (and so which company) a call is for — decided by what Retell sends.

The call's branch comes only from what Retell itself sends, never from the LLM:

1. a `branch_id` the operator configured for the agent (`call.metadata` or a
   `call.retell_llm_dynamic_variables` entry);
2. else the number that was dialled (`call.to_number`, or the `X-Retell-To-Number:
   {{agent_number}}` header in "args only" mode) matched against `Branch.phone_number`.

A `branch_id` *argument* (filled by the LLM from the conversation) may only pick
another branch of the same company — one agent number serving several branches of
one salon. One naming another company's branch is refused (`branch_mismatch`), and
without a call branch to compare with it is not trusted at all (`unknown_branch`):
otherwise a caller could talk the agent into booking, listing or cancelling at
another company.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from booking import phrases
from booking.arguments import whole_number
from booking.errors import CallerError
from booking.retell_request import RetellRequest
from core.models import Branch
from core.phones import to_e164
from core.types import is_valid_id


def call_branch(session: Session, retell_request: RetellRequest) -> Branch | None:
    """The branch named by what Retell sent (configured branch_id, dialled number)."""
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


def find_branch(session: Session, retell_request: RetellRequest) -> Branch | None:
    """The branch to act on: the call's, or a sister branch the agent named.

    None when the call names no branch; raises `CallerError` branch_mismatch when the
    agent's `branch_id` argument belongs to another company (or to none).
    """
    branch = call_branch(session, retell_request)
    wanted = whole_number(retell_request.args, "branch_id")
    if branch is None or wanted is None or wanted == branch.id:
        return branch
    named = session.get(Branch, wanted)
    if named is None or named.company_id != branch.company_id:
        raise CallerError("branch_mismatch", phrases.BRANCH_NOT_OURS)
    return named


__all__ = ["call_branch", "find_branch"]
