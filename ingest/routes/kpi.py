"""The command centre's figures (``GET /api/kpi``): beds monitored and data completeness per ward, NEWS2 now and over
the period, and the alarm statistics; every figure the KPI page shows comes from here.

- **Beds monitored** per ward: beds on the census, beds whose gateway is
  connected, and beds whose data arrived within the ward's ``no_data_s``.
- **Data completeness**: the share of bed-time in the period not inside a
  recorded data gap (``/api/gaps``), per ward.
- **NEWS2 now**: beds by total (incomplete ones counted apart, never as a
  number) and by band; **over the period**: the band census
  (``ingest.band_census``, every 10 minutes).
- **Alarms**: ``alerts.stats`` over the same period (per bed per day by kind
  and priority, time to acknowledge).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException

from alerts.news2 import BAND_LABELS
from alerts.stats import alarm_stats
from ingest import band_census
from ingest.auth.guards import KpiReader
from ingest.routes import GUARDED, HubDep, epoch_ms, errors, time_range

router = APIRouter(prefix="/api", tags=["kpi"], responses=GUARDED)

DAY_MS = 86_400_000


@router.get("/kpi", responses=errors(400))
async def kpi(
    hub: HubDep,
    principal: KpiReader,
    since: int | None = epoch_ms("ms; default 24 h before until"),
    until: int | None = epoch_ms("ms; default now"),
) -> dict[str, Any]:
    since, until = time_range(hub, since, until, DAY_MS)
    if since >= until:
        raise HTTPException(400, "since must be before until")
    now = hub.clock()
    rows = [i for i, b in enumerate(hub.state.beds) if principal.sees_ward(b.ward)]
    wards = sorted({hub.state.beds[i].ward for i in rows})
    gap_ms: Counter[str] = Counter()
    for g in await hub.state_store.gaps(since, until):
        ward = hub.ward_of(g["bed"])
        if ward in wards:
            gap_ms[ward] += max(0, min(g["end"], until) - max(g["start"], since))
    per_ward = []
    for ward in wards:
        mine = [hub.state.beds[i] for i in rows if hub.state.beds[i].ward == ward]
        no_data_ms = hub.engine.policy.for_ward(ward).no_data_s * 1000
        bed_time = len(mine) * (until - since)
        per_ward.append({
            "ward": ward,
            "beds": len(mine),
            "gateway_connected": sum(b.agent in hub.agents.online for b in mine),
            "receiving_data": sum(b.last_rx is not None and now - b.last_rx <= no_data_ms for b in mine),
            "gap_s": round(gap_ms[ward] / 1000, 1),
            "completeness": round(1 - gap_ms[ward] / bed_time, 4) if bed_time else None,
        })
    sc = hub.score(now).news2
    totals = Counter(str(int(sc.total[i])) for i in rows if not np.isnan(sc.total[i]))
    bands = Counter(BAND_LABELS[int(sc.band[i])] for i in rows)
    ward_set = None if principal.all_wards else frozenset(wards)
    return {
        "now": now, "since": since, "until": until,
        "wards": per_ward,
        "news2_now": {"by_total": dict(sorted(totals.items(), key=lambda kv: int(kv[0]))),
                      "incomplete": sum(bool(np.isnan(sc.total[i])) for i in rows),
                      "by_band": {b: bands[b] for b in band_census.BANDS}},
        "band_census": await band_census.history(hub.state_store.db, since, until, ward_set),
        "alarms": alarm_stats(await hub.state_store.audit_between(since, until), since, until, len(rows)),
    }  # fmt: skip
