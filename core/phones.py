"""Phone numbers in E.164, as Customer.phone and Branch.phone_number store them.

The one place a phone number from outside (a caller, the agent, Retell's call
object, a Cal.com attendee, an operator's command line) is normalised, so that the
same person's number is stored and looked up as the same text everywhere.

People write numbers in many ways ("0151 123 45 67", "+49 (151) 1234567",
"0049151…"). A national number (one leading 0) gets the country code of the
branch's own number — or is refused where no country is known. This is deliberately
small: it normalises and checks the E.164 length rules, it does not know every
country's numbering plan.
"""

from __future__ import annotations

import re

# Country calling codes we expect around the branches (longest first when matching).
KNOWN_COUNTRY_CODES = ("49", "43", "41", "31", "32", "33", "34", "39", "44", "45", "46", "47", "48", "352", "420", "1")
DEFAULT_COUNTRY_CODE = "49"
_ALLOWED = re.compile(r"[0-9+()\-./\s]+")


def country_code_of(e164: str | None) -> str:
    """The calling code of an E.164 number (for the branch's callers), default 49."""
    digits = (e164 or "").lstrip("+")
    for code in sorted(KNOWN_COUNTRY_CODES, key=len, reverse=True):
        if digits.startswith(code):
            return code
    return DEFAULT_COUNTRY_CODE


def to_e164(raw: str | None, *, country_code: str | None = DEFAULT_COUNTRY_CODE) -> str | None:
    """`+4915112345678`, or None when `raw` is not a plausible phone number.

    `country_code` is used for a national number ("0151 …"); with None only
    international numbers ("+49 …", "0049 …") are accepted."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text or not _ALLOWED.fullmatch(text):
        return None
    international = text.startswith("+")
    digits = re.sub(r"\D", "", text)
    if international:
        pass
    elif digits.startswith("00"):
        digits = digits[2:]
    elif digits.startswith("0") and country_code:
        digits = country_code + digits[1:]
    else:
        return None  # no way to tell the country of "15112345678"
    # E.164: at most 15 digits; shorter than 8 is no real subscriber number.
    if not 8 <= len(digits) <= 15 or digits.startswith("0"):
        return None
    return "+" + digits


__all__ = ["to_e164", "country_code_of"]
