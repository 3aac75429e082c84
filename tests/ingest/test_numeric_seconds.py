"""The embedded store's vitals, one row per bed-second: replays, merges, reads and the migration, on real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.stores import sqlite_stores
from ingest.stores.base import Batch, TrendPoint
from ingest.stores.sqlite_db import MIGRATIONS
from wire.messages import Observation

VIEW_ROWS = "SELECT bed, param, t, value, flags, device, t_rx FROM numerics ORDER BY bed, param, t"


def obs(param: str, value: float | None, t: int, *, bed: str = "A-01", flags: int = 0, device: str = "mon", rx: int = 40) -> Observation:
    return Observation(bed, param, value, t, t + rx, device, flags)


async def write(path: Path, batches: list[list[Observation]]) -> None:
    stores = sqlite_stores(path)
    await stores.start()
    try:
        futs = [await stores.samples.submit(Batch("edge-A", 1, seq, mark=seq, obs=b)) for seq, b in enumerate(batches, 1)]
        await asyncio.gather(*futs)
    finally:
        await stores.stop()


def view(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(VIEW_ROWS).fetchall()


def test_frames_sharing_a_bed_second_are_merged_and_a_replay_replaces_its_samples(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    first = [obs("hr", 80.0, 1_000), obs("spo2", None, 1_000, flags=2)]
    later = [obs("rr", 18.0, 1_500), obs("hr", 81.0, 2_000)]
    replay = [obs("hr", 79.5, 1_000, rx=90), obs("spo2", None, 1_000, flags=2)]  # the same samples again, hr corrected
    asyncio.run(write(path, [first, later, replay]))
    assert view(path) == [
        ("A-01", "hr", 1_000, 79.5, 0, "mon", 1_090),
        ("A-01", "hr", 2_000, 81.0, 0, "mon", 2_040),
        ("A-01", "rr", 1_500, 18.0, 0, "mon", 1_540),
        ("A-01", "spo2", 1_000, None, 2, "mon", 1_040),
    ]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT bed, sec FROM numeric_seconds ORDER BY sec").fetchall() == [("A-01", 1), ("A-01", 2)]


def test_one_sample_twice_in_one_frame_is_stored_once_the_last_winning(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    asyncio.run(write(path, [[obs("hr", 80.0, 5_999), obs("hr", 82.0, 5_999)]]))
    assert view(path) == [("A-01", "hr", 5_999, 82.0, 0, "mon", 6_039)]


def test_trends_read_several_parameters_with_inclusive_bounds_and_a_limit_each(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    samples = [obs(p, float(t % 97), t) for t in range(999, 5_002, 250) for p in ("hr", "rr")]
    samples.append(obs("hr", 60.0, 3_000, bed="B-01"))  # another bed: never read
    asyncio.run(write(path, [samples]))

    async def read() -> None:
        stores = sqlite_stores(path)
        await stores.start()
        try:
            got = await stores.samples.trends("A-01", ["hr", "rr", "spo2"], 1_999, 3_499, 100)
            want = [TrendPoint(t, float(t % 97), 0) for t in (1_999, 2_249, 2_499, 2_749, 2_999, 3_249, 3_499)]
            assert got == {"hr": want, "rr": want, "spo2": []}
            assert await stores.samples.trend("A-01", "hr", 1_999, 3_499, 3) == want[:3]
            limited = await stores.samples.trends("A-01", ["hr", "rr"], 0, 10_000, 2)
            assert limited["hr"] == limited["rr"] == [TrendPoint(999, float(999 % 97), 0), TrendPoint(1_249, float(1_249 % 97), 0)]
            assert await stores.samples.trend("A-01", "hr", 3_500, 3_500, 10) == []  # between samples
            assert await stores.samples.count("numerics") == 2 * 17 + 1
        finally:
            await stores.stop()

    asyncio.run(read())


def test_an_older_file_with_one_row_per_sample_is_migrated_keeping_every_sample_exactly(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = [
        ("A-01", "hr", 1_000, 80.0, 0, "mon-1", 1_040),
        ("A-01", "spo2", 1_000, None, 4, "mon-1", 1_041),
        ("A-01", "temp", 1_999, 37.3, 0, "therm", 2_500),
        ("A-01", "hr", 2_000, 81.0, 0, "mon-1", 1_990),  # received before its device time: a skewed clock
        ("B-07", "nibp_sys", 1_234_567_890_123, 121.0, 0, "mon-2", 1_234_567_890_200),
    ]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE numerics (bed TEXT NOT NULL, param TEXT NOT NULL, t INTEGER NOT NULL, value REAL, "
                   "flags INTEGER NOT NULL, device TEXT NOT NULL, t_rx INTEGER NOT NULL, PRIMARY KEY (bed, param, t)) WITHOUT ROWID")  # fmt: skip
        db.executemany("INSERT INTO numerics VALUES (?,?,?,?,?,?,?)", old)
        db.execute("PRAGMA user_version = 1")
    asyncio.run(write(path, [[obs("hr", 82.0, 2_500, device="mon-1")]]))  # the store opens, migrates, then writes
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("SELECT type FROM sqlite_master WHERE name = 'numerics'").fetchone() == ("view",)
    assert view(path) == sorted([*old, ("A-01", "hr", 2_500, 82.0, 0, "mon-1", 2_540)])


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
sample = st.tuples(st.sampled_from(["A-01", "B-02"]), st.sampled_from(["hr", "rr", "spo2"]),
                   st.integers(0, 4_000), st.none() | finite, st.integers(0, 255))  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(st.lists(sample, max_size=12), min_size=1, max_size=6))
def test_what_the_view_holds_is_every_sample_once_as_last_written(tmp_path: Path, frames: list[list[tuple]]) -> None:
    """Frames in any split, with repeats and rewrites: one row per (bed, param, t), the last value written, exact."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as where:
        check_view_after(Path(where) / "s.sqlite3", frames)


def check_view_after(path: Path, frames: list[list[tuple]]) -> None:
    batches = [[obs(p, v, t, bed=b, flags=f) for b, p, t, v, f in frame] for frame in frames]
    asyncio.run(write(path, batches))
    want: dict[tuple[str, str, int], tuple] = {}
    for frame in batches:
        for o in frame:
            want[(o.bed, o.param, o.t_dev)] = (o.bed, o.param, o.t_dev, o.value, o.flags, o.device, o.t_rx)
    assert view(path) == sorted(want.values())
