"""The hub's FastAPI application: it assembles the routers (``ingest.routes``) around one ``Hub``.

Start-up order: the store opens and the hub reloads its sequence marks and
open alarms, then the tick loop starts (and, with ``jetstream:`` in the hub
file, the JetStream worker, ``ingest.jetstream_worker``); shutdown stops the
worker, then the loop, and then flushes the store. If the hub's core (tick loop, audit writer) ever stops
with an error, ``on_core_failure`` is called: ``teleicu hub`` then shuts the
server down and exits non-zero rather than serve consoles from a hub that no
longer scores or alarms. REST is under ``/api``, WebSockets under ``/ws``,
OpenAPI at ``/docs``, the console at ``/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from console import STATIC_DIR
from ingest.hub import Hub
from ingest.routes import agents, alerts, audit, auth, beds, census, console, edge, events, kpi, patients, stats, video, vocabulary, waves
from ingest.security_headers import SecurityHeaders
from ingest.stores.base import StoreError

log = logging.getLogger(__name__)

ROUTERS = (auth.router, beds.router, patients.router, alerts.router, agents.router, audit.router, events.router, stats.router,
           edge.router, console.router, waves.router, vocabulary.router, kpi.router, video.router,
           census.router)  # fmt: skip


def create_app(hub: Hub, on_core_failure: Callable[[BaseException], None] | None = None) -> FastAPI:
    def core_done(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        log.critical("the hub core stopped: %r", exc, exc_info=exc)
        if on_core_failure is not None:
            on_core_failure(exc)

    worker = None
    if hub.cfg.jetstream is not None:  # imported only when configured (nats-py)
        from ingest.jetstream_worker import JetStreamWorker

        worker = JetStreamWorker(hub, hub.cfg.jetstream)  # reads its credentials now: ConfigError before anything starts

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        runner = asyncio.create_task(hub.run(), name="hub")
        runner.add_done_callback(core_done)
        consumer = asyncio.create_task(worker.run(), name="hub-jetstream") if worker is not None else None
        if consumer is not None:  # after the store opened; stopped (its wards given back) before the store closes
            consumer.add_done_callback(core_done)
        try:
            yield
        finally:
            if consumer is not None:
                consumer.cancel()
                await asyncio.wait([consumer])
            runner.cancel()
            await asyncio.wait([runner])  # its failure, if any, was reported by core_done
            await hub.stop()

    app = FastAPI(title="teleicu hub", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.hub = hub
    app.state.auth = hub.auth
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(StoreError)
    async def store_unavailable(_request: Request, exc: StoreError) -> JSONResponse:
        """A request that needs the store while it fails: say so (503), as the store-unreachable alarm does."""
        return JSONResponse({"detail": f"the hub's store is unavailable, try again shortly: {exc}"}, status_code=503,
                            headers={"Retry-After": "5"})  # fmt: skip

    return app
