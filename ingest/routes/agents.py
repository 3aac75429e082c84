"""Edge agents and their devices: who is expected and connected, forgetting a gateway, and unmapped codes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from ingest.routes import HubDep

router = APIRouter(prefix="/api", tags=["agents"])


@router.get("/agents")
async def list_agents(hub: HubDep) -> dict[str, Any]:
    """Edge agents the hub expects (remembered across restarts) or has seen, and whether they are connected."""
    return {"now": hub.clock(), "agents": hub.agents_json()}


@router.delete("/agents/{agent}")
async def forget_agent(hub: HubDep, agent: str) -> dict[str, Any]:
    """Stop expecting a gateway taken out of service: its agent-offline alarm clears and stays cleared."""
    try:
        hub.forget_agent(agent)
    except KeyError:
        raise HTTPException(404, f"unknown agent {agent!r}") from None
    except ValueError as exc:
        raise HTTPException(409, f"{exc}: stop it first") from None
    return {"forgotten": agent}


@router.get("/unmapped")
async def unmapped_codes(
    hub: HubDep,
    device: str | None = Query(None, max_length=64, description="one device id; default every device"),
    limit: int = Query(1000, ge=1, le=10_000),
) -> dict[str, Any]:
    """Codes devices send that the vocabulary does not map, per device: how many samples are stored and the last one.

    They are stored as sent and never scored or alarmed on; a hospital's engineer uses this list to see what a
    monitor sends that teleicu does not chart."""
    return {"codes": await hub.store.unmapped_codes(device, limit)}
