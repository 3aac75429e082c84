"""ABHA numbers (Ayushman Bharat Health Account, ABDM): checking one and writing it out.

An ABHA number is 14 digits; the ABHA card prints it in groups of 2-4-4-4
(``91-1234-5678-9012``). ``abha_number`` accepts the 14 digits bare or in that
grouping (separated by ``-`` or by spaces, the same separator throughout, with
surrounding blanks ignored) and returns the 14 digits, the form teleicu stores.
It refuses, with the reason (``AbhaError``, a ``ValueError``; the message never
repeats the text it was given, so it can be logged):

* anything but ASCII digits and those separators (other scripts' digits too);
* a number of digits other than 14, or groups other than 2-4-4-4;
* an ABHA *address* (``name@abdm``, ``name@sbx``): the patient's self-chosen
  handle for the ABDM apps, not the number.

No check digit is verified: ABDM publishes none for the ABHA number (unlike
Aadhaar's Verhoeff digit), so a mistyped number with the right shape passes.
"""

from __future__ import annotations

import re

ABHA_DIGITS = 14
_GROUPED = re.compile(r"([0-9]{2})([- ])([0-9]{4})\2([0-9]{4})\2([0-9]{4})")
_BARE = re.compile(r"[0-9]{14}")
MAX_INPUT = 64  # longer text is refused without being examined further


class AbhaError(ValueError):
    """Text that is not an ABHA number; the message says why."""


def abha_number(text: str) -> str:
    """The 14 digits of an ABHA number written bare or as 2-4-4-4 groups; raises ``AbhaError``."""
    if len(text) > MAX_INPUT:
        raise AbhaError(f"an ABHA number has {ABHA_DIGITS} digits; this is {len(text)} characters long")
    s = text.strip()
    if "@" in s:
        raise AbhaError("this is an ABHA address (a login handle such as name@abdm), not the 14-digit ABHA number")
    if _BARE.fullmatch(s):
        return s
    m = _GROUPED.fullmatch(s)
    if m:
        return m[1] + m[3] + m[4] + m[5]
    digits = sum(c in "0123456789" for c in s)
    if all(c in "0123456789- " for c in s):
        if digits != ABHA_DIGITS:
            raise AbhaError(f"an ABHA number has {ABHA_DIGITS} digits, this has {digits}")
        raise AbhaError("the digits are not grouped as an ABHA number (14 digits bare, or XX-XXXX-XXXX-XXXX)")
    raise AbhaError("an ABHA number has only the digits 0-9 (with '-' or spaces between the groups)")


def format_abha(digits: str) -> str:
    """``91123456789012`` -> ``91-1234-5678-9012``, as printed on the ABHA card; raises ``AbhaError``."""
    d = abha_number(digits)
    return f"{d[:2]}-{d[2:6]}-{d[6:10]}-{d[10:]}"
