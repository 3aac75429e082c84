"""Signing in and out: sessions for the console (cookies) and for API clients (bearer tokens), with refresh.

``POST /api/auth/login`` answers the tokens in its body and sets them as
cookies: the access token (``teleicu_session``, sent with every request) and
the refresh token (``teleicu_refresh``, sent only to ``/api/auth``), both
HttpOnly, Secure and SameSite=Strict. ``POST /api/auth/refresh`` trades a
refresh token (cookie or body) for a new pair; ``POST /api/auth/logout`` ends
the session. The hub's own pages need no token handling at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from ingest.auth.guards import REFRESH_COOKIE, SESSION_COOKIE, SignedIn, client_address
from ingest.auth.service import SignInRefused
from ingest.auth.sessions import Tokens
from ingest.routes import errors

router = APIRouter(prefix="/api/auth", tags=["auth"])


class SignInBody(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshBody(BaseModel):
    refresh_token: str | None = Field(None, max_length=128, description="omit to use the teleicu_refresh cookie")


def _answer(response: Response, principal_json: dict[str, Any], tokens: Tokens, now: int) -> dict[str, Any]:
    for name, value, path, expires in ((SESSION_COOKIE, tokens.access, "/", tokens.access_expires),
                                       (REFRESH_COOKIE, tokens.refresh, "/api/auth", tokens.refresh_expires)):  # fmt: skip
        response.set_cookie(name, value, max_age=max(1, (expires - now) // 1000), path=path, secure=True, httponly=True, samesite="strict")
    response.headers["Cache-Control"] = "no-store"
    return {"user": principal_json, "access_token": tokens.access, "token_type": "bearer", "expires_at": tokens.access_expires,
            "refresh_token": tokens.refresh, "refresh_expires_at": tokens.refresh_expires}  # fmt: skip


@router.post("/login", responses=errors(400, 401, 429, 503))
async def sign_in(request: Request, response: Response, body: SignInBody) -> dict[str, Any]:
    auth = request.app.state.auth
    try:
        principal, tokens = await auth.sign_in(body.username, body.password, client_address(request))
    except SignInRefused as exc:
        raise HTTPException(exc.status, exc.message) from None
    return _answer(response, principal.to_json(), tokens, auth.clock())


@router.post("/refresh", responses=errors(400, 401, 503))
async def refresh(request: Request, response: Response, body: RefreshBody | None = None) -> dict[str, Any]:
    auth = request.app.state.auth
    token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    renewed = await auth.refresh(token, client_address(request)) if token else None
    if renewed is None:
        raise HTTPException(401, "sign in again: the refresh token is unknown, used or expired")
    principal, tokens = renewed
    return _answer(response, principal.to_json(), tokens, auth.clock())


@router.post("/logout", responses=errors(401, 503))
async def sign_out(request: Request, response: Response, principal: SignedIn) -> dict[str, Any]:
    await request.app.state.auth.sign_out(principal, client_address(request))
    for name, path in ((SESSION_COOKIE, "/"), (REFRESH_COOKIE, "/api/auth")):
        response.delete_cookie(name, path=path, secure=True, httponly=True, samesite="strict")
    return {"signed_out": principal.username}


@router.get("/me", responses=errors(401, 503))
async def me(principal: SignedIn) -> dict[str, Any]:
    """Who is signed in: name, role, wards and what the role may do."""
    return principal.to_json()
