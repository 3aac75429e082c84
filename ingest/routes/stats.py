"""Health and counters: liveness (open), the stats JSON and the same as Prometheus text (KPI readers: bearer token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from ingest import prometheus
from ingest.auth.guards import KpiReader
from ingest.routes import GUARDED, HubDep

router = APIRouter(tags=["stats"])


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    """Liveness, for load balancers and service managers: no credentials, and nothing about the patients."""
    return {"ok": True}


@router.get("/api/stats", responses=GUARDED)
async def stats(hub: HubDep, _reader: KpiReader) -> dict[str, Any]:
    return hub.stats()


@router.get("/metrics", include_in_schema=False, responses=GUARDED)
async def metrics(hub: HubDep, _reader: KpiReader) -> PlainTextResponse:
    """Prometheus text exposition of the same counters as /api/stats."""
    return PlainTextResponse(prometheus.render(hub.stats()), media_type=prometheus.CONTENT_TYPE)
