"""Errors of the lighter services (the OPD queue, the facility registry and its KPIs): ``Problem`` carries an HTTP
status and a reason a clerk can act on, and is answered as RFC 9457 problem JSON (``application/problem+json``);
``answer_errors_as_problems`` makes every error of an app one, FastAPI's own 404, 405 and validation errors included."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TITLES = {400: "Bad request", 401: "Sign in needed", 403: "Not allowed", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 413: "Too large", 415: "Unsupported media type", 422: "Cannot do that", 429: "Too many requests",
          500: "Internal error", 503: "Unavailable"}  # fmt: skip


class Problem(Exception):
    def __init__(self, status: int, detail: str, *, reason: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.reason, self.headers = status, detail, reason, headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(self.status, "Error"), "status": self.status,
                               "detail": self.detail[:1000]}  # fmt: skip
        if self.reason:
            out["reason"] = self.reason  # a stable machine word: empty_queue, other_day, duplicate, ...
        return out


def problem_response(p: Problem) -> Response:
    return Response(json.dumps(p.body(), ensure_ascii=False), status_code=p.status, media_type=PROBLEM_JSON, headers=p.headers)


def answer_errors_as_problems(app: FastAPI, service: str, *, invalid_reason: str = "invalid") -> None:
    """Answer every error of ``app`` as problem JSON; an unexpected one is logged, and the answer names ``service``'s log."""

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> Response:
        return problem_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        text = {404: f"no such endpoint: {request.url.path[:100]}", 405: f"{request.method} is not supported on {request.url.path[:100]}"}
        reason = {401: "sign_in", 403: "role", 503: "hub"}.get(exc.status_code, "")
        return problem_response(Problem(exc.status_code, text.get(exc.status_code, str(exc.detail)), reason=reason,
                                        headers=dict(exc.headers or {})))  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()[:5])
        return problem_response(Problem(422, f"invalid request: {where}", reason=invalid_reason))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return problem_response(Problem(500, f"internal error; {service}'s log has the details"))
