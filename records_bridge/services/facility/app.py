"""The facility registry's application: its database (migrated to head), staff sign-in through the hub, the clock
(injected: tests freeze it), the stale age, the API and the map page, extra routers (the KPI dashboard's), the hub's
security headers (CSP), and problem JSON for every error, FastAPI's own 404, 405 and validation errors included."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.responses import Response

from ingest.security_headers import SecurityHeaders
from records_bridge.services.db import make_engine
from records_bridge.services.facility import pages, routes
from records_bridge.services.facility.kpi import store as kpi_store
from records_bridge.services.facility.kpi.routes import kpi_router
from records_bridge.services.facility.kpi.settings import KpiSettings
from records_bridge.services.facility.store import Store, kpi_facilities, migrate
from records_bridge.services.hub_identity import HubIdentity
from records_bridge.services.problems import answer_errors_as_problems

log = logging.getLogger(__name__)

STALE_AFTER_S = 300.0


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def create_app(url: str, *, hub_url: str, clock: Callable[[], int] = wall_ms, run_migrations: bool = True,
               stale_after_s: float = STALE_AFTER_S, tile_url: str | None = None, tile_attribution: str = "",
               outlines: Path | None = None, routers: Sequence[APIRouter] = (), hub_verify: bool | str = True,
               kpi_settings: KpiSettings | None = None) -> FastAPI:  # fmt: skip
    """The registry over the database at ``url``, signing staff in through the hub at ``hub_url``.

    ``stale_after_s``: an occupancy older than this is stale (its free beds are not shown). ``tile_url``: a map tile
    server for sites with internet (none by default: the page draws the state outlines only). ``outlines``: the
    outline GeoJSON file (default: the vendored Natural Earth states). The KPI dashboard (``kpi``, its own tables and
    migrations in the same database) is always served, its facilities read from the registry (``kpi_facilities``).
    ``routers``: more routers to include; they may use ``app.state.engine``, ``identity``, ``clock`` and
    ``facility.session.signed_in``.
    """
    if stale_after_s <= 0:
        raise ValueError("stale_after_s must be more than 0")
    if tile_url is not None:
        pages.check_tile_url(tile_url)
    outline_file = Path(outlines) if outlines is not None else pages.DEFAULT_OUTLINES
    if not outline_file.is_file():
        raise ValueError(f"the outline file {outline_file} is missing")
    engine = make_engine(url)
    if run_migrations:
        migrate(engine)
        kpi_store.migrate(engine)
    identity = HubIdentity(hub_url, verify=hub_verify)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await identity.close()
            engine.dispose()

    app = FastAPI(title="teleicu facility registry", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    state = app.state
    state.engine, state.store, state.identity, state.clock = engine, Store(engine, clock), identity, clock
    state.stale_after_ms = int(stale_after_s * 1000)
    state.tile_url, state.tile_attribution, state.outlines = tile_url, tile_attribution, outline_file
    state.static_files = pages.static_files()
    answer_errors_as_problems(app, "the facility registry", invalid_reason="invalid_query")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    app.include_router(routes.api)
    app.include_router(pages.pages)
    app.include_router(kpi_router(engine, identity, kpi_facilities, kpi_settings, clock=clock))
    for router in routers:  # the KPI dashboard and any other page on the registry's data
        app.include_router(router)
    app.add_middleware(SecurityHeaders)
    return app
