"""core.phones: the one normaliser of phone numbers (voice agent, Retell's call
object, operator commands), so one person's number is always the same text."""

from __future__ import annotations

import pytest

from core.phones import country_code_of, to_e164
from core.privacy import PrivacyError, validate_phone


@pytest.mark.parametrize("raw", ["+49 151 1234 5678", "0049 151 12345678", "0151/12345678", "+49 (151) 12345678"])
def test_the_same_number_written_differently_is_one_e164_number(raw):
    assert to_e164(raw) == "+4915112345678"


def test_a_national_number_takes_the_branchs_country_or_is_refused_without_one():
    assert to_e164("0664 1234567", country_code=country_code_of("+43123456789")) == "+436641234567"
    assert to_e164("0151 12345678", country_code=None) is None
    assert to_e164("0049 151 12345678", country_code=None) == "+4915112345678"


def test_operator_commands_normalise_like_the_voice_agent():
    assert validate_phone("+49 151 1234 5678") == to_e164("+49 151 1234 5678")
    with pytest.raises(PrivacyError, match="international format"):
        validate_phone("0151 12345678")
    with pytest.raises(PrivacyError):
        validate_phone("+49 151 CALL ME")
