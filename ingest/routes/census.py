"""``GET /api/census``: each ward's bed counts now (``ingest.ward_census``), for the facility registry's live occupancy.

Counts only, no patient in them, so the records bridge's account and the
KPI viewers may read them; a ward-scoped user sees her own wards.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ingest.auth.guards import CensusReader
from ingest.routes import GUARDED, HubDep
from ingest.ward_census import ward_census

router = APIRouter(prefix="/api", tags=["census"], responses=GUARDED)


@router.get("/census")
async def census(hub: HubDep, principal: CensusReader) -> dict[str, Any]:
    wards = None if principal.all_wards else frozenset(principal.wards)
    now, rows = ward_census(hub, wards)
    return {"now": now, "wards": [r.as_json() for r in rows]}
