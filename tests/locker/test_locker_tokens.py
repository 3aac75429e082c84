"""Share-link tokens and one-time codes: round trips, tampering, and hypothesis fuzzing of the token parser
(anything at all is either parsed to what was signed or refused with ShareTokenError, never another exception)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from records_bridge.services.locker import otp
from records_bridge.services.locker.share_tokens import MAX_TOKEN, ShareToken, ShareTokenError, parse, sign

SECRET = b"k" * 32
OTHER = b"j" * 32
LINK_IDS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=16, max_size=43)


@given(LINK_IDS, st.integers(0, 10**12 - 1))
def test_round_trip(link_id: str, expires: int) -> None:
    assert parse(SECRET, sign(SECRET, link_id, expires)) == ShareToken(link_id, expires)


@given(st.text(max_size=400))
@settings(max_examples=500)
def test_any_text_is_refused_cleanly(text: str) -> None:
    with pytest.raises(ShareTokenError):
        parse(SECRET, text)


@given(LINK_IDS, st.integers(0, 10**12 - 1), st.data())
@settings(max_examples=300)
def test_any_single_change_is_refused(link_id: str, expires: int, data: st.DataObject) -> None:
    token = sign(SECRET, link_id, expires)
    i = data.draw(st.integers(0, len(token) - 1))
    c = data.draw(st.characters(codec="ascii").filter(lambda ch: ch != token[i]))
    tampered = token[:i] + c + token[i + 1 :]
    try:
        got = parse(SECRET, tampered)
    except ShareTokenError:
        return
    raise AssertionError(f"a changed token was accepted: {got}")


def test_other_secret_long_token_and_non_canonical_expiry_are_refused() -> None:
    token = sign(SECRET, "A" * 22, 1_700_000_000)
    with pytest.raises(ShareTokenError, match="not issued by this locker"):
        parse(OTHER, token)
    with pytest.raises(ShareTokenError, match="too long"):
        parse(SECRET, "v" * (MAX_TOKEN + 1))
    v, link, exp, mac = token.split(".")
    with pytest.raises(ShareTokenError):
        parse(SECRET, f"{v}.{link}.0{exp}.{mac}")
    with pytest.raises(ValueError):
        sign(b"short", "A" * 22, 1)


def test_codes_expire_run_out_of_tries_and_work_once() -> None:
    key, now = b"x" * 32, 1_000_000
    h = otp.code_hash(key, "+919800000001", "123456")
    wrong = otp.code_hash(key, "+919800000001", "654321")
    s = otp.issued(None, h, now)
    assert s.tries_left == otp.MAX_TRIES and s.expires_ms == now + otp.CODE_TTL_MS
    for left in range(otp.MAX_TRIES - 1, 0, -1):
        r = otp.check(s, wrong, now)
        assert not r.ok and f"{left} tr" in r.reason
        s = r.state  # type: ignore[assignment]
    r = otp.check(s, h, now)
    assert r.ok  # the fifth try may still be right
    assert not otp.check(r.state, h, now).ok  # used once
    s = otp.issued(None, h, now)
    for _ in range(otp.MAX_TRIES):
        s = otp.check(s, wrong, now).state  # type: ignore[assignment]
    assert not otp.check(s, h, now).ok  # five wrong: the right one no longer works
    assert "expired" in otp.check(otp.issued(None, h, now), h, now + otp.CODE_TTL_MS).reason


def test_sends_are_limited_per_window() -> None:
    s = None
    now = 10_000_000
    for _ in range(otp.MAX_SENDS):
        assert otp.retry_after_ms(s, now) == 0
        s = otp.issued(s, "h", now)
    assert otp.retry_after_ms(s, now + 1000) == otp.SEND_WINDOW_MS - 1000
    assert otp.retry_after_ms(s, now + otp.SEND_WINDOW_MS) == 0
    assert otp.issued(s, "h", now + otp.SEND_WINDOW_MS).sends == 1
