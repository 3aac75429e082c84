"""The map page's sign-in: the page sends a name and password here, this service signs in at the hub for it
(``POST /api/auth/login``) and keeps the hub's access token in an HttpOnly, SameSite=Strict cookie of its own origin.

The cookie is accepted for reading (GET) only: every change needs the hub's bearer token in the ``Authorization``
header, so no other site can make a signed-in browser change the registry. Sign-out ends the hub session too. The
hub counts sign-in attempts per client address, and the hub sees this service's address for every page sign-in.
"""

from __future__ import annotations

import httpx
from fastapi import Request

from records_bridge.services.facility.problems import Problem
from records_bridge.services.hub_identity import HubIdentity, Staff

COOKIE = "teleicu_facility_session"


def request_token(request: Request) -> str | None:
    """The hub token a request carries: the bearer header, or (reads only) the page's cookie."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    if request.method in ("GET", "HEAD"):
        return request.cookies.get(COOKIE) or None
    return None


async def signed_in(request: Request, roles: tuple[str, ...]) -> Staff:
    """The signed-in staff member, if their role is one of ``roles``: 401 (no or unknown token), 403 (role)."""
    token = request_token(request)
    if token is None:
        raise Problem(401, "sign in: send the hub's bearer token (or sign in on the map page)", reason="sign_in")
    identity: HubIdentity = request.app.state.identity
    who = await identity.who(token)
    if who is None:
        raise Problem(401, "the hub does not know this token (expired or signed out): sign in again", reason="sign_in")
    if who.role not in roles:
        raise Problem(403, f"a {who.role} may not do this here", reason="role")
    return who


async def hub_sign_in(identity: HubIdentity, username: str, password: str) -> tuple[str, int]:
    """(access token, its expiry in ms since the epoch) from the hub; a Problem with the hub's own words otherwise."""
    try:
        r = await identity.http.post(f"{identity.hub_url}/api/auth/login", json={"username": username, "password": password})
    except httpx.HTTPError as exc:
        raise Problem(503, f"the hub, which signs staff in, cannot be reached: {type(exc).__name__}", reason="hub") from None
    try:
        body = r.json()
    except ValueError:
        body = {}
    if r.status_code != 200:
        detail = body.get("detail") if isinstance(body, dict) and isinstance(body.get("detail"), str) else f"the hub answered {r.status_code}"
        status = r.status_code if r.status_code in (400, 401, 429) else 503
        raise Problem(status, detail, reason="sign_in" if status == 401 else "hub",
                      headers={"Retry-After": r.headers["retry-after"]} if "retry-after" in r.headers else None)  # fmt: skip
    return str(body["access_token"]), int(body["expires_at"])


async def hub_sign_out(identity: HubIdentity, token: str) -> None:
    """End the hub session behind the cookie (best effort: the cookie is cleared whatever the hub answers)."""
    try:
        await identity.http.post(f"{identity.hub_url}/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError:
        pass
