"""Health and counters: liveness, the stats JSON and the same as Prometheus text."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from ingest import prometheus
from ingest.routes import HubDep

router = APIRouter(tags=["stats"])


@router.get("/healthz")
async def healthz(hub: HubDep) -> dict[str, Any]:
    return {"ok": True, "beds": hub.state.n}


@router.get("/api/stats")
async def stats(hub: HubDep) -> dict[str, Any]:
    return hub.stats()


@router.get("/metrics", include_in_schema=False)
async def metrics(hub: HubDep) -> PlainTextResponse:
    """Prometheus text exposition of the same counters as /api/stats."""
    return PlainTextResponse(prometheus.render(hub.stats()), media_type=prometheus.CONTENT_TYPE)
