"""Problem details (RFC 9457): the body of every error the locker answers, including FastAPI's own and unexpected ones.

``{"type": "about:blank", "title", "status", "detail", "code"}``: ``detail``
says what to do about it, ``code`` is a short stable name (a refused record
fetch says why: no_consent, not_granted, revoked, expired, type_not_covered,
date_outside_range ...).
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from records_bridge.services.locker.store import LockerError

log = logging.getLogger(__name__)
MAX_DETAIL = 1000


def problem(status: int, detail: str, code: str = "", headers: dict[str, str] | None = None) -> Response:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail[:MAX_DETAIL], "code": code or title.lower().replace(" ", "_")}
    return Response(json.dumps(body), status_code=status, media_type="application/problem+json", headers=headers)


def answer_errors_as_problems(app: FastAPI) -> None:
    @app.exception_handler(LockerError)
    async def _locker(_r: Request, exc: LockerError) -> Response:
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
        return problem(exc.status, exc.reason, exc.code, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        text = {404: f"no such page or endpoint: {request.url.path[:200]}", 405: f"{request.method} is not supported on {request.url.path[:200]}"}
        detail = exc.detail if isinstance(exc, HTTPException) and exc.status_code not in text else text.get(exc.status_code, str(exc.detail))
        return problem(exc.status_code, str(detail), headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> Response:
        return problem(400, describe_errors(exc.errors()), "invalid")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return problem(500, "internal error; the locker's log has the details", "internal")


def describe_errors(errors: object) -> str:
    """Pydantic's errors as one sentence a person can act on: ``field.path: message; ...``."""
    parts = []
    for err in list(errors)[:5] if isinstance(errors, (list, tuple)) else []:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + ("; ".join(parts) or "the body does not match what this endpoint takes")
