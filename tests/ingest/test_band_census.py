"""The NEWS2 band census: every band of every ward counted (zeros too), once per slot, summed by the history, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from state_db_support import KINDS, hub_state

from ingest import band_census
from ingest.band_census import CENSUS_MS, BandCensus, census_rows
from ingest.stores import open_stores

# band codes as alerts.news2 has them: -1 unknown, 0 low, 1 low-medium, 2 medium, 3 high
WARDS = ["A", "A", "A", "B", "B"]
BANDS_NOW = [3, 3, -1, 0, 1]


def test_a_count_names_every_band_of_every_ward() -> None:
    rows = census_rows(600_000, WARDS, BANDS_NOW)
    assert len(rows) == 2 * len(band_census.BANDS)
    got = {(w, b): n for _t, w, b, n in rows}
    assert got[("A", "high")] == 2 and got[("A", "unknown")] == 1 and got[("A", "low")] == 0
    assert got[("B", "low")] == 1 and got[("B", "low-medium")] == 1 and sum(got.values()) == len(WARDS)


@pytest.mark.parametrize("kind", KINDS)
def test_a_slot_is_written_once_and_the_history_sums_the_wards_asked_for(tmp_path: Path, kind: str) -> None:
    with hub_state(kind, tmp_path) as state:

        async def go() -> None:
            stores = open_stores(str(tmp_path / "s.sqlite3"), tmp_path, state)
            await stores.start()
            try:
                db = stores.state.db  # type: ignore[attr-defined]
                clock = [5 * CENSUS_MS + 1000]
                bands = list(BANDS_NOW)
                census = BandCensus(db, lambda slot: census_rows(slot, WARDS, bands), lambda: clock[0])
                await census.record()
                bands[2] = 3  # within the same slot the count changes: the slot is written again, not twice
                await census.record()
                clock[0] += CENSUS_MS
                await census.record()
                every = await band_census.history(db, 0, 10 * CENSUS_MS, None)
                only_b = await band_census.history(db, 0, 10 * CENSUS_MS, frozenset({"B"}))
            finally:
                await stores.stop()
            assert [h["t"] for h in every] == [5 * CENSUS_MS, 6 * CENSUS_MS]
            assert every[0]["bands"] == {"high": 3, "medium": 0, "low-medium": 1, "low": 1, "unknown": 0}
            assert only_b[1]["bands"] == {"high": 0, "medium": 0, "low-medium": 1, "low": 1, "unknown": 0}

        asyncio.run(go())
