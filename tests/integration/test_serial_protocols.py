"""S/5 and Nonin through real pty pairs: simulated monitor -> pty -> the serial transport -> the driver's parser.

The edge side is the agent's own serial transport (``run_serial_device``: pyserial
with the driver's link settings, requests written back, ``bytes_to_send`` polled
every second), so the S/5 request and its DRI retry cross the real pty. With
line noise on, every value that arrives must be one the monitor actually
encoded: the emitters below keep a copy of every clean frame they produce (before
the noise), and each of those frames, read alone by a fresh parser, gives the
set of values that may legitimately appear.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from async_deadline import async_test, eventually

from edge_agent.config import DeviceConfig
from edge_agent.drivers import get_driver
from edge_agent.drivers.nonin import NoninParser
from edge_agent.drivers.s5 import S5Parser
from edge_agent.events import DeviceStatus, DriverEvent, ParseError
from edge_agent.transports import LINK
from edge_agent.transports.serial_port import run_serial_device
from simulators.nonin_encoder import NoninEmitter
from simulators.s5_encoder import S5Emitter
from simulators.scenarios import Scenario, get_scenario
from simulators.serial_monitor import LineNoise, Reading, SerialMonitor, run_monitors
from wire.messages import Observation
from wire.vocabulary import Flag

pytestmark = pytest.mark.integration


run_async = async_test(90)  # a deadline that fails the test, never hangs it


async def wait_for(cond: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    return await eventually(cond, what, timeout, interval=0.05)


class RecordingS5(S5Emitter):
    """The simulated S/5, keeping a copy of every clean frame it sends."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.sent: list[bytes] = []

    def frames(self, k: int, now_ms: int, reading: Reading | None, ecg: np.ndarray | None) -> list[bytes]:
        out = super().frames(k, now_ms, reading, ecg)
        self.sent += out
        return out


class RecordingNonin(NoninEmitter):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    def frames(self, k: int, now_ms: int, reading: Reading | None, ecg: np.ndarray | None) -> list[bytes]:
        out = super().frames(k, now_ms, reading, ecg)
        self.sent += out
        return out


class Edge:
    """One device on the agent's serial transport; events collected as the agent's route would get them
    (the transport's own link statuses apart from the parser's events)."""

    def __init__(self, monitor: SerialMonitor, **options: Any) -> None:
        self.monitor = monitor
        self.spec = get_driver(monitor.protocol)
        self.dev = DeviceConfig(id=f"dev-{monitor.bed}", driver=self.spec.name, bed=monitor.bed, settings={"port": monitor.port}, options=options)
        self.events: list[DriverEvent] = []
        self.link: list[DeviceStatus] = []

    def route(self, events: list[DriverEvent]) -> None:
        for e in events:
            (self.link if isinstance(e, DeviceStatus) and e.detail == LINK else self.events).append(e)

    def run(self) -> Awaitable[None]:
        return run_serial_device(self.dev, self.spec, self.route)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def early_probe_off(start: float) -> Scenario:
    return Scenario("probe_off", get_scenario("probe_off").keyframes, probe_off=((start, None),))


def s5_encoded(frames: list[bytes], **options: Any) -> set[tuple]:
    return {
        (o.param, o.value, o.t_dev, o.flags)
        for f in frames
        for o in S5Parser("x", "y", clock_ms=lambda: 0, **options).feed(f)
        if isinstance(o, Observation)
    }


def nonin_encoded(frames: list[bytes]) -> set[tuple]:
    packets = [b"".join(frames[i : i + 25]) for i in range(0, len(frames) - 24, 25)]
    return {
        (o.param, o.value, o.flags)
        for pk in packets
        for o in NoninParser("x", "y", report_every=1).feed(pk)
        if isinstance(o, Observation)
    }


@run_async
async def test_s5_request_dri_retry_and_records_over_real_ptys_with_and_without_noise() -> None:
    # the monitors answer only DRI level 0x07, so the driver must step 0x09 -> 0x08 -> 0x07
    clean = SerialMonitor("S-01", "stable", 21, emitter=RecordingS5(dri_level=0x07, probe_off_mask=0x10000))
    noisy = SerialMonitor(
        "S-02", early_probe_off(6.0), 22, emitter=RecordingS5(dri_level=0x07, probe_off_mask=0x10000), noise=LineNoise(0.5, seed=5)
    )
    edge_options = {"tx_interval_s": 1, "retry_s": 1.0, "probe_off_mask": 0x10000}
    with clean, noisy:
        edges = [Edge(m, **edge_options) for m in (clean, noisy)]
        sim = asyncio.create_task(run_monitors([clean, noisy]))
        readers = [asyncio.create_task(e.run()) for e in edges]
        try:
            await wait_for(
                lambda: len({o.t_dev for o in edges[0].of(Observation)}) >= 6 and len({o.t_dev for o in edges[1].of(Observation)}) >= 5,
                "S/5 records on both ports (six clean, five through the noise)",
                timeout=45,
            )
            await wait_for(lambda: any(o.flags == Flag.PROBE_OFF for o in edges[1].of(Observation)), "the noisy bed's probe to come off", 30)
        finally:
            for t in (sim, *readers):
                t.cancel()
            results = await asyncio.gather(sim, *readers, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results

    for m in (clean, noisy):
        requests = m.emitter.requests  # type: ignore[attr-defined]
        assert requests["wrong_level"] >= 2 and requests["accepted"] >= 1, requests  # 0x09 and 0x08 went unanswered
    for e in edges:
        assert DeviceStatus(e.monitor.bed, e.dev.id, "ok", e.of(DeviceStatus)[0].t_dev, "receiving at DRI level 0x07") == e.of(DeviceStatus)[0]
        assert [(s.bed, s.device, s.status) for s in e.link] == [(e.monitor.bed, e.dev.id, "ok")]  # opened once, never lost

    c = edges[0]
    assert not [e for e in c.of(ParseError) if e.code != "unmapped"], c.of(ParseError)
    latest = {o.param: o for o in c.of(Observation)}
    assert 55 <= latest["hr"].value <= 100 and 90 <= latest["spo2"].value <= 100 and 8 <= latest["rr"].value <= 25
    assert 35.5 <= latest["temp"].value <= 38.5 and 25 <= latest["etco2"].value <= 50 and 90 <= latest["nibp_sys"].value <= 160
    now = time.time_ns() // 1_000_000
    assert all(now - 90_000 < o.t_dev <= now and o.t_dev <= o.t_rx + 1000 for o in c.of(Observation))
    received = {(o.param, o.value, o.t_dev, o.flags) for o in c.of(Observation)}
    assert received <= s5_encoded(clean.emitter.sent, probe_off_mask=0x10000)  # type: ignore[attr-defined]

    n = edges[1]
    assert noisy.noise is not None and sum(noisy.noise.counts.values()) >= 2
    assert {e.code for e in n.of(ParseError)} - {"unmapped"}, "the noise was caught"
    received = {(o.param, o.value, o.t_dev, o.flags) for o in n.of(Observation)}
    assert received and received <= s5_encoded(noisy.emitter.sent, probe_off_mask=0x10000)  # type: ignore[attr-defined]
    assert "probe_off" in [s.status for s in n.of(DeviceStatus)]


@run_async
async def test_nonin_streams_over_real_ptys_with_and_without_noise() -> None:
    clean = SerialMonitor("N-01", early_probe_off(2.0), 31, emitter=RecordingNonin())
    noisy = SerialMonitor("N-02", "stable", 32, emitter=RecordingNonin(), noise=LineNoise(0.02, seed=9))
    with clean, noisy:
        edges = [Edge(clean, report_every=1), Edge(noisy, report_every=1)]
        readers = [asyncio.create_task(e.run()) for e in edges]
        await asyncio.sleep(0.3)  # the readers open the ports before the oximeters start streaming
        sim = asyncio.create_task(run_monitors([clean, noisy]))
        try:
            await wait_for(lambda: "probe_off" in [s.status for s in edges[0].of(DeviceStatus)], "the probe to come off", 20)
            await wait_for(lambda: len(edges[1].of(Observation)) >= 2 * 12, "a dozen packets through the noise", 20)
        finally:
            for t in (sim, *readers):
                t.cancel()
            results = await asyncio.gather(sim, *readers, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results

    c = edges[0]
    assert not c.of(ParseError), c.of(ParseError)
    values = [(o.param, o.value, o.flags) for o in c.of(Observation)]
    assert values[0][0] == "pr" and 55 <= values[0][1] <= 100 and values[1][0] == "spo2" and 90 <= values[1][1] <= 100  # type: ignore[operator]
    assert ("spo2", None, Flag.PROBE_OFF) in values and ("pr", None, Flag.PROBE_OFF) in values
    assert [s.status for s in c.of(DeviceStatus)] == ["ok", "probe_off"]
    assert all([s.status for s in e.link] == ["ok"] for e in edges)  # each port opened once, never lost
    assert set(values) <= nonin_encoded(clean.emitter.sent)  # type: ignore[attr-defined]

    n = edges[1]
    assert noisy.noise is not None and sum(noisy.noise.counts.values()) >= 2
    assert n.of(ParseError), "the noise was caught"
    received = {(o.param, o.value, o.flags) for o in n.of(Observation)}
    assert received <= nonin_encoded(noisy.emitter.sent)  # type: ignore[attr-defined]
