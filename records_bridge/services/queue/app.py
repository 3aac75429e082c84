"""The queue service's application: its database (migrated to head), staff sign-in through the hub, the SMS gateway,
the board feed, the clock (injected: tests freeze it), the routes, the hub's security headers (CSP), and problem JSON
for every error, FastAPI's own 404, 405 and validation errors included."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import Response

from ingest.security_headers import SecurityHeaders
from records_bridge.services.db import make_engine
from records_bridge.services.hub_identity import HubIdentity
from records_bridge.services.queue import routes
from records_bridge.services.queue.board import BoardFeed
from records_bridge.services.problems import answer_errors_as_problems
from records_bridge.services.ratelimit import RateLimiter
from records_bridge.services.queue.store import Store, migrate
from records_bridge.services.sms import SmsGateway

log = logging.getLogger(__name__)

SCAN_PER_MINUTE = 10.0
SCAN_BURST = 5


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def create_app(url: str, *, hub_url: str, sms: SmsGateway, clock: Callable[[], int] = wall_ms, run_migrations: bool = True,
               scan_per_minute: float = SCAN_PER_MINUTE, scan_burst: int = SCAN_BURST, hub_verify: bool | str = True) -> FastAPI:  # fmt: skip
    """The queue service over the database at ``url``, signing staff in through the hub at ``hub_url``."""
    engine = make_engine(url)
    if run_migrations:
        migrate(engine)
    identity = HubIdentity(hub_url, verify=hub_verify)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await identity.close()
            engine.dispose()

    app = FastAPI(title="teleicu OPD queue", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.engine, app.state.store, app.state.identity, app.state.sms = engine, Store(engine, clock), identity, sms
    app.state.feed, app.state.clock = BoardFeed(), clock
    app.state.scan_limiter = RateLimiter(scan_per_minute, scan_burst)
    answer_errors_as_problems(app, "the queue service", invalid_reason="invalid")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    app.include_router(routes.api)
    app.include_router(routes.pages)
    app.add_middleware(SecurityHeaders)
    return app
