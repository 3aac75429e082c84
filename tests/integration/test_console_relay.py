"""Consoles across hub workers on the real local NATS: what one worker's ward does reaches a console on another.

Two hubs in this process (embedded stores), each with a ``ConsoleRelay`` on
its own NATS connection, as two JetStream workers have; worker ``a`` owns ward
A1, worker ``b`` owns nothing (a console gateway). Without NATS these fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from config_support import alarm_policy, score_tables
from fastapi import HTTPException
from jetstream_support import connect, unique
from state_db_support import hub_state, state_connection
from support import WORKED_11

from ingest import outbox
from ingest.auth.roles import Principal, Role
from ingest.console_feed import Subscriber
from ingest.console_relay import ConsoleRelay
from ingest.console_relay_contract import WORKER, AlarmAction, subject
from ingest.hub import Hub
from ingest.hub_config import parse_hub_config
from ingest.patients.records import PatientDetails
from ingest.patients.service import Actor
from ingest.routes.alerts import list_alerts
from ingest.routes.beds import visible_bed
from ingest.stores import open_stores
from ingest.wave_feed import decode_chunk
from wire.messages import Hello, Observation, ObsFrame, WaveChunk
from wire.vocabulary import COLUMN

pytestmark = pytest.mark.integration

HUB_YAML = Path(__file__).resolve().parents[2] / "config" / "hub.yaml"
WAIT_S = 10.0


@dataclass
class Worker:
    hub: Hub
    relay: ConsoleRelay
    owned: set[str]
    counters: Counter[str]


@asynccontextmanager
async def workers(tmp: Path, state: str | None = None) -> AsyncIterator[tuple[Worker, Worker]]:
    """Workers ``a`` (owns A1) and ``b``; each its own SQLite file, or one shared ``state`` store (a PostgreSQL URL)."""
    cfg = parse_hub_config(yaml.safe_load(HUB_YAML.read_text()) | {"waveform_analysis": False}, "test hub config")
    prefix = unique("t.console")
    made: list[Worker] = []
    for name, owned in (("a", {"A1"}), ("b", set())):
        (tmp / name).mkdir()
        stores = open_stores(f"sqlite:///{tmp / name / 'hub.sqlite3'}", tmp / name, state)
        hub = Hub(cfg, stores, policy=alarm_policy(), tables=score_tables())
        await hub.start()
        counters: Counter[str] = Counter()
        mine = set(owned)
        made.append(Worker(hub, ConsoleRelay(hub, prefix, f"w-{name}", mine.__contains__, counters), mine, counters))
    ncs = [await connect() for _ in made]
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(w.relay.run(nc)) for w, nc in zip(made, ncs, strict=True)]
            tasks += [tg.create_task(w.hub.audit.run()) for w in made]  # as each hub's run() has it: what they persist is written
            await made[0].relay.serve("A1")
            yield made[0], made[1]
            for t in tasks:
                t.cancel()
    finally:
        for nc in ncs:
            await nc.close()
        for w in made:
            await w.hub.stop()


def admit(hub: Hub, values: dict[str, float], seq: int = 1, ward: str = "A1", bed: str = "A1-01") -> None:
    """One agent's hello and frame for ``bed`` of ``ward`` (bed A1-01 of ward A1), then a tick (what the hub's loop does)."""
    h = Hello(f"edge-{ward.replace(' ', '')}", 1, ward, (bed,))
    hub.hello(h)
    t = int(time.time() * 1000)
    hub.take_frame(h, ObsFrame(seq, tuple(Observation(bed, k, float(v), t, t, "mon-1") for k, v in values.items())), t)
    hub.tick()


async def heard(sub: Subscriber, pred: Callable[[dict], bool]) -> list[dict]:
    """Messages this console queue received until one satisfies ``pred`` (failing after ``WAIT_S``)."""
    got: list[dict] = []
    async with asyncio.timeout(WAIT_S):
        while True:
            text = await sub.queue.get()
            assert text is not None
            got.append(json.loads(text))
            if pred(got[-1]):
                return got


def is_bed(bed: str) -> Callable[[dict], bool]:
    return lambda m: m["type"] == "beds" and any(b["bed"] == bed for b in m["beds"])


def test_a_ward_owned_by_one_worker_reaches_a_console_on_another_once_and_its_snapshot_comes_from_the_owner(tmp_path: Path) -> None:
    async def scene() -> None:
        async with workers(tmp_path) as (a, b):
            here, there = a.hub.feed.subscribe(None), b.hub.feed.subscribe(None)
            await a.relay.watch(None)
            await b.relay.watch(None)
            admit(a.hub, {"hr": 72, "rr": 14})
            relayed = await heard(there, is_bed("A1-01"))
            bed = next(x for x in relayed[-1]["beds"] if x["bed"] == "A1-01")
            assert bed["ward"] == "A1" and bed["vitals"]["hr"]["value"] == 72
            # a marker from a third worker, published after b heard a's message: the server routed a's message to
            # every subscriber first, so once a's console has the marker, a relayed copy of its own would be there too
            other = await connect()
            await other.publish(subject(a.relay.prefix, "live", "M9"), b'{"type":"marker"}', headers={WORKER: "w-c"})
            await other.close()
            local = await heard(here, lambda m: m["type"] == "marker")
            assert sum(is_bed("A1-01")(m) for m in local) == 1  # its own console got it once: not relayed back to itself

            beds, alerts, unserved = await b.relay.snapshot(frozenset({"A1", "Z9"}))
            assert [x["bed"] for x in beds] == ["A1-01"] and beds[0]["vitals"]["hr"]["value"] == 72
            assert unserved == ["Z9"] and alerts == []
            assert a.counters["console_snapshots_answered"] == 1
            await b.relay.unwatch(None)

    asyncio.run(scene())


def test_a_console_on_another_worker_confirms_an_alarm_to_the_worker_that_raised_it(tmp_path: Path) -> None:
    async def scene() -> None:
        async with workers(tmp_path) as (a, b):
            there = b.hub.feed.subscribe(frozenset({"A1"}))
            await b.relay.watch(frozenset({"A1"}))
            admit(a.hub, WORKED_11)
            for _ in range(20):  # the engine raises within a few ticks
                a.hub.tick()
                if a.hub.pending_delivery:
                    break
                await asyncio.sleep(0.05)
            raised = await heard(there, lambda m: m["type"] == "alert" and m["event"] == "raised")
            alert_id = raised[-1]["alert"]["id"]
            assert alert_id in a.hub.pending_delivery and raised[-1]["alert"]["ward"] == "A1"
            await b.relay.delivered([alert_id])
            async with asyncio.timeout(WAIT_S):
                while alert_id in a.hub.pending_delivery:
                    await asyncio.sleep(0.02)
            assert a.hub.counters["alert_deliveries_confirmed"] == 1

            assert await b.relay.ward_of_alert(alert_id) == "A1"
            done = await b.relay.act("A1", AlarmAction("ack", alert_id, "Nurse on b"))
            assert done.status == 200 and done.alert is not None and done.alert["acked_by"] == "Nurse on b"
            assert a.hub.book.by_id[alert_id].state == "acknowledged"
            refused = await b.relay.act("A1", AlarmAction("ack", "no-such-alarm", "Nurse on b"))
            assert refused.status == 409 and refused.alert is None
            nobody = await b.relay.act("Z9", AlarmAction("ack", alert_id, "Nurse on b"))  # a ward no worker owns now
            assert nobody.status == 503 and "try again" in nobody.detail

    asyncio.run(scene())


def test_a_worker_that_owns_a_ward_ignores_a_former_owner_still_speaking_for_it(tmp_path: Path) -> None:
    async def scene() -> None:
        async with workers(tmp_path) as (a, b):
            b.owned.add("A1")  # b has taken the ward; a has not noticed yet
            there = b.hub.feed.subscribe(None)
            await b.relay.watch(None)
            admit(a.hub, {"hr": 80})
            async with asyncio.timeout(WAIT_S):
                while b.counters["console_relay_stale_owner"] == 0:
                    await asyncio.sleep(0.02)
            assert there.queue.empty()

    asyncio.run(scene())


def test_a_ward_whose_agent_is_connected_here_over_the_websocket_is_spoken_for_without_a_lease(tmp_path: Path) -> None:
    """Mixed uplinks: ward W1 has no lease; its agent is connected to worker b over the WebSocket (a hello there). Its
    beds reach b's own console and, through NATS, a's."""

    async def scene() -> None:
        async with workers(tmp_path) as (a, b):
            on_a, on_b = a.hub.feed.subscribe(None), b.hub.feed.subscribe(None)
            await a.relay.watch(None)
            admit(b.hub, {"hr": 88}, ward="W1", bed="W1-01")  # as its agent's WebSocket connection would
            assert b.relay.speaks_for("W1") and not a.relay.speaks_for("W1")
            here = await heard(on_b, is_bed("W1-01"))
            there = await heard(on_a, is_bed("W1-01"))
            for got in (here[-1], there[-1]):
                assert next(x for x in got["beds"] if x["bed"] == "W1-01")["vitals"]["hr"]["value"] == 88
            beds, _alerts, unserved = await b.relay.snapshot(frozenset({"W1"}))
            assert [x["bed"] for x in beds] == ["W1-01"] and unserved == []

    asyncio.run(scene())



def test_the_alarm_list_names_a_websocket_wards_alarm_once_on_the_worker_its_agent_is_connected_to(tmp_path: Path) -> None:
    """Mixed uplinks: worker b raises an alarm of ward W1, whose agent is connected to it over the WebSocket. ``GET
    /api/alerts`` on b lists it once: from b's book, not again from the shared store as another worker's ward's."""

    async def scene() -> None:
        async with workers(tmp_path) as (_a, b):
            admit(b.hub, WORKED_11, ward="W1", bed="W1-01")
            for _ in range(20):  # the engine raises within a few ticks
                b.hub.tick()
                if b.hub.book.list_open():
                    break
                await asyncio.sleep(0.05)
            await b.hub.audit.flush()  # what its writer task would store: the alarm, as every worker's list reads it
            raised = {x["id"] for x in await b.hub.state_store.open_alerts() if x.get("ward") == "W1"}
            doctor = Principal("dr", "Dr Test", Role.INTENSIVIST)
            listed = (await list_alerts(b.hub, doctor, "open", None, None, None, None, None, 500))["alerts"]
            ids = [x["id"] for x in listed if x["ward"] == "W1"]
            assert raised and sorted(ids) == sorted(set(ids)) and raised <= set(ids)

    asyncio.run(scene())

def test_a_websocket_ward_whose_name_cannot_be_a_subject_token_stays_on_its_own_hub_and_breaks_nothing(tmp_path: Path) -> None:
    """Mixed uplinks with a ward named "ICU 1": its consoles on worker b see it; nothing of it goes on NATS, and a console
    of that ward, a snapshot and an alarm action asked elsewhere get an answer, not an error."""

    async def scene() -> None:
        async with workers(tmp_path) as (a, b):
            ward = frozenset({"ICU 1"})
            on_b = b.hub.feed.subscribe(ward)
            await b.relay.watch(ward)
            await a.relay.watch(ward)
            admit(b.hub, {"hr": 91}, ward="ICU 1", bed="ICU1-01")
            await heard(on_b, is_bed("ICU1-01"))
            assert b.counters["console_relay_local_only"] >= 1
            beds, _alerts, unserved = await a.relay.snapshot(ward)
            assert beds == [] and unserved == ["ICU 1"]
            refused = await a.relay.act("ICU 1", AlarmAction("ack", "x", "Nurse"))
            assert refused.status == 409
            await a.relay.unwatch(ward)
            await b.relay.unwatch(ward)

    asyncio.run(scene())


def test_a_bed_setting_changed_on_another_worker_reaches_the_owner_and_the_next_owner(tmp_path: Path) -> None:
    """One PostgreSQL state store, as JetStream workers share. Worker b still has a row of bed A1-01 (it served the
    ward once); an intensivist signed in to b sets the bed's SpO2 scale there: it is stored, and owner a reads the
    ward's settings again and scores the bed on scale 2. Limits a sets go with the ward when b takes it."""

    async def scene() -> None:
        with hub_state("postgresql", tmp_path) as state:
            async with workers(tmp_path, state) as (a, b):
                admit(a.hub, {"spo2": 89}, ward="A1", bed="A1-01")
                b.hub.state.row("A1-01", ward="A1")
                await b.hub.set_spo2_scale("A1-01", 2)  # stored, and a told to read A1's settings again
                i = a.hub.state.index["A1-01"]
                async with asyncio.timeout(WAIT_S):
                    while a.hub.state.beds[i].spo2_scale != 2:
                        await asyncio.sleep(0.02)
                assert a.counters["bed_settings_reread"] == 1 and bool(a.hub.state.scale2[i])

                await a.hub.set_bed_limit("A1-01", "hr", 40, 115)
                await b.hub.take_ward("A1")
                kept = b.hub.engine.limits_of("A1-01", "A1")["hr"]
                assert (kept.low, kept.high) == (40, 115)

    asyncio.run(scene())


def test_patients_admitted_and_moved_on_another_worker_reach_the_wards_owners_with_their_settings(tmp_path: Path) -> None:
    """One PostgreSQL state store. Worker a owns A1, b owns B1. A clerk signed in to b admits a patient to A1-01:
    a reads the census again and shows her; oxygen charted on b reaches a's live state (its NEWS2). The intensivist on a puts her on SpO2 scale 2 with her own HR limits;
    the clerk on b transfers her to B1-01: a (which holds A1-01's settings and charted values) moves them, b's bed gets
    them and A1-01 goes back to the defaults. Discharged through a, the summary has b's last values and B1-01 goes back too."""

    async def scene() -> None:
        with hub_state("postgresql", tmp_path) as state:
            async with workers(tmp_path, state) as (a, b):
                b.owned.add("B1")
                await b.relay.serve("B1")
                admit(a.hub, {"spo2": 89}, ward="A1", bed="A1-01")
                admit(b.hub, {"spo2": 89}, ward="B1", bed="B1-01")
                clerk = Actor("clerk", "10.0.0.9")
                enc, _ = await b.hub.patients.admit(PatientDetails(mrn="MRN-77", name="Sunita Meena"), "A1-01", "A1", None, clerk)
                async with asyncio.timeout(WAIT_S):
                    while a.hub.patients.census.of_bed("A1-01") is None:
                        await asyncio.sleep(0.02)
                assert a.counters["patient_moves_heard"] == 1
                charted = await b.hub.chart("A1-01", "o2", "oxygen", None, clerk)  # stored by b; a's NEWS2 needs it live
                async with asyncio.timeout(WAIT_S):
                    while a.counters["charted_values_heard"] == 0:
                        await asyncio.sleep(0.02)
                i = a.hub.state.index["A1-01"]
                o2 = COLUMN["o2"]
                assert a.hub.state.value[i, o2] == charted["value"] and a.hub.state.charted_by[(i, o2)] == "clerk"

                await a.hub.set_spo2_scale("A1-01", 2)
                await a.hub.set_bed_limit("A1-01", "hr", 45, 110)
                await b.hub.patients.transfer(enc.encounter_id, "B1-01", "B1", None, clerk)
                j = b.hub.state.index["B1-01"]
                async with asyncio.timeout(WAIT_S):
                    while b.hub.state.beds[j].spo2_scale != 2:
                        await asyncio.sleep(0.02)
                hr = b.hub.engine.limits_of("B1-01", "B1")["hr"]
                assert (hr.low, hr.high) == (45, 110) and b.hub.patients.census.of_bed("B1-01") is not None
                async with asyncio.timeout(WAIT_S):  # her charted oxygen, sent by a, into b's live state of her new bed
                    while b.hub.state.charted_by.get((j, o2)) != "clerk":
                        await asyncio.sleep(0.02)
                assert b.hub.state.value[j, o2] == charted["value"]
                assert a.hub.state.beds[i].spo2_scale == 1 and "A1-01" not in a.hub.engine.bed_limits
                async with asyncio.timeout(WAIT_S):
                    while a.hub.patients.census.of_bed("A1-01") is not None:
                        await asyncio.sleep(0.02)

                await a.hub.patients.discharge(enc.encounter_id, "discharged", None, clerk)  # through a, which has no B1 data
                async with asyncio.timeout(WAIT_S):  # b, the owner, hears of it and puts B1-01 back on the defaults
                    while b.hub.state.beds[j].spo2_scale != 1:
                        await asyncio.sleep(0.02)
                assert "B1-01" not in b.hub.engine.bed_limits
                with state_connection(state) as conn:
                    (summary,) = [e.data.summary for e in outbox.read(conn, 0, 1000) if e.data.type == "patient.discharged"]
                assert {v.param: v.value for v in summary.last_vitals} == {"spo2": 89, "o2": charted["value"]}  # b's, not a's

    asyncio.run(scene())


def test_a_beds_page_on_a_worker_that_never_had_the_bed_finds_it_and_gets_it_from_the_owner(tmp_path: Path) -> None:
    """One PostgreSQL state store. Worker b has never heard of bed A1-01 (a owns A1): an intensivist opening its page
    on b finds it through the agents registered in the store, and gets its row as a has it; a nurse of another ward
    gets a 404 and leaves no trace."""

    async def scene() -> None:
        with hub_state("postgresql", tmp_path) as state:
            async with workers(tmp_path, state) as (a, b):
                admit(a.hub, {"hr": 77}, ward="A1", bed="A1-01")
                await a.hub.audit.caught_up()  # the agent's registration, which b will look the bed up in
                nurse = Principal("n", "Nurse B", Role.WARD_NURSE, wards=("B1",))
                with pytest.raises(HTTPException) as refused:
                    await visible_bed(b.hub, nurse, "A1-01")
                assert refused.value.status_code == 404 and "A1-01" not in b.hub.state.index
                doctor = Principal("dr", "Dr Test", Role.INTENSIVIST)
                i = await visible_bed(b.hub, doctor, "A1-01")
                assert b.hub.state.beds[i].ward == "A1" and not b.hub.state.beds[i].agent
                row = await b.relay.bed_of_owner("A1-01", "A1")
                assert row is not None and row["vitals"]["hr"]["value"] == 77 and row["online"]

    asyncio.run(scene())


def test_a_beds_live_waveform_reaches_a_page_on_another_worker_while_it_watches(tmp_path: Path) -> None:
    """Worker a owns A1; a bed page on b watches A1-01. b asks a for the bed's chunks, a sends them on NATS and b's
    page gets each as a sends it to its own pages; a page on a bed nobody else watches costs nothing on NATS."""

    async def scene() -> None:
        async with workers(tmp_path) as (a, b):
            admit(a.hub, {"hr": 70}, ward="A1", bed="A1-01")
            admit(a.hub, {"hr": 71}, seq=2, ward="A1", bed="A1-02")
            h1, h2 = Hello("edge-A1", 1, "A1", ("A1-01",)), Hello("edge-A1", 1, "A1", ("A1-02",))
            b.hub.state.row("A1-01", ward="A1")
            page = b.hub.waves.watch("A1-01")
            await b.relay.waves.watch("A1-01", "A1")
            samples = tuple(range(-25, 25))
            seq, got = 10, None
            async with asyncio.timeout(WAIT_S):
                while got is None:  # until a has heard b's want and the chunk has come round
                    seq += 1
                    t = int(time.time() * 1000)
                    a.hub.take_frame(h1, WaveChunk(seq, "A1-01", "ecg_ii", t, 250, 0.005, samples), t)
                    a.hub.take_frame(h2, WaveChunk(seq, "A1-02", "ecg_ii", t, 250, 0.005, samples), t)
                    with contextlib.suppress(TimeoutError):
                        got = await asyncio.wait_for(page.queue.get(), 0.1)
            lead, _t, rate, _scale, back = decode_chunk(got)
            assert (lead, rate, back) == ("ecg_ii", 250, samples)
            assert "A1-02" not in a.hub.waves.relayed and b.counters["wave_chunks_relayed"] >= 1
            await b.relay.waves.unwatch("A1-01", "A1")
            b.hub.waves.unwatch(page)

    asyncio.run(scene())
