"""Hub core with the real SQLite store: state matrix, staleness, vectorised NEWS2, alarms, push."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from config_support import alarm_policy, hub_config, score_tables
from ingest.hub import Hub
from ingest.stores import sqlite_stores
from wire.messages import Hello, ObsFrame, Observation, UnmappedObservation, WaveChunk

T0 = 1_800_000_000_000
HELLO = Hello(agent="edge-T", epoch=1, ward="T", beds=("T-01", "T-02"))


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> int:
        return self.t


def vitals(bed: str, t: int, **values: float) -> tuple[Observation, ...]:
    return tuple(Observation(bed, k, v, t, t, "mon") for k, v in values.items())


def run(coro):
    return asyncio.run(coro)


async def _hub(tmp: Path, clock: Clock) -> Hub:
    hub = Hub(hub_config(), sqlite_stores(tmp / "s.sqlite3"), clock=clock, policy=alarm_policy(), tables=score_tables())
    await hub.start()
    hub.hello(HELLO)
    return hub


async def _ingest(hub: Hub, seq: int, obs: tuple[Observation, ...], unmapped: tuple[UnmappedObservation, ...] = ()) -> list:
    batch, rejected = hub.take_frame(HELLO, ObsFrame(seq, obs, unmapped), hub.clock())
    if batch is not None:
        await hub.store.write(batch)
        hub.handled(HELLO, batch.seq, batch)
    return rejected


NORMAL = dict(rr=16, spo2=98, o2=0, nibp_sys=120, hr=80, acvpu=0, temp=37.0)
WORKED_11 = dict(rr=18, spo2=90, o2=1, nibp_sys=100, hr=100, acvpu=2, temp=36.5)  # scores.md example: 11


def test_scores_alarms_and_pushes(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        sub = hub.feed.subscribe()
        await _ingest(hub, 1, vitals("T-01", T0, **NORMAL) + vitals("T-02", T0, **WORKED_11))
        clock.t += 50
        hub.tick()
        res = hub.score(clock.t).news2
        assert res.row(0)["total"] == 0 and res.row(1)["total"] == 11 and res.row(1)["band"] == "high"
        alerts = {a.kind: a for a in hub.book.list_open()}
        assert set(alerts) == {"news2", "qsofa"}  # the worked example is also qSOFA positive: SBP 100, voice
        alert = alerts["news2"]
        assert alert.bed == "T-02" and alert.priority == "high" and alert.detail.startswith("NEWS2 11;")
        assert alerts["qsofa"].priority == "medium" and alerts["qsofa"].bed == "T-02"
        msgs = [json.loads(sub.queue.get_nowait()) for _ in range(sub.queue.qsize())]
        assert {m["type"] for m in msgs} == {"alert", "beds"}
        pushed = next(m for m in msgs if m["type"] == "beds")["beds"]
        assert {b["bed"] for b in pushed} == {"T-01", "T-02"}
        assert all(b["rx_hub"] == T0 for b in pushed)
        assert hub.push_latency.percentiles()["p50"] == 50
        await hub.stop()

    run(go())


def test_stale_values_make_the_score_incomplete_never_zero(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        await _ingest(hub, 1, vitals("T-01", T0, **NORMAL))
        clock.t = T0 + 30_000  # exactly at the HR/SpO2 staleness limit: still fresh
        assert hub.score(clock.t).news2.row(0)["total"] == 0
        clock.t = T0 + 30_001
        row = hub.score(clock.t).news2.row(0)
        assert row["total"] is None and row["incomplete"] and set(row["missing"]) == {"spo2", "hr"}
        assert row["partial"] == 0 and row["band"] == "unknown"
        await hub.stop()

    run(go())


def test_flagged_value_is_missing_and_older_device_time_never_overwrites(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        await _ingest(hub, 1, vitals("T-01", T0, **NORMAL))
        await _ingest(hub, 2, (Observation("T-01", "spo2", None, T0 + 1000, T0 + 1000, "mon", 1),))
        await _ingest(hub, 3, vitals("T-01", T0 - 500, hr=150))  # late, older reading: stored, not live
        clock.t = T0 + 1000
        row = hub.score(clock.t).news2.row(0)
        assert row["missing"] == ["spo2"] and row["subscores"]["hr"] == 0
        bed = hub.bed_json(0, clock.t, hub.score(clock.t))
        assert bed["vitals"]["spo2"] == {"value": None, "t": T0 + 1000, "age_s": 0.0, "flags": ["probe_off"]}
        points = await hub.store.trend("T-01", "hr", T0 - 1000, T0 + 1000, 10)
        assert [p.value for p in points] == [150, 80]
        await hub.stop()

    run(go())


def test_scale2_is_a_per_bed_setting(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        await _ingest(hub, 1, vitals("T-01", T0, **(NORMAL | {"spo2": 89})))
        assert hub.score(T0).news2.row(0)["subscores"]["spo2"] == 3  # scale 1: <=91 scores 3
        await hub.set_spo2_scale("T-01", 2)
        assert hub.score(T0).news2.row(0)["subscores"]["spo2"] == 0  # scale 2: 88-92 scores 0
        await hub.stop()

    run(go())


def test_a_beds_clinical_settings_survive_a_restart(tmp_path: Path) -> None:
    """The SpO2 scale and a bed's own limits are in the state store before they apply: a restarted hub scores and
    alarms the bed as the intensivist set it, not with the ward's defaults."""

    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        await _ingest(hub, 1, vitals("T-01", T0, **(NORMAL | {"spo2": 89})))
        await hub.set_spo2_scale("T-01", 2)
        lim = await hub.set_bed_limit("T-01", "hr", 45, 110)
        assert (lim.low, lim.high) == (45, 110)
        await hub.stop()
        again = await _hub(tmp_path, clock)
        i = again.state.index["T-01"]
        assert again.state.beds[i].spo2_scale == 2 and bool(again.state.scale2[i])
        kept = again.engine.limits_of("T-01", "T")["hr"]
        assert (kept.low, kept.high) == (45, 110)
        assert again.engine.limits_of("T-02", "T")["hr"] != kept  # the other bed keeps the ward's
        assert await again.restore_bed_settings("T") == 2 and await again.restore_bed_settings("elsewhere") == 0
        await again.stop()

    run(go())


def test_alarms_survive_a_restart(tmp_path: Path) -> None:
    async def go() -> int:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        await _ingest(hub, 1, vitals("T-02", T0, **WORKED_11))
        hub.tick()
        alert = next(a for a in hub.book.list_open() if a.kind == "news2")
        hub.acknowledge(alert.id, "Dr Rao")
        await hub.stop()
        again = await _hub(tmp_path, clock)
        back = next(a for a in again.book.list_open() if a.kind == "news2")
        assert back.id == alert.id and back.state == "acknowledged" and back.acked_by == "Dr Rao"
        assert again.seqs.last_durable("edge-T", 1) == 1
        await again.stop()
        return alert.id

    run(go())


def _open_kinds(hub: Hub) -> set[tuple[str, str]]:
    return {(a.kind, a.bed or a.subject) for a in hub.book.open.values()}


def _tick_for(hub: Hub, clock: Clock, seconds: int) -> None:
    for _ in range(seconds):
        clock.t += 1000
        hub.tick()


def test_a_forgotten_agent_leaves_no_alarm_on_its_beds(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        clock.t += 20_000  # past the restart grace
        await _ingest(hub, 1, vitals("T-01", clock.t, **NORMAL) + vitals("T-02", clock.t, **NORMAL))
        hub.goodbye(HELLO)
        _tick_for(hub, clock, 40)
        assert ("technical:agent_offline", "agent:edge-T") in _open_kinds(hub)
        hub.take_frame(HELLO, WaveChunk(2, "T-01", "ecg_ii", clock.t, 250, 0.001, (0,) * 50), clock.t)
        assert ("T-01", "ecg_ii") in hub.waveform_quality.leads
        hub.forget_agent("edge-T")
        assert not hub.waveform_quality.leads  # the forgotten beds' waveform buffers are dropped too
        _tick_for(hub, clock, 60)  # beyond no_data_s: nothing watches these beds, nothing may alarm for them
        assert not {k for k in _open_kinds(hub) if k[0] in ("technical:agent_offline", "technical:no_data")}, _open_kinds(hub)
        await hub.stop()

    run(go())


def test_technical_alarms_of_an_absent_agent_carry_over_a_restart(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        hub.goodbye(HELLO)
        _tick_for(hub, clock, 40)
        [offline] = [a for a in hub.book.open.values() if a.kind == "technical:agent_offline"]
        await hub.stop()

        clock.t += 5_000
        again = Hub(hub_config(), sqlite_stores(tmp_path / "s.sqlite3"), clock=clock, policy=alarm_policy(), tables=score_tables())
        await again.start()  # the agent does not come back
        _tick_for(again, clock, 60)  # through the restart grace and beyond
        still = [a for a in again.book.open.values() if a.kind == "technical:agent_offline"]
        assert [a.id for a in still] == [offline.id], "the alarm must carry on, not resolve and be raised anew"
        await again.stop()

    run(go())


def test_resent_samples_are_counted_apart_and_not_stored_again(tmp_path: Path) -> None:
    """An S/5 or HL7 monitor repeats its last NIBP reading each second with its original time: one sample."""

    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        nibp = vitals("T-01", T0, nibp_sys=121)
        await _ingest(hub, 1, nibp + vitals("T-01", T0, hr=80))
        for k in range(2, 6):  # re-sent four times beside a new heart rate each second
            clock.t += 1000
            await _ingest(hub, k, nibp + vitals("T-01", T0 + 1000 * k, hr=80 + k))
        corrected = (Observation("T-01", "nibp_sys", 119.0, T0, T0, "mon"),)  # same time, another value: stored
        await _ingest(hub, 6, corrected)
        c = hub.counters
        assert (c["obs_stored"], c["obs_resent"], c["obs_accepted"]) == (7, 4, 11)
        assert await hub.store.count("numerics") == 6  # nibp once (corrected in place) + 5 heart rates
        [(value,)] = hub.store.db.read_now("SELECT value FROM numerics WHERE param='nibp_sys'")
        assert value == 119.0
        await hub.stop()

    run(go())


def test_unmapped_observations_are_stored_listed_and_never_scored(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        u1 = UnmappedObservation("T-01", "gw-1", "MDC", "150457", "MDC_PULS_OXIM_PULS_RATE", "72", "/min", "R", T0, T0)
        u2 = UnmappedObservation("T-01", "gw-1", "MDC", "150457", "MDC_PULS_OXIM_PULS_RATE", "74", "/min", "R", T0 + 1000, T0)
        other = UnmappedObservation("T-02", "mq", "mqtt_json", "st_ii", "", "-0.1", "", "", T0, T0)
        stranger = UnmappedObservation("Z-99", "gw-1", "MDC", "1", "", "1", "", "", T0, T0)
        rejected = await _ingest(hub, 1, vitals("T-01", T0, hr=80), (u1, u2, other, stranger))
        assert [r["code"] for r in rejected] == ["1"] and "not among the beds" in rejected[0]["reason"]
        codes = await hub.store.unmapped_codes(None, 100)
        assert codes == [
            {"device": "gw-1", "system": "MDC", "code": "150457", "count": 2,
             "last": {"t": T0 + 1000, "name": "MDC_PULS_OXIM_PULS_RATE", "value": "74", "unit": "/min", "status": "R", "bed": "T-01"}},
            {"device": "mq", "system": "mqtt_json", "code": "st_ii", "count": 1,
             "last": {"t": T0, "name": "", "value": "-0.1", "unit": "", "status": "", "bed": "T-02"}},
        ]  # fmt: skip
        assert [c["code"] for c in await hub.store.unmapped_codes("mq", 100)] == ["st_ii"]
        assert hub.stats()["unmapped"] == [{"device": "gw-1", "system": "MDC", "code": "150457", "count": 2},
                                           {"device": "mq", "system": "mqtt_json", "code": "st_ii", "count": 1}]  # fmt: skip
        assert hub.counters["unmapped_stored"] == 3
        clock.t += 50
        hub.tick()
        assert set(hub.bed_json(0, clock.t, hub.score(clock.t))["vitals"]) == {"hr"}
        await hub.stop()

    run(go())


def test_scores_are_written_when_they_change_and_every_minute(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock)
        await _ingest(hub, 1, vitals("T-01", T0, **NORMAL))
        hub.tick()  # first tick: every bed and score once
        clock.t += 5_000
        hub.tick()  # nothing changed: nothing written
        await _ingest(hub, 2, vitals("T-01", clock.t, rr=25))  # NEWS2 and qSOFA change on T-01
        hub.tick()
        clock.t += 60_000  # a minute on: every bed again (and T-01's heart rate has gone stale meanwhile)
        hub.tick()
        await hub.stop()
        with sqlite3.connect(tmp_path / "s.sqlite3") as db:
            rows = db.execute("SELECT bed, score, t, total, incomplete FROM scores ORDER BY t, bed, score").fetchall()
        first = [r for r in rows if r[2] == T0]
        assert {(b, sc) for b, sc, *_ in first} == {(b, sc) for b in ("T-01", "T-02") for sc in ("news2", "mews", "qsofa")}
        assert ("T-01", "news2", T0, 0, 0) in first and ("T-02", "news2", T0, None, 1) in first  # never a total from nothing
        changed = {(b, sc) for b, sc, t, *_ in rows if t == T0 + 5_000}
        assert changed == {("T-01", "news2"), ("T-01", "mews"), ("T-01", "qsofa")}  # RR 16 -> 25 moves all three; T-02 is unchanged
        later = {(b, sc) for b, sc, t, *_ in rows if t == T0 + 65_000}
        assert later == {(b, sc) for b in ("T-01", "T-02") for sc in ("news2", "mews", "qsofa")}

    run(go())
