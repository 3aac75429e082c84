"""Sign-in sessions: short-lived access tokens with a refresh token, stored only as hashes, revocable.

A session has an access token (``ACCESS_S``, 15 minutes: the console's cookie or
an API client's bearer token) and a refresh token (``REFRESH_S``, 12 hours: one
shift) that buys a new pair and retires the old one (rotation: a refresh token
works once). Signing out revokes the session; disabling a user or changing a
password revokes all of theirs. The tokens are 256-bit random values; the
database keeps their SHA-256 only, so a copy of it lets nobody in.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass

ACCESS_S = 15 * 60
REFRESH_S = 12 * 3600
TOKEN_PREFIX = "tia_"  # access tokens start with this, refresh tokens with "tir_": a leaked one is recognisable

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, username TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,
    refresh TEXT NOT NULL, refresh_expires INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_refresh ON sessions (refresh);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (username);
"""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Tokens:
    access: str
    refresh: str
    access_expires: int  # ms
    refresh_expires: int  # ms
    session: str  # the session id: the access token's hash


def open_session(conn: sqlite3.Connection, username: str, now: int, source: str) -> Tokens:
    access, refresh = TOKEN_PREFIX + secrets.token_urlsafe(32), "tir_" + secrets.token_urlsafe(32)
    sid = token_hash(access)
    t = Tokens(access, refresh, now + ACCESS_S * 1000, now + REFRESH_S * 1000, sid)
    conn.execute("INSERT INTO sessions VALUES (?,?,?,?,?,?,0,?)",
                 (sid, username, now, t.access_expires, token_hash(refresh), t.refresh_expires, source[:100]))  # fmt: skip
    return t


def refresh_session(conn: sqlite3.Connection, refresh: str, now: int, source: str) -> tuple[str, Tokens] | None:
    """Trade a live refresh token for a new pair (the old session ends); None when it is unknown, used or expired."""
    row = conn.execute(
        "SELECT id, username FROM sessions WHERE refresh = ? AND revoked = 0 AND refresh_expires > ?", (token_hash(refresh), now)
    ).fetchone()
    if row is None:
        return None
    sid, username = row
    conn.execute("UPDATE sessions SET revoked = 1 WHERE id = ?", (sid,))
    return username, open_session(conn, username, now, source)


def revoke(conn: sqlite3.Connection, sid: str) -> bool:
    return conn.execute("UPDATE sessions SET revoked = 1 WHERE id = ? AND revoked = 0", (sid,)).rowcount > 0


def session_user(conn: sqlite3.Connection, sid: str, now: int) -> tuple[str, int] | None:
    """The user of a live session and when its access token expires (ms); None when unknown, revoked or expired."""
    row = conn.execute("SELECT username, expires FROM sessions WHERE id = ? AND revoked = 0 AND expires > ?", (sid, now)).fetchone()
    return (row[0], row[1]) if row else None


def purge(conn: sqlite3.Connection, now: int) -> int:
    """Forget sessions whose refresh token has expired (a day after, so an audit of recent sign-ins still finds them)."""
    return conn.execute("DELETE FROM sessions WHERE refresh_expires < ?", (now - 86_400_000,)).rowcount
