"""The EHR's FHIR interactions under ``/fhir``: capabilities, search, read, update (PUT) and create (POST, and
conditional with If-None-Exist). Requests are checked by ``request_checks``; the database work runs in worker
threads, the event loop only reads bodies and writes answers."""

from __future__ import annotations

import json
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from records_bridge.services.ehr.outcomes import FhirError
from records_bridge.services.ehr.request_checks import FHIR_JSON, body_of, check_id, check_type, client_of, valid
from records_bridge.services.ehr.search import SEARCH_PARAMS, SearchError, parse_search
from records_bridge.services.ehr.store import MultipleMatches, Page, Store, Stored, dumps

BASE = "/fhir"
router = APIRouter(prefix=BASE)


def fhir_response(body: str | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body if isinstance(body, str) else dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def _store(request: Request) -> Store:
    return request.app.state.store


def _base_of(request: Request) -> str:
    return str(request.base_url).rstrip("/") + BASE


def _stored_response(request: Request, stored: Stored, status: int) -> Response:
    headers = {"ETag": f'W/"{stored.version_id}"', "Last-Modified": _http_date(stored.last_updated),
               "Location": f"{_base_of(request)}/{stored.type}/{stored.id}/_history/{stored.version_id}"}  # fmt: skip
    return fhir_response(stored.content, status, headers)


@router.get("/metadata")
async def metadata() -> Response:
    return fhir_response(capability_statement())


@router.get("/{kind}")
async def search(request: Request, kind: str) -> Response:
    await client_of(request, write=False)
    check_type(kind)
    items = list(request.query_params.multi_items())
    try:
        query = parse_search(kind, items)
    except SearchError as exc:
        raise FhirError(400, str(exc)) from None
    page: Page = await run_in_threadpool(_store(request).search, query)
    base = _base_of(request)
    links = [{"relation": "self", "url": str(request.url)}]
    if page.more:
        kept = [(k, v) for k, v in items if k != "_cursor"] + [("_cursor", str(page.rows[-1].row_id))]
        links.append({"relation": "next", "url": f"{base}/{kind}?{urlencode(kept)}"})
    head = dumps({"resourceType": "Bundle", "type": "searchset", "total": page.total, "link": links})
    entries = ",".join(f'{{"fullUrl":{json.dumps(f"{base}/{s.type}/{s.id}")},"resource":{s.content},"search":{{"mode":"match"}}}}'
                       for s in page.rows)  # fmt: skip
    return fhir_response(head[:-1] + f',"entry":[{entries}]}}' if page.rows else head)


@router.get("/{kind}/{ident}")
async def read(request: Request, kind: str, ident: str) -> Response:
    await client_of(request, write=False)
    check_type(kind)
    stored = await run_in_threadpool(_store(request).read, kind, ident)
    if stored is None:
        raise FhirError(404, f"{kind}/{ident[:64]} is not known")
    return _stored_response(request, stored, 200)


@router.put("/{kind}/{ident}")
async def put(request: Request, kind: str, ident: str) -> Response:
    await client_of(request, write=True)
    check_type(kind)
    check_id(ident)
    resource = await body_of(request, kind)
    if "id" not in resource:
        raise FhirError(400, f'the resource has no id; a PUT to {kind}/{ident} needs "id": "{ident}"')
    if resource["id"] != ident:
        raise FhirError(422, f"the resource's id {str(resource['id'])[:80]!r} is not the URL's {ident!r}")
    resource = await valid(resource)
    stored, created = await run_in_threadpool(_store(request).put, resource)
    return _stored_response(request, stored, 201 if created else 200)


@router.post("/{kind}")
async def create(request: Request, kind: str) -> Response:
    await client_of(request, write=True)
    check_type(kind)
    resource = await body_of(request, kind)
    resource = await valid({k: v for k, v in resource.items() if k != "id"})
    criteria = request.headers.get("if-none-exist")
    store = _store(request)
    if criteria is None:
        stored, created = await run_in_threadpool(store.create, resource), True
    else:
        try:
            stored, created = await run_in_threadpool(store.conditional_create, resource, criteria)
        except SearchError as exc:
            raise FhirError(400, f"If-None-Exist: {exc}") from None
        except MultipleMatches as exc:
            raise FhirError(412, str(exc)) from None
    return _stored_response(request, stored, 201 if created else 200)


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
