"""Beds: the census with latest vitals and scores, per-bed settings and limits, trends and data gaps.

Clinicians see the beds of the wards they may see; a bed outside them is
answered like an unknown bed (404). Limits and the SpO2 scale are clinical
settings (intensivists), audited with who changed them from where; each is
stored in the state store before it applies (503 when it cannot be: nothing
changed), so a restart, or another hub worker taking the ward, keeps it.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from alerts.policy import PolicyError
from ingest.auth.audit_log import AuditEntry
from ingest.auth.guards import Clinician, Prescriber, client_address, wards_for
from ingest.auth.roles import Principal
from ingest.hub import Hub
from ingest.routes import GUARDED, HubDep, epoch_ms, errors, time_range
from ingest.stores.base import StoreError
from wire.vocabulary import BY_KEY

router = APIRouter(prefix="/api", tags=["beds"], responses=GUARDED)

Param = Literal[tuple(BY_KEY)]  # type: ignore[valid-type]  # a parameter of the vocabulary (422 otherwise)


class LimitBody(BaseModel):
    param: str
    low: float | None = None
    high: float | None = None


class SettingsBody(BaseModel):
    spo2_scale: Literal[1, 2] = Field(description="NEWS2 SpO2 scale; 2 only for confirmed hypercapnic respiratory failure")


async def visible_bed(hub: Hub, principal: Principal, bed: str) -> int:
    """The bed's row, if it is on the census and in one of the principal's wards; 404 otherwise (no probing). On a
    JetStream worker, a bed it has no row of (its ward another worker's) is looked up among the agents registered in
    the shared state store, and given a row here (no agent: nothing here watches it or raises alarms for it)."""
    i = hub.state.index.get(bed)
    if i is None and hub.relay is not None:
        ward = await hub.relay.ward_of_bed(bed)
        if ward is not None and principal.sees_ward(ward):
            i = hub.state.row(bed, ward=ward)
    if i is None or not principal.sees_ward(hub.state.beds[i].ward):
        raise HTTPException(404, f"unknown bed {bed!r}")
    return i


def audit(hub: Hub, request: Request, principal: Principal, action: str, bed: str, detail: dict[str, Any] | None = None) -> None:
    hub.audit.persist(AuditEntry(hub.clock(), principal.username, action, f"bed:{bed}", detail, client_address(request)))


@router.get("/beds")
async def list_beds(hub: HubDep, principal: Clinician, ward: str | None = None) -> dict[str, Any]:
    return {"now": hub.clock(), "beds": hub.beds_json(wards_for(principal, ward))}


@router.get("/beds/{bed}", responses=errors(404))
async def get_bed(hub: HubDep, principal: Clinician, request: Request, bed: str) -> dict[str, Any]:
    """The bed now; on a JetStream worker, as the ward's owner has it (this worker's own row when none answers)."""
    i = await visible_bed(hub, principal, bed)
    audit(hub, request, principal, "bed.view", bed)
    ward = hub.state.beds[i].ward
    if hub.relay is not None and not hub.relay.speaks_for(ward):
        row = await hub.relay.bed_of_owner(bed, ward)
        if row is not None:
            return row
    now = hub.clock()
    return hub.bed_json(i, now, hub.score(now))


@router.put("/beds/{bed}/settings", responses=errors(400, 404, 503))
async def put_settings(hub: HubDep, principal: Prescriber, request: Request, bed: str, body: SettingsBody) -> dict[str, Any]:
    await visible_bed(hub, principal, bed)
    try:
        await hub.set_spo2_scale(bed, body.spo2_scale)
    except StoreError as exc:
        raise HTTPException(503, f"the SpO2 scale could not be stored ({exc}), so it was not changed: try again") from None
    audit(hub, request, principal, "bed.settings", bed, {"spo2_scale": body.spo2_scale})
    return {"bed": bed, "settings": {"spo2_scale": body.spo2_scale}}


@router.get("/beds/{bed}/limits", responses=errors(404))
async def get_limits(hub: HubDep, principal: Clinician, bed: str) -> dict[str, Any]:
    """The limits the alarms of this bed use now: the ward's policy, and this bed's own where set (``source``)."""
    i = await visible_bed(hub, principal, bed)
    own = hub.engine.bed_limits.get(bed, {})
    limits = hub.engine.limits_of(bed, hub.state.beds[i].ward)
    return {"bed": bed, "limits": {p: {"low": lim.low, "high": lim.high, "unit": BY_KEY[p].ucum if p in BY_KEY else None,
                                       "delay_s": lim.delay_s, "priority": lim.priority.code, "source": "bed" if p in own else "ward"}
                                   for p, lim in sorted(limits.items())}}  # fmt: skip


@router.put("/beds/{bed}/limits", responses=errors(400, 404, 503))
async def put_limit(hub: HubDep, principal: Prescriber, request: Request, bed: str, body: LimitBody) -> dict[str, Any]:
    await visible_bed(hub, principal, bed)
    try:
        lim = await hub.set_bed_limit(bed, body.param, body.low, body.high)
    except PolicyError as exc:
        raise HTTPException(400, str(exc)) from None
    except StoreError as exc:
        raise HTTPException(503, f"the limits could not be stored ({exc}), so they were not changed: try again") from None
    audit(hub, request, principal, "bed.limits", bed, {"param": lim.param, "low": lim.low, "high": lim.high})
    return {"bed": bed, "param": lim.param, "low": lim.low, "high": lim.high, "delay_s": lim.delay_s,
            "hysteresis": lim.hysteresis, "priority": lim.priority.code}  # fmt: skip


@router.get("/beds/{bed}/trend", responses=errors(400, 404))
async def trend(
    hub: HubDep,
    principal: Clinician,
    bed: str,
    param: Param,
    since: int | None = epoch_ms("ms since epoch; default one hour before until"),
    until: int | None = epoch_ms("ms since epoch; default now"),
    limit: int = Query(20_000, ge=1, le=200_000),
) -> dict[str, Any]:
    await visible_bed(hub, principal, bed)
    since, until = time_range(hub, since, until, 3_600_000)
    if since > until:
        raise HTTPException(400, "since must not be after until")
    points = await hub.store.trend(bed, param, since, until, limit)
    return {
        "bed": bed,
        "param": param,
        "unit": BY_KEY[param].ucum,
        "since": since,
        "until": until,
        "points": [{"t": p.t, "value": p.value, "flags": p.flags} for p in points],
    }


@router.get("/gaps", responses=errors(404))
async def data_gaps(
    hub: HubDep,
    principal: Clinician,
    bed: str | None = None,
    since: int | None = epoch_ms("ms; default 24 h before until"),
    until: int | None = epoch_ms("ms; default now"),
) -> dict[str, Any]:
    """Outages: periods in which no data reached the hub from a bed (backfill may have filled them since)."""
    if bed is not None:
        await visible_bed(hub, principal, bed)
    since, until = time_range(hub, since, until, 86_400_000)
    gaps = await hub.state_store.gaps(since, until, bed)
    return {"gaps": [g for g in gaps if principal.sees_ward(hub.ward_of(g["bed"]) or "")]}
