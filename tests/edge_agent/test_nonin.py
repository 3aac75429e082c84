"""Nonin format-2 driver: golden packets, chunking independence, resynchronisation, sensor status, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.drivers import get_driver
from edge_agent.drivers.nonin import MAX_GARBAGE, NoninParser
from edge_agent.events import DeviceStatus, ParseError
from simulators import nonin_encoder as N
from simulators.serial_monitor import LineNoise
from wire.messages import Observation
from wire.vocabulary import Flag

T = 1_700_000_000_123
BED, DEV = "B-03", "ox-1"


def parser(**options: object) -> NoninParser:
    return NoninParser(BED, DEV, clock_ms=lambda: T, **options)  # type: ignore[arg-type]


def obs(param: str, value: float | None, flags: int = 0) -> Observation:
    return Observation(bed=BED, param=param, value=value, t_dev=T, t_rx=T, device=DEV, flags=flags)


# One packet, HR 150 and SpO2 96, pleth 0x40, 0x42, ..., written out frame by frame from devices.md:
# 01, status (bit 7 always; bit 0 in frame 1), pleth, data, sum of the four mod 256.
# HR 150 = (1 << 7) | 22: frame 1 data 0x01 (MSB), frame 2 0x16 (LSB); frame 3 SpO2 0x60; frame 4 firmware 0x2A.
# Checked by hand: frame 1 01+81+40+01 = C3; frame 2 01+80+42+16 = D9; frame 3 01+80+44+60 = 125 -> 25.
GOLDEN = bytes.fromhex("""
01 81 40 01 c3  01 80 42 16 d9  01 80 44 60 25  01 80 46 2a f1  01 80 48 00 c9
01 80 4a 00 cb  01 80 4c 00 cd  01 80 4e 00 cf  01 80 50 60 31  01 80 52 60 33
01 80 54 60 35  01 80 56 00 d7  01 80 58 00 d9  01 80 5a 01 dc  01 80 5c 16 f3
01 80 5e 60 3f  01 80 60 60 41  01 80 62 00 e3  01 80 64 00 e5  01 80 66 01 e8
01 80 68 16 ff  01 80 6a 01 ec  01 80 6c 16 03  01 80 6e 00 ef  01 80 70 00 f1
""")
HR150 = b"".join(N.encode_packet(150, 96))
HR72 = b"".join(N.encode_packet(72, 98))
OK_150 = [DeviceStatus(BED, DEV, "ok", T, "spo2"), obs("pr", 150), obs("spo2", 96)]


def feed_chunks(p: NoninParser, data: bytes, cuts: list[int]) -> list:
    events, prev = [], 0
    for cut in sorted(cuts) + [len(data)]:
        events += p.feed(data[prev:cut])
        prev = cut
    return events


def values_only(events: list) -> list[Observation]:
    return [e for e in events if isinstance(e, Observation)]


def test_golden_packet_is_what_devices_md_says() -> None:
    frames = [GOLDEN[i : i + 5] for i in range(0, 125, 5)]
    assert len(frames) == 25
    for i, f in enumerate(frames):
        assert f[0] == 0x01 and f[1] & 0x80 and sum(f[:4]) % 256 == f[4]
        assert bool(f[1] & 0x01) == (i == 0)
    assert ((frames[0][3] & 0x03) << 7) | (frames[1][3] & 0x7F) == 150 and frames[2][3] & 0x7F == 96
    assert b"".join(N.encode_packet(150, 96, pleth=[0x40 + 2 * i for i in range(25)])) == GOLDEN  # encoder agrees


def test_golden_whole_one_byte_at_a_time_and_every_split() -> None:
    stream = GOLDEN * 3  # three packets: one report (report_every=3)
    expected = parser().feed(stream)
    assert expected == OK_150
    p = parser()
    assert [e for i in range(len(stream)) for e in p.feed(stream[i : i + 1])] == expected
    for cut in range(len(stream) + 1):
        assert feed_chunks(parser(), stream, [cut]) == expected, cut
    for a in range(0, len(stream) + 1, 3):
        assert feed_chunks(parser(), stream, [a, (a * 7) % len(stream)]) == expected, a


def test_report_every_and_the_latest_packet_is_reported() -> None:
    p = parser(report_every=1)
    assert p.feed(GOLDEN) == OK_150
    assert p.feed(HR72) == [obs("pr", 72), obs("spo2", 98)]
    p = parser()
    # the first packet reports (the condition is new), then every third: packets 1 and 4
    assert p.feed(GOLDEN + GOLDEN + GOLDEN + HR72 + HR72) == [
        DeviceStatus(BED, DEV, "ok", T, "spo2"), obs("pr", 150), obs("spo2", 96), obs("pr", 72), obs("spo2", 98)
    ]  # fmt: skip
    assert p.packets == 5


@pytest.mark.parametrize(("hr", "spo2"), [(0, 0), (1, 1), (127, 99), (128, 100), (255, 70), (350, 50)])
def test_heart_rate_nine_bits(hr: int, spo2: int) -> None:
    assert values_only(parser(report_every=1).feed(b"".join(N.encode_packet(hr, spo2)))) == [obs("pr", hr), obs("spo2", spo2)]


def test_missing_values_are_flagged_not_numbers() -> None:
    events = parser(report_every=1).feed(b"".join(N.encode_packet(None, None)))
    assert values_only(events) == [obs("pr", None, Flag.INVALID), obs("spo2", None, Flag.INVALID)]
    events = parser(report_every=1).feed(b"".join(N.encode_packet(80, None)))
    assert values_only(events) == [obs("pr", 80), obs("spo2", None, Flag.INVALID)]


def test_implausible_values() -> None:
    events = parser(report_every=1).feed(b"".join(N.encode_packet(400, 120)))
    assert [e for e in events if isinstance(e, ParseError)] == [
        ParseError("implausible", "pr: 400 outside 0..350"),
        ParseError("implausible", "spo2: 120 outside 0..100"),
    ]
    assert values_only(events) == [obs("pr", None, Flag.INVALID), obs("spo2", None, Flag.INVALID)]


def test_sensor_disconnect_artefact_and_alarm() -> None:
    p = parser()
    off = b"".join(N.encode_packet(None, None, status=N.SENSOR_DISCONNECTED))
    assert p.feed(GOLDEN) == OK_150
    assert p.feed(off) == [
        DeviceStatus(BED, DEV, "probe_off", T, "spo2"),
        obs("pr", None, Flag.PROBE_OFF),
        obs("spo2", None, Flag.PROBE_OFF),
    ]
    assert p.feed(off * 2) == []  # reported once per report_every while it lasts
    assert p.feed(off) == [obs("pr", None, Flag.PROBE_OFF), obs("spo2", None, Flag.PROBE_OFF)]
    # even a number sent with the disconnect bit is not a value
    assert values_only(parser(report_every=1).feed(b"".join(N.encode_packet(70, 95, status=N.SENSOR_DISCONNECTED)))) == [
        obs("pr", None, Flag.PROBE_OFF), obs("spo2", None, Flag.PROBE_OFF)
    ]  # fmt: skip
    art = b"".join(N.encode_packet(88, 93, status=N.ARTEFACT))
    assert p.feed(art) == [DeviceStatus(BED, DEV, "artefact", T, "spo2"), obs("pr", 88, Flag.ARTEFACT), obs("spo2", 93, Flag.ARTEFACT)]
    alarm = b"".join(N.encode_packet(88, 93, status=N.SENSOR_ALARM))
    assert p.feed(alarm) == [DeviceStatus(BED, DEV, "sensor_alarm", T, "spo2"), obs("pr", None, Flag.INVALID), obs("spo2", None, Flag.INVALID)]
    assert p.feed(HR72)[0] == DeviceStatus(BED, DEV, "ok", T, "spo2")


def test_one_frame_with_the_bit_is_enough() -> None:
    frames = N.encode_packet(80, 97)
    frames[17] = N.encode_frame(N.SENSOR_DISCONNECTED, 0, 0)  # data byte of frame 18 is reserved
    assert values_only(parser(report_every=1).feed(b"".join(frames))) == [obs("pr", None, Flag.PROBE_OFF), obs("spo2", None, Flag.PROBE_OFF)]


# -- resynchronisation -------------------------------------------------------------------


def test_join_mid_packet() -> None:
    events = parser(report_every=1).feed(GOLDEN[53:] + HR72)
    assert events[0] == ParseError("framing", "bytes outside a packet", 125 - 53)
    assert values_only(events) == [obs("pr", 72), obs("spo2", 98)]


@pytest.mark.parametrize("at", [0, 1, 2, 3, 4, 5, 9, 12, 62, 119, 120, 124])
def test_a_lost_byte_costs_its_packet_only(at: int) -> None:
    damaged = GOLDEN[:at] + GOLDEN[at + 1 :]
    p = parser(report_every=1)
    events = p.feed(HR72 + damaged + HR72)
    assert values_only(events) == [obs("pr", 72), obs("spo2", 98)] * 2
    assert p.packets == 2 and sum(p.errors.values()) >= 1


@pytest.mark.parametrize("at", [0, 1, 3, 5, 60, 124, 125])
def test_an_added_byte_costs_its_packet_only(at: int) -> None:
    damaged = GOLDEN[:at] + b"\x01" + GOLDEN[at:]
    events = parser(report_every=1).feed(HR72 + damaged + HR72)
    assert values_only(events) in ([obs("pr", 72), obs("spo2", 98)] * 2, [obs("pr", 72), obs("spo2", 98), obs("pr", 150), obs("spo2", 96), obs("pr", 72), obs("spo2", 98)])
    if at not in (0, 1, 125):  # inside the packet: it is lost (at 1 the extra 0x01 can serve as the start byte)
        assert values_only(events) == [obs("pr", 72), obs("spo2", 98)] * 2


def test_checksum_error_is_counted_and_the_packet_dropped() -> None:
    bad = bytearray(GOLDEN)
    bad[13] ^= 0x04  # frame 3 data: SpO2 96 -> 100
    p = parser(report_every=1)
    events = p.feed(bytes(bad) + HR72)
    assert events[0] == ParseError("checksum", "frame 3 of a packet is not a valid frame", 10)
    assert values_only(events) == [obs("pr", 72), obs("spo2", 98)]
    assert p.errors["checksum"] == 1


def test_a_missing_frame_is_caught_by_the_frame_one_marker() -> None:
    short = GOLDEN[:50] + GOLDEN[55:]  # 24 frames: the next packet's frame 1 would land at position 25
    p = parser(report_every=1)
    events = p.feed(short + HR72)
    assert ParseError("sync", "packet cut short: frame-1 marker at frame 25", 120) in events
    assert values_only(events) == [obs("pr", 72), obs("spo2", 98)]


def test_bounded_state_and_long_garbage() -> None:
    junk = bytes([0x01, 0x85, 0x02]) * 5000  # looks a bit like frames, never valid
    p = parser(report_every=1)
    out = []
    for i in range(0, len(junk), 333):
        out += p.feed(junk[i : i + 333])
        assert p.buffered < 5 + 5 * 25
    out += p.feed(HR72)
    assert [e.discarded for e in out if isinstance(e, ParseError)] == [MAX_GARBAGE] * 3 + [len(junk) - 3 * MAX_GARBAGE]
    assert values_only(out) == [obs("pr", 72), obs("spo2", 98)]
    assert parser(report_every=1).feed(junk + HR72) == out


def test_streamer_registered() -> None:
    assert parser().bytes_to_send() == b""
    spec = get_driver("nonin")
    assert spec.parser is NoninParser and spec.default_baud == 9600 and spec.transport == "serial"
    assert dict(spec.serial_options) == {"parity": "N", "bytesize": 8, "stopbits": 1}
    p = spec.parser(bed="X", device="y", hr_key="hr", report_every=1)
    assert [o.param for o in p.feed(HR72) if isinstance(o, Observation)] == ["hr", "spo2"]
    for bad in ({"report_every": 0}, {"report_every": 1.5}, {"hr_key": "heart"}):
        with pytest.raises(ValueError, match="nonin: "):
            NoninParser("X", "y", **bad)  # type: ignore[arg-type]


# -- fuzzing ------------------------------------------------------------------------------------

CODES = {"framing", "checksum", "sync", "implausible"}
STATUSES = {"ok", "probe_off", "artefact", "sensor_alarm"}


def check_feed(data: bytes, cuts: list[int], **options: object) -> list:
    p = parser(**options)
    events, prev = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        events += p.feed(data[prev:cut])
        prev = cut
        assert p.buffered < 5 + 5 * 25
    assert all(isinstance(e, (Observation, DeviceStatus, ParseError)) for e in events)
    assert {e.code for e in events if isinstance(e, ParseError)} <= CODES
    assert {e.status for e in events if isinstance(e, DeviceStatus)} <= STATUSES
    return events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.lists(st.integers(0, 4000), max_size=6))
def test_fuzz_any_bytes(data: bytes, cuts: list[int]) -> None:
    assert check_feed(data, cuts) == check_feed(data, [])


_packet = st.builds(
    lambda hr, spo2, status: b"".join(N.encode_packet(hr, spo2, status=status)),
    st.one_of(st.none(), st.integers(0, 510)),
    st.one_of(st.none(), st.integers(0, 126)),
    st.sampled_from([0, 0, 0, N.SENSOR_DISCONNECTED, N.ARTEFACT, N.SENSOR_ALARM, 0x06, 0x10]),
)


@st.composite
def noisy_streams(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    """Packets, then at most one line fault per five-byte frame."""
    packets = draw(st.lists(_packet, min_size=1, max_size=6))
    out = bytearray()
    for pk in packets:
        for k in range(0, len(pk), 5):
            f = bytearray(pk[k : k + 5])
            kind = draw(st.sampled_from(["none"] * 6 + ["corrupt", "drop", "insert", "garbage"]))
            i = draw(st.integers(0, 4))
            if kind == "corrupt":
                f[i] ^= draw(st.integers(1, 255))
            elif kind == "drop":
                del f[i : i + draw(st.integers(1, 8))]
            elif kind == "insert":
                f[i:i] = bytes([draw(st.integers(0, 255))])
            elif kind == "garbage":
                f[0:0] = draw(st.binary(min_size=1, max_size=16))
            out += f
    return packets, bytes(out)


def encoded_observations(packets: list[bytes]) -> set[Observation]:
    return {e for pk in packets for e in parser(report_every=1).feed(pk) if isinstance(e, Observation)}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noisy_streams(), st.lists(st.integers(0, 1000), max_size=4))
def test_fuzz_noise_never_passes_a_corrupted_value(stream: tuple[list[bytes], bytes], cuts: list[int]) -> None:
    packets, data = stream
    events = check_feed(data, cuts, report_every=1)
    assert events == check_feed(data, [], report_every=1)
    assert set(values_only(events)) <= encoded_observations(packets)


@pytest.mark.parametrize("seed", range(12))
def test_simulator_line_noise_never_passes_a_corrupted_value(seed: int) -> None:
    packets = [b"".join(N.encode_packet(40 + (i * 13 + seed) % 200, 80 + i % 21, status=N.ARTEFACT if i % 11 == 0 else 0)) for i in range(150)]
    frames = [pk[k : k + 5] for pk in packets for k in range(0, 125, 5)]
    noisy = b"".join(LineNoise(0.02, seed=seed).apply(frames, 0))
    p = parser(report_every=1)
    events = p.feed(noisy)
    assert set(values_only(events)) <= encoded_observations(packets)
    assert sum(p.errors.values()) > 5 and p.packets > 60
