"""How many beds of each ward sat in each NEWS2 band, every ``CENSUS_MS``: kept in the state store for the KPI page.

The hub's scores are for now; the command centre also asks how the night went.
Every ten minutes the hub counts each ward's beds by band (``unknown`` where
NEWS2 cannot be completed) and upserts the counts keyed by (slot, ward, band),
so a restart within a slot overwrites rather than doubles it. Rows are small
(five a ward a slot); nothing is deleted yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence

from alerts.news2 import BAND_LABELS
from ingest.stores.base import StoreError
from ingest.stores.group_commit import GroupCommitDatabase
from ingest.stores.portable_sql import upsert

log = logging.getLogger(__name__)

CENSUS_MS = 10 * 60_000
CHECK_S = 5.0
BANDS = ("high", "medium", "low-medium", "low", "unknown")
SCHEMA = """
CREATE TABLE IF NOT EXISTS band_census (
    t INTEGER NOT NULL, ward TEXT NOT NULL, band TEXT NOT NULL, beds INTEGER NOT NULL, PRIMARY KEY (t, ward, band)
) WITHOUT ROWID;
"""
INSERT_SQL = upsert("band_census", "t, ward, band, beds", "t, ward, band")


def census_rows(slot: int, wards: Sequence[str], band_codes: Sequence[int]) -> list[tuple[int, str, str, int]]:
    """Every (slot, ward, band, beds) of one count, zeros included, from each bed's ward and NEWS2 band code."""
    counts = Counter((w, BAND_LABELS[int(b)]) for w, b in zip(wards, band_codes, strict=True))
    return [(slot, w, band, counts[(w, band)]) for w in sorted(set(wards)) for band in BANDS]


class BandCensus:
    def __init__(self, db: GroupCommitDatabase, count: Callable[[int], list[tuple[int, str, str, int]]], clock: Callable[[], int]) -> None:
        self.db = db
        self.count = count  # slot -> rows, from the hub's scores now
        self.clock = clock
        self.last_slot: int | None = None

    async def run(self) -> None:
        """Count once in every slot, as soon as there are beds to count (checked every ``CHECK_S``)."""
        while True:
            if self.clock() // CENSUS_MS * CENSUS_MS != self.last_slot:
                await self.record()
            await asyncio.sleep(CHECK_S)

    async def record(self) -> None:
        slot = self.clock() // CENSUS_MS * CENSUS_MS
        rows = self.count(slot)
        if not rows:
            return
        try:
            await self.db.write([(INSERT_SQL, rows)])
            self.last_slot = slot
        except StoreError as exc:
            log.error("the NEWS2 band census of %d waits for the store: %s", slot, exc)


async def history(db: GroupCommitDatabase, since: int, until: int, wards: frozenset[str] | None) -> list[dict]:
    """Per slot in [since, until]: beds in each band, summed over ``wards`` (None: every ward), oldest first."""
    rows = await db.read("SELECT t, ward, band, beds FROM band_census WHERE t >= ? AND t <= ? ORDER BY t", (since, until))
    out: dict[int, dict[str, int]] = {}
    for t, ward, band, beds in rows:
        if wards is None or ward in wards:
            out.setdefault(t, dict.fromkeys(BANDS, 0))[band] += beds
    return [{"t": t, "bands": bands} for t, bands in out.items()]
