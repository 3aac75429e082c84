"""Nonin encoder and simulated oximeter: packet layout, timing, probe off, and the driver reading it back."""

from __future__ import annotations

import pytest

from edge_agent.drivers.nonin import NoninParser
from edge_agent.events import DeviceStatus, ParseError
from simulators import nonin_encoder as N
from simulators.scenarios import Scenario, get_scenario
from simulators.serial_monitor import SerialMonitor
from wire.messages import Observation
from wire.vocabulary import Flag


def test_packet_data_layout_by_frame() -> None:
    d = N.packet_data(300, 91, firmware=0x15)
    assert d[0:4] == [300 >> 7, 300 & 0x7F, 91, 0x15]
    assert d[8:11] == [91, 91, 91] and d[15:17] == [91, 91]
    assert d[13:15] == d[19:21] == d[21:23] == [2, 300 & 0x7F]
    assert [d[i] for i in (4, 5, 6, 7, 11, 12, 17, 18, 23, 24)] == [0] * 10
    assert N.packet_data(None, None)[:3] == [3, 0x7F, 127]  # 511 and 127: no value
    with pytest.raises(ValueError):
        N.packet_data(512, 90)


def test_frames_carry_status_and_the_sync_bit_only_in_frame_one() -> None:
    frames = N.encode_packet(80, 97, status=N.ARTEFACT)
    assert len(frames) == 25 and all(len(f) == 5 and f[0] == 1 and sum(f[:4]) % 256 == f[4] for f in frames)
    assert [f[1] for f in frames] == [0x80 | 0x20 | 0x01] + [0x80 | 0x20] * 24


def test_emitter_sends_75_frames_a_second_in_packets() -> None:
    em = N.NoninEmitter()
    m = SerialMonitor("A-01", "stable", 3, emitter=em)
    m.start(0)
    ticks = [m.frame_list(k, 200 * k) for k in range(10)]
    assert all(len(t) == 15 for t in ticks)
    frames = [f for t in ticks for f in t]
    assert [i for i, f in enumerate(frames) if f[1] & 1] == [0, 25, 50, 75, 100, 125]
    assert em.packets_sent == 6


def test_the_oximeter_reads_back_and_goes_probe_off() -> None:
    scenario = Scenario("p", get_scenario("probe_off").keyframes, probe_off=((2.0, 3.0),))
    m = SerialMonitor("A-01", scenario, 5, emitter=N.NoninEmitter())
    m.start(0)
    p = NoninParser("A-01", "ox", clock_ms=lambda: 7, report_every=1)
    per_second = []
    for s in range(5):
        events = [e for k in range(5 * s, 5 * s + 5) for e in p.feed(m.frames_for_tick(k, 200 * k))]
        per_second.append(events)
    assert not [e for ev in per_second for e in ev if isinstance(e, ParseError)]
    spo2 = [[(o.value, o.flags) for o in ev if isinstance(o, Observation) and o.param == "spo2"] for ev in per_second]
    assert all(v is not None and 90 <= v <= 100 and f == 0 for v, f in spo2[0] + spo2[1])
    assert (None, Flag.PROBE_OFF) in spo2[2]
    assert spo2[4] and all(v is not None for v, _ in spo2[4])
    statuses = [e.status for ev in per_second for e in ev if isinstance(e, DeviceStatus)]
    assert statuses == ["ok", "probe_off", "ok"]
    pr = [o.value for ev in per_second[:2] for o in ev if isinstance(o, Observation) and o.param == "pr"]
    assert all(55 <= v <= 100 for v in pr)


def test_pleth_pulses() -> None:
    em = N.NoninEmitter()
    m = SerialMonitor("A-01", "stable", 3, emitter=em)
    m.start(0)
    frames = [f for k in range(10) for f in m.frame_list(k, 0)]
    pleth = [f[2] for f in frames]
    assert max(pleth) - min(pleth) > 100  # a pulse wave, not a flat line
