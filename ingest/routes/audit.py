"""The audit log for admins: who did what to which bed, patient, user or agent, when and from where; and its chain check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from ingest.auth import audit_log
from ingest.auth.guards import AuditReader
from ingest.routes import GUARDED, HubDep, epoch_ms, time_range

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=GUARDED)


@router.get("")
async def audit_entries(
    hub: HubDep,
    _admin: AuditReader,
    user: str | None = Query(None, max_length=64, description="the actor: a user name, or agent:<id>"),
    target: str | None = Query(None, max_length=80, description="e.g. bed:A-01, user:meena, agent:edge-A"),
    since: int | None = epoch_ms("ms; default 24 h before until"),
    until: int | None = epoch_ms("ms; default now"),
    limit: int = Query(1000, ge=1, le=10_000),
) -> dict[str, Any]:
    since, until = time_range(hub, since, until, 86_400_000)
    return {"entries": await hub.state_store.audit_entries(user, target, since, until, limit)}


@router.get("/verify")
async def verify_chain(hub: HubDep, _admin: AuditReader) -> dict[str, Any]:
    """Check the whole hash chain; names the first entry that does not verify."""
    ok, brk = await hub.state_store.db.read_with(lambda conn: audit_log.verify(audit_log.rows(conn)))
    return {"verified": ok, "intact": brk is None, "break": None if brk is None else {"seq": brk.seq, "reason": brk.reason}}
