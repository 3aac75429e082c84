"""Alarms: the list, acknowledge, silence (with a reason), each alarm's audited history, and alarm statistics."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from alerts.kinds import family_of
from alerts.lifecycle import AlertError
from alerts.stats import alarm_stats
from ingest.routes import HubDep, time_range

router = APIRouter(prefix="/api", tags=["alerts"])


class AckBody(BaseModel):
    by: str = Field(min_length=1, max_length=80, description="name of the person acknowledging")
    role: str | None = Field(None, max_length=40, description="e.g. bedside_nurse, teleicu_nurse, intensivist")
    ward: str | None = Field(None, max_length=64, description="the ward of a bedside nurse's console")


class SilenceBody(BaseModel):
    by: str = Field(min_length=1, max_length=80)
    reason: str = Field(min_length=1, max_length=200, description="why the alarm is silenced")
    seconds: float = Field(gt=0, le=900, description="at most 15 minutes")


@router.get("/alerts")
async def list_alerts(
    hub: HubDep,
    state: Literal["open", "active", "acknowledged", "resolved", "all"] = "open",
    ward: str | None = None,
    bed: str | None = None,
    kind: str | None = Query(None, description="exact kind, or a family such as 'limit' or 'technical'"),
    priority: Literal["high", "medium", "low"] | None = None,
    category: Literal["physiological", "technical"] | None = None,
    limit: int = Query(500, ge=1, le=10_000),
) -> dict[str, Any]:
    if state in ("resolved", "all"):
        alerts = await hub.state_store.alerts(None if state == "all" else "resolved", limit)
    else:
        alerts = [a.to_json() for a in hub.book.list_open()]
        if state != "open":
            alerts = [a for a in alerts if a["state"] == state]

    def keep(a: dict[str, Any]) -> bool:
        return (
            (ward is None or a["ward"] == ward)
            and (bed is None or a["bed"] == bed)
            and (kind is None or a["kind"] == kind or family_of(a["kind"]) == kind)
            and (priority is None or a["priority"] == priority)
            and (category is None or a["category"] == category)
        )

    return {"alerts": [a for a in alerts if keep(a)][:limit]}


@router.post("/alerts/{alert_id}/ack")
async def ack_alert(hub: HubDep, alert_id: str, body: AckBody) -> dict[str, Any]:
    a = hub.book.by_id.get(alert_id)
    if a is not None and body.role == "bedside_nurse" and body.ward != a.ward:
        raise HTTPException(403, f"a bedside nurse of ward {body.ward!r} cannot acknowledge an alarm of ward {a.ward!r}")
    try:
        return hub.acknowledge(alert_id, body.by)
    except AlertError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/alerts/{alert_id}/silence")
async def silence_alert(hub: HubDep, alert_id: str, body: SilenceBody) -> dict[str, Any]:
    try:
        return hub.silence(alert_id, body.by, body.reason, body.seconds)
    except AlertError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/alerts/{alert_id}/history")
async def alert_history(hub: HubDep, alert_id: str) -> dict[str, Any]:
    events = await hub.state_store.alert_history(alert_id)
    if not events:
        raise HTTPException(404, f"no alarm {alert_id}")
    return {"alert": events[-1]["alert"], "events": [{k: e[k] for k in ("at", "event", "by", "note")} for e in events]}


@router.get("/alarm-stats")
async def alarm_statistics(
    hub: HubDep,
    since: int | None = Query(None, description="ms; default 24 h before until"),
    until: int | None = Query(None, description="ms; default now"),
) -> dict[str, Any]:
    since, until = time_range(hub, since, until, 86_400_000)
    if since >= until:
        raise HTTPException(422, "since must be before until")
    return alarm_stats(await hub.state_store.audit_between(since, until), since, until, hub.state.n)
