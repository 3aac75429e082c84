"""The EHR's HTTP layer: FHIR R4 create, conditional create, update, read and search under ``/fhir``, over ``store``.

Each request is checked in a fixed order, and each failure answers an
OperationOutcome: bearer secret (401), a reader writing (403), unknown type or
route (404), method (405), content type (415), body size (413), JSON (400),
type or id differing from the URL (422), FHIR validity (400), then the store
(conditional create matching more than one: 412). The database work runs in
worker threads; the event loop only reads bodies and writes answers.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource as FhirResource
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from records_bridge.fhir.contract import MappingError
from records_bridge.fhir.validation import validated
from records_bridge.services.db import make_engine
from records_bridge.services.ehr.clients import Client, authenticate
from records_bridge.services.ehr.outcomes import FhirError
from records_bridge.services.ehr.search import SEARCH_PARAMS, SearchError, parse_search
from records_bridge.services.ehr.store import MultipleMatches, Page, Store, Stored, dumps, migrate

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
ACCEPTED_MEDIA = ("application/fhir+json", "application/json")
MAX_BODY = 8 * 1024 * 1024  # a discharge Bundle carries its PDF in base64
BASE = "/fhir"


@lru_cache(maxsize=256)
def is_resource_type(kind: str) -> bool:
    """Whether ``kind`` names a FHIR resource (not a datatype, not anything else)."""
    if not kind[:1].isupper() or not kind.isalpha():
        return False
    try:
        model = get_fhir_model_class(kind)
    except (ValueError, KeyError):
        return False
    return isinstance(model, type) and issubclass(model, FhirResource)


def fhir_response(body: str | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body if isinstance(body, str) else dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def error_response(status: int, diagnostics: str, headers: dict[str, str] | None = None) -> Response:
    return fhir_response(FhirError(status, diagnostics).outcome(), status, headers)


def create_app(url: str, *, max_body: int = MAX_BODY, run_migrations: bool = True) -> FastAPI:
    """The EHR over the database at ``url`` (its schema brought to head first unless ``run_migrations`` is False)."""
    engine = make_engine(url)
    if run_migrations:
        migrate(engine)
    store = Store(engine)
    app = FastAPI(title="teleicu EHR (FHIR R4 subset)", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store

    async def client_of(request: Request, *, write: bool) -> Client:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise FhirError(401, "a bearer secret is required (Authorization: Bearer <secret>)", headers={"WWW-Authenticate": "Bearer"})
        client = await run_in_threadpool(authenticate, engine, token.strip())
        if client is None:
            raise FhirError(401, "the bearer secret is not valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if write and not client.may_write:
            raise FhirError(403, f"client {client.name!r} is a reader: it may not write")
        return client

    def check_type(kind: str) -> None:
        if not is_resource_type(kind):
            raise FhirError(404, f"unknown resource type {kind[:64]!r}")

    async def body_of(request: Request, kind: str) -> dict[str, Any]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in ACCEPTED_MEDIA:
            raise FhirError(415, f"send {FHIR_JSON}, not {media or 'no Content-Type'!r}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body:
            raise FhirError(413, f"the body ({declared} bytes) is larger than the limit of {max_body} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise FhirError(413, f"the body is larger than the limit of {max_body} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise FhirError(400, f"the body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise FhirError(400, "the body must be a JSON object (a FHIR resource)")
        if b"\\u0000" in raw and _has_nul(data, depth=0):  # FHIR forbids it, and PostgreSQL's text (the search index) cannot hold it
            raise FhirError(400, "the resource contains a NUL character (\\u0000), which FHIR strings may not")
        body_type = data.get("resourceType")
        if not isinstance(body_type, str) or not body_type:
            raise FhirError(400, "the resource has no resourceType")
        if body_type != kind:
            raise FhirError(422, f"the resource is a {body_type[:64]!r}, the URL names {kind!r}")
        return data

    async def valid(resource: dict[str, Any]) -> dict[str, Any]:
        try:
            return await run_in_threadpool(validated, resource)
        except MappingError as exc:
            raise FhirError(400, str(exc)) from None
        except RecursionError:
            raise FhirError(400, "the resource is nested too deeply") from None

    def base_of(request: Request) -> str:
        return str(request.base_url).rstrip("/") + BASE

    def stored_response(request: Request, stored: Stored, status: int) -> Response:
        headers = {"ETag": f'W/"{stored.version_id}"', "Last-Modified": _http_date(stored.last_updated),
                   "Location": f"{base_of(request)}/{stored.type}/{stored.id}/_history/{stored.version_id}"}  # fmt: skip
        return fhir_response(stored.content, status, headers)

    @app.exception_handler(FhirError)
    async def _fhir_error(_request: Request, exc: FhirError) -> Response:
        return fhir_response(exc.outcome(), exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        text = {404: f"no such endpoint: {request.url.path}", 405: f"{request.method} is not supported on {request.url.path}"}
        return error_response(exc.status_code, text.get(exc.status_code, str(exc.detail)), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        return error_response(400, f"invalid request: {exc.errors()!r}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error; the EHR's log has the details")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    @app.get(BASE + "/metadata")
    async def metadata() -> Response:
        return fhir_response(capability_statement())

    @app.get(BASE + "/{kind}")
    async def search(request: Request, kind: str) -> Response:
        await client_of(request, write=False)
        check_type(kind)
        items = list(request.query_params.multi_items())
        try:
            query = parse_search(kind, items)
        except SearchError as exc:
            raise FhirError(400, str(exc)) from None
        page: Page = await run_in_threadpool(store.search, query)
        base = base_of(request)
        links = [{"relation": "self", "url": str(request.url)}]
        if page.more:
            kept = [(k, v) for k, v in items if k != "_cursor"] + [("_cursor", str(page.rows[-1].row_id))]
            links.append({"relation": "next", "url": f"{base}/{kind}?{urlencode(kept)}"})
        head = dumps({"resourceType": "Bundle", "type": "searchset", "total": page.total, "link": links})
        entries = ",".join(f'{{"fullUrl":{json.dumps(f"{base}/{s.type}/{s.id}")},"resource":{s.content},"search":{{"mode":"match"}}}}'
                           for s in page.rows)  # fmt: skip
        return fhir_response(head[:-1] + f',"entry":[{entries}]}}' if page.rows else head)

    @app.get(BASE + "/{kind}/{ident}")
    async def read(request: Request, kind: str, ident: str) -> Response:
        await client_of(request, write=False)
        check_type(kind)
        stored = await run_in_threadpool(store.read, kind, ident)
        if stored is None:
            raise FhirError(404, f"{kind}/{ident[:64]} is not known")
        return stored_response(request, stored, 200)

    @app.put(BASE + "/{kind}/{ident}")
    async def put(request: Request, kind: str, ident: str) -> Response:
        await client_of(request, write=True)
        check_type(kind)
        if not _valid_id(ident):
            raise FhirError(400, f"not a FHIR id: {ident[:80]!r}")
        resource = await body_of(request, kind)
        if "id" not in resource:
            raise FhirError(400, f'the resource has no id; a PUT to {kind}/{ident} needs "id": "{ident}"')
        if resource["id"] != ident:
            raise FhirError(422, f"the resource's id {str(resource['id'])[:80]!r} is not the URL's {ident!r}")
        resource = await valid(resource)
        stored, created = await run_in_threadpool(store.put, resource)
        return stored_response(request, stored, 201 if created else 200)

    @app.post(BASE + "/{kind}")
    async def create(request: Request, kind: str) -> Response:
        await client_of(request, write=True)
        check_type(kind)
        resource = await body_of(request, kind)
        resource = await valid({k: v for k, v in resource.items() if k != "id"})
        criteria = request.headers.get("if-none-exist")
        if criteria is None:
            stored, created = await run_in_threadpool(store.create, resource), True
        else:
            try:
                stored, created = await run_in_threadpool(store.conditional_create, resource, criteria)
            except SearchError as exc:
                raise FhirError(400, f"If-None-Exist: {exc}") from None
            except MultipleMatches as exc:
                raise FhirError(412, str(exc)) from None
        return stored_response(request, stored, 201 if created else 200)

    return app


def _has_nul(value: Any, depth: int) -> bool:
    if depth > 200:
        raise FhirError(400, "the resource is nested too deeply")
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v, depth + 1) for v in value)
    return False


def _valid_id(ident: str) -> bool:
    return 1 <= len(ident) <= 64 and all(c.isascii() and (c.isalnum() or c in "-.") for c in ident)


def _http_date(instant: str) -> str:
    return format_datetime(datetime.fromisoformat(instant.replace("Z", "+00:00")), usegmt=True)


def capability_statement() -> dict[str, Any]:
    """What this server does, for ``GET /fhir/metadata``."""
    kinds = sorted({*SEARCH_PARAMS, "Patient", "Bundle", "Organization", "Location"})
    types = {"patient": "reference", "encounter": "reference", "code": "token", "identifier": "token", "date": "date"}
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2024-05-01",
        "kind": "instance",
        "software": {"name": "teleicu ehr"},
        "implementation": {"description": "teleicu's lighter EHR: a FHIR R4 REST subset"},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON],
        "rest": [{
            "mode": "server",
            "security": {"description": "Every request but this one needs Authorization: Bearer <secret> (teleicu ehr clients add)."},
            "resource": [{
                "type": kind,
                "interaction": [{"code": c} for c in ("read", "update", "create", "search-type")],
                "versioning": "versioned-update",
                "updateCreate": True,
                "conditionalCreate": True,
                "searchParam": [{"name": p, "type": types[p]} for p in sorted(SEARCH_PARAMS.get(kind, {"identifier"}))],
            } for kind in kinds],
        }],
    }  # fmt: skip
