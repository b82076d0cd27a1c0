"""Personal data in text: how it is recognised, masked and scrubbed — the one place.

Three uses, one set of patterns:

* `mask_text(text)` — partial masks that still tell two callers apart in one
  incident: `+4915112345678` → `+49…78`, `erika@example.com` → `e…@….com`. Every log
  line (`core.logs.PiiMaskingFilter`) and the dashboard's free text for viewers
  (`masked_text` filter, `core.privacy`) go through it.
* `mask_phone` / `mask_email` — one stored field for a viewer: `+49 …78`,
  `e…@example.com`.
* `redact_text(text)` — nothing left: `[phone]`, `[email]`. Cal.com's own error
  texts are stored this way in sync attempts and review reasons (`calcom.failures`).
* `Scrubber(name, phone, email)` — erasing one person (`core.privacy.erase_customer`):
  every copy of *their* name, number (in any spelling) and address inside a text is
  replaced, wherever it was copied to.

Numbers are recognised in international format (`+49 151 …`, how Slotguard stores
them); `redact_text` and the scrubber also catch national ones (`0151 …`), which
Cal.com and people write. Ids, counts, dates and times have no leading plus or zero
followed by enough digits, so they stay.
"""

from __future__ import annotations

import json
import re
from typing import Any

# "+4915112345678", "+49 151 1234 5678", "+49-30-901820": a plus, then 7–15 digits
# with the usual separators.
PHONE_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d(?:[ \-/.()]{0,2}\d){6,16}(?!\d)")
# "0151 23456789", "030/901820": a leading zero, then at least 7 more digits.
PHONE_NATIONAL = re.compile(r"(?<![\w+])0\d(?:[ \-/()]{0,2}\d){6,14}(?!\d)")
EMAIL = re.compile(r"(?<![\w.%+-])([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)\.([A-Za-z]{2,24})\b")

PHONE_PLACEHOLDER = "[phone]"
EMAIL_PLACEHOLDER = "[email]"


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# --- masks (logs, viewers) ------------------------------------------------------------


def _partial_phone(match: re.Match) -> str:
    digits = _digits(match.group(0))
    return f"+{digits[:2]}…{digits[-2:]}"


def _partial_email(match: re.Match) -> str:
    local, _domain, tld = match.groups()
    return f"{local[:1]}…@…{'.' + tld}"


def mask_text(text: str | None) -> str | None:
    """Mask phone numbers and e-mail addresses inside free text (partially)."""
    if not text:
        return text
    return PHONE_INTERNATIONAL.sub(_partial_phone, EMAIL.sub(_partial_email, text))


def mask_phone(phone: str | None) -> str:
    """One stored number, for a viewer: `+49 …78`."""
    if not phone:
        return ""
    digits = _digits(phone)
    if len(digits) < 5:
        return "…"
    return f"+{digits[:2]} …{digits[-2:]}" if phone.strip().startswith("+") else f"…{digits[-2:]}"


def mask_email(email: str | None) -> str:
    """One stored address, for a viewer: `e…@example.com`."""
    if not email:
        return ""
    local, at, domain = email.partition("@")
    if not at:
        return "…"
    return f"{local[:1]}…@{domain}"


def redact_text(text: str | None) -> str | None:
    """Remove every phone number and e-mail address from a text that is stored."""
    if text is None:
        return None
    text = EMAIL.sub(EMAIL_PLACEHOLDER, text)
    text = PHONE_INTERNATIONAL.sub(PHONE_PLACEHOLDER, text)
    return PHONE_NATIONAL.sub(PHONE_PLACEHOLDER, text)


# --- scrubbing one person -------------------------------------------------------------


class Scrubber:
    """Replaces one person's name, phone number and e-mail address inside texts.

    The name is matched whole and case-insensitively (a first name alone is not
    theirs alone: staff members share first names); the number in any spelling
    (`+49 151 …`, `0151 …`, `004915…`); the address case-insensitively.
    """

    MIN_NAME_LENGTH = 3

    def __init__(self, *, name: str | None, phone: str | None, email: str | None, erased_name: str) -> None:
        self.erased_name = erased_name
        name = (name or "").strip()
        self.name = name if len(name) >= self.MIN_NAME_LENGTH and name != erased_name else None
        self.phone_digits = _digits(phone or "") or None
        if self.phone_digits is not None and len(self.phone_digits) < 7:
            self.phone_digits = None
        self.email = (email or "").strip() or None
        self._name_pattern = (re.compile(r"(?<!\w)" + re.escape(self.name) + r"(?!\w)", re.IGNORECASE)
                              if self.name else None)
        self._email_pattern = re.compile(re.escape(self.email), re.IGNORECASE) if self.email else None

    @property
    def has_anything(self) -> bool:
        return bool(self.name or self.phone_digits or self.email)

    def needles(self) -> list[str]:
        """Substrings a text holding this person's data contains (for a SQL pre-filter:
        raw and as JSON writes them). The number's last four digits catch every spelling."""
        found: list[str] = []
        for value in (self.name, self.email, self.phone_digits[-4:] if self.phone_digits else None):
            if value:
                found.append(value)
                escaped = json.dumps(value)[1:-1]
                if escaped != value:
                    found.append(escaped)
        return found

    def _is_their_number(self, match: re.Match) -> bool:
        digits = _digits(match.group(0))
        if digits.startswith("00"):
            digits = digits[2:]
        if digits == self.phone_digits:
            return True
        # A national spelling (0151…) is the international number without its country code.
        return digits.startswith("0") and len(digits) >= 7 and self.phone_digits.endswith(digits[1:])

    def _phone_sub(self, match: re.Match) -> str:
        return PHONE_PLACEHOLDER if self._is_their_number(match) else match.group(0)

    def text(self, value: str | None) -> str | None:
        """The text with this person's data replaced (unchanged when none is in it)."""
        if not value:
            return value
        if self._email_pattern is not None:
            value = self._email_pattern.sub(EMAIL_PLACEHOLDER, value)
        if self.phone_digits:
            value = PHONE_INTERNATIONAL.sub(self._phone_sub, value)
            value = PHONE_NATIONAL.sub(self._phone_sub, value)
        if self._name_pattern is not None:
            value = self._name_pattern.sub(self.erased_name, value)
        return value

    def value(self, data: Any) -> Any:
        """The same through JSON data (audit details, reconciliation findings)."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {key: self.value(item) for key, item in data.items()}
        if isinstance(data, list):
            return [self.value(item) for item in data]
        return data


__all__ = ["EMAIL", "PHONE_INTERNATIONAL", "PHONE_NATIONAL", "Scrubber", "mask_email", "mask_phone", "mask_text",
           "redact_text"]
