"""Route guards: who is calling (from the session, never the request body) and whether they may, in which wards.

``require(permission)`` is the one dependency a router's routes use: it reads the
access token from the ``Authorization: Bearer`` header or, for the console, the
``teleicu_session`` cookie (HttpOnly, Secure, SameSite=Strict), resolves it to a
``Principal`` and answers 401 without a valid session and 403 without the
permission. A state-changing request that authenticates by cookie must come
from the hub's own pages (its ``Origin``, when sent, must be the hub's), so a
foreign site cannot act with a clinician's cookie.

Ward scope: ``bed_row`` resolves a bed the principal may see (a bed outside her
wards is answered like an unknown one, 404, so bed ids cannot be probed), and
``check_ward`` refuses an act on another ward's alarm with 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from starlette.requests import HTTPConnection

from ingest.auth.roles import Permission, Principal

SESSION_COOKIE = "teleicu_session"
REFRESH_COOKIE = "teleicu_refresh"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def token_of(conn: HTTPConnection) -> tuple[str | None, bool]:
    """The access token a request carries, and whether it came in the session cookie."""
    header = conn.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None, False
    cookie = conn.cookies.get(SESSION_COOKIE)
    return (cookie or None), bool(cookie)


def same_origin(conn: HTTPConnection) -> bool:
    """No ``Origin`` (same-origin GETs, non-browser clients) or the hub's own scheme://host[:port]."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    host = conn.headers.get("host", "")
    scheme = "https" if conn.url.scheme in ("https", "wss") else "http"
    return origin == f"{scheme}://{host}"


async def authenticate(conn: HTTPConnection) -> Principal:
    """The signed-in principal of a request or WebSocket; 401 when there is none."""
    token, by_cookie = token_of(conn)
    principal = await conn.app.state.auth.principal(token) if token else None
    if principal is None:
        raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
    method = conn.scope.get("method", "GET")
    if by_cookie and (method in UNSAFE or conn.scope["type"] == "websocket") and not same_origin(conn):
        raise HTTPException(403, "a request carrying the session cookie must come from the hub's own pages")
    return principal


def require(permission: Permission) -> Callable[[HTTPConnection], Awaitable[Principal]]:
    """A dependency: the principal, if signed in (401) and granted ``permission`` (403)."""

    async def guard(conn: HTTPConnection) -> Principal:
        principal = await authenticate(conn)
        if not principal.may(permission):
            raise HTTPException(403, f"a {principal.role.value} may not do this ({permission.value})")
        return principal

    guard.__name__ = f"require_{permission.value}"
    return guard


Clinician = Annotated[Principal, Depends(require(Permission.VIEW_PATIENTS))]
AlarmActor = Annotated[Principal, Depends(require(Permission.ACT_ON_ALARMS))]
Prescriber = Annotated[Principal, Depends(require(Permission.CLINICAL_SETTINGS))]
KpiReader = Annotated[Principal, Depends(require(Permission.VIEW_KPI))]
CensusReader = Annotated[Principal, Depends(require(Permission.READ_CENSUS))]
AgentAdmin = Annotated[Principal, Depends(require(Permission.ADMIN_AGENTS))]
UserAdmin = Annotated[Principal, Depends(require(Permission.ADMIN_USERS))]
AuditReader = Annotated[Principal, Depends(require(Permission.READ_AUDIT))]
Admitter = Annotated[Principal, Depends(require(Permission.ADMIT_PATIENTS))]
Charter = Annotated[Principal, Depends(require(Permission.CHART))]
EventReader = Annotated[Principal, Depends(require(Permission.READ_EVENTS))]
SignedIn = Annotated[Principal, Depends(authenticate)]


def wards_for(principal: Principal, requested: str | None) -> frozenset[str] | None:
    """The wards a request shows: the one asked for (403 if it is not hers) or all she may see (None: every ward)."""
    if requested is not None:
        check_ward(principal, requested, f"ward {requested!r}")
        return frozenset({requested})
    return None if principal.all_wards else frozenset(principal.wards)


def check_ward(principal: Principal, ward: str, what: str = "this") -> None:
    if not principal.sees_ward(ward):
        raise HTTPException(403, f"{what}: ward {ward!r} is not one of yours")


def client_address(conn: HTTPConnection) -> str:
    """Where a request came from, for the audit log (the peer address; behind a proxy, see docs/security.md)."""
    return conn.client.host if conn.client else ""
