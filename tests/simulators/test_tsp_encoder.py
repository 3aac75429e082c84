"""TSP/1 encoder: exact bytes, and round trips through the edge agent's parser."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.drivers.tsp import TspParser
from edge_agent.events import DeviceStatus, WaveSegment
from simulators.tsp_encoder import (
    MAX_FRAME,
    EncodeError,
    checksum,
    encode_numerics,
    encode_status,
    encode_wave,
    frame,
)
from wire.messages import Observation
from wire.vocabulary import PARAMETERS, Flag


def parse(data: bytes) -> list:
    return TspParser("A-01", "d", clock_ms=lambda: 0).feed(data)


def _crc_bitwise(body: bytes) -> int:
    crc = 0xFFFF
    for byte in body:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def test_checksum_is_crc16_ccitt_false() -> None:
    assert checksum(b"123456789") == 0x29B1  # the published check value of CRC-16/CCITT-FALSE


@given(st.binary(max_size=300))
def test_checksum_matches_a_bitwise_crc(body: bytes) -> None:
    assert checksum(body) == _crc_bitwise(body)


def test_exact_bytes() -> None:
    assert encode_numerics(1700000000000, {"hr": 72.0, "spo2": 98, "rr": 16, "temp": 36.94}) == (
        b"$N,1700000000000,hr=72,spo2=98,rr=16,temp=36.9*72FE\r\n"
    )
    assert encode_status(1700000003000, "probe_off", "spo2") == b"$S,1700000003000,probe_off,spo2*DF3B\r\n"
    assert encode_wave(1700000005000, "ecg_ii", 250, 0.005, [0, 1, -1, 32767, -32768]) == (
        b"$W,1700000005000,ecg_ii,250,0.005,AAABAP///38AgA==*359E\r\n"
    )


def test_flags_and_missing_values() -> None:
    data = encode_numerics(5, {"spo2": None, "hr": 61, "pr": None}, {"spo2": Flag.PROBE_OFF, "hr": Flag.ARTEFACT | Flag.INVALID})
    assert b"spo2=-!p,hr=61!ai,pr=-*" in data
    spo2, hr, pr = parse(data)
    assert spo2.value is None and spo2.flags == Flag.PROBE_OFF
    assert hr.value == 61 and hr.flags == Flag.ARTEFACT | Flag.INVALID
    assert pr.value is None and pr.flags == Flag.INVALID


def test_rejects_what_would_break_framing() -> None:
    for body in ("a$b", "a*b", "a\r\nb", "é"):
        with pytest.raises((EncodeError, UnicodeEncodeError)):
            frame(body)
    with pytest.raises(EncodeError):
        frame("S,1,ok," + "x" * MAX_FRAME)
    with pytest.raises(EncodeError):
        encode_numerics(1, {"hr": float("nan")})


_values = st.one_of(
    st.none(),
    st.integers(min_value=-999, max_value=999).map(float),
    st.floats(min_value=-500, max_value=500, allow_nan=False).map(lambda x: round(x, 2)),
)


@given(
    st.integers(min_value=0, max_value=2**48),
    st.dictionaries(st.sampled_from([p.key for p in PARAMETERS if p.key not in ("temp",)]), _values, max_size=10),
    st.integers(min_value=0, max_value=15),
)
def test_numerics_round_trip(t_ms: int, values: dict, flags: int) -> None:
    flag_map = {k: flags for k in values}
    events = parse(encode_numerics(t_ms, values, flag_map))
    assert all(isinstance(e, Observation) for e in events)
    assert [e.param for e in events] == list(values)
    for e in events:
        sent = values[e.param]
        assert e.t_dev == t_ms
        if sent is None:
            assert e.value is None and e.flags == (flags or Flag.INVALID)
        else:
            assert e.flags == flags
            decimals = 0 if e.param in ("hr", "pr", "spo2", "rr", "nibp_sys", "nibp_dia", "nibp_mean", "etco2", "o2", "acvpu") else 2
            assert e.value == pytest.approx(round(sent, decimals), abs=10**-decimals)


@given(
    st.integers(min_value=0, max_value=2**48),
    st.lists(st.integers(min_value=-32768, max_value=32767), min_size=1, max_size=1000),
    st.sampled_from([0.005, 0.001, 1.0, 2.5e-4]),
)
def test_wave_round_trip(t_ms: int, samples: list[int], scale: float) -> None:
    [seg] = parse(encode_wave(t_ms, "ecg_ii", 250, scale, np.array(samples, dtype=np.int16)))
    assert isinstance(seg, WaveSegment)
    assert seg.samples == tuple(samples) and seg.t_first == t_ms and seg.scale == scale and seg.rate_hz == 250


def test_status_round_trip() -> None:
    [st_] = parse(encode_status(9, "leads_off", "ecg, lead II"))
    assert st_ == DeviceStatus(bed="A-01", device="d", status="leads_off", t_dev=9, detail="ecg, lead II")
