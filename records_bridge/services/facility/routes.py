"""The registry's HTTP API under ``/api``.

| method and path | who | what |
| --- | --- | --- |
| ``PUT /api/facilities/{facility_id}`` | admin | create (201) or replace (200) a facility's fields, capacity optional |
| ``PUT /api/facilities/{facility_id}/capacity`` | admin | some or all bed types' licensed and staffed beds |
| ``POST /api/facilities/{facility_id}/verify`` | admin | ``{"verified": true|false}``: who and when are kept |
| ``PUT /api/facilities/{facility_id}/occupancy`` | records | the hub's census for the facility's ICU |
| ``POST /api/import`` | admin | a CSV file (``text/csv``), all rows or none |
| ``GET /api/facilities/{facility_id}`` | readers | one facility, stale rule applied |
| ``GET /api/facilities.geojson`` | readers | the filtered FeatureCollection |
| ``GET /api/vocabulary``, ``GET /api/districts`` | readers | the codes and labels; the districts in the registry |
| ``POST /api/session``, ``DELETE /api/session``, ``GET /api/me`` | anyone / the signed-in | the map page's sign-in |

JSON bodies are at most ``MAX_BODY`` bytes, a CSV file at most ``csv_import.MAX_BYTES``. Database work runs in
worker threads.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from records_bridge.services.facility import csv_import, fields, geojson, policy
from records_bridge.services.facility.fields import FieldError
from records_bridge.services.facility.geo import parse_point
from records_bridge.services.facility.problems import Problem, RowErrors, invalid
from records_bridge.services.facility.session import COOKIE, hub_sign_in, hub_sign_out, signed_in
from records_bridge.services.facility.store import Query, Store
from records_bridge.services.facility.vocab import BED_TYPES, FACILITY_TYPES, OWNERSHIP, SERVICES, SPECIALITIES, STATUS

MAX_BODY = 64 * 1024
DEFAULT_LIMIT, MAX_LIMIT = 500, 2000  # features in one GeoJSON answer
MAX_RADIUS_KM = 3500.0  # India spans about 3,200 km
OCCUPANCY_AHEAD_MS = 120_000  # a census may be this far ahead of this service's clock (clocks drift)

api = APIRouter(prefix="/api")


def _store(request: Request) -> Store:
    return request.app.state.store


async def read_body(request: Request, limit: int, media: str) -> bytes:
    got = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if got != media:
        raise Problem(415, f"send {media}, not {got or 'no Content-Type'!r}", reason="media_type")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise Problem(413, f"the body is larger than {limit} bytes", reason="too_large")
    return raw


async def json_body(request: Request) -> dict[str, Any]:
    raw = await read_body(request, MAX_BODY, "application/json")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise Problem(400, "the body is not JSON", reason="not_json") from None
    if not isinstance(data, dict):
        raise Problem(400, "the body must be a JSON object", reason="not_object")
    return data


def _checked_id(facility_id: str) -> str:
    try:
        return fields.facility_id(facility_id)
    except FieldError as exc:
        raise invalid(exc) from None


def _view(request: Request, facility_id: str) -> dict[str, Any]:
    app = request.app.state
    return geojson.facility_json(_store(request).get(facility_id), app.clock(), app.stale_after_ms)


# ------------------------------------------------------------------------------------------------------- writing


@api.put("/facilities/{facility_id}")
async def put_facility(request: Request, facility_id: str) -> JSONResponse:
    who = await signed_in(request, policy.ADMIN)
    facility_id = _checked_id(facility_id)
    body = await json_body(request)
    try:
        checked = fields.facility(body)
    except FieldError as exc:
        raise invalid(exc) from None
    created = await run_in_threadpool(_store(request).put_facility, facility_id, checked, who.username)
    return JSONResponse(await run_in_threadpool(_view, request, facility_id), status_code=201 if created else 200)


@api.put("/facilities/{facility_id}/capacity")
async def put_capacity(request: Request, facility_id: str) -> JSONResponse:
    who = await signed_in(request, policy.ADMIN)
    facility_id = _checked_id(facility_id)
    try:
        cap = fields.capacity(await json_body(request), prefix="capacity")
    except FieldError as exc:
        raise invalid(exc) from None
    await run_in_threadpool(_store(request).put_capacity, facility_id, cap, who.username)
    return JSONResponse(await run_in_threadpool(_view, request, facility_id))


@api.post("/facilities/{facility_id}/verify")
async def verify(request: Request, facility_id: str) -> JSONResponse:
    who = await signed_in(request, policy.ADMIN)
    facility_id = _checked_id(facility_id)
    body = await json_body(request)
    if set(body) != {"verified"} or not isinstance(body["verified"], bool):
        raise Problem(422, 'send {"verified": true} or {"verified": false}', reason="invalid_field")
    await run_in_threadpool(_store(request).verify, facility_id, body["verified"], who.username)
    return JSONResponse(await run_in_threadpool(_view, request, facility_id))


@api.put("/facilities/{facility_id}/occupancy")
async def put_occupancy(request: Request, facility_id: str) -> JSONResponse:
    """The hub's census for this facility's ICU (the records bridge sends it). 200 ``{"stored": true}``, or
    ``{"stored": false}`` when a newer census is kept already (the older one is dropped)."""
    who = await signed_in(request, policy.OCCUPANCY_WRITERS)
    facility_id = _checked_id(facility_id)
    body = await json_body(request)
    try:
        occ = fields.occupancy(body, request.app.state.clock(), OCCUPANCY_AHEAD_MS)
    except FieldError as exc:
        raise invalid(exc) from None
    stored = await run_in_threadpool(_store(request).put_occupancy, facility_id, occ, who.username)
    return JSONResponse({"facility_id": facility_id, "stored": stored, "as_of": occ["as_of"]})


@api.post("/import")
async def import_csv(request: Request) -> JSONResponse:
    """A registry CSV file (``Content-Type: text/csv``): every row stored, or none (422 listing line and field)."""
    who = await signed_in(request, policy.ADMIN)
    raw = await read_body(request, csv_import.MAX_BYTES, "text/csv")
    try:
        rows = csv_import.parse(raw)
    except csv_import.CsvRefused as exc:
        raise RowErrors(exc.errors, len(exc.errors)) from None
    created, updated = await run_in_threadpool(_store(request).import_rows, rows, who.username)
    return JSONResponse({"imported": len(rows), "created": created, "updated": updated})


# ------------------------------------------------------------------------------------------------------- reading


@api.get("/facilities.geojson")
async def facilities_geojson(request: Request, district: str | None = None, type: str | None = None, service: str | None = None,
                             min_free_icu: int | None = None, near: str | None = None, radius_km: float | None = None,
                             limit: int = DEFAULT_LIMIT) -> Response:  # fmt: skip
    """Filters: ``district`` (LGD code or name), ``type``, ``service``, ``min_free_icu`` (fresh figures only),
    ``near=lat,lon`` with optional ``radius_km`` (then nearest first, ``distance_km`` in each); ``limit`` (1 to 2000)."""
    await signed_in(request, policy.READERS)
    state = request.app.state
    if district is not None and not 1 <= len(district.strip()) <= 80:
        raise Problem(422, "district is an LGD code or a name of at most 80 characters", reason="invalid_query")
    if type is not None and type not in FACILITY_TYPES:
        raise Problem(422, f"type is one of {', '.join(FACILITY_TYPES)}", reason="invalid_query")
    if service is not None and service not in SERVICES:
        raise Problem(422, f"service is one of {', '.join(SERVICES)}", reason="invalid_query")
    if min_free_icu is not None and not 0 <= min_free_icu <= 10_000:
        raise Problem(422, "min_free_icu is a number of beds, 0 or more", reason="invalid_query")
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(422, f"limit is 1 to {MAX_LIMIT}", reason="invalid_query")
    point = None
    if near is not None:
        try:
            point = parse_point(near)
        except ValueError as exc:
            raise Problem(422, str(exc), reason="invalid_query") from None
    if radius_km is not None and (point is None or not 0 < radius_km <= MAX_RADIUS_KM):
        raise Problem(422, f"radius_km needs near=lat,lon and is more than 0, at most {MAX_RADIUS_KM:.0f}", reason="invalid_query")
    now = state.clock()
    q = Query(fresh_since_ms=now - state.stale_after_ms, limit=limit, district=district, type=type, service=service,
              min_free_icu=min_free_icu, near=point, radius_km=radius_km)  # fmt: skip
    rows, truncated = await run_in_threadpool(_store(request).search, q)
    body = geojson.collection(rows, now, state.stale_after_ms, truncated=truncated, limit=limit)
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), media_type="application/geo+json")


@api.get("/facilities/{facility_id}")
async def get_facility(request: Request, facility_id: str) -> JSONResponse:
    await signed_in(request, policy.READERS)
    return JSONResponse(await run_in_threadpool(_view, request, _checked_id(facility_id)))


@api.get("/vocabulary")
async def vocabulary(request: Request) -> JSONResponse:
    await signed_in(request, policy.READERS)
    return JSONResponse({"types": FACILITY_TYPES, "ownership": OWNERSHIP, "status": STATUS, "bed_types": BED_TYPES,
                         "specialities": SPECIALITIES, "services": SERVICES,
                         "stale_after_s": request.app.state.stale_after_ms / 1000})  # fmt: skip


@api.get("/districts")
async def districts(request: Request) -> JSONResponse:
    await signed_in(request, policy.READERS)
    return JSONResponse({"districts": await run_in_threadpool(_store(request).districts)})


# ------------------------------------------------------------------------------------------- the map page's sign-in


@api.post("/session")
async def sign_in(request: Request) -> JSONResponse:
    body = await json_body(request)
    user, password = body.get("username"), body.get("password")
    if set(body) != {"username", "password"} or not isinstance(user, str) or not isinstance(password, str) \
            or not 1 <= len(user) <= 64 or not 1 <= len(password) <= 256:  # fmt: skip
        raise Problem(400, "send your hub user name and password", reason="sign_in")
    token, expires_ms = await hub_sign_in(request.app.state.identity, user, password)
    who = await request.app.state.identity.who(token)
    if who is None or who.role not in policy.READERS:
        await hub_sign_out(request.app.state.identity, token)
        raise Problem(403, f"a {who.role if who else 'user'} may not use the facility map", reason="role")
    resp = JSONResponse({"username": who.username, "display_name": who.display_name, "role": who.role})
    max_age = max(1, (expires_ms - time.time_ns() // 1_000_000) // 1000)  # the hub's wall clock, not the injected one
    resp.set_cookie(COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return resp


@api.delete("/session")
async def sign_out(request: Request) -> JSONResponse:
    token = request.cookies.get(COOKIE)
    if token:
        await hub_sign_out(request.app.state.identity, token)
    resp = JSONResponse({"signed_out": bool(token)})
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return resp


@api.get("/me")
async def me(request: Request) -> JSONResponse:
    who = await signed_in(request, policy.READERS)
    return JSONResponse({"username": who.username, "display_name": who.display_name, "role": who.role})
