"""Beds: the census with latest vitals and scores, per-bed settings and limits, trends and data gaps."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from alerts.policy import PolicyError
from ingest.routes import HubDep, time_range
from wire.vocabulary import BY_KEY

router = APIRouter(prefix="/api", tags=["beds"])


class LimitBody(BaseModel):
    param: str
    low: float | None = None
    high: float | None = None


class SettingsBody(BaseModel):
    spo2_scale: Literal[1, 2] = Field(description="NEWS2 SpO2 scale; 2 only for confirmed hypercapnic respiratory failure")


@router.get("/beds")
async def list_beds(hub: HubDep, ward: str | None = None) -> dict[str, Any]:
    return {"now": hub.clock(), "beds": hub.beds_json(ward)}


@router.get("/beds/{bed}")
async def get_bed(hub: HubDep, bed: str) -> dict[str, Any]:
    i = hub.state.index.get(bed)
    if i is None:
        raise HTTPException(404, f"unknown bed {bed!r}")
    now = hub.clock()
    return hub.bed_json(i, now, hub.score(now))


@router.put("/beds/{bed}/settings")
async def put_settings(hub: HubDep, bed: str, body: SettingsBody) -> dict[str, Any]:
    try:
        hub.set_spo2_scale(bed, body.spo2_scale)
    except KeyError:
        raise HTTPException(404, f"unknown bed {bed!r}") from None
    return {"bed": bed, "settings": {"spo2_scale": body.spo2_scale}}


@router.put("/beds/{bed}/limits")
async def put_limit(hub: HubDep, bed: str, body: LimitBody) -> dict[str, Any]:
    i = hub.state.index.get(bed)
    if i is None:
        raise HTTPException(404, f"unknown bed {bed!r}")
    try:
        lim = hub.engine.set_bed_limit(bed, hub.state.beds[i].ward, body.param, body.low, body.high)
    except PolicyError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"bed": bed, "param": lim.param, "low": lim.low, "high": lim.high, "delay_s": lim.delay_s,
            "hysteresis": lim.hysteresis, "priority": lim.priority.code}  # fmt: skip


@router.get("/beds/{bed}/trend")
async def trend(
    hub: HubDep,
    bed: str,
    param: str,
    since: int | None = Query(None, description="ms since epoch; default one hour before until"),
    until: int | None = Query(None, description="ms since epoch; default now"),
    limit: int = Query(20_000, ge=1, le=200_000),
) -> dict[str, Any]:
    if param not in BY_KEY:
        raise HTTPException(422, f"unknown parameter {param!r}")
    if bed not in hub.state.index:
        raise HTTPException(404, f"unknown bed {bed!r}")
    since, until = time_range(hub, since, until, 3_600_000)
    if since > until:
        raise HTTPException(422, "since must not be after until")
    points = await hub.store.trend(bed, param, since, until, limit)
    return {
        "bed": bed,
        "param": param,
        "unit": BY_KEY[param].ucum,
        "since": since,
        "until": until,
        "points": [{"t": p.t, "value": p.value, "flags": p.flags} for p in points],
    }


@router.get("/gaps")
async def data_gaps(
    hub: HubDep,
    bed: str | None = None,
    since: int | None = Query(None, description="ms; default 24 h before until"),
    until: int | None = Query(None, description="ms; default now"),
) -> dict[str, Any]:
    """Outages: periods in which no data reached the hub from a bed (backfill may have filled them since)."""
    since, until = time_range(hub, since, until, 86_400_000)
    return {"gaps": await hub.state_store.gaps(since, until, bed)}
