"""The hub's authentication service: sign-in with lockout, sessions, who a request is, and which agents may connect.

It reads users and agent credentials from the state database
(``ingest.auth.accounts``), keeps sessions in its ``SessionBook`` (written
through to the database, or held in memory while the store cannot take writes,
then written in order: a full disk signs nobody out and still lets people sign
in), and audits every sign-in, failure, lockout and sign-out. ``watch`` polls
``auth_version`` twice a second: when an admin command disabled a user, changed
a password or revoked an agent, the caches are dropped, and a revoked agent's
live connection is cut within a second (a console's feed checks its own session
every heartbeat).

Sign-in failures do not say whether the user exists (the same message and,
through a dummy hash, the same time); a source address is limited to
``SIGN_IN_PER_MIN`` failed attempts a minute (once they are spent, every attempt
from it is refused for a while, right password or not, so a refusal tells a
guesser nothing; a sign-in that works gives its attempt back, so a hospital
whose staff share one NAT address can all sign in at a shift change), and
``MAX_FAILURES`` wrong passwords in a row lock the account for ``LOCK_S``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

from ingest.auth import accounts, sessions
from ingest.auth.accounts import AgentCredential
from ingest.auth.audit_log import AuditEntry
from ingest.auth.passwords import DUMMY_HASH, verify_password
from ingest.auth.roles import Principal
from ingest.auth.session_book import SessionBook, Write
from ingest.auth.sessions import Session
from ingest.stores.base import StoreError
from ingest.stores.group_commit import GroupCommitDatabase
from wire.random_secrets import secret_hash, secret_matches
from wire.token_bucket import TokenBucket

log = logging.getLogger(__name__)

MAX_FAILURES = 5
LOCK_S = 15 * 60
SIGN_IN_PER_MIN = 10  # failed attempts per source address
WATCH_S = 0.5
MAX_CACHED = 10_000
MAX_ROTATIONS = 200  # a 12-hour shift renewing every 13 minutes rotates about 55 times


class SignInRefused(Exception):
    """``status`` 401 (wrong name or password, disabled, locked) or 429 (too many attempts from this address)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AuthService:
    def __init__(self, db: GroupCommitDatabase, audit: Callable[[AuditEntry], None], clock: Callable[[], int], counters: Counter[str]) -> None:
        self.db = db
        self.audit = audit  # queues an entry for the audit writer
        self.clock = clock
        self.counters = counters
        self.book = SessionBook()
        self._users: dict[str, accounts.UserRow] = {}
        self._deferred: list[tuple[Write, set[str]]] = []  # writes the store could not take yet, in order
        self._agents: dict[str, AgentCredential | None] = {}
        self._per_source: dict[str, TokenBucket] = {}
        self._version: int | None = None
        self._live: dict[str, set[Callable[[], None]]] = {}  # agent -> how to cut its live connections

    # --- people ------------------------------------------------------------------------

    async def sign_in(self, username: str, password: str, source: str) -> tuple[Principal, sessions.Tokens]:
        t = time.monotonic()
        if len(self._per_source) > MAX_CACHED:
            self._per_source.clear()
        bucket = self._per_source.setdefault(source, TokenBucket(SIGN_IN_PER_MIN / 60, SIGN_IN_PER_MIN, t))
        if bucket.delay_for(1, t) > 0:
            bucket.tokens += 1  # refused, so not taken: waiting a minute is enough to try again
            self.counters["sign_in_rate_limited"] += 1
            self.audit(AuditEntry(self.clock(), username[:40] or "?", "auth.sign_in_refused", f"user:{username[:40]}", {"why": "too many attempts"}, source))
            raise SignInRefused(429, "too many sign-in attempts from this address: wait a minute")
        user = await self.db.read_with(lambda c: accounts.get_user(c, username))
        ok = await asyncio.to_thread(verify_password, user.password if user else DUMMY_HASH, password)  # same cost either way
        now = self.clock()
        if user is not None and user.locked_until > now:
            self._refuse(username, source, "account locked")
            until = time.strftime("%H:%M UTC", time.gmtime(user.locked_until / 1000))
            raise SignInRefused(401, f"this account is locked after repeated failed sign-ins until {until}; an admin can unlock it")
        if user is None or not ok or user.disabled:
            why = "unknown user" if user is None else ("disabled" if user.disabled else "wrong password")
            if user is not None and not ok:
                await self._record_failure(username, now, source)
            self._refuse(username, source, why)
            raise SignInRefused(401, "wrong user name or password")
        tokens, save = self.book.issue(username, now, source)
        await self._write(lambda c: (accounts.record_success(c, username), save(c)), {tokens.session})
        bucket.tokens = min(bucket.burst, bucket.tokens + 1)  # only failures count against the address
        self._users[username] = user
        self.counters["sign_ins"] += 1
        self.audit(AuditEntry(now, username, "auth.sign_in", f"user:{username}", {"role": user.role.value}, source))
        return user.principal(tokens.session), tokens

    async def _record_failure(self, username: str, now: int, source: str) -> None:
        try:
            locked = await self.db.call(lambda c: accounts.record_failure(c, username, now, MAX_FAILURES, LOCK_S * 1000))
        except StoreError:  # counted once the store is back; meanwhile the per-address limit still holds
            self._defer(lambda c: accounts.record_failure(c, username, now, MAX_FAILURES, LOCK_S * 1000), set())
            return
        if locked is not None:
            self.counters["accounts_locked"] += 1
            self.audit(AuditEntry(now, username, "auth.locked", f"user:{username}", {"until": locked, "failures": MAX_FAILURES}, source))

    def _refuse(self, username: str, source: str, why: str) -> None:
        self.counters["sign_in_failures"] += 1
        self.audit(AuditEntry(self.clock(), username[:40] or "?", "auth.sign_in_failed", f"user:{username[:40]}", {"why": why}, source))

    async def refresh(self, refresh_token: str, source: str) -> tuple[Principal, sessions.Tokens] | None:
        """A new pair for a live refresh token (which ends with it); None when unknown, used, expired, or the user disabled."""
        now = self.clock()
        refresh_hash = secret_hash(refresh_token)
        old = self.book.by_refresh(refresh_hash)
        if old is None:
            loaded = await self.db.read_with(lambda c: sessions.load_by_refresh(c, refresh_hash))
            old = None if loaded is None else self.book.remember(loaded)
        if old is None or not old.refreshable(now):
            return None
        user = await self._user(old.username)
        if user is None:
            return None
        tokens, save = self.book.rotate(old, now, source)
        await self._write(save, {old.sid, tokens.session})
        return user.principal(tokens.session), tokens

    async def sign_out(self, principal: Principal, source: str) -> None:
        s = await self._session(principal.session)
        if s is not None:
            await self._write(self.book.revoke(s), {s.sid})
        self.audit(AuditEntry(self.clock(), principal.username, "auth.sign_out", f"user:{principal.username}", None, source))

    async def principal(self, access_token: str) -> Principal | None:
        """Who holds this access token, or None (unknown, expired, revoked, user disabled)."""
        s = await self._session(secret_hash(access_token))
        if s is None or not s.live(self.clock()):
            return None
        user = await self._user(s.username)
        return None if user is None else user.principal(s.sid)

    async def current(self, sid: str) -> Principal | None:
        """Who a long-lived connection opened under session ``sid`` now belongs to, following the session through
        its refreshes (``Principal.session`` names the live one); None once the line has ended."""
        now = self.clock()
        for _ in range(MAX_ROTATIONS):
            s = await self._session(sid)
            if s is None:
                return None
            if not s.revoked:
                user = await self._user(s.username) if s.expires > now else None
                return None if user is None else user.principal(s.sid)
            if s.successor is None:
                return None
            sid = s.successor
        return None

    async def _session(self, sid: str) -> Session | None:
        s = self.book.get(sid)
        if s is None:
            loaded = await self.db.read_with(lambda c: sessions.load(c, sid))
            s = None if loaded is None else self.book.remember(loaded)
        return s

    async def _user(self, username: str) -> accounts.UserRow | None:
        """The user, if enabled (cached until an admin changes users: ``watch``)."""
        user = self._users.get(username)
        if user is None:
            user = await self.db.read_with(lambda c: accounts.get_user(c, username))
            if user is None:
                return None
            if len(self._users) >= MAX_CACHED:
                self._users.clear()
            self._users[username] = user
        return None if user.disabled else user

    # --- writing through a store that may be failing -------------------------------------

    async def _write(self, write: Write, sids: set[str]) -> None:
        """Write now; while the store cannot, queue it behind the writes already waiting (their order is kept)."""
        if not self._deferred:
            try:
                await self.db.call(write)
                self.book.saved(sids)
                return
            except StoreError as exc:
                log.warning("the store cannot record sign-ins now (%s): sessions are held in memory until it can", exc)
        self._defer(write, sids)

    def _defer(self, write: Write, sids: set[str]) -> None:
        self._deferred.append((write, sids))
        self.counters["auth_writes_deferred"] += 1

    async def _flush(self) -> None:
        batch = list(self._deferred)
        try:
            await self.db.call(lambda c: [write(c) for write, _sids in batch])
        except StoreError:
            return  # still failing: try again at the next watch
        del self._deferred[: len(batch)]
        self.book.saved(set().union(*(sids for _w, sids in batch)))
        log.info("the store recorded the %d sign-in changes it could not take before", len(batch))

    # --- edge agents -------------------------------------------------------------------

    async def agent(self, agent: str, secret: str) -> AgentCredential | None:
        """The agent's credential when ``secret`` is its live secret, else None (unknown, wrong or revoked alike)."""
        cred = await self._credential(agent)
        if cred is None or cred.revoked_at is not None or not secret_matches(cred.secret_hash, secret):
            secret_matches("0" * 64, secret)  # the same work for an unknown agent
            return None
        return cred

    async def registered(self, agent: str) -> AgentCredential | None:
        """The agent's live registration (ward, beds), or None for an unknown or revoked agent; no secret checked.

        For frames whose sender something else authenticated: a hub worker reading JetStream, where NATS accounts
        let each agent publish on its own subject only (``ingest.jetstream_worker``)."""
        cred = await self._credential(agent)
        return None if cred is None or cred.revoked_at is not None else cred

    async def _credential(self, agent: str) -> AgentCredential | None:
        """The agent's credential row (revoked or not), cached until an admin changes agents."""
        if agent not in self._agents:
            cred = await self.db.read_with(lambda c: accounts.get_agent(c, agent))
            if len(self._agents) >= MAX_CACHED:
                self._agents.clear()
            self._agents[agent] = cred
        return self._agents[agent]

    async def registered_wards(self) -> list[str]:
        """Every ward that has an agent with a live registration."""
        return await self.db.read_with(accounts.registered_wards)

    # --- revocation --------------------------------------------------------------------

    def hold(self, agent: str, cut: Callable[[], None]) -> Callable[[], None]:
        """Register a live connection of ``agent`` to ``cut`` when the agent is revoked; returns the function that
        unregisters it when the connection ends. (People's live feeds check their session themselves: ``current``.)"""
        self._live.setdefault(agent, set()).add(cut)

        def release() -> None:
            cuts = self._live.get(agent)
            if cuts is not None:
                cuts.discard(cut)
                if not cuts:
                    del self._live[agent]

        return release

    async def watch(self) -> None:
        """Poll ``auth_version`` until cancelled; on a change drop the caches and cut what is no longer allowed.
        Writes held back by a failing store are retried here too. A store that cannot even be read is logged and
        polled again: it must not stop the hub's alarms."""
        failing = False
        while True:
            try:
                if self._deferred:
                    await self._flush()
                await self._check_version()
                failing = False
            except StoreError as exc:
                if not failing:
                    log.error("cannot read users and agents from the store (%s): changes by admins wait until it can", exc)
                failing = True
            await asyncio.sleep(WATCH_S)

    async def _check_version(self) -> None:
        version = await self.db.read_with(accounts.auth_version)
        if self._version is not None and version != self._version:
            self._users.clear()
            self.book.forget_saved()
            self._agents.clear()
            self.counters["auth_reloads"] += 1
            await self._cut_revoked()
        self._version = version

    async def _cut_revoked(self) -> None:
        live = list(self._live)  # read here, on the event loop: the worker thread must not iterate a dict we change

        def credentials(c) -> dict[str, AgentCredential | None]:  # type: ignore[no-untyped-def]
            return {agent: accounts.get_agent(c, agent) for agent in live}

        for agent, cred in (await self.db.read_with(credentials)).items():
            if cred is not None and cred.revoked_at is None:
                continue
            log.warning("agent %s: %s; cutting its connections", agent, "no credential" if cred is None else f"revoked at {cred.revoked_at}")
            for cut in list(self._live.pop(agent, ())):
                self.counters["connections_cut"] += 1
                cut()


AGENT_KEY = "agent:"  # an agent as an actor in the audit log: "agent:<id>"
