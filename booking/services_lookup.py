"""Match what the caller said to a service or a staff member, forgivingly.

"herren haarschnitt", "Herren-Haarschnitt", "einen Herrenhaarschnitt bitte" and
"Herrenhaarschnit" all mean Herrenhaarschnitt. Matching goes from strict to loose and
stops at the first level that finds something:

1. equal after normalising (case, umlauts, ß, spaces and punctuation);
2. one name contains the other ("färben" in "haare färben");
3. close spelling (difflib ratio ≥ 0.75).

A level that finds several equally good names answers "ambiguous" with the names, so
the agent can ask back instead of guessing.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.customers import normalise_name
from core.models import Branch, Service, Staff, staff_services

T = TypeVar("T")

CLOSE_MATCH_CUTOFF = 0.75
# Words that say "any staff member".
ANY_STAFF = {"", "egal", "beliebig", "irgendwer", "irgendjemand", "jeder", "jede", "keinpraeferenz",
             "keinepraeferenz", "keinewunsch", "keinwunsch", "any", "niemandbestimmtes", "wurscht"}
_HONORIFICS = re.compile(r"^(herr|herrn|frau|hr|fr)\.?\s+", re.IGNORECASE)


@dataclass
class Match(Generic[T]):
    found: T | None = None
    # Several candidates fit equally well (ask back) — or nothing fit (empty).
    candidates: list[T] = field(default_factory=list)

    @property
    def ambiguous(self) -> bool:
        return self.found is None and len(self.candidates) > 1


def best_match(items: Sequence[T], query: str, names: Callable[[T], Sequence[str]]) -> Match[T]:
    wanted = normalise_name(query)
    if not wanted:
        return Match()
    keyed = [(item, [normalise_name(n) for n in names(item) if normalise_name(n)]) for item in items]

    exact = [item for item, keys in keyed if wanted in keys]
    if exact:
        return _decide(exact)
    contained = [
        item for item, keys in keyed
        if any((len(k) >= 3 and k in wanted) or (len(wanted) >= 3 and wanted in k) for k in keys)
    ]
    if contained:
        return _decide(contained)
    scored = []
    for item, keys in keyed:
        score = max((difflib.SequenceMatcher(None, wanted, k).ratio() for k in keys), default=0.0)
        if score >= CLOSE_MATCH_CUTOFF:
            scored.append((score, item))
    if not scored:
        return Match()
    scored.sort(key=lambda pair: pair[0], reverse=True)
    best = [item for score, item in scored if scored[0][0] - score < 0.05]
    return _decide(best)


def _decide(items: list[T]) -> Match[T]:
    unique = list(dict.fromkeys(items))
    if len(unique) == 1:
        return Match(found=unique[0], candidates=unique)
    return Match(candidates=unique)


def bookable_services(session: Session, branch: Branch) -> list[Service]:
    """Active services of the branch's company that someone at this branch offers."""
    offered_here = (
        select(staff_services.c.service_id)
        .join(Staff, Staff.id == staff_services.c.staff_id)
        .where(Staff.branch_id == branch.id, Staff.active.is_(True))
    )
    return list(
        session.scalars(
            select(Service)
            .where(Service.company_id == branch.company_id, Service.active.is_(True), Service.id.in_(offered_here))
            .order_by(Service.id)
        )
    )


def find_service(services: Sequence[Service], query: str) -> Match[Service]:
    return best_match(services, query, lambda service: [service.name])


def staff_for_service(session: Session, branch: Branch, service: Service) -> list[Staff]:
    """Active staff of the branch who offer `service`, in a stable order."""
    return list(
        session.scalars(
            select(Staff)
            .join(staff_services, staff_services.c.staff_id == Staff.id)
            .where(
                staff_services.c.service_id == service.id,
                Staff.branch_id == branch.id,
                Staff.active.is_(True),
            )
            .order_by(Staff.id)
        )
    )


def wants_any_staff(query: str | None) -> bool:
    return query is None or normalise_name(query) in ANY_STAFF


def find_staff(staff: Sequence[Staff], query: str) -> Match[Staff]:
    """Match "Anna", "Frau Becker", "anna becker" to a staff member."""
    cleaned = _HONORIFICS.sub("", query.strip())

    def names(member: Staff) -> list[str]:
        parts = member.name.split()
        return [member.name, *parts] if len(parts) > 1 else [member.name]

    return best_match(staff, cleaned, names)


__all__ = [
    "Match",
    "best_match",
    "bookable_services",
    "find_service",
    "find_staff",
    "normalise_name",
    "staff_for_service",
    "wants_any_staff",
]
