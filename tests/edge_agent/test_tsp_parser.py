"""TSP/1 parser: golden frames, chunking independence, resynchronisation, and fuzzing."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.drivers import get_driver
from edge_agent.drivers.tsp import MAX_FRAME, TspParser, crc16
from edge_agent.events import DeviceStatus, ParseError, WaveSegment
from wire.messages import Observation
from wire.vocabulary import Flag

T_RX = 1_234
BED, DEV = "A-01", "mon-1"


def reference_crc(body: bytes) -> int:
    """CRC-16/CCITT-FALSE the slow, obvious way, bit by bit (to cross-check the literal constants below)."""
    crc = 0xFFFF
    for byte in body:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


# Golden frames: the bodies with their checksums written out as literal constants.
NUMERICS = b"$N,1700000000000,hr=72,spo2=98,rr=16,temp=36.9*72FE\r\n"
NUMERICS_FLAGGED = (
    b"$N,1700000001000,hr=80,spo2=-!p,rr=-!i,nibp_sys=121,nibp_dia=79,nibp_mean=93,o2=0,acvpu=0*A3DD\r\n"
)
UNKNOWN_KEY = b"$N,1700000002000,hr=75,xyz=1,spo2=97*FE4E\r\n"
STATUS_PROBE_OFF = b"$S,1700000003000,probe_off,spo2*DF3B\r\n"
STATUS_OK = b"$S,1700000004000,ok*A9B8\r\n"
WAVE = b"$W,1700000005000,ecg_ii,250,0.005,AAABAP///38AgA==*359E\r\n"  # samples 0, 1, -1, 32767, -32768
GOLDEN = (NUMERICS, NUMERICS_FLAGGED, UNKNOWN_KEY, STATUS_PROBE_OFF, STATUS_OK, WAVE)


def make_frame(body: bytes) -> bytes:
    return b"$" + body + b"*%04X\r\n" % reference_crc(body)


def parser() -> TspParser:
    return TspParser(bed=BED, device=DEV, clock_ms=lambda: T_RX)


def obs(param: str, value: float | None, t_dev: int, flags: int = 0) -> Observation:
    return Observation(bed=BED, param=param, value=value, t_dev=t_dev, t_rx=T_RX, device=DEV, flags=flags)


EXPECTED_GOLDEN = [
    obs("hr", 72, 1700000000000),
    obs("spo2", 98, 1700000000000),
    obs("rr", 16, 1700000000000),
    obs("temp", 36.9, 1700000000000),
    obs("hr", 80, 1700000001000),
    obs("spo2", None, 1700000001000, Flag.PROBE_OFF),
    obs("rr", None, 1700000001000, Flag.INVALID),
    obs("nibp_sys", 121, 1700000001000),
    obs("nibp_dia", 79, 1700000001000),
    obs("nibp_mean", 93, 1700000001000),
    obs("o2", 0, 1700000001000),
    obs("acvpu", 0, 1700000001000),
    obs("hr", 75, 1700000002000),
    ParseError(code="unknown_param", detail="unknown parameter 'xyz'", discarded=len(b"xyz=1")),
    obs("spo2", 97, 1700000002000),
    DeviceStatus(bed=BED, device=DEV, status="probe_off", t_dev=1700000003000, detail="spo2"),
    DeviceStatus(bed=BED, device=DEV, status="ok", t_dev=1700000004000, detail=""),
    WaveSegment(bed=BED, lead="ecg_ii", t_first=1700000005000, rate_hz=250, scale=0.005, samples=(0, 1, -1, 32767, -32768)),
]


def feed_chunks(p: TspParser, data: bytes, cuts: list[int]) -> list:
    events = []
    prev = 0
    for cut in sorted(cuts) + [len(data)]:
        events += p.feed(data[prev:cut])
        prev = cut
    return events


def test_golden_checksums_are_right() -> None:
    for frame in GOLDEN:
        body, trailer = frame[1:-7], frame[-6:-2]
        assert int(trailer, 16) == reference_crc(body) == crc16(body)


def test_golden_frames_whole() -> None:
    assert parser().feed(b"".join(GOLDEN)) == EXPECTED_GOLDEN


def test_golden_frames_one_byte_at_a_time() -> None:
    p = parser()
    data = b"".join(GOLDEN)
    events = [e for i in range(len(data)) for e in p.feed(data[i : i + 1])]
    assert events == EXPECTED_GOLDEN


@pytest.mark.parametrize("frame", GOLDEN)
def test_golden_frame_split_at_every_boundary(frame: bytes) -> None:
    expected = parser().feed(frame)
    assert expected  # every golden frame yields something
    for cut in range(1, len(frame)):
        p = parser()
        assert p.feed(frame[:cut]) + p.feed(frame[cut:]) == expected, cut


def test_stream_split_at_every_boundary() -> None:
    data = b"".join(GOLDEN)
    for cut in range(len(data) + 1):
        assert feed_chunks(parser(), data, [cut]) == EXPECTED_GOLDEN


def test_bad_checksum_discarded_and_counted() -> None:
    bad = NUMERICS.replace(b"*72FE", b"*72FF")
    p = parser()
    events = p.feed(bad + STATUS_OK)
    assert events[0] == ParseError(code="checksum", detail="checksum 72FF != computed 72FE", discarded=len(bad))
    assert events[1:] == [DeviceStatus(bed=BED, device=DEV, status="ok", t_dev=1700000004000)]
    assert p.errors["checksum"] == 1 and p.discarded_bytes == len(bad)


def test_corrupted_body_fails_checksum() -> None:
    bad = NUMERICS.replace(b"hr=72", b"hr=73")
    [err] = parser().feed(bad)
    assert isinstance(err, ParseError) and err.code == "checksum" and err.discarded == len(bad)


def test_lowercase_checksum_accepted() -> None:
    assert parser().feed(WAVE.replace(b"*359E", b"*359e")) == parser().feed(WAVE)


def test_garbage_between_frames() -> None:
    data = b"\x00\xffnoise" + NUMERICS + b"\r\n\r\n" + b"junk*12\r\n" + STATUS_OK
    events = parser().feed(data)
    assert events[0] == ParseError(code="framing", detail="bytes outside a frame", discarded=7)
    assert events[1:5] == EXPECTED_GOLDEN[:4]
    assert events[5] == ParseError(code="framing", detail="bytes outside a frame", discarded=4 + 9)
    assert events[6] == EXPECTED_GOLDEN[16]


def test_garbage_reported_the_same_however_chunked() -> None:
    data = b"abc" * 3000 + NUMERICS  # 9000 bytes of garbage: two full reports, one remainder
    whole = parser().feed(data)
    assert [e.discarded for e in whole if isinstance(e, ParseError)] == [MAX_FRAME, MAX_FRAME, 9000 - 2 * MAX_FRAME]
    assert feed_chunks(parser(), data, list(range(0, len(data), 1000))) == whole


def test_frame_cut_short_by_new_start() -> None:
    truncated = NUMERICS[:20]  # the line lost its tail
    events = parser().feed(truncated + STATUS_OK)
    assert events == [
        ParseError(code="framing", detail="frame cut short by a new '$'", discarded=20),
        EXPECTED_GOLDEN[16],
    ]


def test_over_long_frame() -> None:
    long_body = b"N,1," + b"hr=1," * 1000 + b"hr=1"
    long_frame = make_frame(long_body)
    assert len(long_frame) > MAX_FRAME
    p = parser()
    events = p.feed(long_frame + NUMERICS)
    assert events[0] == ParseError(code="oversized", detail=f"no end of frame within {MAX_FRAME} bytes", discarded=len(long_frame))
    assert events[1:] == EXPECTED_GOLDEN[:4]
    assert p.buffered == 0
    # byte by byte: same events, buffer never above the limit
    p = parser()
    data = long_frame + NUMERICS
    out = []
    for i in range(len(data)):
        out += p.feed(data[i : i + 1])
        assert p.buffered <= MAX_FRAME
    assert out == events


def test_over_long_frame_interrupted_by_start() -> None:
    data = b"$" + b"x" * (MAX_FRAME + 10) + NUMERICS
    events = parser().feed(data)
    assert events[0] == ParseError(code="oversized", detail=f"no end of frame within {MAX_FRAME} bytes", discarded=MAX_FRAME + 11)
    assert events[1:] == EXPECTED_GOLDEN[:4]


def test_frame_of_exactly_max_length_is_accepted() -> None:
    head = b"S,1,ok,"
    body = head + b"d" * (MAX_FRAME - 8 - len(head))
    frame = make_frame(body)
    assert len(frame) == MAX_FRAME
    [status] = parser().feed(frame)
    assert isinstance(status, DeviceStatus) and status.detail == "d" * (MAX_FRAME - 8 - len(head))
    [err] = parser().feed(make_frame(body + b"d"))
    assert isinstance(err, ParseError) and err.code == "oversized" and err.discarded == MAX_FRAME + 1


def test_unknown_key_reported_and_known_values_kept() -> None:
    events = parser().feed(UNKNOWN_KEY)
    assert events == EXPECTED_GOLDEN[12:15]


def test_probe_off_value() -> None:
    events = parser().feed(make_frame(b"N,5,spo2=-!p,hr=-!l,rr=12!a,temp=-,pr=60!pa"))
    assert events == [
        obs("spo2", None, 5, Flag.PROBE_OFF),
        obs("hr", None, 5, Flag.LEADS_OFF),
        obs("rr", 12, 5, Flag.ARTEFACT),
        obs("temp", None, 5, Flag.INVALID),
        obs("pr", 60, 5, Flag.PROBE_OFF | Flag.ARTEFACT),
    ]


@pytest.mark.parametrize(
    "item",
    [b"hr=", b"hr=abc", b"hr=nan", b"hr=inf", b"hr=1e3", b"hr=72!", b"hr=72!x", b"hr", b"hr=7.", b"hr=--"],
)
def test_bad_values_are_reported_and_the_rest_kept(item: bytes) -> None:
    events = parser().feed(make_frame(b"N,9," + item + b",rr=14"))
    assert len(events) == 2
    assert isinstance(events[0], ParseError) and events[0].code == "bad_value"
    assert events[1] == obs("rr", 14, 9)


def test_negative_and_decimal_values() -> None:
    events = parser().feed(make_frame(b"N,9,abp_dia=-3.5,temp=37.25"))
    assert events == [obs("abp_dia", -3.5, 9), obs("temp", 37.25, 9)]


def test_empty_numerics_frame_is_fine() -> None:
    assert parser().feed(make_frame(b"N,9")) == []


def test_waveform_decoding() -> None:
    samples = list(range(-25, 25))
    b64 = base64.b64encode(struct.pack("<50h", *samples))
    [seg] = parser().feed(make_frame(b"W,1700000000123,ecg_ii,250,5e-3," + b64))
    assert seg == WaveSegment(bed=BED, lead="ecg_ii", t_first=1700000000123, rate_hz=250, scale=0.005, samples=tuple(samples))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"W,1,ecg_ii,250,0.005,AAE", "bad_base64"),  # missing padding
        (b"W,1,ecg_ii,250,0.005,AA!A", "bad_base64"),
        (b"W,1,ecg_ii,250,0.005,AAAA", "bad_samples"),  # 3 bytes: odd
        (b"W,1,ecg_ii,250,0.005,", "bad_samples"),  # no samples
        (b"W,1,ecg_v9,250,0.005,AAA=", "unknown_lead"),
        (b"W,1,ecg_ii,0,0.005,AAA=", "bad_field"),
        (b"W,1,ecg_ii,70000,0.005,AAA=", "bad_field"),
        (b"W,1,ecg_ii,250,0,AAA=", "bad_field"),
        (b"W,1,ecg_ii,250,-1,AAA=", "bad_field"),
        (b"W,1,ecg_ii,250,0.005", "bad_field"),
        (b"W,x,ecg_ii,250,0.005,AAA=", "bad_field"),
        (b"N,-5,hr=1", "bad_field"),
        (b"N,,hr=1", "bad_field"),
        (b"S,1", "bad_field"),
        (b"S,1,Probe Off", "bad_field"),
        (b"X,1,hr=1", "unknown_type"),
        (b"", "unknown_type"),
    ],
)
def test_malformed_frames(body: bytes, code: str) -> None:
    frame = make_frame(body)
    p = parser()
    [err] = p.feed(frame + b"")
    assert isinstance(err, ParseError) and err.code == code, err
    if code not in ("unknown_param", "bad_value"):
        assert err.discarded == len(frame)
    assert p.feed(STATUS_OK) == [EXPECTED_GOLDEN[16]]  # still in sync afterwards


@pytest.mark.parametrize(
    "frame",
    [
        b"$N,1,hr=1*1\r\n",  # one hex digit
        b"$N,1,hr=1*ZZ\r\n",  # not hex
        b"$N,1,hr=1*33\n",  # no CR
        b"$N,1,hr=1\r\n",  # no checksum at all
        b"$N,1,h\x80=1*1572\r\n",  # non-ASCII
        b"$N,1,h*r=1*26C3\r\n",  # '*' in body
        b"$\r\n",
    ],
)
def test_bad_framing(frame: bytes) -> None:
    p = parser()
    [err] = p.feed(frame)
    assert isinstance(err, ParseError) and err.code == "framing" and err.discarded == len(frame)
    assert p.feed(NUMERICS) == EXPECTED_GOLDEN[:4]


def test_sends_nothing_and_is_registered() -> None:
    assert parser().bytes_to_send() == b""
    spec = get_driver("tsp")
    assert spec.parser is TspParser and spec.transport == "serial" and spec.default_baud == 115200
    p = spec.parser(bed="B-02", device="x")
    [o] = p.feed(NUMERICS[:0] + make_frame(b"N,1,hr=60"))
    assert isinstance(o, Observation) and o.bed == "B-02" and o.device == "x" and o.t_rx > 1_600_000_000_000


# -- fuzzing -------------------------------------------------------------------

EVENT_TYPES = (Observation, WaveSegment, DeviceStatus, ParseError)


def check_feed(data: bytes, cuts: list[int]) -> list:
    p = parser()
    events = []
    prev = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        events += p.feed(data[prev:cut])
        prev = cut
        assert p.buffered <= MAX_FRAME
    assert all(isinstance(e, EVENT_TYPES) for e in events)
    return events


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=6000), st.lists(st.integers(min_value=0, max_value=10_000), max_size=8))
def test_fuzz_any_bytes(data: bytes, cuts: list[int]) -> None:
    assert check_feed(data, cuts) == check_feed(data, [])


_frames = st.lists(st.sampled_from(GOLDEN), min_size=1, max_size=6).map(b"".join)
_noise = st.binary(min_size=1, max_size=20)


@st.composite
def corrupted_streams(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(_frames))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dollar", "newline"]))
        i = draw(st.integers(0, len(data)))
        if op == "flip" and i < len(data):
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[i:i] = draw(_noise)
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 30))]
        elif op == "dollar":
            data[i:i] = b"$"
        else:
            data[i:i] = b"\r\n"
    return bytes(data)


@settings(max_examples=400)
@given(corrupted_streams(), st.lists(st.integers(min_value=0, max_value=2000), max_size=6))
def test_fuzz_corrupted_frames(data: bytes, cuts: list[int]) -> None:
    events = check_feed(data, cuts)
    assert events == check_feed(data, [])
    # whatever went wrong, a clean frame afterwards is parsed
    p = parser()
    p.feed(data)
    assert p.feed(b"\r\n" + STATUS_OK)[-1] == EXPECTED_GOLDEN[16]


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=3 * MAX_FRAME))
def test_fuzz_long_runs_stay_bounded(n: int) -> None:
    for filler in (b"x", b"$", b"\n"):
        check_feed(b"$" + filler * n + NUMERICS, [1, n // 2, n])


def test_measurement_time_suffix_stamps_a_repeated_nibp_reading() -> None:
    data = make_frame(b"N,1700000005000,hr=72,nibp_sys=118@1699999940000,nibp_dia=-@1699999940000!i")
    events = parser().feed(data)
    assert events == [
        obs("hr", 72.0, 1700000005000),
        obs("nibp_sys", 118.0, 1699999940000),
        obs("nibp_dia", None, 1699999940000, Flag.INVALID),
    ]


def test_bad_measurement_time_is_reported_and_the_rest_kept() -> None:
    events = parser().feed(make_frame(b"N,1700000005000,nibp_sys=118@soon,hr=70"))
    assert [type(e) for e in events] == [ParseError, Observation]
    assert events[0].code == "bad_value" and "measurement time" in events[0].detail


def test_a_dropped_pair_of_equal_bytes_is_caught() -> None:
    """The XOR checksum TSP/1 first had missed this (found by the line-noise simulator); the CRC does not."""
    damaged = NUMERICS.replace(b"1700000000000", b"17000000000")
    [err] = parser().feed(damaged)
    assert isinstance(err, ParseError) and err.code == "checksum"
