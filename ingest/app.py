"""The hub's FastAPI application: it assembles the routers (``ingest.routes``) around one ``Hub``.

Start-up order: the store opens and the hub reloads its sequence marks and
open alarms, then the tick loop starts; shutdown stops the loop first and
then flushes the store. If the hub's core (tick loop, audit writer) ever stops
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

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from console import STATIC_DIR
from ingest.hub import Hub
from ingest.routes import agents, alerts, beds, console, edge, stats

log = logging.getLogger(__name__)

ROUTERS = (beds.router, alerts.router, agents.router, stats.router, edge.router, console.router)


def create_app(hub: Hub, on_core_failure: Callable[[BaseException], None] | None = None) -> FastAPI:
    def core_done(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        log.critical("the hub core stopped: %r", exc, exc_info=exc)
        if on_core_failure is not None:
            on_core_failure(exc)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        runner = asyncio.create_task(hub.run(), name="hub")
        runner.add_done_callback(core_done)
        try:
            yield
        finally:
            runner.cancel()
            await asyncio.wait([runner])  # its failure, if any, was reported by core_done
            await hub.stop()

    app = FastAPI(title="teleicu hub", version="0.1.0", lifespan=lifespan)
    app.state.hub = hub
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app
