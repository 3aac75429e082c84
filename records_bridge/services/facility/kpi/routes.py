"""The KPI API and pages, as one router the facility app includes (``kpi_router``).

- ``POST /api/kpi/events`` (the records bridge): a batch of the hub's outbox events, stored once each (``store``);
- ``GET /api/kpi?facility=<id>|state=<name>&from=<date>&to=<date>``: every KPI with its value, numerator,
  denominator, unit and definition (a state: each facility and the state's total);
- ``GET /api/kpi.csv`` (same filters): the same as CSV, one row per facility per KPI plus the state's total;
- ``GET /api/kpi/states``: the states and their facilities, for the page's selector;
- ``POST /api/kpi/signin`` / ``signout``: the page signs in to the hub through this service (the page's policy lets
  it talk to its own origin only); the answer is the hub's bearer token, nothing is kept here;
- ``GET /kpi`` (a state) and ``GET /kpi/facility/<id>``: the pages; ``/static/kpi/<file>`` their script and style.

Errors are problem JSON (``application/problem+json``) from this router itself (``ProblemRoute``), whatever app
includes it. Database work runs in worker threads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, JSONResponse, Response

from records_bridge.services.facility.kpi import policy, report, store
from records_bridge.services.facility.kpi.facilities import Facilities, FacilityRef
from records_bridge.services.facility.kpi.settings import KpiSettings
from records_bridge.services.hub_identity import HubIdentity, Staff
from records_bridge.services.problems import Problem, problem_response
from records_bridge.services.ratelimit import RateLimiter

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"kpi.js": "text/javascript", "kpi.css": "text/css"}
HUB_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
SIGNIN_PER_MINUTE, SIGNIN_BURST = 10.0, 5
MAX_SIGNIN_BODY = 4096


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ProblemRoute(APIRoute):
    """Answers this router's errors (its own, sign-in's, FastAPI's validation) as problem JSON, in any app."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Problem as p:
                return problem_response(p)
            except RequestValidationError as exc:
                where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()[:5])
                return problem_response(Problem(422, f"invalid request: {where}", reason="invalid"))
            except StarletteHTTPException as exc:
                reason = {401: "sign_in", 403: "role", 503: "hub"}.get(exc.status_code, "")
                return problem_response(Problem(exc.status_code, str(exc.detail), reason=reason, headers=dict(exc.headers or {})))

        return answer


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hub: str = Field(pattern=HUB_ID)
    events: list[store.Item]


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


async def _raw_body(request: Request, limit: int) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Problem(415, f"send application/json, not {media or 'no Content-Type'!r}", reason="media_type")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"the body is larger than {limit} bytes: send fewer events per request", reason="too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the body is larger than {limit} bytes: send fewer events per request", reason="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _validated(model: type[BaseModel], raw: bytes | Any) -> Any:
    """``raw`` (JSON bytes, or JSON already parsed) as ``model``; 422 naming the first bad places otherwise."""
    try:
        return model.model_validate_json(raw) if isinstance(raw, bytes) else model.model_validate(raw)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()[:5])
        raise Problem(422, f"invalid body, nothing was stored: {where}"[:1000], reason="invalid") from None


def _day(value: str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise Problem(422, f"{name} must be a date as YYYY-MM-DD, not {value[:20]!r}", reason="bad_date") from None


def kpi_router(engine: Engine, identity: HubIdentity, facilities: Facilities, settings: KpiSettings | None = None, *,
               clock: Callable[[], int] = wall_ms) -> APIRouter:  # fmt: skip
    """The KPI API and pages over the KPI store in ``engine`` (migrate it first: ``store.migrate``), signing staff in
    through ``identity``; ``facilities`` names the registry's facilities; ``clock`` is ms since the epoch (tests freeze it)."""
    cfg = settings or KpiSettings()
    router = APIRouter(route_class=ProblemRoute)
    signin_limiter = RateLimiter(SIGNIN_PER_MINUTE, SIGNIN_BURST)

    def staff(*roles: str) -> Any:
        return Depends(identity.dependency(*roles))

    # ------------------------------------------------------------------------------------------------- events in

    @router.post("/api/kpi/events")
    async def post_events(request: Request, _who: Staff = staff(*policy.FEEDERS)) -> JSONResponse:
        raw = await _raw_body(request, cfg.max_body)
        try:
            shape = json.loads(raw)
        except (ValueError, RecursionError):
            raise Problem(400, "the body is not JSON", reason="not_json") from None
        if isinstance(shape, dict) and isinstance(shape.get("events"), list) and len(shape["events"]) > cfg.max_batch:
            raise Problem(413, f"{len(shape['events'])} events in one request; send at most {cfg.max_batch}", reason="too_many")
        batch: Batch = _validated(Batch, shape)
        new = await run_in_threadpool(store.take, engine, batch.hub, batch.events, clock())
        last = max((i.event.id for i in batch.events), default=None)
        return JSONResponse({"hub": batch.hub, "received": len(batch.events), "new": new, "last_id": last})

    # ------------------------------------------------------------------------------------------------ figures out

    def _refs() -> list[FacilityRef]:
        with engine.connect() as conn:
            return list(facilities(conn))

    def _compute(facility: str | None, state: str | None, first: date | None, last: date | None) -> tuple[dict[str, Any], report.Window]:
        if (facility is None) == (state is None):
            raise Problem(422, "name one facility (facility=<id>) or one state (state=<name>)", reason="scope")
        try:
            w = report.window(first, last, clock(), cfg)
        except report.WindowError as exc:
            raise Problem(422, str(exc), reason="bad_window") from None
        refs = _refs()
        if facility is not None:
            chosen = [r for r in refs if r.facility_id == facility]
            if not chosen:
                raise Problem(404, f"no facility {facility[:60]!r} in the registry", reason="no_facility")
        else:
            chosen = sorted((r for r in refs if r.state == state), key=lambda r: (r.district, r.name, r.facility_id))
            if not chosen:
                raise Problem(404, f"no facility of the registry is in the state {state[:60]!r}", reason="no_state")
        with engine.connect() as conn:
            if facility is not None:
                return report.facility_report(conn, chosen[0], w, clock(), cfg), w
            return report.state_report(conn, state or "", chosen, w, clock(), cfg), w

    @router.get("/api/kpi")
    async def get_kpi(facility: str | None = Query(None, max_length=200), state: str | None = Query(None, max_length=200),
                      first: str | None = Query(None, alias="from"), last: str | None = Query(None, alias="to"),
                      _who: Staff = staff(*policy.READERS)) -> JSONResponse:  # fmt: skip
        data, _w = await run_in_threadpool(_compute, facility, state, _day(first, "from"), _day(last, "to"))
        return JSONResponse(data)

    @router.get("/api/kpi.csv")
    async def get_kpi_csv(facility: str | None = Query(None, max_length=200), state: str | None = Query(None, max_length=200),
                          first: str | None = Query(None, alias="from"), last: str | None = Query(None, alias="to"),
                          _who: Staff = staff(*policy.READERS)) -> Response:  # fmt: skip
        data, w = await run_in_threadpool(_compute, facility, state, _day(first, "from"), _day(last, "to"))
        if data["scope"] == "facility":
            ref = FacilityRef(**data["facility"])
            blocks = [(ref, ref.state, data["kpis"])]
            name = ref.facility_id
        else:
            blocks = [(FacilityRef(**f["facility"]), data["state"], f["kpis"]) for f in data["facilities"]]
            blocks.append((None, data["state"], data["total"]["kpis"]))
            name = data["state"]
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60]
        filename = f"kpi_{safe}_{w.first.isoformat()}_{w.last.isoformat()}.csv"
        return Response(report.to_csv(blocks, w), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip

    @router.get("/api/kpi/states")
    async def get_states(_who: Staff = staff(*policy.READERS)) -> JSONResponse:
        refs = await run_in_threadpool(_refs)
        states: dict[str, list[dict[str, Any]]] = {}
        for r in sorted(refs, key=lambda r: (r.state, r.district, r.name)):
            states.setdefault(r.state, []).append(report.facility_json(r))
        return JSONResponse({"tz": cfg.tz, "today": report.window(None, None, clock(), cfg).last.isoformat(),
                             "states": [{"state": s, "facilities": fs} for s, fs in states.items()],
                             "definitions": report.definitions(cfg)})  # fmt: skip

    # ------------------------------------------------------------------------------------------- sign-in (pages)

    @router.post("/api/kpi/signin")
    async def sign_in(request: Request) -> JSONResponse:
        address = request.client.host if request.client else "?"
        if not signin_limiter.allow(address, clock()):
            raise Problem(429, "too many sign-in attempts from this address: wait a minute", reason="rate",
                          headers={"Retry-After": str(signin_limiter.retry_after_s(address))})  # fmt: skip
        body: SignIn = _validated(SignIn, await _raw_body(request, MAX_SIGNIN_BODY))
        try:
            r = await identity.http.post(f"{identity.hub_url}/api/auth/login", json=body.model_dump())
        except httpx.HTTPError as exc:
            raise Problem(503, f"the hub, which signs staff in, cannot be reached: {type(exc).__name__}", reason="hub") from None
        if r.status_code != 200:
            try:
                detail = str(r.json().get("detail", ""))
            except ValueError:
                detail = ""
            status = r.status_code if r.status_code in (400, 401, 403, 422, 429) else 503
            raise Problem(status, detail or f"the hub refused the sign-in (HTTP {r.status_code})", reason="sign_in" if status == 401 else "hub")
        d = r.json()
        user = d.get("user", {})
        if user.get("role") not in policy.READERS:
            raise Problem(403, f"a {user.get('role')} may not read the KPI pages", reason="role")
        return JSONResponse({"access_token": d["access_token"], "expires_at": d.get("expires_at"),
                             "user": {"username": user.get("username"), "display_name": user.get("display_name"),
                                      "role": user.get("role")}})  # fmt: skip

    @router.post("/api/kpi/signout")
    async def sign_out(request: Request, _who: Staff = staff()) -> JSONResponse:
        try:
            await identity.http.post(f"{identity.hub_url}/api/auth/logout", headers={"Authorization": request.headers["authorization"]})
        except httpx.HTTPError as exc:
            raise Problem(503, f"the hub cannot be reached to end the session: {type(exc).__name__}", reason="hub") from None
        return JSONResponse({"signed_out": True})

    # ------------------------------------------------------------------------------------------------------ pages

    @router.get("/kpi")
    async def state_page() -> Response:
        return FileResponse(STATIC / "kpi.html", media_type="text/html", headers={"Cache-Control": "no-store"})

    @router.get("/kpi/facility/{facility_id}")
    async def facility_page(facility_id: str) -> Response:
        return FileResponse(STATIC / "kpi.html", media_type="text/html", headers={"Cache-Control": "no-store"})

    @router.get("/static/kpi/{name}")
    async def static_file(name: str) -> Response:
        if name not in STATIC_FILES:
            raise Problem(404, f"no file {name[:40]!r}", reason="not_found")
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    return router
