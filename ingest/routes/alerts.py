"""Alarms: the list, acknowledge, silence (with a reason), each alarm's audited history, and alarm statistics.

Who acknowledges or silences is the signed-in user, never a name in the request.
A ward nurse sees and acts on her wards' alarms only (403 for another ward's);
alarms about the hub itself (no ward) are shown to every clinician. On a
JetStream hub worker, alarms of wards another worker owns are listed from the
shared state store and acted on by their owner (``ingest.console_relay``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from alerts.kinds import family_of
from alerts.lifecycle import AlertError
from alerts.stats import alarm_stats
from ingest.auth.audit_log import AuditEntry
from ingest.auth.guards import AlarmActor, Clinician, KpiReader, check_ward, client_address, wards_for
from ingest.auth.roles import Principal
from ingest.console_relay_contract import AlarmAction
from ingest.hub import Hub
from ingest.routes import GUARDED, HubDep, epoch_ms, errors, time_range

router = APIRouter(prefix="/api", tags=["alerts"], responses=GUARDED)


class SilenceBody(BaseModel):
    reason: str = Field(min_length=1, max_length=200, description="why the alarm is silenced")
    seconds: float = Field(gt=0, le=900, description="at most 15 minutes")


def _open_alarm_ward(hub: Hub, principal: Principal, alert_id: str) -> None:
    """403 for an open alarm of another ward (an unknown or resolved id is for the book to refuse, 409)."""
    a = hub.book.by_id.get(alert_id)
    if a is not None and a.ward:
        check_ward(principal, a.ward, f"alarm {alert_id}")


def _audit(hub: Hub, request: Request, principal: Principal, action: str, alert: dict[str, Any], detail: dict[str, Any]) -> None:
    target = f"bed:{alert['bed']}" if alert.get("bed") else str(alert.get("subject", ""))
    entry = AuditEntry(hub.clock(), principal.username, action, target, {"alert": alert["id"], "kind": alert["kind"], **detail},
                       client_address(request))  # fmt: skip
    hub.audit.persist(entry)


@router.get("/alerts")
async def list_alerts(
    hub: HubDep,
    principal: Clinician,
    state: Literal["open", "active", "acknowledged", "resolved", "all"] = "open",
    ward: str | None = None,
    bed: str | None = None,
    kind: str | None = Query(None, description="exact kind, or a family such as 'limit' or 'technical'"),
    priority: Literal["high", "medium", "low"] | None = None,
    category: Literal["physiological", "technical"] | None = None,
    limit: int = Query(500, ge=1, le=10_000),
) -> dict[str, Any]:
    wards = wards_for(principal, ward)
    if state in ("resolved", "all"):
        alerts = await hub.state_store.alerts(None if state == "all" else "resolved", limit, bed)
    else:
        alerts = [a.to_json() for a in hub.book.list_open()]
        if hub.relay is not None:  # a JetStream worker: other workers' wards' open alarms, as their owners persisted them
            alerts += [a for a in await hub.state_store.open_alerts() if a.get("ward") and not hub.relay.speaks_for(a["ward"])]
        if state != "open":
            alerts = [a for a in alerts if a["state"] == state]

    def keep(a: dict[str, Any]) -> bool:
        return (
            (wards is None or a["ward"] in wards or (not a["ward"] and ward is None))
            and (bed is None or a["bed"] == bed)
            and (kind is None or a["kind"] == kind or family_of(a["kind"]) == kind)
            and (priority is None or a["priority"] == priority)
            and (category is None or a["category"] == category)
        )

    return {"alerts": [a for a in alerts if keep(a)][:limit]}


async def _elsewhere(hub: Hub, principal: Principal, action: AlarmAction) -> dict[str, Any] | None:
    """On a JetStream worker, an alarm of a ward another worker owns is acted on by its owner (None: it is this
    hub's to act on). The clinician's ward is checked here, as for this hub's own alarms."""
    relay = hub.relay
    ward = await relay.ward_of_alert(action.alert_id) if relay is not None else None
    if relay is None or ward is None:
        return None
    check_ward(principal, ward, f"alarm {action.alert_id}")
    result = await relay.act(ward, action)
    if result.alert is None:
        raise HTTPException(result.status, result.detail)
    return result.alert


@router.post("/alerts/{alert_id}/ack", responses=errors(409))
async def ack_alert(hub: HubDep, principal: AlarmActor, request: Request, alert_id: str) -> dict[str, Any]:
    _open_alarm_ward(hub, principal, alert_id)
    try:
        alert = await _elsewhere(hub, principal, AlarmAction("ack", alert_id, principal.display_name))
        if alert is None:
            alert = hub.acknowledge(alert_id, principal.display_name)
    except AlertError as exc:
        raise HTTPException(409, str(exc)) from None
    _audit(hub, request, principal, "alarm.acknowledge", alert, {})
    return alert


@router.post("/alerts/{alert_id}/silence", responses=errors(400, 409))
async def silence_alert(hub: HubDep, principal: AlarmActor, request: Request, alert_id: str, body: SilenceBody) -> dict[str, Any]:
    _open_alarm_ward(hub, principal, alert_id)
    try:
        alert = await _elsewhere(hub, principal, AlarmAction("silence", alert_id, principal.display_name, body.reason, body.seconds))
        if alert is None:
            alert = hub.silence(alert_id, principal.display_name, body.reason, body.seconds)
    except AlertError as exc:
        raise HTTPException(409, str(exc)) from None
    _audit(hub, request, principal, "alarm.silence", alert, {"reason": body.reason, "seconds": body.seconds})
    return alert


@router.get("/alerts/{alert_id}/history", responses=errors(404))
async def alert_history(hub: HubDep, principal: Clinician, alert_id: str) -> dict[str, Any]:
    events = await hub.state_store.alert_history(alert_id)
    if not events or not (principal.sees_ward(events[-1]["alert"].get("ward") or "") or not events[-1]["alert"].get("ward")):
        raise HTTPException(404, f"no alarm {alert_id}")
    return {"alert": events[-1]["alert"], "events": [{k: e[k] for k in ("at", "event", "by", "note")} for e in events]}


@router.get("/alarm-stats", responses=errors(400))
async def alarm_statistics(
    hub: HubDep,
    _reader: KpiReader,
    since: int | None = epoch_ms("ms; default 24 h before until"),
    until: int | None = epoch_ms("ms; default now"),
) -> dict[str, Any]:
    since, until = time_range(hub, since, until, 86_400_000)
    if since >= until:
        raise HTTPException(400, "since must be before until")
    return alarm_stats(await hub.state_store.audit_between(since, until), since, until, hub.state.n)
