"""The hub's outbox as the bridge reads it: signed in as the records account, a long poll after a cursor.

Signs in with its user name and password (``POST /api/auth/login``), keeps the
bearer token, renews it with the refresh token before it expires, and signs in
afresh when the hub no longer knows the session (a restarted hub keeps
sessions; a revoked one is refused). Events are validated against
``wire.outbox_events`` as they arrive: one that does not validate is handed on
as ``Unreadable`` so the sink parks it rather than stopping.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from records_bridge.bridge.outcomes import Retry
from wire.outbox_events import Event

WAIT_S = 20.0  # how long one poll waits for an event at the hub
RENEW_BEFORE_S = 120.0


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An outbox entry that does not validate as an ``Event``: parked by every sink, never retried."""

    id: int
    raw: dict[str, Any]
    reason: str


class HubClient:
    def __init__(self, base: str, username: str, password: str, *, verify: ssl.SSLContext | bool = True, timeout_s: float = WAIT_S + 15) -> None:
        self.base = base.rstrip("/")
        self.username, self._password = username, password
        self.http = httpx.AsyncClient(timeout=timeout_s, verify=verify)
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at = 0.0  # monotonic

    async def close(self) -> None:
        await self.http.aclose()

    async def bearer(self) -> str:
        """The records account's hub access token (signed in or renewed as needed): the lighter services (locker,
        OPD queue) take it as the account's identity and check it with the hub."""
        await self._session()
        assert self._access is not None
        return self._access

    def refused(self, token: str) -> None:
        """A service said the hub no longer knows ``token``: sign in afresh next time."""
        if self._access == token:
            self._access = None

    async def events(self, after: int, limit: int = 500, wait_s: float = WAIT_S) -> tuple[list[Event | Unreadable], int]:
        """Events after ``after`` (waiting up to ``wait_s`` for one) and the hub's newest id. Raises ``Retry``."""
        body = await self._get("/api/events", {"after": after, "limit": limit, "wait_s": wait_s})
        events, last = body.get("events"), body.get("last_id")
        if not isinstance(events, list) or not isinstance(last, int):
            raise Retry("the hub's answer to /api/events has no list of events and last id")
        out: list[Event | Unreadable] = []
        for raw in events:
            ident = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(ident, int) or ident <= after:  # without its place in the outbox it cannot even be parked
                raise Retry(f"the hub sent an outbox entry without an id after {after}: {str(raw)[:200]}")
            try:
                out.append(Event.model_validate(raw))
            except ValidationError as exc:
                out.append(Unreadable(ident, raw, f"not a valid outbox event: {exc.errors()[0]['msg']}"))
        return out, last

    async def census(self) -> tuple[int, list[dict[str, Any]]]:
        """The hub's wards' bed counts now (``GET /api/census``): when they were counted, and one row a ward. ``Retry``."""
        body = await self._get("/api/census", {})
        now, wards = body.get("now"), body.get("wards")
        if not isinstance(now, int) or not isinstance(wards, list) or not all(isinstance(w, dict) for w in wards):
            raise Retry("the hub's answer to /api/census has no time and list of wards")
        return now, wards

    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(2):
            await self._session()
            try:
                r = await self.http.get(self.base + path, params=params, headers={"Authorization": f"Bearer {self._access}"})
            except httpx.HTTPError as exc:
                raise Retry(f"hub unreachable: {exc!r}") from exc
            if r.status_code == 401 and attempt == 0:
                self._access = None  # the session ended at the hub: sign in again, once
                continue
            if r.status_code != 200:
                raise Retry(f"hub answered {r.status_code}: {r.text[:200]}")
            try:
                body = r.json()
            except ValueError:
                raise Retry(f"the hub's answer to {path} is not JSON: {r.text[:200]}") from None
            if not isinstance(body, dict):
                raise Retry(f"the hub's answer to {path} is not a JSON object")
            return body
        raise Retry("the hub refuses the records account's session")

    async def _session(self) -> None:
        now = time.monotonic()
        if self._access is not None and now < self._expires_at - RENEW_BEFORE_S:
            return
        if self._access is not None and self._refresh is not None:
            body = await self._post("/api/auth/refresh", {"refresh_token": self._refresh}, allow_401=True)
            if body is not None:
                self._take(body)
                return
        body = await self._post("/api/auth/login", {"username": self.username, "password": self._password}, allow_401=False)
        assert body is not None
        self._take(body)

    def _take(self, body: dict[str, Any]) -> None:
        self._access, self._refresh = body["access_token"], body["refresh_token"]
        self._expires_at = time.monotonic() + max(0.0, (body["expires_at"] - time.time() * 1000) / 1000)

    async def _post(self, path: str, body: dict[str, Any], *, allow_401: bool) -> dict[str, Any] | None:
        try:
            r = await self.http.post(self.base + path, json=body)
        except httpx.HTTPError as exc:
            raise Retry(f"hub unreachable: {exc!r}") from exc
        if r.status_code == 401 and allow_401:
            return None
        if r.status_code != 200:
            raise Retry(f"signing in to the hub as {self.username}: {r.status_code} {r.text[:200]}")
        return r.json()
