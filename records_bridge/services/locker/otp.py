"""One-time sign-in codes: six digits, valid five minutes, five tries, at most ``MAX_SENDS`` sent per number per window.

Pure decisions over an ``OtpState`` (the store keeps one row per mobile
number and applies them in a transaction). A code is kept only as an HMAC
keyed with the server's secret, so a copy of the database does not give the
codes away by trying the million possibilities.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace

CODE_DIGITS = 6
CODE_TTL_MS = 5 * 60_000
MAX_TRIES = 5
SEND_WINDOW_MS = 15 * 60_000
MAX_SENDS = 3


@dataclass(frozen=True, slots=True)
class OtpState:
    code_hash: str
    expires_ms: int
    tries_left: int
    window_start_ms: int
    sends: int


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(key: bytes, mobile: str, code: str) -> str:
    return hmac.new(key, f"otp:{mobile}:{code}".encode(), hashlib.sha256).hexdigest()


def retry_after_ms(state: OtpState | None, now_ms: int) -> int:
    """0 when a new code may be sent now; otherwise how long until one may."""
    if state is None or now_ms - state.window_start_ms >= SEND_WINDOW_MS or state.sends < MAX_SENDS:
        return 0
    return state.window_start_ms + SEND_WINDOW_MS - now_ms


def issued(state: OtpState | None, new_hash: str, now_ms: int) -> OtpState:
    """The state after a new code is sent (call only when ``retry_after_ms`` is 0): earlier codes stop working."""
    if state is None or now_ms - state.window_start_ms >= SEND_WINDOW_MS:
        return OtpState(new_hash, now_ms + CODE_TTL_MS, MAX_TRIES, now_ms, 1)
    return OtpState(new_hash, now_ms + CODE_TTL_MS, MAX_TRIES, state.window_start_ms, state.sends + 1)


@dataclass(frozen=True, slots=True)
class Checked:
    ok: bool
    state: OtpState | None  # what to store afterwards (None: the code is used up)
    reason: str = ""


def check(state: OtpState | None, given_hash: str, now_ms: int) -> Checked:
    """The outcome of one try; a right code is spent, a wrong one costs a try."""
    if state is None or not state.code_hash:
        return Checked(False, state, "no code was sent to this number, or it was used: ask for a new one")
    if now_ms >= state.expires_ms:
        return Checked(False, replace(state, code_hash=""), "the code has expired (codes last 5 minutes): ask for a new one")
    if state.tries_left <= 0:
        return Checked(False, replace(state, code_hash=""), "too many wrong codes: ask for a new one")
    if hmac.compare_digest(state.code_hash, given_hash):
        return Checked(True, replace(state, code_hash="", tries_left=0))
    left = state.tries_left - 1
    if left == 0:
        return Checked(False, replace(state, code_hash="", tries_left=0), "wrong code, and that was the last try: ask for a new one")
    return Checked(False, replace(state, tries_left=left), f"wrong code: {left} {'try' if left == 1 else 'tries'} left")
