"""ABHA numbers: the forms accepted, the reasons for refusing, and that a reason never repeats the input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.abha import AbhaError, abha_number, format_abha


@pytest.mark.parametrize("text", ["91123456789012", "91-1234-5678-9012", "91 1234 5678 9012", "  91-1234-5678-9012 "])
def test_accepted_forms_give_the_14_digits(text: str) -> None:
    assert abha_number(text) == "91123456789012"
    assert format_abha(text) == "91-1234-5678-9012"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("9112345678901", "has 14 digits, this has 13"),
        ("911234567890123", "has 14 digits, this has 15"),
        ("", "has 14 digits, this has 0"),
        ("91-1234-5678 9012", "not grouped"),  # mixed separators
        ("9112-3456-7890-12", "not grouped"),
        ("91-1234-5678-901X", "only the digits 0-9"),
        ("९१-१२३४-५६७८-९०१२", "only the digits 0-9"),  # Devanagari digits are digits to Python, not to ABDM
        ("ravi.sharma@abdm", "ABHA address"),
        ("ravi@sbx", "ABHA address"),
        ("9" * 100, "characters long"),
    ],
)
def test_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(AbhaError, match=why) as info:
        abha_number(text)
    assert text.strip() == "" or text.strip() not in str(info.value)


@given(st.text(max_size=80))
def test_any_text_gives_14_ascii_digits_or_a_value_error(text: str) -> None:
    try:
        digits = abha_number(text)
    except ValueError as exc:
        assert isinstance(exc, AbhaError)
        if sum(c in "0123456789" for c in text) >= 4:  # anything number-like is never echoed
            assert text.strip() not in str(exc)
        return
    assert len(digits) == 14 and digits.isascii() and digits.isdigit()
