"""Staff sign-in for the lighter services: the hub is the one identity provider.

A clinician or clerk signs in to the hub (``/api/auth/login``) and presents the
hub's bearer token to the locker or the queue service; ``HubIdentity`` asks the
hub who that is (``GET /api/auth/me``) and caches the answer for
``CACHE_S`` seconds, so users, passwords, roles, ward scope, lock-outs and
revocation stay in one place (``ingest.auth``); a sign-out or revocation takes
up to ``CACHE_S`` to reach these services (the hub's own pages and sockets
check at once). A token the hub refuses is a
401; a hub that cannot be reached is a 503, never a guess. The roles are the
hub's (``ingest.auth.roles.Role``); what each service lets each role do is in
that service's own policy table.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import httpx
from fastapi import HTTPException, Request

CACHE_S = 10.0  # a sign-out, lock-out or role change at the hub reaches the services within this
CACHE_MAX = 4096


@dataclass(frozen=True, slots=True)
class Staff:
    username: str
    display_name: str
    role: str
    wards: tuple[str, ...]
    all_wards: bool


class HubIdentity:
    def __init__(self, hub_url: str, *, verify: bool | str = True, timeout_s: float = 5.0) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.http = httpx.AsyncClient(timeout=timeout_s, verify=verify)
        self._cache: OrderedDict[str, tuple[float, Staff | None]] = OrderedDict()

    async def close(self) -> None:
        await self.http.aclose()

    async def who(self, token: str) -> Staff | None:
        """The staff member a hub bearer token belongs to, or None if the hub refuses it; ``HTTPException(503)`` if
        the hub cannot say."""
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        try:
            r = await self.http.get(f"{self.hub_url}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise HTTPException(503, f"the hub, which signs staff in, cannot be reached: {type(exc).__name__}") from None
        if r.status_code == 401:
            staff = None
        elif r.status_code == 200:
            d = r.json()
            staff = Staff(d["username"], d.get("display_name", d["username"]), d["role"], tuple(d.get("wards", ())), bool(d.get("all_wards")))
        else:
            raise HTTPException(503, f"the hub could not say who this is (HTTP {r.status_code})")
        self._cache[token] = (now, staff)
        self._cache.move_to_end(token)
        while len(self._cache) > CACHE_MAX:
            self._cache.popitem(last=False)
        return staff

    def dependency(self, *roles: str):  # type: ignore[no-untyped-def]
        """A FastAPI dependency: the signed-in staff member, if the role is one of ``roles`` (401 / 403 otherwise)."""

        async def staff(request: Request) -> Staff:
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() != "bearer " or not auth[7:].strip():
                raise HTTPException(401, "sign in to the hub and send its bearer token")
            who = await self.who(auth[7:].strip())
            if who is None:
                raise HTTPException(401, "the hub does not know this token (expired or signed out): sign in again")
            if roles and who.role not in roles:
                raise HTTPException(403, f"a {who.role} may not do this here")
            return who

        return staff
