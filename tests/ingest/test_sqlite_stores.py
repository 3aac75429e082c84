"""The embedded stores on a real SQLite file: one writer for samples and state, tombstones, and the wave-1 file
(and the state's writer on PostgreSQL where the behaviour is shared)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import psycopg
import pytest
from state_db_support import KINDS, hub_state

from ingest.stores import open_stores, sqlite_stores
from ingest.stores.base import Batch, ConstraintError
from ingest.stores.sqlite_db import MIGRATIONS
from wire.messages import Observation

WAVE1_SCHEMA = """
CREATE TABLE alerts (id INTEGER PRIMARY KEY, state TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE alert_audit (alert_id INTEGER NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, by TEXT, note TEXT, body TEXT NOT NULL);
CREATE TABLE agents (agent TEXT PRIMARY KEY, ward TEXT NOT NULL, beds TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE agent_seq (agent TEXT NOT NULL, epoch INTEGER NOT NULL, last_seq INTEGER NOT NULL, PRIMARY KEY (agent, epoch)) WITHOUT ROWID;
"""


def test_a_wave_1_store_is_migrated_keeping_alarms_audit_agents_and_marks(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(WAVE1_SCHEMA)
        body = {"id": 7, "state": "active", "kind": "news2", "bed": "A-01"}
        db.execute("INSERT INTO alerts VALUES (7, 'active', ?)", (json.dumps(body),))
        db.execute("INSERT INTO alert_audit VALUES (7, 100, 'raised', NULL, NULL, ?)", (json.dumps(body),))
        db.execute("INSERT INTO alert_audit VALUES (7, 200, 'acknowledged', 'Nurse', NULL, ?)", (json.dumps(body),))
        db.execute("INSERT INTO agents VALUES ('edge-A', 'A', '[\"A-01\"]')")
        db.execute("INSERT INTO agent_seq VALUES ('edge-A', 1, 42)")

    async def go() -> None:
        stores = sqlite_stores(path)
        await stores.start()
        try:
            [alert] = await stores.state.open_alerts()
            assert alert["id"] == "7"  # the same alarm, its id now text like the UUIDv7 ids minted from now on
            assert [e["event"] for e in await stores.state.alert_history("7")] == ["raised", "acknowledged"]
            assert await stores.state.known_agents() == [("edge-A", "A", ["A-01"])]
            assert await stores.state.last_seqs() == {("edge-A", 1): 42}
            await stores.state.forget_agent("edge-A")
            assert await stores.state.known_agents() == []
        finally:
            await stores.stop()
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)

    asyncio.run(go())


def test_samples_and_marks_commit_together_and_agent_writes_keep_their_order(tmp_path: Path) -> None:
    async def go() -> None:
        stores = sqlite_stores(tmp_path / "s.sqlite3")
        await stores.start()
        try:
            obs = [Observation("A-01", "hr", 80.0, 1000, 1001, "m")]
            futs = [await stores.samples.submit(Batch("edge-A", 5, seq, mark=seq, obs=obs)) for seq in (1, 3, 2)]
            # save, forget, save again in one commit: the last word wins, as the hub meant it
            writes = [stores.state.save_agent("edge-B", "B", ["B-01"]), stores.state.forget_agent("edge-B"),
                      stores.state.save_agent("edge-B", "B", ["B-02"])]  # fmt: skip
            await asyncio.gather(*futs, *writes)
            assert await stores.state.last_seqs() == {("edge-A", 5): 3}  # the highest mark, whatever the order
            assert await stores.state.known_agents() == [("edge-B", "B", ["B-02"])]
            assert stores.samples.stats()["numerics_written"] == 3 and await stores.samples.count("numerics") == 1
        finally:
            await stores.stop()

    asyncio.run(go())


@pytest.mark.parametrize("kind", KINDS)
def test_a_call_that_breaks_a_constraint_is_refused_alone_and_the_store_stays_healthy(tmp_path: Path, kind: str) -> None:
    """A unique-constraint failure is the caller's doing: the calls and writes committed with it still land (SQLite, and
    PostgreSQL as the hub's ``--state``)."""
    with hub_state(kind, tmp_path) as state:
        asyncio.run(_constraint_refused_alone(tmp_path, state))


async def _constraint_refused_alone(tmp_path: Path, state: str | None) -> None:
    stores = open_stores(str(tmp_path / "s.sqlite3"), tmp_path, state)
    await stores.start()
    db = stores.state.db  # type: ignore[attr-defined]
    await db.call(lambda c: c.execute("CREATE TABLE t (k TEXT PRIMARY KEY)"))
    await db.call(lambda c: c.execute("INSERT INTO t VALUES ('a')"))
    clash = asyncio.ensure_future(db.call(lambda c: c.execute("INSERT INTO t VALUES ('a')")))
    fine = asyncio.ensure_future(db.call(lambda c: c.execute("INSERT INTO t VALUES ('b')")))
    alarm = asyncio.ensure_future(stores.state.save_gap("T-01", 1, 2))  # another writer's item in the same commit
    results = await asyncio.gather(clash, fine, alarm, return_exceptions=True)
    assert isinstance(results[0], ConstraintError) and isinstance(results[0].__cause__, (sqlite3.IntegrityError, psycopg.IntegrityError))
    assert not isinstance(results[1], BaseException) and results[2] is None, results
    assert db.error is None and db.counters["write_errors"] == 0
    assert sorted(r[0] for r in await db.read("SELECT k FROM t")) == ["a", "b"]
    assert await stores.state.gaps(0, 10) == [{"bed": "T-01", "start": 1, "end": 2}]
    await stores.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_one_beds_alarm_history_is_not_crowded_out_by_newer_alarms_of_other_beds(tmp_path: Path, kind: str) -> None:
    with hub_state(kind, tmp_path) as state:

        async def go() -> None:
            stores = open_stores(str(tmp_path / "s.sqlite3"), tmp_path, state)
            await stores.start()
            try:
                for i, bed in enumerate(["X-01", *["Y-01"] * 5]):
                    body = {"id": f"a{i:02d}", "state": "resolved", "kind": "news2", "bed": bed, "ward": bed[0]}
                    await stores.state.save_alert(body, "resolved", None, 1000 + i)
                assert [a["id"] for a in await stores.state.alerts(None, 2, "X-01")] == ["a00"]
                assert [a["id"] for a in await stores.state.alerts("resolved", 2)] == ["a05", "a04"]
            finally:
                await stores.stop()

        asyncio.run(go())
