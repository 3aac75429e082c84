"""Share-link tokens: ``v1.<link id>.<expiry, unix seconds>.<HMAC-SHA256, base64url>``, signed with the server's secret.

Pure (no clock, no database): ``sign`` makes a token, ``parse`` checks its
shape and signature and returns the link id and expiry, or raises
``ShareTokenError`` saying what is wrong (without echoing the token). The
expiry is checked by the caller against its clock, and the link's row (not
revoked, its record still there) by the store: a valid signature proves only
that this server issued the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

VERSION = "v1"
MAX_TOKEN = 160
MIN_SECRET = 32  # bytes
_LINK_ID = re.compile(r"[A-Za-z0-9_-]{16,43}")
_SHAPE = re.compile(r"v1\.([A-Za-z0-9_-]{16,43})\.(0|[1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})")  # one spelling per token


class ShareTokenError(ValueError):
    """A token this server did not issue, or not a token at all."""


@dataclass(frozen=True, slots=True)
class ShareToken:
    link_id: str
    expires_s: int


def _mac(secret: bytes, link_id: str, expires_s: int) -> str:
    digest = hmac.new(secret, f"{VERSION}.{link_id}.{expires_s}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(secret: bytes, link_id: str, expires_s: int) -> str:
    if len(secret) < MIN_SECRET:
        raise ValueError(f"the share-link secret must be at least {MIN_SECRET} bytes")
    if not _LINK_ID.fullmatch(link_id) or not 0 <= expires_s < 10**12:
        raise ValueError("a link id is 16-43 URL-safe characters and an expiry a positive number of seconds")
    return f"{VERSION}.{link_id}.{expires_s}.{_mac(secret, link_id, expires_s)}"


def parse(secret: bytes, token: str) -> ShareToken:
    """The link id and expiry of a token this server signed; ``ShareTokenError`` otherwise."""
    if len(token) > MAX_TOKEN:
        raise ShareTokenError("this is not a share link (too long)")
    m = _SHAPE.fullmatch(token)
    if m is None:
        raise ShareTokenError("this is not a share link (malformed); ask the patient for the link again")
    link_id, expires_s = m[1], int(m[2])
    if not hmac.compare_digest(m[3], _mac(secret, link_id, expires_s)):
        raise ShareTokenError("this share link was not issued by this locker, or it was altered")
    return ShareToken(link_id, expires_s)
