"""The running hub's sessions, in memory: the authority while it runs, so a store outage signs nobody out.

Every session the hub issues, or looks up in the state database, is kept here
(``ingest.auth.sessions.Session``); every change (issue, rotation, sign-out) is
made here first and written through to the database, or, while the database
cannot take writes (a full disk), queued in order and written once it can. A
session not yet written is ``unsaved``: it lives only in this process until the
store recovers. A clinician can therefore sign in, renew and sign out while the
store is failing, which is when the console's technical alarms matter most.

Changes made outside the hub (an admin disabling a user or changing a password
revokes sessions in the database) are picked up by ``forget_saved``: the hub
drops what it holds of saved sessions and reads them again. Sans-I/O: the book
returns the database writes for the caller to run.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.auth import sessions
from ingest.auth.sessions import Session, Tokens
from ingest.stores.portable_sql import Conn

Write = Callable[[Conn], object]

MAX_SESSIONS = 20_000  # held in memory; beyond it, saved sessions are dropped (and read again when used)


class SessionBook:
    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self.max_sessions = max_sessions
        self._by_id: dict[str, Session] = {}
        self._by_refresh: dict[str, str] = {}  # refresh hash -> session id
        self.unsaved: set[str] = set()  # issued or changed here, not yet in the database

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, sid: str) -> Session | None:
        return self._by_id.get(sid)

    def by_refresh(self, refresh_hash: str) -> Session | None:
        sid = self._by_refresh.get(refresh_hash)
        return None if sid is None else self._by_id.get(sid)

    def remember(self, s: Session) -> Session:
        """Hold a session read from the database (unless a newer, unsaved version is held already)."""
        held = self._by_id.get(s.sid)
        if held is not None and s.sid in self.unsaved:
            return held
        if len(self._by_id) >= self.max_sessions:
            self._drop(self._by_id.keys() - self.unsaved)
        self._by_id[s.sid] = s
        self._by_refresh[s.refresh_hash] = s.sid
        return s

    def issue(self, username: str, now: int, source: str) -> tuple[Tokens, Write]:
        tokens, s = sessions.issue(username, now, source)
        self.remember(s)
        self.unsaved.add(s.sid)
        return tokens, lambda conn: sessions.save(conn, s)

    def rotate(self, old: Session, now: int, source: str) -> tuple[Tokens, Write]:
        """Trade ``old``'s refresh token for a new session; ``old`` ends and names its successor."""
        tokens, new = sessions.issue(old.username, now, source)
        old.revoked, old.successor = True, new.sid
        self.remember(new)
        self.unsaved |= {old.sid, new.sid}

        def write(conn: Conn) -> None:
            sessions.save(conn, new)
            sessions.save(conn, old)  # the whole row: it may never have been saved itself

        return tokens, write

    def revoke(self, s: Session) -> Write:
        s.revoked = True
        self.unsaved.add(s.sid)
        return lambda conn: sessions.save(conn, s)

    def saved(self, sids: set[str]) -> None:
        self.unsaved -= sids

    def forget_saved(self) -> None:
        """Drop every saved session (the database may have revoked some); unsaved ones stay, being newer."""
        self._drop(self._by_id.keys() - self.unsaved)

    def _drop(self, sids: set[str]) -> None:
        for sid in sids:
            s = self._by_id.pop(sid)
            self._by_refresh.pop(s.refresh_hash, None)
