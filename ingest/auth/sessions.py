"""Sign-in sessions as stored: short-lived access tokens with a refresh token, kept only as hashes, revocable.

A session has an access token (``ACCESS_S``, 15 minutes: the console's cookie or
an API client's bearer token) and a refresh token (``REFRESH_S``, 12 hours: one
shift) that buys a new pair and retires the old one (rotation: a refresh token
works once; the old session names its ``successor``, so a long-lived connection
opened under it can follow). Signing out revokes the session; disabling a user
or changing a password revokes all of theirs (``ingest.auth.accounts``). The
tokens are 256-bit random values; the database keeps their SHA-256 only, so a
copy of it lets nobody in. The running hub's view of them is
``ingest.auth.session_book``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.stores.portable_sql import Conn, upsert
from wire.random_secrets import new_secret, secret_hash

ACCESS_S = 15 * 60
REFRESH_S = 12 * 3600
TOKEN_PREFIX = "tia_"  # access tokens start with this, refresh tokens with "tir_": a leaked one is recognisable

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, username TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,
    refresh TEXT NOT NULL, refresh_expires INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL,
    successor TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_refresh ON sessions (refresh);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (username);
"""


@dataclass(frozen=True, slots=True)
class Tokens:
    """What the signed-in client holds (once: the hub keeps hashes)."""

    access: str
    refresh: str
    access_expires: int  # ms
    refresh_expires: int  # ms
    session: str  # the session id: the access token's hash


@dataclass(slots=True)
class Session:
    """One session as the hub knows it: no token, only hashes."""

    sid: str
    username: str
    created: int  # ms
    expires: int  # ms: the access token's end
    refresh_hash: str
    refresh_expires: int  # ms
    source: str
    revoked: bool = False
    successor: str | None = None  # the session its refresh token was traded for

    def live(self, now: int) -> bool:
        return not self.revoked and self.expires > now

    def refreshable(self, now: int) -> bool:
        return not self.revoked and self.refresh_expires > now


def issue(username: str, now: int, source: str) -> tuple[Tokens, Session]:
    """New random tokens for ``username`` and the session they open (not yet stored)."""
    access, refresh = new_secret(TOKEN_PREFIX), new_secret("tir_")
    t = Tokens(access, refresh, now + ACCESS_S * 1000, now + REFRESH_S * 1000, secret_hash(access))
    return t, Session(t.session, username, now, t.access_expires, secret_hash(refresh), t.refresh_expires, source[:100])


_COLUMNS = "id, username, created, expires, refresh, refresh_expires, source, revoked, successor"
_SAVE_SQL = upsert("sessions", _COLUMNS, "id")


def save(conn: Conn, s: Session) -> None:
    conn.execute(_SAVE_SQL,
                 (s.sid, s.username, s.created, s.expires, s.refresh_hash, s.refresh_expires, s.source, int(s.revoked), s.successor))  # fmt: skip


def open_session(conn: Conn, username: str, now: int, source: str) -> Tokens:
    """Issue and store a session at once (tools and tests; the hub goes through its session book)."""
    tokens, s = issue(username, now, source)
    save(conn, s)
    return tokens


def mark_rotated(conn: Conn, old: str, new: str) -> None:
    conn.execute("UPDATE sessions SET revoked = 1, successor = ? WHERE id = ?", (new, old))


def revoke(conn: Conn, sid: str) -> bool:
    return conn.execute("UPDATE sessions SET revoked = 1 WHERE id = ? AND revoked = 0", (sid,)).rowcount > 0


def _row(row: tuple | None) -> Session | None:
    if row is None:
        return None
    sid, username, created, expires, refresh, refresh_expires, source, revoked, successor = row
    return Session(sid, username, created, expires, refresh, refresh_expires, source, bool(revoked), successor)


def load(conn: Conn, sid: str) -> Session | None:
    return _row(conn.execute(f"SELECT {_COLUMNS} FROM sessions WHERE id = ?", (sid,)).fetchone())


def load_by_refresh(conn: Conn, refresh_hash: str) -> Session | None:
    return _row(conn.execute(f"SELECT {_COLUMNS} FROM sessions WHERE refresh = ?", (refresh_hash,)).fetchone())


def purge(conn: Conn, now: int) -> int:
    """Forget sessions whose refresh token has expired (a day after, so an audit of recent sign-ins still finds them)."""
    return conn.execute("DELETE FROM sessions WHERE refresh_expires < ?", (now - 86_400_000,)).rowcount
