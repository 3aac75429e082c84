"""Real ptys end to end: simulated monitors -> serial_port transport -> TspParser.

Unplugging is done for real: the device's stable name (a symlink, as udev gives
a USB adapter) goes and the pty closes; plugging back in is a new pty under the
same name.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from async_deadline import async_test, eventually

from edge_agent.config import DeviceConfig
from edge_agent.drivers import get_driver
from edge_agent.drivers.tsp import TspParser
from edge_agent.events import DeviceStatus, DriverEvent, ParseError, WaveSegment
from edge_agent.transports import LINK, serial_port
from edge_agent.transports.serial_port import SerialPort, read_serial, run_serial_device
from simulators.scenarios import Scenario, get_scenario
from simulators.serial_monitor import SerialMonitor, run_monitors
from simulators.tsp_encoder import encode_status
from wire.messages import Observation
from wire.vocabulary import Flag

pytestmark = pytest.mark.integration


run_async = async_test(60)  # a deadline that fails the test, never hangs it


async def wait_for(cond: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    return await eventually(cond, what, timeout, interval=0.02)


class Sink:
    def __init__(self, bed: str) -> None:
        self.parser = TspParser(bed=bed, device=f"dev-{bed}")
        self.events: list[DriverEvent] = []
        self.chunks = 0

    def __call__(self, data: bytes) -> None:
        self.chunks += 1
        self.events += self.parser.feed(data)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@run_async
async def test_monitors_to_parser_over_real_ptys() -> None:
    stable = SerialMonitor("A-01", "stable", 1, nibp_interval_s=2)
    # like the probe_off scenario, but the probe falls off at 1 s, so the test needs no 10 s wait
    early_probe_off = Scenario("probe_off", get_scenario("probe_off").keyframes, probe_off=((1.0, None),))
    probe = SerialMonitor("A-02", early_probe_off, 2, waveforms=False)
    sinks = {m.bed: Sink(m.bed) for m in (stable, probe)}
    with stable, probe:
        readers = [asyncio.create_task(read_serial(m.port, 115200, sinks[m.bed], reopen_delay_s=0.1)) for m in (stable, probe)]
        await asyncio.sleep(0.2)  # readers open (and flush) the ports before the monitors start
        sim = asyncio.create_task(run_monitors([stable, probe]))
        try:
            s, p = sinks["A-01"], sinks["A-02"]

            def numerics_seconds(sink: Sink) -> list[int]:
                return sorted({o.t_dev for o in sink.of(Observation) if o.param == "hr"})

            await wait_for(lambda: len(numerics_seconds(s)) >= 4 and len(numerics_seconds(p)) >= 4, "4 s of numerics")
        finally:
            sim.cancel()
            for r in readers:
                r.cancel()
            results = await asyncio.gather(sim, *readers, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)

    assert not s.of(ParseError) and not p.of(ParseError)

    # numerics once a second, device time = wall clock, sane values
    times = numerics_seconds(s)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(700 <= g <= 1300 for g in gaps), gaps
    now = time.time_ns() // 1_000_000
    assert all(now - 10_000 < t <= now for t in times)
    latest = {o.param: o for o in s.of(Observation)}
    assert 55 <= latest["hr"].value <= 100
    assert 90 <= latest["spo2"].value <= 100
    assert 8 <= latest["rr"].value <= 25
    assert 35.5 <= latest["temp"].value <= 38.0
    assert 90 <= latest["nibp_sys"].value <= 160
    assert latest["acvpu"].value == 0 and latest["o2"].value == 0
    assert all(o.flags == 0 and o.bed == "A-01" and o.device == "dev-A-01" for o in s.of(Observation))
    assert all(o.t_dev <= o.t_rx for o in s.of(Observation))

    # waveform: ECG at 250 Hz, 50-sample segments, several per second, contiguous on the 4 ms grid
    segs = [w for w in s.of(WaveSegment) if w.lead == "ecg_ii"]
    assert len(segs) >= 5 * (len(times) - 1) - 1  # 5 per second
    assert all(w.rate_hz == 250 and w.lead == "ecg_ii" and len(w.samples) == 50 and w.scale == 0.005 for w in segs)
    assert all(b.t_first - a.t_first == 200 for a, b in itertools.pairwise(segs))
    assert max(max(w.samples) for w in segs) > 100  # R waves (~1 mV = 200 counts) are there
    # pleth beside it: 125 Hz, 25-sample segments over the same spans, pulses of ~3000 counts (perfusion index 3 %)
    pleth = [w for w in s.of(WaveSegment) if w.lead != "ecg_ii"]
    assert all(w.rate_hz == 125 and w.lead == "pleth" and len(w.samples) == 25 and w.scale == 1e-5 for w in pleth)
    assert {w.t_first for w in pleth} <= {w.t_first for w in segs} and len(pleth) >= len(segs) - 1
    assert max(max(w.samples) for w in pleth) > 2000
    assert not p.of(WaveSegment)

    # probe off: flagged SpO2 without a value, and a status
    spo2 = [o for o in p.of(Observation) if o.param == "spo2"]
    assert spo2[0].value is not None and spo2[0].flags == 0
    assert spo2[-1].value is None and spo2[-1].flags == Flag.PROBE_OFF
    statuses = [e.status for e in p.of(DeviceStatus)]
    assert statuses[0] == "ok" and "probe_off" in statuses


@run_async
async def test_reader_reconnects_after_unplug_and_cleans_up_on_cancel(tmp_path: Path) -> None:
    sink = Sink("B-01")
    states: list[bool] = []
    first, second = SerialMonitor("B-01", "stable", 3), SerialMonitor("B-01", "stable", 4)
    link = tmp_path / "ttyUSB0"  # a stable device name, as udev gives a USB adapter
    port = SerialPort(str(link), 115200, sink, reopen_delay_s=0.05, on_state=states.append)
    task = asyncio.create_task(port.run())
    try:
        await wait_for(lambda: port.open_failures >= 2, "attempts to open a device not plugged in yet")
        assert states == [False]  # the first failed attempt says so; the retries do not
        first.open()
        link.symlink_to(first.port)
        await wait_for(lambda: port.connected, "the port to open")
        assert states == [False, True]
        os.write(first._master, encode_status(1, "ok"))  # type: ignore[arg-type]
        await wait_for(lambda: len(sink.of(DeviceStatus)) == 1, "a frame")
        link.unlink()  # unplug: the device name goes (before the pty, whose number another process may reuse)
        first.close()  # and the line dies
        await wait_for(lambda: states == [False, True, False], "the loss to be noticed")
        await wait_for(lambda: port.open_failures >= 2, "retries of the missing device")
        assert states == [False, True, False]  # once per loss, not per retry
        assert not port.connected and port.write(b"x") == 0 and port.bytes_dropped == 1
        with second:  # plug a device back in under the same name
            link.symlink_to(second.port)
            await wait_for(lambda: states == [False, True, False, True], "the reopen")
            os.write(second._master, encode_status(2, "probe_off", "spo2"))  # type: ignore[arg-type]
            await wait_for(lambda: len(sink.of(DeviceStatus)) == 2, "a frame from the new device")
            assert port.opens == 2 and port.open_failures == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not port.connected and not sink.of(ParseError)
    assert states == [False, True, False, True]  # cancelling reports nothing


def test_a_line_that_cannot_be_configured_is_retried_like_one_that_cannot_be_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyserial sets the line up with tcsetattr, which raises termios.error (EINVAL) on a pty being torn down."""
    real = serial_port.serial.Serial
    calls = itertools.count()

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == 0:
            raise termios.error(22, "Invalid argument")
        return real(*args, **kwargs)

    monkeypatch.setattr(serial_port.serial, "Serial", flaky)

    @run_async
    async def scenario() -> None:
        states: list[bool] = []
        with SerialMonitor("B-01", "stable", 5) as mon:
            port = SerialPort(mon.port, 115200, lambda data: None, reopen_delay_s=0.05, on_state=states.append)
            task = asyncio.create_task(port.run())
            try:
                await wait_for(lambda: port.connected, "the port to open on the second attempt")
                assert states == [False, True] and port.opens == 1
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

    scenario()


@run_async
async def test_serial_device_reports_its_link_missing_lost_and_back(tmp_path: Path) -> None:
    """The agent's serial transport: the port's state becomes the device's link status, once per change."""
    link = tmp_path / "ttyUSB0"
    dev = DeviceConfig(id="mon-F", driver="tsp", bed="F-01", settings={"port": str(link)})
    got: list[DriverEvent] = []
    task = asyncio.create_task(run_serial_device(dev, get_driver("tsp"), got.extend))

    def links() -> list[str]:
        return [e.status for e in got if isinstance(e, DeviceStatus) and e.detail == LINK]

    def parsed() -> list[str]:
        return [e.status for e in got if isinstance(e, DeviceStatus) and e.detail != LINK]

    try:
        await wait_for(lambda: links() == ["disconnected"], "the missing device reported")  # never plugged in
        with SerialMonitor("F-01", "stable", 3) as first:
            link.symlink_to(first.port)  # plug in
            await wait_for(lambda: links() == ["disconnected", "ok"], "the port opened")
            os.write(first._master, encode_status(1, "ok"))  # type: ignore[arg-type]
            await wait_for(lambda: parsed() == ["ok"], "a frame")
            link.unlink()  # unplug
        await wait_for(lambda: links() == ["disconnected", "ok", "disconnected"], "the loss reported")
        with SerialMonitor("F-01", "stable", 4) as second:
            link.symlink_to(second.port)  # plug back in
            await wait_for(lambda: links() == ["disconnected", "ok", "disconnected", "ok"], "the reopen reported")
            os.write(second._master, encode_status(2, "probe_off", "spo2"))  # type: ignore[arg-type]
            await wait_for(lambda: parsed() == ["ok", "probe_off"], "a frame from the new device")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    statuses = [e for e in got if isinstance(e, DeviceStatus) and e.detail == LINK]
    assert all((e.bed, e.device) == ("F-01", "mon-F") for e in statuses) and len(statuses) == 4  # nothing on cancel
    now = time.time_ns() // 1_000_000
    assert all(now - 30_000 < e.t_dev <= now for e in statuses) and [e.t_dev for e in statuses] == sorted(e.t_dev for e in statuses)
    assert not [e for e in got if isinstance(e, ParseError)]


@run_async
async def test_cancel_while_open_closes_the_port_and_propagates() -> None:
    mon = SerialMonitor("C-01", "stable", 4, waveforms=False)
    with mon:
        port = SerialPort(mon.port, 115200, lambda data: None)
        task = asyncio.create_task(port.run())
        await wait_for(lambda: port.connected, "the port to open")
        fd = port._fd
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not port.connected
        with pytest.raises(OSError):
            os.fstat(fd)  # type: ignore[arg-type]  # closed


@run_async
async def test_write_reaches_the_device() -> None:
    mon = SerialMonitor("D-01", "stable", 5, waveforms=False)
    with mon:
        port = SerialPort(mon.port, 115200, lambda data: None)
        task = asyncio.create_task(port.run())
        try:
            await wait_for(lambda: port.connected, "the port to open")
            assert port.write(b"REQ\r\n") == 5
            got = b""

            def readable() -> bool:
                nonlocal got
                try:
                    got += os.read(mon._master, 100)  # type: ignore[arg-type]
                except BlockingIOError:
                    pass
                return got == b"REQ\r\n"

            await wait_for(readable, "the request at the monitor end")
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


@run_async
async def test_a_bug_in_the_callback_stops_the_reader() -> None:
    mon = SerialMonitor("E-01", "stable", 6, waveforms=False)
    with mon:

        def broken(data: bytes) -> None:
            raise RuntimeError("parser bug")

        port = SerialPort(mon.port, 115200, broken)
        task = asyncio.create_task(port.run())
        await wait_for(lambda: port.connected, "the port to open")
        os.write(mon._master, b"hello")  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="parser bug"):
            await asyncio.wait_for(task, 5)
        assert not port.connected
