"""The EHR service's application: its database (migrated to head), the FHIR routes (``routes``), and one
OperationOutcome for every error, including FastAPI's own 404, 405 and validation errors and anything unexpected."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from records_bridge.services.db import make_engine
from records_bridge.services.ehr import routes
from records_bridge.services.ehr.outcomes import FhirError
from records_bridge.services.ehr.request_checks import MAX_BODY
from records_bridge.services.ehr.routes import BASE, fhir_response
from records_bridge.services.ehr.store import Store, migrate

log = logging.getLogger(__name__)

__all__ = ["BASE", "MAX_BODY", "create_app"]


def create_app(url: str, *, max_body: int = MAX_BODY, run_migrations: bool = True) -> FastAPI:
    """The EHR over the database at ``url`` (its schema brought to head first unless ``run_migrations`` is False)."""
    engine = make_engine(url)
    if run_migrations:
        migrate(engine)
    app = FastAPI(title="teleicu EHR (FHIR R4 subset)", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine, app.state.store, app.state.max_body = engine, Store(engine), max_body
    _answer_errors_as_operation_outcomes(app)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    app.include_router(routes.router)
    return app


def _error_response(status: int, diagnostics: str, headers: dict[str, str] | None = None) -> Response:
    return fhir_response(FhirError(status, diagnostics).outcome(), status, headers)


def _answer_errors_as_operation_outcomes(app: FastAPI) -> None:
    @app.exception_handler(FhirError)
    async def _fhir_error(_request: Request, exc: FhirError) -> Response:
        return fhir_response(exc.outcome(), exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        text = {404: f"no such endpoint: {request.url.path}", 405: f"{request.method} is not supported on {request.url.path}"}
        return _error_response(exc.status_code, text.get(exc.status_code, str(exc.detail)), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        return _error_response(400, f"invalid request: {exc.errors()!r}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error_response(500, "internal error; the EHR's log has the details")
