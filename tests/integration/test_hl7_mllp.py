"""HL7 PCD-01 over MLLP on real TCP sockets: the tcp_listen transport, ACKs on the wire, and the whole pipeline.

The first tests run ``run_tcp_listen_device`` / ``TcpListener`` in-process and talk
to it with real client sockets. The last one starts a real hub and a real
``teleicu edge`` process with an ``hl7_pcd01`` device, drives it with the HL7
simulator and a raw socket client, and reads the values back from the hub's API.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from async_deadline import async_test, eventually
import yaml
from support import HubProcess, free_port, get_json, get_text, teleicu

from edge_agent.config import DeviceConfig
from edge_agent.drivers import get_driver
from edge_agent.events import DriverEvent, ParseError
from edge_agent.transports.tcp_listen import (
    TcpListener,
    parse_listen,
    run_tcp_listen_device,
)
from simulators.base import SimBed
from simulators.hl7_sim import (
    Hl7Bed,
    Hl7Devices,
    Hl7Gateway,
    Row,
    create,
    encode_oru,
    mllp,
)
from simulators.scenarios import Scenario, get_scenario
from wire.messages import Observation

pytestmark = pytest.mark.integration

VT, END = b"\x0b", b"\x1c\r"
SPEC = get_driver("hl7_pcd01")
ACK_MSH = re.compile(rb"\x0bMSH\|\^~\\&\|TELEICU\|gw-T\|GW\^00155DFFFE000001\^EUI-64\|TELEICU-SIM\|[0-9]{14}\.[0-9]{3}\+0000\|\|ACK\^R01\^ACK\|[0-9]{20}\|P\|2\.6\r")


run_async = async_test(120)  # a deadline that fails the test, never hangs it


async def wait_for(cond: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    return await eventually(cond, what, timeout, interval=0.02)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def message(control_id: str, location: str, rows: list[Row], t_ms: int | None = None) -> bytes:
    return encode_oru(control_id=control_id, t_ms=t_ms or now_ms(), gateway="GW", eui64="00155DFFFE000001",
                      patient_id="MRN-1", location=location, rows=rows)  # fmt: skip


async def read_ack(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes:
    async with asyncio.timeout(timeout):
        start = await reader.readuntil(VT)
        assert start == VT, start  # nothing but ACK frames on the wire
        return VT + await reader.readuntil(END)


def msa(ack: bytes) -> list[str]:
    line = next(s for s in ack[1:-2].split(b"\r") if s.startswith(b"MSA|"))
    return line.decode().split("|")


class Sink:
    def __init__(self) -> None:
        self.events: list[DriverEvent] = []

    def __call__(self, events: list[DriverEvent]) -> None:
        self.events += events

    def obs(self) -> list[Observation]:
        return [e for e in self.events if isinstance(e, Observation)]

    def errors(self) -> list[str]:
        return [e.code for e in self.events if isinstance(e, ParseError)]


def device(listen: str, beds: dict[str, str] | None = None) -> DeviceConfig:
    return DeviceConfig(id="gw-T", driver="hl7_pcd01", bed=None, beds=beds or {"ICU^^BED01": "T-01"}, settings={"listen": listen})


def test_listen_setting_is_parsed() -> None:
    assert parse_listen("127.0.0.1:2575") == ("127.0.0.1", 2575)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("2575", "host:", ":2575", "h:99999", None, "h:x"):
        with pytest.raises(ValueError, match="listen"):
            parse_listen(bad)


@run_async
async def test_acks_on_the_wire_for_whole_split_and_batched_messages() -> None:
    port = free_port()
    sink = Sink()
    task = asyncio.create_task(run_tcp_listen_device(device(f"127.0.0.1:{port}"), SPEC, sink))
    try:
        reader, writer = await wait_for_connection(port)
        t = now_ms() - 1000
        good = mllp(message("C1", "ICU^^BED01", [Row("hr", 72), Row("spo2", 97)], t))

        writer.write(good)  # whole
        ack = await read_ack(reader)
        assert ACK_MSH.match(ack), ack
        assert ack.endswith(b"\rMSA|AA|C1\r\x1c\r")

        for i in range(0, len(good), 13):  # in small pieces, the receiver sees them as they come
            writer.write(good.replace(b"C1", b"C2")[i : i + 13])
            await writer.drain()
            await asyncio.sleep(0.001)
        assert msa(await read_ack(reader)) == ["MSA", "AA", "C2"]

        # three at once: an unknown bed (AE), a wrong message type (AR), a good one (AA), in order
        unknown = mllp(message("C3", "ICU^^BED99", [Row("hr", 70)]))
        adt = mllp(b"MSH|^~\\&|GW|ICU|||20250101120000+0000||ADT^A01^ADT_A01|C4|P|2.6\r")
        writer.write(unknown + adt + mllp(message("C5", "ICU^^BED01", [Row("rr", 18)], t)))
        a3, a4, a5 = [await read_ack(reader) for _ in range(3)]
        assert msa(a3)[:3] == ["MSA", "AE", "C3"] and b"\rERR||PV1^1^3|204^Unknown key identifier^HL70357|E|" in a3
        assert msa(a4)[:3] == ["MSA", "AR", "C4"] and b"|ACK^A01^ACK|" in a4
        assert msa(a5) == ["MSA", "AA", "C5"]
        writer.close()

        await wait_for(lambda: len(sink.obs()) == 5, "the observations")
        assert [(o.bed, o.param, o.value, o.t_dev) for o in sink.obs()] == [
            ("T-01", "hr", 72, t), ("T-01", "spo2", 97, t), ("T-01", "hr", 72, t), ("T-01", "spo2", 97, t), ("T-01", "rr", 18, t)
        ]  # fmt: skip
        assert sink.errors() == ["unknown_location", "unsupported"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def wait_for_connection(port: int, timeout: float = 10.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s") from None
            await asyncio.sleep(0.05)


@run_async
async def test_connection_limit_idle_timeout_disconnects_and_cancellation() -> None:
    sink = Sink()
    listener = TcpListener(device("127.0.0.1:0"), SPEC, sink, max_connections=2, idle_timeout_s=1.0)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.listening.wait(), 10)
    port = listener.port
    assert port
    good = mllp(message("K1", "ICU^^BED01", [Row("hr", 80)]))

    # two connections are served; a third is closed at once
    (_r1, w1), (r2, w2) = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    await wait_for(lambda: listener.active == 2, "two connections")
    r3, w3 = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(r3.read(100), 5) == b""
    assert listener.counters["refused"] == 1
    w3.close()

    # a client that leaves in the middle of a message: reported, nothing else disturbed
    w1.write(good[:40])
    await w1.drain()
    w1.close()
    await wait_for(lambda: "framing" in sink.errors(), "the cut-off message to be reported")
    w2.write(good)
    assert msa(await read_ack(r2)) == ["MSA", "AA", "K1"]

    # a connection with nothing to say is closed after the idle timeout (1 s here)
    t0 = time.monotonic()
    assert await asyncio.wait_for(r2.read(100), 10) == b""
    assert 0.5 < time.monotonic() - t0 < 8
    await wait_for(lambda: listener.active == 0, "the idle connection to go")
    assert listener.counters["idle_closed"] >= 1

    # a new connection after all that still works
    r4, w4 = await asyncio.open_connection("127.0.0.1", port)
    w4.write(good.replace(b"K1", b"K4"))
    assert msa(await read_ack(r4)) == ["MSA", "AA", "K4"]

    # cancelling closes the open connection and the listening socket, and re-raises
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.wait_for(r4.read(100), 5) == b""
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    assert [o.value for o in sink.obs()] == [80, 80]


@run_async
async def test_port_in_use_is_retried_until_free() -> None:
    blocker = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    listener = TcpListener(device(f"127.0.0.1:{port}"), SPEC, Sink())
    task = asyncio.create_task(listener.run())
    try:
        await wait_for(lambda: listener.counters["bind_failures"] >= 1, "a failed bind")
        assert not task.done() and not listener.listening.is_set()
        blocker.close()
        await blocker.wait_closed()
        await asyncio.wait_for(listener.listening.wait(), 15)
        assert listener.port == port
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@run_async
async def test_bad_parser_options_fail_at_start() -> None:
    dev = DeviceConfig(id="gw-T", driver="hl7_pcd01", bed=None, beds={"x": "T-01"}, settings={"listen": "127.0.0.1:0"},
                       options={"timezone": "Nowhere/Land"})  # fmt: skip
    with pytest.raises(ValueError, match="timezone"):
        await TcpListener(dev, SPEC, Sink()).run()


@run_async
async def test_simulator_resends_without_ack_and_reconnects() -> None:
    """A receiver that swallows the first message without an ACK, then drops the line."""
    received: list[bytes] = []

    async def stingy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(3):
            data = await reader.readuntil(END)
            received.append(data)
            if n == 1:  # second copy: ACK it
                control = re.search(rb"\|ORU\^R01\^ORU_R01\|([^|]+)\|", data)[1]  # type: ignore[index]
                writer.write(VT + b"MSH|^~\\&|X|Y|||20250101120000||ACK^R01^ACK|1|P|2.6\rMSA|AA|" + control + b"\r" + END)
                await writer.drain()
            if n == 2:
                writer.close()  # drop the line: the simulator reconnects and sends again
                return

    server = await asyncio.start_server(stingy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gw = Hl7Gateway("gw", [Hl7Bed("T-01", "ICU^^BED01", get_scenario("stable"), 1)], port=port, ack_timeout_s=0.5,
                    backoff_initial_s=0.05)  # fmt: skip
    run = asyncio.create_task(gw.run())
    try:
        await wait_for(lambda: gw.counters["connects"] >= 2 and len(received) >= 4, "a resend and a reconnect")
        assert received[0] == received[1]  # the same bytes again after the ACK timeout
        assert gw.counters["aa"] >= 1 and gw.counters["ack_timeouts"] >= 1 and gw.counters["resends"] >= 1
        assert received[2] != received[1] and received[3] == received[2]  # unACKed message re-sent after reconnect
    finally:
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        server.close()


# -- the whole pipeline: simulator -> teleicu edge (hl7_pcd01) -> hub -------------------------


def spawn_edge(tmp: Path, cfg: Path, stats: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "teleicu", "edge", "--config", str(cfg), "--stats-file", str(stats), "--log-level", "info"],
        stdout=(tmp / "edge.log").open("wb"),
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("teleicu edge did not stop within 15 s of SIGTERM") from None
    return proc.returncode


@run_async
async def test_simulated_gateways_reach_the_hub_through_the_real_edge_agent(hub: HubProcess, tmp_path: Path) -> None:
    # one gateway from create() (bed variants: plain, cuff codes, Philips pulse rate, both)
    sim = create([SimBed(f"H-0{i}", s, 40 + i, nibp_interval_s=30) for i, s in enumerate(("stable", "stable", "sepsis", "stable"), 1)], ward="H")
    # and one whose SpO2 probe falls off after 1 s
    early = Scenario("probe_off", get_scenario("probe_off").keyframes, probe_off=((1.0, None),))
    probe_gw = Hl7Gateway("gw-probe", [Hl7Bed("H-05", "ICU-H^^BED05", early, 45)], eui64="00155DFFFE0000AA")
    group = Hl7Devices("H", [*sim.gateways, probe_gw])
    await group.start()
    devices = group.edge_devices()
    assert devices[0]["beds"] == {f"ICU-H^^BED0{i}": f"H-0{i}" for i in range(1, 5)}
    assert all(d["driver"] == "hl7_pcd01" and d["listen"].startswith("127.0.0.1:") for d in devices)
    cfg = tmp_path / "edge-H.yaml"
    hub_section = {"url": hub.edge_url, "secret_file": "edge-H.secret"}
    cfg.write_text(yaml.safe_dump({"agent": {"id": "edge-H", "ward": "H"}, "hub": hub_section, "devices": devices}))
    # hospital IT registers the gateway for the beds of its own configuration, as the README says
    r = teleicu("agents", "add", "edge-H", "--beds-from", str(cfg), "--secret-file", str(tmp_path / "edge-H.secret"), "--db", str(hub.db))
    assert r.returncode == 0 and "beds H-01, H-02, H-03, H-04, H-05" in r.stdout, r.stdout + r.stderr
    stats = tmp_path / "edge.stats.json"
    edge = spawn_edge(tmp_path, cfg, stats)
    run = asyncio.create_task(group.run())

    def bed(b: str) -> dict:
        return get_json(f"{hub.base}/api/beds/{b}")

    async def bed_has(b: str, params: set[str]) -> dict:
        async def check() -> dict | None:
            try:
                v = await asyncio.to_thread(bed, b)
            except OSError:
                return None
            return v if params <= set(v["vitals"]) else None

        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            assert edge.poll() is None, (tmp_path / "edge.log").read_text()
            if (v := await check()) is not None:
                return v
            await asyncio.sleep(0.25)
        raise AssertionError(f"bed {b} never showed {sorted(params)}; edge log:\n{(tmp_path / 'edge.log').read_text()[-3000:]}")

    try:
        every = {"hr", "spo2", "pr", "rr", "nibp_sys", "nibp_dia", "nibp_mean", "temp", "etco2"}
        for i in range(1, 5):
            vitals = (await bed_has(f"H-0{i}", every))["vitals"]
            assert 30 <= vitals["hr"]["value"] <= 180 and 80 <= vitals["spo2"]["value"] <= 100
            assert 30 <= vitals["pr"]["value"] <= 180 and 8 <= vitals["rr"]["value"] <= 40
            assert 60 <= vitals["nibp_sys"]["value"] <= 200 and 34 <= vitals["temp"]["value"] <= 41
            assert all(not v["flags"] for v in vitals.values())
            assert abs(vitals["hr"]["t"] - now_ms()) < 30_000

        # probe off: SpO2 (and pulse rate) arrive without a value, flagged invalid
        async def probe_off_shown() -> bool:
            v = (await asyncio.to_thread(bed, "H-05"))["vitals"]
            return "spo2" in v and v["spo2"]["value"] is None and v["spo2"]["flags"] == ["invalid"]

        deadline = time.monotonic() + 30
        while not await probe_off_shown():
            assert time.monotonic() < deadline, "probe-off SpO2 never reached the hub as a flagged, value-less reading"
            await asyncio.sleep(0.25)
        assert (await asyncio.to_thread(bed, "H-05"))["vitals"]["pr"]["flags"] == ["invalid"]

        # the simulator stops; a raw client on the real process: a value we choose arrives,
        # an unknown bed gets AE on the wire
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        host, port = devices[0]["listen"].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        t = now_ms() + 500  # newer than anything the simulator sent
        writer.write(mllp(message("RAW-1", "ICU-H^^BED01", [Row("etco2", 51)], t)))
        assert msa(await read_ack(reader)) == ["MSA", "AA", "RAW-1"]
        writer.write(mllp(message("RAW-2", "ICU-Z^^BED09", [Row("hr", 90)])))
        assert msa(await read_ack(reader))[:3] == ["MSA", "AE", "RAW-2"]
        # a code the vocabulary does not map is kept, not dropped: AA on the wire, stored and listed by the hub
        unmapped_obx = b"OBX|9|NM|150457^MDC_PULS_OXIM_PULS_RATE^MDC|1.2.1.3|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R\r"
        writer.write(mllp(message("RAW-3", "ICU-H^^BED02", [Row("etco2", 40)], t) + unmapped_obx))
        assert msa(await read_ack(reader)) == ["MSA", "AA", "RAW-3"]
        writer.close()

        async def etco2_is_51() -> bool:
            v = (await asyncio.to_thread(bed, "H-01"))["vitals"]["etco2"]
            return v["value"] == 51 and v["t"] == t

        deadline = time.monotonic() + 20
        while not await etco2_is_51():
            assert time.monotonic() < deadline, "the raw client's etCO2 never reached the hub"
            await asyncio.sleep(0.2)

        def unmapped() -> list[dict]:
            return get_json(f"{hub.base}/api/unmapped?device={devices[0]['id']}", as_="admin")["codes"]

        deadline = time.monotonic() + 20
        while not unmapped():
            assert time.monotonic() < deadline, "the unmapped code never reached the hub's store"
            await asyncio.sleep(0.2)
        [code] = unmapped()
        assert code == {"device": devices[0]["id"], "system": "MDC", "code": "150457", "count": 1,
                        "last": {"t": t, "name": "MDC_PULS_OXIM_PULS_RATE", "value": "72", "unit": "264864^MDC_DIM_BEAT_PER_MIN^MDC",
                                 "status": "R", "bed": "H-02"}}, code  # fmt: skip
        assert get_json(f"{hub.base}/api/unmapped?device=nobody", as_="admin")["codes"] == []
        metrics = await asyncio.to_thread(get_text, f"{hub.base}/metrics")
        assert f'teleicu_unmapped_observations_total{{device="{devices[0]["id"]}",system="MDC",code="150457"}} 1' in metrics
        assert get_json(f"{hub.base}/api/stats")["counters"]["unmapped_stored"] == 1
        assert "150457" not in json.dumps(get_json(f"{hub.base}/api/beds/H-02")["vitals"])  # never a vital sign
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        code = await asyncio.to_thread(stop, edge)
    assert code == 0, (tmp_path / "edge.log").read_text()

    s = group.stats()
    assert s["aa"] >= 5 and s.get("ae", 0) == 0 and s.get("ar", 0) == 0, s  # every bed's messages ACKed AA
    assert s["messages_sent"] >= s["aa"], s
    agent = json.loads(stats.read_text())["agent"]
    assert agent.get("parse_error_unknown_location") == 1, agent
    log = (tmp_path / "edge.log").read_text()
    named = [line for line in log.splitlines() if "WARNING" in line and "'150457'" in line]
    assert len(named) == 1 and "which teleicu does not map" in named[0], named  # named once, at warning level
    assert {k for k in agent if k.startswith("parse_error_")} == {"parse_error_unknown_location"}, agent
