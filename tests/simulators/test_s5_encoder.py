"""S/5 encoder and simulated monitor: framing, the request it waits for, what it sends, and the driver reading it back."""

from __future__ import annotations

import pytest
from support import wait_until

from edge_agent.drivers.s5 import S5Parser, build_request
from edge_agent.drivers.s5 import frame as driver_frame
from edge_agent.events import DeviceStatus, ParseError
from simulators import s5_encoder as E
from simulators.serial_monitor import Reading, SerialMonitor
from wire.messages import Observation
from wire.vocabulary import Flag

T0_MS = 1_700_000_000_000
VALUES = {"hr": 81.0, "spo2": 96.0, "rr": 18.0, "temp": 37.4, "etco2": 37.0, "o2": 0.0, "acvpu": 0.0,
          "nibp_sys": 121.0, "nibp_dia": 77.0, "nibp_mean": 92.0}  # fmt: skip


def request(level: int, interval: int = 1, record_type: str = "displayed") -> bytes:
    return build_request(level, tx_interval_s=interval, record_type={"displayed": 1, "trend": 2}[record_type])


def readings(s5: E.S5Emitter, seconds: range, probe_off: bool = False) -> list[bytes]:
    out = []
    for s in seconds:
        out += s5.frames(5 * s, T0_MS + 1000 * s, Reading(s, dict(VALUES), probe_off), None)
    return out


def test_framing_matches_the_driver_and_stuffs_both_bytes() -> None:
    for rec in (bytes(range(256)) * 2, b"\x7e\x7d" * 30, b"plain"):
        assert E.frame(rec) == driver_frame(rec)
    assert E.stuff(b"\x7e\x7d\x5e") == b"\x7d\x5e\x7d\x5d\x5e"


def test_record_reader_keeps_good_records_whatever_the_chunks() -> None:
    recs = [bytes([i]) * 60 for i in (0x7E, 0x7D, 0x41)]
    stream = b"junk" + b"".join(E.frame(r) for r in recs)
    bad = bytearray(E.frame(b"x" * 50))
    bad[10] ^= 1
    stream += bytes(bad) + E.frame(b"last")
    for step in (1, 3, 7, len(stream)):
        reader = E.RecordReader()
        got = [r for i in range(0, len(stream), step) for r in reader.feed(stream[i : i + step])]
        assert got == recs + [b"last"] and reader.bad == 1


def test_record_reader_is_bounded() -> None:
    reader = E.RecordReader()
    assert reader.feed(b"\x7e" + b"\x00" * (E.MAX_RECORD + 100)) == []
    assert len(reader._buf) <= E.MAX_RECORD + 1
    assert reader.feed(b"\x7e" + E.frame(b"ok")[1:]) == [b"ok"] and reader.bad == 1


@pytest.mark.parametrize("level", [7, 8, 9])
def test_parse_request_reads_the_drivers_request(level: int) -> None:
    [rec] = E.RecordReader().feed(build_request(level, tx_interval_s=3))
    assert E.parse_request(rec) == E.Request(level, 1, 3, 0x0E)
    assert E.parse_request(rec[:-1]) is None
    assert E.parse_request(b"\x00" * 49) is None


def test_monitor_is_silent_until_a_request_at_its_level() -> None:
    s5 = E.S5Emitter(dri_level=0x07)
    assert readings(s5, range(3)) == []
    s5.receive(request(9) + request(8), T0_MS)
    assert readings(s5, range(3, 5)) == [] and s5.requests == {"wrong_level": 2}
    s5.receive(request(7, record_type="trend"), T0_MS)
    assert readings(s5, range(5, 7)) == [] and s5.requests["not_displayed"] == 1
    s5.receive(request(7, interval=2)[:20], T0_MS)  # a request split across reads
    s5.receive(request(7, interval=2)[20:], T0_MS)
    assert s5.requests["accepted"] == 1 and s5.sending
    frames = readings(s5, range(7, 13))
    assert len(frames) == 3  # every 2 s: seconds 7, 9, 11
    s5.receive(request(7, interval=0), T0_MS)
    assert not s5.sending and readings(s5, range(13, 16)) == []


def test_what_the_monitor_sends_reads_back_as_the_readings() -> None:
    s5 = E.S5Emitter()
    s5.receive(request(9), T0_MS)
    frames = readings(s5, range(2))
    p = S5Parser("A-01", "m", clock_ms=lambda: 0)
    events = [e for f in frames for e in p.feed(f)]
    values = {(o.param, o.t_dev): o.value for o in events if isinstance(o, Observation)}
    for key in ("hr", "spo2", "rr", "temp", "etco2", "nibp_sys", "nibp_dia", "nibp_mean"):
        assert values[(key, T0_MS)] == VALUES[key], key
    assert values[("pr", T0_MS)] == VALUES["hr"]
    assert ("nibp_sys", T0_MS + 1000) not in values  # the same cuff reading, reported once
    assert values[("hr", T0_MS + 1000)] == 81
    assert not [e for e in events if isinstance(e, ParseError) and e.code != "unmapped"]


def test_nibp_is_held_between_cuff_readings() -> None:
    s5 = E.S5Emitter()
    s5.receive(request(9), T0_MS)
    first = s5.frames(0, T0_MS, Reading(0, dict(VALUES), False), None)
    later = {k: v for k, v in VALUES.items() if not k.startswith("nibp")}
    second = s5.frames(5, T0_MS + 1000, Reading(1, later, False), None)
    assert len(first) == len(second) == 1
    fresh = S5Parser("A-01", "m", clock_ms=lambda: 0)  # reads the second record alone: the reading is still shown
    assert {o.param: o.value for o in fresh.feed(second[0]) if isinstance(o, Observation)}["nibp_sys"] == 121


@pytest.mark.parametrize("mask", [0, 0x10000])
def test_probe_off(mask: int) -> None:
    s5 = E.S5Emitter(probe_off_mask=mask)
    s5.receive(request(9), T0_MS)
    p = S5Parser("A-01", "m", clock_ms=lambda: 0, **s5.edge_options())
    events = [e for f in readings(s5, range(1), probe_off=True) for e in p.feed(f)]
    spo2 = [o for o in events if isinstance(o, Observation) and o.param in ("spo2", "pr")]
    flag = Flag.PROBE_OFF if mask else Flag.INVALID
    assert [(o.value, o.flags) for o in spo2] == [(None, flag), (None, flag)]
    assert ("probe_off" in [e.status for e in events if isinstance(e, DeviceStatus)]) == bool(mask)


def test_monitor_on_a_pty_reads_the_request_from_the_edge() -> None:
    import os
    import select
    import time

    with SerialMonitor("A-01", "stable", 1, emitter=E.S5Emitter(dri_level=8)) as m:
        m.start(T0_MS)
        fd = os.open(m.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            assert m.tick(0, T0_MS) == 0  # nothing asked yet
            os.write(fd, request(8))
            wait_until(lambda: (m.poll_input(T0_MS), m.emitter.requests["accepted"])[1],  # type: ignore[attr-defined]
                       "the request to reach the monitor", timeout=5, interval=0.01)  # fmt: skip
            assert m.tick(5, T0_MS + 1000) > 0
            got = b""
            deadline = time.monotonic() + 5
            while not got.endswith(b"\x7e") or len(got) < 100:
                assert time.monotonic() < deadline
                select.select([fd], [], [], 0.1)
                try:
                    got += os.read(fd, 4096)
                except BlockingIOError:
                    pass
            assert E.RecordReader().feed(got)[0][3] == 8  # answered at its level
        finally:
            os.close(fd)


def test_values_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError):
        E.raw(400.0, 0.01)  # 40000 > int16
    with pytest.raises(ValueError, match="no fields"):
        E.encode_basic({"ecg": E.Group(fields={"sys": 1})})
    assert E.raw(None, 1) == E.INVALID and E.raw(-0.004, 0.01) == 0
