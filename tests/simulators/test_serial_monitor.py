"""Simulated serial monitor: what it sends per tick, its pty, and dropping bytes nobody reads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import termios
import time

import pytest

from edge_agent.drivers.tsp import TspParser
from edge_agent.events import DeviceStatus, ParseError, WaveSegment
from simulators.serial_monitor import PLETH_PER_TICK, SAMPLES_PER_TICK, SerialMonitor, run_monitors
from wire.messages import Observation
from wire.vocabulary import Flag

START_MS = 1_700_000_000_000


def events_for(m: SerialMonitor, ticks: range) -> list:
    m.start(START_MS)
    p = TspParser(m.bed, m.device_id, clock_ms=lambda: 0)
    out = []
    for k in ticks:
        out += p.feed(m.frames_for_tick(k, START_MS + 200 * k))
    assert not [e for e in out if isinstance(e, ParseError)]
    return out


def test_tick_schedule_numerics_each_second_waves_each_tick() -> None:
    m = SerialMonitor("A-01", "stable", 1)
    ev = events_for(m, range(51))  # 10 s
    hr = [e for e in ev if isinstance(e, Observation) and e.param == "hr"]
    assert [o.t_dev for o in hr] == [START_MS + 1000 * s for s in range(11)]
    waves = [e for e in ev if isinstance(e, WaveSegment) and e.lead == "ecg_ii"]
    assert [w.t_first for w in waves] == [START_MS + 200 * k for k in range(50)]
    assert all(len(w.samples) == SAMPLES_PER_TICK and w.rate_hz == 250 for w in waves)
    pleth = [e for e in ev if isinstance(e, WaveSegment) and e.lead == "pleth"]  # the same spans, at half the rate
    assert [w.t_first for w in pleth] == [START_MS + 200 * k for k in range(50)]
    assert all(len(w.samples) == PLETH_PER_TICK and w.rate_hz == 125 and w.scale == 1e-5 for w in pleth)
    assert len(waves) + len(pleth) == len([e for e in ev if isinstance(e, WaveSegment)])
    statuses = [e for e in ev if isinstance(e, DeviceStatus)]
    assert [s.status for s in statuses] == ["ok"]


def test_no_waveforms_when_disabled() -> None:
    ev = events_for(SerialMonitor("A-01", "stable", 1, waveforms=False), range(26))
    assert not [e for e in ev if isinstance(e, WaveSegment)]


def test_same_seed_same_bytes() -> None:
    a, b = SerialMonitor("A-01", "sepsis", (4, 2)), SerialMonitor("A-01", "sepsis", (4, 2))
    a.start(START_MS)
    b.start(START_MS)
    assert all(a.frames_for_tick(k, START_MS + 200 * k) == b.frames_for_tick(k, START_MS + 200 * k) for k in range(100))


def test_probe_off_scenario() -> None:
    ev = events_for(SerialMonitor("A-01", "probe_off", 1, waveforms=False), range(5 * 90 + 1))
    spo2 = {(o.t_dev - START_MS) // 1000: o for o in ev if isinstance(o, Observation) and o.param == "spo2"}
    assert spo2[9].value is not None and spo2[9].flags == 0
    assert all(spo2[s].value is None and spo2[s].flags == Flag.PROBE_OFF for s in range(10, 70))
    assert spo2[70].value is not None and spo2[70].flags == 0
    hr = [o for o in ev if isinstance(o, Observation) and o.param == "hr"]
    assert all(o.value is not None and o.flags == 0 for o in hr)  # only SpO2 is affected
    statuses = [((s.t_dev - START_MS) // 1000, s.status, s.detail) for s in ev if isinstance(s, DeviceStatus)]
    assert statuses == [
        (0, "ok", "spo2"),
        (10, "probe_off", "spo2"),
        (20, "probe_off", "spo2"),  # repeated while it lasts
        (30, "probe_off", "spo2"),
        (40, "probe_off", "spo2"),
        (50, "probe_off", "spo2"),
        (60, "probe_off", "spo2"),
        (70, "ok", "spo2"),
    ]


def test_silent_scenario_stops_sending() -> None:
    m = SerialMonitor("A-01", "silent", 1)
    m.start(START_MS)
    sizes = [len(m.frames_for_tick(k, START_MS + 200 * k)) for k in range(5 * 30)]
    assert all(sizes[:75]) and not any(sizes[75:])


def test_pty_is_raw_and_bytes_arrive_unchanged() -> None:
    with SerialMonitor("A-01", "stable", 1) as m:
        assert m.port.startswith("/dev/pts/") and os.path.exists(m.port)
        fd = os.open(m.port, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            lflag = termios.tcgetattr(fd)[3]
            assert not lflag & (termios.ECHO | termios.ICANON)
            m.start(START_MS)
            twin = SerialMonitor("A-01", "stable", 1)  # same seed: same bytes
            twin.start(START_MS)
            expected = twin.frames_for_tick(0, START_MS) + twin.frames_for_tick(1, START_MS + 200)
            sent = m.tick(0, START_MS) + m.tick(1, START_MS + 200)
            assert sent == len(expected) and m.bytes_dropped == 0
            got = b""
            deadline = time.monotonic() + 5
            while len(got) < sent and time.monotonic() < deadline:  # the pty hands data over asynchronously
                select.select([fd], [], [], 0.1)
                with contextlib.suppress(BlockingIOError):
                    got += os.read(fd, 65536)
            assert got == expected  # byte for byte: raw mode, no CR/LF translation
        finally:
            os.close(fd)
    assert m._master is None


def test_bytes_dropped_and_counted_when_nobody_reads() -> None:
    with SerialMonitor("A-01", "stable", 1) as m:
        m.start(START_MS)
        for k in range(5 * 600):  # 10 simulated minutes into an unread pty
            m.tick(k, START_MS + 200 * k)
        assert m.bytes_dropped > 0 and m.bytes_sent > 0
        assert m.frames_sent > 5 * 600
    m.tick(99999, 0)  # closed: dropped, never raises


def test_run_monitors_for_a_duration() -> None:
    monitors = [SerialMonitor(f"A-{i:02d}", "stable", i, waveforms=i == 0) for i in range(3)]
    try:
        asyncio.run(asyncio.wait_for(run_monitors(monitors, duration_s=1.0), 10))
        assert all(m.port for m in monitors)
        assert monitors[0].frames_sent == 1 + 2 + 5 + 5  # status at 0 s, numerics at 0 s and 1 s, 5 ECG and 5 pleth segments
        assert monitors[1].frames_sent == 1 + 2
    finally:
        for m in monitors:
            m.close()


def test_run_monitors_propagates_cancel() -> None:
    async def main() -> None:
        with SerialMonitor("A-01", "stable", 1) as m:
            task = asyncio.create_task(run_monitors([m]))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert m.frames_sent >= 3

    asyncio.run(main())


# -- line noise -------------------------------------------------------------------


def test_line_noise_is_seeded_and_puts_at_most_one_fault_in_a_frame() -> None:
    from simulators.serial_monitor import LineNoise

    frames = [b"\x7e" + bytes([i % 256]) * 40 + b"\x7e" for i in range(500)]
    a, b = LineNoise(0.5, seed=3), LineNoise(0.5, seed=3)
    out_a, out_b = a.apply(frames, protect=1), b.apply(frames, protect=1)
    assert out_a == out_b and a.counts == b.counts
    assert out_a != LineNoise(0.5, seed=4).apply(frames, protect=1)
    assert 200 < sum(a.counts.values()) < 300 and set(a.counts) == set(LineNoise.KINDS)
    for before, after in zip(frames, out_a, strict=True):
        if after == before:
            continue
        if len(after) > len(before) and after.endswith(before):  # garbage on the line before the frame
            continue
        assert after[0] == after[-1] == 0x7E, "the flags are protected"
        inner_before, inner_after = before[1:-1], after[1:-1]
        if len(inner_after) == len(inner_before):  # one corrupted byte
            assert sum(x != y for x, y in zip(inner_before, inner_after, strict=True)) == 1
        else:  # one byte inserted, or one run of 1-8 bytes dropped
            assert len(inner_after) == len(inner_before) + 1 or 1 <= len(inner_before) - len(inner_after) <= 8


def test_line_noise_rate_zero_passes_everything_and_bad_settings_are_refused() -> None:
    from simulators.serial_monitor import LineNoise

    frames = [b"abc", b"def"]
    assert LineNoise(0.0).apply(frames) == frames
    for bad in ({"rate": 1.5}, {"rate": -0.1}, {"rate": 0.1, "kinds": ["zap"]}, {"rate": 0.1, "kinds": []}):
        with pytest.raises(ValueError):
            LineNoise(**bad)  # type: ignore[arg-type]


def test_tsp_monitor_with_noise_loses_frames_never_values() -> None:
    """Single-byte faults, lost bytes and garbage: frames are lost, values never corrupted."""
    from simulators.serial_monitor import LineNoise

    clean = SerialMonitor("A-01", "sepsis", 8, waveforms=False)
    noisy = SerialMonitor("A-01", "sepsis", 8, waveforms=False, noise=LineNoise(0.3, seed=1))
    for m in (clean, noisy):
        m.start(START_MS)
    p_clean = TspParser("A-01", "d", clock_ms=lambda: 0)
    p_noisy = TspParser("A-01", "d", clock_ms=lambda: 0)
    good, got = set(), []
    for k in range(0, 5 * 120, 5):
        good |= {e for e in p_clean.feed(clean.frames_for_tick(k, START_MS + 200 * k)) if isinstance(e, Observation)}
        got += p_noisy.feed(noisy.frames_for_tick(k, START_MS + 200 * k))
    values = {e for e in got if isinstance(e, Observation)}
    assert values <= good and len(values) > len(good) // 2
    assert [e for e in got if isinstance(e, ParseError)] and noisy.noise is not None and sum(noisy.noise.counts.values()) > 10


def test_tsp_crc_catches_a_dropped_pair_of_equal_bytes() -> None:
    """Found by the line-noise simulator when TSP/1 had an XOR checksum: "00" dropped from a time passed."""
    from simulators.tsp_encoder import encode_numerics

    frame = encode_numerics(1700000077000, {"hr": 130})
    damaged = frame.replace(b"1700000077000", b"17000077000")
    [err] = TspParser("A-01", "d", clock_ms=lambda: 0).feed(damaged)
    assert isinstance(err, ParseError) and err.code == "checksum"
