"""Edge agents and their devices, for hospital IT (admins): who is expected and connected, forgetting a gateway, unmapped codes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from ingest.auth.audit_log import AuditEntry
from ingest.auth.guards import AgentAdmin, client_address
from ingest.routes import GUARDED, HubDep, errors

router = APIRouter(prefix="/api", tags=["agents"], responses=GUARDED)


@router.get("/agents")
async def list_agents(hub: HubDep, _admin: AgentAdmin) -> dict[str, Any]:
    """Edge agents the hub expects (remembered across restarts) or has seen, and whether they are connected."""
    return {"now": hub.clock(), "agents": hub.agents_json()}


@router.delete("/agents/{agent}", responses=errors(404, 409))
async def forget_agent(hub: HubDep, admin: AgentAdmin, request: Request, agent: str) -> dict[str, Any]:
    """Stop expecting a gateway taken out of service: its agent-offline alarm clears and stays cleared."""
    try:
        hub.forget_agent(agent)
    except KeyError:
        raise HTTPException(404, f"unknown agent {agent!r}") from None
    except ValueError as exc:
        raise HTTPException(409, f"{exc}: stop it first") from None
    hub.audit.persist(AuditEntry(hub.clock(), admin.username, "agent.forget", f"agent:{agent}", None, client_address(request)))
    return {"forgotten": agent}


@router.get("/unmapped")
async def unmapped_codes(
    hub: HubDep,
    _admin: AgentAdmin,
    device: str | None = Query(None, max_length=64, description="one device id; default every device"),
    limit: int = Query(1000, ge=1, le=10_000),
) -> dict[str, Any]:
    """Codes devices send that the vocabulary does not map, per device: how many samples are stored and the last one.

    They are stored as sent and never scored or alarmed on; a hospital's engineer uses this list to see what a
    monitor sends that teleicu does not chart."""
    return {"codes": await hub.store.unmapped_codes(device, limit)}
