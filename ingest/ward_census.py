"""Each ward's bed counts now, without a patient in them: what the facility registry shows as live occupancy.

``GET /api/census`` answers with one row per ward: beds on the census, beds
with an admitted patient (``occupied``) and without (``free``), beds whose
NEWS2 is 7 or more (band ``high``), and occupied beds whose monitor is silent
(no data within the ward's ``no_data_s``, or its gateway offline:
``monitors_offline``). The records bridge sends these to the facility registry
as they change; they carry counts only, never who is in a bed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from alerts.news2 import BAND_LABELS

if TYPE_CHECKING:
    from ingest.hub import Hub

HIGH = next(code for code, label in BAND_LABELS.items() if label == "high")


@dataclass(frozen=True, slots=True)
class WardCensus:
    ward: str
    beds: int
    occupied: int
    free: int
    news2_high: int
    monitors_offline: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def ward_census(hub: Hub, wards: frozenset[str] | None = None) -> tuple[int, list[WardCensus]]:
    """The time of the count and each ward's row (only ``wards``, when given), wards in name order."""
    now = hub.clock()
    band = hub.score(now).news2.band
    online = hub.agents.online
    rows: dict[str, list[int]] = {}
    for i, b in enumerate(hub.state.beds):
        if wards is not None and b.ward not in wards:
            continue
        row = rows.setdefault(b.ward, [0, 0, 0, 0])
        row[0] += 1
        occupied = hub.patients.census.of_bed(b.bed) is not None
        row[1] += occupied
        row[2] += bool(band[i] == HIGH)
        no_data_ms = hub.engine.policy.for_ward(b.ward).no_data_s * 1000
        silent = b.agent not in online or b.last_rx is None or now - b.last_rx > no_data_ms
        row[3] += occupied and silent
    out = [WardCensus(w, r[0], r[1], r[0] - r[1], r[2], r[3]) for w, r in sorted(rows.items())]
    return now, out

