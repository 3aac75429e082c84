"""The InfluxDB sample store against a real influxd: retention set-up, tags, trends (raw and 1-minute), poison, outage backpressure."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

import pytest
from async_deadline import eventually
from influx_support import Influxd, start_influxd
from support import free_port

from ingest.influx_config import parse_influx_url
from ingest.stores.influx_samples import InfluxSampleStore
from ingest.stores.sqlite_db import SQLiteDatabase
from ingest.stores.sql_state import STATE_SCHEMAS
from ingest.stores.sql_state import SQLStateStore
from ingest.line_protocol import unquote_tag_value
from ingest.score_log import ScoreRecord
from ingest.stores.base import Batch
from teleicu import config_files
from wire.messages import Observation, UnmappedObservation, WaveChunk

pytestmark = pytest.mark.integration

MIN = 60_000
HOUR = 3_600_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_db() -> str:
    return "t_" + uuid.uuid4().hex[:10]


class StoreWithState(InfluxSampleStore):
    """The InfluxDB sample store with its SQLite state store, opened before it and closed after it (as the hub does)."""

    async def start(self) -> None:
        await self.state.start()
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        await self.state.stop()


def make_store(influx: Influxd, tmp: Path, db: str, **opts: object) -> StoreWithState:
    cfg = parse_influx_url(influx.store_url(db, state=tmp / f"{db}.sqlite3", **opts))
    return StoreWithState(cfg, SQLStateStore(SQLiteDatabase(cfg.state, STATE_SCHEMAS)))


async def wait_for(cond: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    return await eventually(cond, what, timeout, interval=0.02)


def test_start_creates_retention_policies_and_continuous_queries_idempotently(influx: Influxd, tmp_path: Path) -> None:
    db = new_db()

    async def run(**opts: object) -> None:
        store = make_store(influx, tmp_path, db, **opts)
        await store.start()
        await store.stop()

    asyncio.run(run())
    asyncio.run(run())  # a second start changes nothing and does not fail
    rps = {r["name"]: r for r in influx.rows(f'SHOW RETENTION POLICIES ON "{db}"', db)}
    assert rps["raw"]["duration"] == "168h0m0s" and rps["raw"]["default"] is True
    assert rps["agg_1m"]["duration"] == f"{1825 * 24}h0m0s"
    cqs = [row for series in influx.query("SHOW CONTINUOUS QUERIES")[0]["series"] if series["name"] == db for row in series["values"]]
    assert sorted(name for name, _ in cqs) == ["teleicu_news2_1m", "teleicu_vitals_1m"]
    assert all("RESAMPLE EVERY 1m FOR 10m" in q and "GROUP BY time(1m), *" in q for _, q in cqs)

    asyncio.run(run(raw_retention="3d", agg_retention="INF", resample_for="20m"))  # configuration changes are applied
    rps = {r["name"]: r for r in influx.rows(f'SHOW RETENTION POLICIES ON "{db}"', db)}
    assert rps["raw"]["duration"] == "72h0m0s" and rps["agg_1m"]["duration"] == "0s"
    cqs = [row for series in influx.query("SHOW CONTINUOUS QUERIES")[0]["series"] if series["name"] == db for row in series["values"]]
    assert len(cqs) == 2 and all("FOR 20m" in q for _, q in cqs)


def test_points_carry_tags_values_and_device_times_and_replays_overwrite(influx: Influxd, tmp_path: Path) -> None:
    db = new_db()
    t0 = now_ms() - 30_000
    weird_bed = 'B "7",x=y\\z'  # quotes, comma, equals, space and a backslash in one identifier
    obs = [Observation("A-01", "hr", 70.0 + i, t0 + i * 1000, t0 + i * 1000 + 5, "mon-1") for i in range(20)]
    obs += [Observation("A-01", "spo2", None, t0 + 500, t0 + 600, "mon-1", 1)]
    obs += [Observation(weird_bed, "rr", 18.0, t0, t0 + 1, "mon 2")]
    waves = [WaveChunk(9, "A-01", "ecg_ii", t0 + k * 200, 250, 0.005, tuple(range(k, k + 50))) for k in range(5)]

    async def run() -> None:
        store = make_store(influx, tmp_path, db, flush_ms=20, hospital="Civil Hospital")
        await store.start()
        store.set_bed_tags("A-01", ward="ICU A")
        try:
            await store.write(Batch("edge-A", 1, 1, mark=0, obs=obs[:10]))
            await store.write(Batch("edge-A", 1, 2, mark=1, obs=obs[10:], waves=waves))
            await store.write(Batch("edge-A", 2, 1, mark=0, obs=obs, waves=waves))  # the same samples again (a replay)
            await store.write(Batch("edge-A", 1, 0, mark=2))  # a watermark alone, as the hub writes at stop
            assert await store.state.last_seqs() == {("edge-A", 1): 2, ("edge-A", 2): 0}  # the highest mark written, in the state store
            assert [p.value for p in await store.trend(weird_bed, "rr", t0 - 1, t0 + 1, 10)] == [18.0]
            stats = store.stats()
            assert stats["numerics_written"] == 2 * len(obs) and stats["dropped"] == 0 and stats["batches"] == 4
        finally:
            await store.stop()

    asyncio.run(run())
    rows = influx.rows('SELECT * FROM "raw"."vitals"', db)
    assert len(rows) == len(obs)  # every sample once, however often it was written
    got = {(unquote_tag_value(r["bed"]), r["param"], r["time"]): r for r in rows}
    assert 'B "7",x=y%5Cz' in {r["bed"] for r in rows}  # the backslash is percent-quoted in the stored tag
    for o in obs:
        r = got[(o.bed, o.param, o.t_dev)]
        assert (r["value"], r["flags"], r["t_rx"], r["device"]) == (o.value, o.flags, o.t_rx, o.device)
        assert r["hospital"] == "Civil Hospital" and r["ward"] == ("ICU A" if o.bed == "A-01" else None)
    assert len(influx.rows('SELECT * FROM "raw"."waveform"', db)) == len(waves)


def test_trend_is_raw_for_short_ranges_and_minute_means_for_long_ones(influx: Influxd, tmp_path: Path) -> None:
    db = new_db()
    now = now_ms()
    start = (now - 24 * HOUR) // MIN * MIN
    # 24 h of one reading every 10 s for the bed under test, and a neighbour that must not leak in
    times = list(range(start, now - 5_000, 10_000))
    values = {t: float(60 + (t // 10_000) % 37) for t in times}

    async def run() -> None:
        store = make_store(influx, tmp_path, db, batch_lines=5000, flush_ms=50)
        await store.start()
        try:
            futs = []
            for seq, i in enumerate(range(0, len(times), 500), start=1):
                part = times[i : i + 500]
                batch = [Observation("A-01", "hr", values[t], t, t, "m") for t in part]
                batch += [Observation("A-02", "hr", 200.0, t, t, "m") for t in part]
                futs.append(await store.submit(Batch("e", 1, seq, mark=seq - 1, obs=batch)))
            await asyncio.gather(*futs)
            await wait_for(lambda: store._late is None and store.stats().get("backfills", 0) > 0, "late minutes to be aggregated")

            short = await store.trend("A-01", "hr", now - HOUR, now, 100_000)
            expect = [(t, values[t]) for t in times if now - HOUR <= t <= now]
            assert [(p.t, p.value) for p in short] == expect

            long = await store.trend("A-01", "hr", start, now, 100_000)
            by_minute: dict[int, list[float]] = {}
            for t in times:
                by_minute.setdefault(t // MIN * MIN, []).append(values[t])
            assert [p.t for p in long] == sorted(by_minute)
            for p in long:
                assert p.value == pytest.approx(sum(by_minute[p.t]) / len(by_minute[p.t]))
            limited = await store.trend("A-01", "hr", start, now, 7)
            assert [p.t for p in limited] == sorted(by_minute)[:7]
        finally:
            await store.stop()

    asyncio.run(run())


def test_a_poison_batch_is_dropped_counted_and_later_writes_go_on(influx: Influxd, tmp_path: Path) -> None:
    db = new_db()
    now = now_ms()
    old = now - 2 * 24 * HOUR  # another shard than today's: the conflict stays there

    async def run() -> None:
        store = make_store(influx, tmp_path, db, flush_ms=20)
        await store.start()
        try:
            await store.write(Batch("e", 1, 0))  # the writer has set the database up
            # someone wrote a string into the float field 'value' of that shard first
            async with httpx.AsyncClient() as client:
                resp = await client.post(f"{influx.url}/write", params={"db": db, "rp": "raw", "precision": "ms"}, content=f'vitals,bed=X,param=hr value="oops" {old}')
            assert resp.status_code == 204
            poison = Batch("e", 1, 1, mark=0, obs=[Observation("A-01", "hr", 80.0, old + 1000, now, "m"), Observation("A-01", "hr", 81.0, now - 1000, now, "m")])
            await store.write(poison)  # completes: handled, even though InfluxDB refused a line of it
            for seq in range(2, 5):
                await store.write(Batch("e", 1, seq, mark=seq - 1, obs=[Observation("A-01", "hr", 90.0 + seq, now + seq, now, "m")]))
            stats = store.stats()
            assert stats["dropped"] == 1 and stats["poison_writes"] == 1
            assert stats["written"] == 4 and stats["batches"] == 5
            assert await store.state.last_seqs() == {("e", 1): 3}  # the poison frame counts as handled
        finally:
            await store.stop()

    asyncio.run(run())
    stored = influx.rows('SELECT "value" FROM "raw"."vitals" WHERE "bed" = \'A-01\'', db)
    assert sorted(r["value"] for r in stored) == [81.0, 92.0, 93.0, 94.0]


def test_outage_makes_submit_wait_and_nothing_is_lost(tmp_path: Path) -> None:
    influx = start_influxd(tmp_path)
    db = new_db()
    t0 = now_ms() - 60_000
    try:

        async def run() -> None:
            store = make_store(influx, tmp_path, db, flush_ms=20, max_buffer_lines=50, backoff_max_ms=500)
            await store.start()
            futs: list[asyncio.Future[None]] = []

            async def produce() -> None:
                for seq in range(1, 41):
                    batch = Batch("e", 1, seq, mark=seq - 1, obs=[Observation("A-01", "hr", 60.0 + k, t0 + seq * 100 + k, t0, "m") for k in range(10)])
                    futs.append(await store.submit(batch))

            try:
                await store.write(Batch("e", 1, 0, obs=[]))
                influx.kill()
                producer = asyncio.create_task(produce())
                await wait_for(lambda: store.stats()["retried"] >= 3 and store.stats()["backpressure_waits"] >= 1, "retries and a full buffer")
                assert not producer.done()  # submit is waiting: backpressure, not growth
                assert store.error is not None and "not taking writes" in store.error  # the hub's technical alarm
                assert store.stats()["buffered"] <= 50 and not any(f.done() for f in futs)
                influx.start()
                await asyncio.wait_for(producer, 60)
                await asyncio.wait_for(asyncio.gather(*futs), 60)
                stats = store.stats()
                assert store.error is None
                assert stats["dropped"] == 0 and stats["written"] >= 400
                assert await store.state.last_seqs() == {("e", 1): 39}
            finally:
                await store.stop()

        asyncio.run(run())
        assert influx.rows('SELECT count("value") FROM "raw"."vitals"', db)[0]["count"] == 400
    finally:
        influx.stop()


def test_grafana_dashboard_queries_run_on_the_schema(influx: Influxd, tmp_path: Path) -> None:
    """Every InfluxQL query of config/grafana/teleicu.json runs without error on data the store wrote."""
    import json

    db = new_db()
    now = now_ms()

    async def run() -> None:
        store = make_store(influx, tmp_path, db, flush_ms=20)
        await store.start()
        store.set_bed_tags("A-01", ward="A", hospital="H1")
        try:
            params = ("hr", "spo2", "rr", "temp", "nibp_sys", "etco2")
            unmapped = [UnmappedObservation("A-01", "gw-1", "MDC", "150457", "MDC_PULS_OXIM_PULS_RATE", "72", "/min", "R", now - 900, now)]
            chunk = WaveChunk(2, "A-01", "ecg_ii", now - 800, 250, 0.005, tuple(range(50)))
            await store.write(Batch("e", 1, 1, obs=[Observation("A-01", p, 50.0, now - 1000, now, "m") for p in params], unmapped=unmapped))
            await store.write(Batch("e", 1, 2, waves=[chunk]))
            row = {"total": 3, "partial": 3, "subscores": {}, "incomplete": False, "missing": []}
            store.record_scores([
                ScoreRecord("news2", "A-01", "A", now - 500, row | {"band": "low", "any_three": False}, scale=1),
                ScoreRecord("mews", "A-01", "A", now - 500, row | {"triggered": False}),
                ScoreRecord("qsofa", "A-01", "A", now - 500, dict(row, total=2, partial=2) | {"positive": True}),
            ])  # fmt: skip
            alert = {"id": "01a22779-41cc-7000-8c85-278f4dca60fd", "bed": "A-01", "ward": "A", "kind": "news2", "priority": "medium", "state": "active", "title": "NEWS2 5", "detail": ""}
            store.record_alarm_event(alert, "raised", None, now - 400)
            # the hub's GET /api/unmapped, answered from InfluxDB
            assert await store.unmapped_codes("gw-1", 10) == [
                {"device": "gw-1", "system": "MDC", "code": "150457", "count": 1,
                 "last": {"t": now - 900, "name": "MDC_PULS_OXIM_PULS_RATE", "value": "72", "unit": "/min", "status": "R", "bed": "A-01"}}
            ]  # fmt: skip
            assert await store.unmapped_codes("nobody", 10) == []
        finally:
            await store.stop()

    asyncio.run(run())
    dash = json.loads(config_files.default_file(config_files.GRAFANA_DASHBOARD).read_text())  # as shipped
    queries = [t["query"] for p in dash["panels"] for t in p["targets"]]
    queries += [v["query"] for v in dash["templating"]["list"]] + [a["query"] for a in dash["annotations"]["list"]]
    subs = {"$timeFilter": f"time >= {now - 3_600_000}ms", "$__interval": "1m", "$bed": "A-01", "$ward": "A", "$hospital": "H1"}
    ran = 0
    for q in queries:
        for k, v in subs.items():
            q = q.replace(k, v)
        if '"_internal"' in q:
            continue  # InfluxDB's self-monitoring database: off in the test server
        results = influx.query(q, db)
        ran += 1
        assert results and "error" not in results[0], q
        if '"agg_1m"' not in q:  # aggregates wait for the continuous query's minute; every other panel shows data
            assert results[0].get("series"), f"no data for {q}"
    assert ran >= 15
    beds = influx.query('SHOW TAG VALUES FROM "vitals" WITH KEY = "bed" WHERE "ward" =~ /^A$/', db)[0]["series"][0]["values"]
    assert beds == [["bed", "A-01"]]
    events = influx.rows('SELECT * FROM "raw"."alarm_event"', db)
    assert [(e["title"], e["event"], e["hospital"]) for e in events] == [("NEWS2 5", "raised", "H1")]


def test_an_unparsable_line_is_isolated_by_splitting_and_the_rest_is_written(influx: Influxd, tmp_path: Path) -> None:
    db = new_db()
    now = now_ms()
    good = [f"vitals,bed=S-01,param=hr value={60 + i}.0,flags=0i {now - 10_000 + i}" for i in range(9)]
    lines = good[:4] + ["vitals,bed=S-01 this is not line protocol"] + good[4:]

    async def run() -> None:
        store = make_store(influx, tmp_path, db, flush_ms=20)
        await store.start()
        try:
            await (await store.submit_lines(lines))
            stats = store.stats()
            assert stats["dropped"] == 1 and stats["split_writes"] >= 1 and stats["written"] == 9
        finally:
            await store.stop()

    asyncio.run(run())
    assert len(influx.rows('SELECT "value" FROM "raw"."vitals"', db)) == 9


def test_the_store_starts_while_influxdb_is_down_and_writes_once_it_is_up(tmp_path: Path) -> None:
    root = tmp_path / "late-influxd"
    root.mkdir()
    influx = Influxd(root=root, http_port=free_port(), rpc_port=free_port())  # not started yet
    db = new_db()
    t = now_ms() - 5_000

    async def run() -> None:
        store = make_store(influx, tmp_path, db, flush_ms=20, backoff_max_ms=300)
        await asyncio.wait_for(store.start(), 10)  # returns at once: the hub can serve live data
        try:
            fut = await store.submit(Batch("e", 1, 2, mark=1, obs=[Observation("A-01", "hr", 77.0, t, t, "m")]))
            await wait_for(lambda: store.stats()["retried"] >= 2, "set-up retries while InfluxDB is down")
            assert not fut.done() and store.stats()["influx_up"] == 0
            await asyncio.to_thread(influx.start)
            await asyncio.wait_for(fut, 30)
            assert store.stats()["influx_up"] == 1 and await store.state.last_seqs() == {("e", 1): 1}
        finally:
            await store.stop()

    try:
        asyncio.run(run())
        assert [r["name"] for r in influx.rows(f'SHOW RETENTION POLICIES ON "{db}"', db)] == ["autogen", "raw", "agg_1m"]
        assert influx.rows('SELECT "value" FROM "raw"."vitals"', db)[0]["value"] == 77.0
    finally:
        influx.stop()
