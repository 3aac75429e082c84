"""Each admitted patient's NEWS2 over the stay: the changes a tick records, and the band changes it announces.

After every tick the hub asks ``ScoreChanges.since_last`` which open
encounters' NEWS2 moved: a new total (or partial sum, when incomplete) or band
becomes a ``ScorePoint`` kept for the discharge summary; a new band, or a score
turning complete or incomplete, also becomes a ``score.band_changed`` outbox
event. ``restore`` takes each open encounter's last recorded point at start,
so a hub restart announces nothing that did not change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alerts.news2 import BAND_LABELS, News2Result
from ingest.patients.census import Census
from ingest.stores.portable_sql import upsert
from wire.outbox_events import ScoreBandChanged

# the SQL of one recorded point: (encounter_id, t, total, band, partial)
POINT_SQL = upsert("encounter_scores", "encounter_id, t, total, band, partial", "encounter_id, t")
LAST_POINTS_SQL = """
SELECT s.encounter_id, s.total, s.band, s.partial FROM encounter_scores s
JOIN (SELECT encounter_id, max(t) AS t FROM encounter_scores GROUP BY encounter_id) m USING (encounter_id, t)
JOIN encounters e USING (encounter_id) WHERE e.status = 'open'
"""


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """One point to record, and the outbox event when the band (or completeness) changed."""

    point: tuple[str, int, int | None, str, int]
    event: ScoreBandChanged | None


class ScoreChanges:
    def __init__(self) -> None:
        self._last: dict[str, tuple[int | None, str, int]] = {}  # encounter -> (total, band, partial)

    def restore(self, rows: list[tuple[str, int | None, str, int]]) -> None:
        self._last = {eid: (total, band, partial) for eid, total, band, partial in rows}

    def since_last(self, now: int, census: Census, index: dict[str, int], news2: News2Result, scale2: np.ndarray) -> list[ScoreChange]:
        out: list[ScoreChange] = []
        live = set()
        for bed, (enc, _patient) in census.by_bed.items():
            live.add(enc.encounter_id)
            i = index.get(bed)
            if i is None or i >= len(news2.partial):
                continue  # its monitor has not been heard from yet
            total = None if np.isnan(news2.total[i]) else int(news2.total[i])
            band, partial = BAND_LABELS[int(news2.band[i])], int(news2.partial[i])
            now_key = (total, band, partial)
            before = self._last.get(enc.encounter_id)
            if before == now_key:
                continue
            self._last[enc.encounter_id] = now_key
            event = None
            if before is None or before[1] != band or (before[0] is None) != (total is None):
                row = news2.row(i)
                event = ScoreBandChanged(encounter_id=enc.encounter_id, patient_id=enc.patient_id, bed=bed, t=now, total=total,
                                         partial=partial, band=band, subscores=row["subscores"], missing=row["missing"],
                                         spo2_scale=2 if scale2[i] else 1)  # fmt: skip
            out.append(ScoreChange((enc.encounter_id, now, total, band, partial), event))
        for gone in self._last.keys() - live:  # discharged or cancelled: forget, a readmission starts afresh
            del self._last[gone]
        return out
