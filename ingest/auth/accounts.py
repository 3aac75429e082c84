"""Users and edge-agent credentials in the hub's state database: the rows, and the rules for changing them.

Plain functions over a state connection (SQLite or PostgreSQL) inside the
caller's write transaction, so the same code serves ``teleicu users|agents``
(run beside a running hub: writers take turns) and the hub (through its writer
thread). A change that must reach a running hub at once (a user disabled, an
agent revoked, a password changed) bumps ``auth_version``; the hub polls it
twice a second and drops what it had cached.

Refusals raise ``AccountError`` with a message for the admin.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ingest.auth.passwords import hash_password
from ingest.auth.roles import WARD_SCOPED, Principal, Role
from ingest.stores.portable_sql import Conn, upsert
from wire.codec import MAX_ID_LEN
from wire.random_secrets import new_secret, secret_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY, display_name TEXT NOT NULL, role TEXT NOT NULL, wards TEXT NOT NULL,
    password TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, changed INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_credentials (
    agent TEXT PRIMARY KEY, ward TEXT NOT NULL, beds TEXT NOT NULL, secret TEXT NOT NULL,
    created INTEGER NOT NULL, revoked_at INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO auth_version VALUES (1, 0) ON CONFLICT DO NOTHING;
"""

_AGENT_SQL = upsert("agent_credentials", "agent, ward, beds, secret, created, revoked_at", "agent")
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,39}")
MAX_WARDS = 64


class AccountError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    display_name: str
    role: Role
    wards: tuple[str, ...]
    password: str  # argon2id hash
    disabled: bool
    failures: int
    locked_until: int

    def principal(self, session: str = "") -> Principal:
        return Principal(self.username, self.display_name, self.role, self.wards, session)


@dataclass(frozen=True, slots=True)
class AgentCredential:
    agent: str
    ward: str
    beds: tuple[str, ...]
    secret_hash: str
    revoked_at: int | None


def bump_version(conn: Conn) -> None:
    conn.execute("UPDATE auth_version SET version = version + 1 WHERE id = 1")


def auth_version(conn: Conn) -> int:
    row = conn.execute("SELECT version FROM auth_version WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


# --- users -----------------------------------------------------------------------------


def _check_user(username: str, role: str, wards: tuple[str, ...]) -> Role:
    if not _USERNAME.fullmatch(username):
        raise AccountError(f"user name {username!r}: 2-40 characters, lower-case letters, digits, '.', '_' or '-', starting with a letter")
    try:
        r = Role(role)
    except ValueError:
        raise AccountError(f"unknown role {role!r}; roles: {', '.join(x.value for x in Role)}") from None
    if r in WARD_SCOPED and not wards:
        raise AccountError(f"a {r.value} must be given one or more wards")
    if r not in WARD_SCOPED and wards:
        raise AccountError(f"a {r.value} sees every ward: give wards only to a {', '.join(x.value for x in WARD_SCOPED)}")
    if len(wards) > MAX_WARDS or any(not w or len(w) > MAX_ID_LEN for w in wards):
        raise AccountError(f"wards: at most {MAX_WARDS}, each 1-{MAX_ID_LEN} characters")
    return r


def add_user(conn: Conn, username: str, display_name: str, role: str, wards: tuple[str, ...], password: str, now: int) -> None:
    r = _check_user(username, role, wards)
    if not display_name or len(display_name) > 80:
        raise AccountError("a display name of 1-80 characters is required (it is what colleagues see)")
    if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
        raise AccountError(f"user {username!r} already exists")
    conn.execute("INSERT INTO users VALUES (?,?,?,?,?,0,0,0,?,?)",
                 (username, display_name, r.value, json.dumps(list(wards)), hash_password(password), now, now))  # fmt: skip


def set_password(conn: Conn, username: str, password: str, now: int) -> None:
    """A new password (by the user or an admin); it also unlocks the account and ends its sessions."""
    hashed = hash_password(password)
    if conn.execute("UPDATE users SET password = ?, failures = 0, locked_until = 0, changed = ? WHERE username = ?",
                    (hashed, now, username)).rowcount == 0:  # fmt: skip
        raise AccountError(f"no user {username!r}")
    conn.execute("UPDATE sessions SET revoked = 1 WHERE username = ?", (username,))
    bump_version(conn)


def set_disabled(conn: Conn, username: str, disabled: bool, now: int) -> None:
    if conn.execute("UPDATE users SET disabled = ?, changed = ? WHERE username = ?", (int(disabled), now, username)).rowcount == 0:
        raise AccountError(f"no user {username!r}")
    if disabled:
        conn.execute("UPDATE sessions SET revoked = 1 WHERE username = ?", (username,))
    bump_version(conn)


def get_user(conn: Conn, username: str) -> UserRow | None:
    row = conn.execute(
        "SELECT username, display_name, role, wards, password, disabled, failures, locked_until FROM users WHERE username = ?", (username,)
    ).fetchone()
    if row is None:
        return None
    u, name, role, wards, pw, disabled, failures, locked = row
    return UserRow(u, name, Role(role), tuple(json.loads(wards)), pw, bool(disabled), failures, locked)


def list_users(conn: Conn) -> list[dict[str, object]]:
    rows = conn.execute("SELECT username, display_name, role, wards, disabled, locked_until FROM users ORDER BY username").fetchall()
    return [{"username": u, "display_name": n, "role": r, "wards": json.loads(w), "disabled": bool(d), "locked_until": lk or None}
            for u, n, r, w, d, lk in rows]  # fmt: skip


def record_failure(conn: Conn, username: str, now: int, max_failures: int, lock_ms: int) -> int | None:
    """Count a failed sign-in; returns the lock's end when this failure locks the account, else None."""
    row = conn.execute("SELECT failures FROM users WHERE username = ?", (username,)).fetchone()
    if row is None:
        return None
    failures = row[0] + 1
    if failures >= max_failures:
        conn.execute("UPDATE users SET failures = 0, locked_until = ? WHERE username = ?", (now + lock_ms, username))
        return now + lock_ms
    conn.execute("UPDATE users SET failures = ? WHERE username = ?", (failures, username))
    return None


def record_success(conn: Conn, username: str) -> None:
    conn.execute("UPDATE users SET failures = 0, locked_until = 0 WHERE username = ?", (username,))


# --- edge agents -----------------------------------------------------------------------


def add_agent(conn: Conn, agent: str, ward: str, beds: tuple[str, ...], now: int) -> str:
    """Register an agent with its ward and beds; returns its new secret (shown once, stored only as a hash)."""
    for what, ident in (("agent", agent), ("ward", ward), *(("bed", b) for b in beds)):
        if not ident or len(ident) > MAX_ID_LEN or any(ch < " " for ch in ident):
            raise AccountError(f"{what} id {ident!r} must be 1-{MAX_ID_LEN} printable characters")
    if not beds:
        raise AccountError("an agent must be given the beds it serves: it may send data for those beds only")
    row = conn.execute("SELECT revoked_at FROM agent_credentials WHERE agent = ?", (agent,)).fetchone()
    if row is not None and row[0] is None:
        raise AccountError(f"agent {agent!r} already has a secret: revoke it first to issue a new one")
    secret = new_secret()
    conn.execute(_AGENT_SQL, (agent, ward, json.dumps(sorted(set(beds))), secret_hash(secret), now, None))  # fmt: skip
    bump_version(conn)
    return secret


def revoke_agent(conn: Conn, agent: str, now: int) -> None:
    if conn.execute("UPDATE agent_credentials SET revoked_at = ? WHERE agent = ? AND revoked_at IS NULL", (now, agent)).rowcount == 0:
        raise AccountError(f"no agent {agent!r} with a live secret")
    bump_version(conn)


def get_agent(conn: Conn, agent: str) -> AgentCredential | None:
    row = conn.execute("SELECT agent, ward, beds, secret, revoked_at FROM agent_credentials WHERE agent = ?", (agent,)).fetchone()
    if row is None:
        return None
    a, ward, beds, secret, revoked = row
    return AgentCredential(a, ward, tuple(json.loads(beds)), secret, revoked)


def registered_wards(conn: Conn) -> list[str]:
    """The wards of every agent with a live secret, sorted."""
    return [w for (w,) in conn.execute("SELECT DISTINCT ward FROM agent_credentials WHERE revoked_at IS NULL ORDER BY ward")]


def list_agents(conn: Conn) -> list[dict[str, object]]:
    rows = conn.execute("SELECT agent, ward, beds, created, revoked_at FROM agent_credentials ORDER BY agent").fetchall()
    return [{"agent": a, "ward": w, "beds": json.loads(b), "created": c, "revoked_at": r} for a, w, b, c, r in rows]
