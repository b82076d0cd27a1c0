"""The appointment list's filters: parsed from the query string, validated, and
written back as a canonical query string (so a filtered list is a shareable URL).

Unknown or malformed values are refused with a message that says what is wrong,
rather than silently ignored: an operator who shares a link must get the list the
link describes, or be told why not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Mapping

SYNC_STATUSES = {
    "pending": "Pending",
    "failed": "Failed",
    "synced": "Synced",
    "unsynced": "Not synced (pending or failed)",
}
AGES = ("stale", "ancient")
SORTS = {
    "requested": "Sync requested",
    "starts": "Appointment time",
    "customer": "Customer",
    "status": "Sync status",
    "attempts": "Attempts",
}
DIRECTIONS = ("asc", "desc")
MAX_PER_PAGE = 100
MAX_ID_LIST = 500
MAX_SEARCH = 100
ERROR_CODE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class FilterError(ValueError):
    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("; ".join(messages))


@dataclass(frozen=True)
class ListFilters:
    sync_status: str | None = None
    age: str | None = None
    review: bool = False
    had_failures: bool = False  # a failed or retried attempt in the last 24 h
    company_id: int | None = None
    branch_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    error_code: str | None = None
    q: str | None = None
    id_list: tuple[int, ...] = field(default_factory=tuple)
    sort: str = "requested"
    direction: str = "desc"
    page: int = 1
    per_page: int = 25
    # The configured page size: a per_page equal to it is left out of URLs.
    default_per_page: int = field(default=25, compare=False)

    def to_args(self, **changes) -> dict[str, str]:
        """The query-string arguments that describe these filters (defaults left out)."""
        filters = replace(self, **changes) if changes else self
        defaults = ListFilters(per_page=self.default_per_page)
        args: dict[str, str] = {}
        for f in fields(filters):
            if f.name == "default_per_page":
                continue
            value = getattr(filters, f.name)
            if value == getattr(defaults, f.name) or value in (None, "", ()):
                continue
            if isinstance(value, bool):
                args[f.name] = "1"
            elif isinstance(value, tuple):
                args[f.name] = ",".join(str(v) for v in value)
            elif isinstance(value, date):
                args[f.name] = value.isoformat()
            else:
                args[f.name] = str(value)
        return args

    def toggled_sort(self, key: str) -> dict[str, str]:
        """Arguments for a column header: sort by `key`, flipping the direction if already sorted by it."""
        direction = "asc"
        if self.sort == key:
            direction = "desc" if self.direction == "asc" else "asc"
        return self.to_args(sort=key, direction=direction, page=1)


def parse_filters(args: Mapping[str, str], *, per_page_default: int = 25) -> ListFilters:
    """Read filters from request arguments; raises `FilterError` listing every bad value."""
    errors: list[str] = []

    def text(name: str) -> str | None:
        value = (args.get(name) or "").strip()
        return value or None

    def choice(name: str, allowed, label: str) -> str | None:
        value = text(name)
        if value is not None and value not in allowed:
            errors.append(f"{label} must be one of: {', '.join(allowed)} (got {value!r}).")
            return None
        return value

    def flag(name: str, label: str) -> bool:
        value = text(name)
        if value is None or value in ("0", "false", "no"):
            return False
        if value in ("1", "true", "yes", "on"):
            return True
        errors.append(f"{label} must be 1 or 0 (got {value!r}).")
        return False

    def whole(name: str, label: str, minimum: int = 1, maximum: int | None = None) -> int | None:
        value = text(name)
        if value is None:
            return None
        if not value.isdigit() or int(value) < minimum or (maximum is not None and int(value) > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            errors.append(f"{label} must be a whole number {bounds} (got {value!r}).")
            return None
        return int(value)

    def day(name: str, label: str) -> date | None:
        value = text(name)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            errors.append(f"{label} must be a date like 2026-12-07 (got {value!r}).")
            return None

    error_code = text("error_code")
    if error_code is not None and not ERROR_CODE_RE.match(error_code):
        errors.append("Error code may contain only letters, digits and _ . : - (at most 100).")
        error_code = None

    q = text("q")
    if q is not None and len(q) > MAX_SEARCH:
        errors.append(f"Search text may be at most {MAX_SEARCH} characters.")
        q = None

    id_list: tuple[int, ...] = ()
    raw_ids = text("id_list")
    if raw_ids is not None:
        parts = [p.strip() for p in raw_ids.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts) or len(parts) > MAX_ID_LIST:
            errors.append(f"Appointment ids must be up to {MAX_ID_LIST} numbers separated by commas.")
        else:
            id_list = tuple(dict.fromkeys(int(p) for p in parts))

    filters = ListFilters(
        sync_status=choice("sync_status", SYNC_STATUSES, "Sync status"),
        age=choice("age", AGES, "Age"),
        review=flag("review", "Manual review"),
        had_failures=flag("had_failures", "Failed attempts in 24 h"),
        company_id=whole("company_id", "Company"),
        branch_id=whole("branch_id", "Branch"),
        date_from=day("date_from", "From date"),
        date_to=day("date_to", "To date"),
        error_code=error_code,
        q=q,
        id_list=id_list,
        sort=choice("sort", SORTS, "Sort") or "requested",
        direction=choice("direction", DIRECTIONS, "Direction") or "desc",
        page=whole("page", "Page") or 1,
        per_page=whole("per_page", "Rows per page", 1, MAX_PER_PAGE) or per_page_default,
        default_per_page=per_page_default,
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        errors.append("From date must not be after To date.")
    if errors:
        raise FilterError(errors)
    return filters
