"""Edge-to-hub wire codec: round trips, limits, and every documented error."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire.codec import (
    ERROR_CODES,
    MAX_BINARY_FRAME,
    MAX_OBS_PER_FRAME,
    MAX_PACE,
    MAX_TEXT_FRAME,
    MIN_PACE,
    WireError,
    clip,
    decode_edge,
    decode_hub,
    encode_edge,
    encode_hub,
    unmapped_to_dict,
)
from wire.messages import Ack, ErrorReport, Hello, ObsFrame, Observation, Pace, PatientSeen, UnmappedObservation, WaveChunk, Welcome

OBS = Observation(bed="A-01", param="hr", value=82.0, t_dev=1_700_000_000_000, t_rx=1_700_000_000_050, device="mon-1")


def test_obs_frame_round_trip() -> None:
    frame = ObsFrame(seq=7, obs=(OBS, Observation("A-01", "spo2", None, 1_700_000_000_000, 1_700_000_000_050, "mon-1", 1)))
    assert decode_edge(encode_edge(frame)) == frame


def test_hello_round_trip() -> None:
    hello = Hello(agent="edge-A", epoch=1_700_000_000_000, ward="A", beds=("A-01", "A-02"))
    assert decode_edge(encode_edge(hello)) == hello


def test_wave_chunk_round_trip_and_compactness() -> None:
    samples = tuple(range(-25, 25))
    chunk = WaveChunk(seq=9, bed="A-01", lead="ecg_ii", t_first=1_700_000_000_000, rate_hz=250, scale=0.005, samples=samples)
    data = encode_edge(chunk)
    assert isinstance(data, bytes) and data[:2] == b"TW"
    assert len(data) == 30 + len("A-01") + len("ecg_ii") + 2 * len(samples)  # 2 bytes a sample after a 30-byte header
    back = decode_edge(data)
    assert isinstance(back, WaveChunk)
    assert back.samples == samples and back.seq == 9 and back.rate_hz == 250
    assert back.scale == pytest.approx(0.005)


def test_hub_messages_round_trip() -> None:
    for msg in (Ack(5), Welcome(0), ErrorReport("schema", "bad", 3, ({"index": 0, "reason": "x"},)), Pace(2.5), Pace(None),
                Pace(MIN_PACE), Pace(MAX_PACE)):  # fmt: skip
        assert decode_hub(encode_hub(msg)) == msg


def test_a_hello_says_pace_only_when_the_agent_understands_it() -> None:
    plain = Hello(agent="edge-A", epoch=1, ward="A")
    assert b"pace" not in encode_edge(plain)  # an agent without pacing sends the hello it always did
    paced = Hello(agent="edge-A", epoch=1, ward="A", pace=True)
    assert json.loads(encode_edge(paced))["pace"] is True and decode_edge(encode_edge(paced)) == paced
    for bad in ("1", "\"yes\"", "null", "0"):
        with pytest.raises(WireError) as info:
            decode_edge(b'{"type":"hello","proto":1,"agent":"a","epoch":1,"ward":"A","pace":' + bad.encode() + b"}")
        assert info.value.code == "schema"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"type":"pace"}', None),  # absent: unpaced
        (b'{"type":"pace","frames_per_s":3}', None),
        (b'{"type":"pace","frames_per_s":0}', "schema"),
        (b'{"type":"pace","frames_per_s":-1}', "schema"),
        (b'{"type":"pace","frames_per_s":1e9}', "schema"),
        (b'{"type":"pace","frames_per_s":NaN}', "schema"),
        (b'{"type":"pace","frames_per_s":Infinity}', "schema"),
        (b'{"type":"pace","frames_per_s":true}', "schema"),
        (b'{"type":"pace","frames_per_s":"2"}', "schema"),
        (b'{"type":"pace","frames_per_s":[2]}', "schema"),
        (b'{"type":"pace","frames_per_s":' + b"9" * 400 + b"}", "schema"),
        (b'{"type":"pace","frames_per_s":2' + b" " * MAX_TEXT_FRAME + b"}", "oversized"),
        (b'{"type":"paces"}', "unknown_type"),
    ],
)
def test_pace_is_decoded_strictly(data: bytes, code: str | None) -> None:
    if code is None:
        assert isinstance(decode_hub(data), Pace)
        return
    with pytest.raises(WireError) as info:
        decode_hub(data)
    assert info.value.code == code and code in ERROR_CODES


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_fuzz_decode_hub_arbitrary_input_gives_a_message_or_wire_error(data: bytes | str) -> None:
    try:
        decode_hub(data)
    except WireError as exc:
        assert exc.code in ERROR_CODES


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["pace", "ack", "welcome", "error"]),
       st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4), max_leaves=20))  # fmt: skip
def test_fuzz_decode_hub_arbitrary_json_in_each_slot(kind: str, value: object) -> None:
    key = {"pace": "frames_per_s", "ack": "seq", "welcome": "last_seq", "error": "rejected"}[kind]
    data = json.dumps({"type": kind, key: value})  # NaN and infinities as Python's json writes them
    try:
        msg = decode_hub(data)
    except WireError as exc:
        assert exc.code in ERROR_CODES
    else:
        if isinstance(msg, Pace):
            assert msg.frames_per_s is None or MIN_PACE <= msg.frames_per_s <= MAX_PACE


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{not json", "malformed"),
        (b"[1,2]", "malformed"),
        (b'{"type":"nope"}', "unknown_type"),
        (b'{"type":"obs","obs":[]}', "schema"),  # no seq
        (b'{"type":"obs","seq":0,"obs":[]}', "schema"),  # seq starts at 1
        (b'{"type":"obs","seq":1.5,"obs":[]}', "schema"),
        (b'{"type":"obs","seq":1,"obs":{}}', "schema"),
        (b'{"type":"obs","seq":1,"obs":[{"bed":"A","param":"hr","value":"80","t_dev":1,"t_rx":1}]}', "schema"),
        (b'{"type":"obs","seq":1,"obs":[{"bed":"","param":"hr","value":80,"t_dev":1,"t_rx":1}]}', "schema"),
        (b'{"type":"obs","seq":1,"obs":[{"bed":"A","param":"hr","value":80,"t_dev":-1,"t_rx":1}]}', "schema"),
        (b'{"type":"obs","seq":1,"obs":[{"bed":"A","param":"hr","value":true,"t_dev":1,"t_rx":1}]}', "schema"),
        (b'{"type":"hello","proto":2,"agent":"a","epoch":1,"ward":"A"}', "schema"),
        (b'{"type":"hello","proto":1,"agent":"a\\u0000","epoch":1,"ward":"A"}', "schema"),
        (b"TW\x01", "malformed"),
    ],
)
def test_decode_errors_are_documented(data: bytes, code: str) -> None:
    with pytest.raises(WireError) as info:
        decode_edge(data)
    assert info.value.code == code
    assert code in ERROR_CODES


def test_nan_and_infinity_are_refused() -> None:
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        data = b'{"type":"obs","seq":1,"obs":[{"bed":"A","param":"hr","value":' + token + b',"t_dev":1,"t_rx":1}]}'
        with pytest.raises(WireError) as info:
            decode_edge(data)
        assert info.value.code == "schema"


def test_error_keeps_the_sequence_number_when_known() -> None:
    with pytest.raises(WireError) as info:
        decode_edge(b'{"type":"obs","seq":41,"obs":[{"bed":"A"}]}')
    assert info.value.seq == 41


def test_oversized_text_frame() -> None:
    with pytest.raises(WireError) as info:
        decode_edge(b" " * (MAX_TEXT_FRAME + 1))
    assert info.value.code == "oversized"


def test_too_many_observations() -> None:
    item = {"bed": "A", "param": "hr", "value": 80, "t_dev": 1, "t_rx": 1}
    data = json.dumps({"type": "obs", "seq": 1, "obs": [item] * (MAX_OBS_PER_FRAME + 1)}).encode()
    with pytest.raises(WireError) as info:
        decode_edge(data)
    assert info.value.code == "oversized"


def test_oversized_and_inconsistent_binary() -> None:
    chunk = encode_edge(WaveChunk(1, "A-01", "ecg_ii", 1, 250, 0.005, (1, 2, 3)))
    with pytest.raises(WireError) as info:
        decode_edge(chunk + b"\x00")
    assert info.value.code == "malformed"
    with pytest.raises(WireError) as info:
        decode_edge(b"TW" + b"\x00" * MAX_BINARY_FRAME)
    assert info.value.code == "oversized"
    bad_rate = bytearray(chunk)
    struct.pack_into("<H", bad_rate, 20, 0)
    with pytest.raises(WireError) as info:
        decode_edge(bytes(bad_rate))
    assert info.value.code == "schema"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_arbitrary_bytes_give_a_message_or_wire_error(data: bytes) -> None:
    try:
        decode_edge(data)
    except WireError as exc:
        assert exc.code in ERROR_CODES


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.integers(min_value=0, max_value=200))
def test_fuzz_corrupted_valid_frames(noise: bytes, pos: int) -> None:
    for good in (
        encode_edge(ObsFrame(3, (OBS,))),
        encode_edge(WaveChunk(4, "A-01", "ecg_ii", 1_000, 250, 0.005, tuple(range(20)))),
    ):
        p = pos % len(good)
        bad = good[:p] + noise + good[p + len(noise) :]
        try:
            decode_edge(bad)
        except WireError as exc:
            assert exc.code in ERROR_CODES


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4), max_leaves=20))
def test_fuzz_arbitrary_json_in_obs_slot(value: object) -> None:
    data = json.dumps({"type": "obs", "seq": 1, "obs": value}).encode()
    try:
        decode_edge(data)
    except WireError as exc:
        assert exc.code in ERROR_CODES


UNMAPPED = UnmappedObservation("A-01", "gw-1", "MDC", "150457", "MDC_PULS_OXIM_PULS_RATE", "72", "/min", "R", 1_700_000_000_000, 1_700_000_000_050)


def test_unmapped_observations_travel_in_the_numerics_frame() -> None:
    frame = ObsFrame(seq=3, obs=(OBS,), unmapped=(UNMAPPED, UnmappedObservation("A-01", "", "", "x", "", "", "", "", 1, 2)))
    assert decode_edge(encode_edge(frame)) == frame
    assert b"unmapped" not in encode_edge(ObsFrame(seq=4, obs=(OBS,)))  # absent when there are none: older hubs read it


def test_patient_ids_devices_name_travel_in_the_numerics_frame_within_its_limit() -> None:
    seen = PatientSeen("A-01", "SMS2025030001", "gw-1", 1_700_000_000_000)
    frame = ObsFrame(seq=7, obs=(OBS,), patients=(seen,))
    assert decode_edge(encode_edge(frame)) == frame
    assert b"patients" not in encode_edge(ObsFrame(seq=8, obs=(OBS,)))  # absent when there are none
    for bad, detail in (({"patient_id": ""}, "'patient_id' must be a string"), ({"t": "x"}, "'t' must be an integer")):
        item = {"bed": "A-01", "patient_id": "P1", "device": "d", "t": 1, **bad}
        with pytest.raises(WireError) as err:
            decode_edge(json.dumps({"type": "obs", "seq": 9, "obs": [], "patients": [item]}).encode())
        assert err.value.code == "schema" and detail in err.value.detail
    crowd = {"type": "obs", "seq": 1, "obs": [], "patients": [{"bed": "A", "patient_id": "P", "device": "", "t": 1}] * (MAX_OBS_PER_FRAME + 1)}
    with pytest.raises(WireError) as err:
        decode_edge(json.dumps(crowd).encode())
    assert err.value.code == "oversized"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"code": ""}, "unmapped[0].code must not be empty"),
        ({"code": "x" * 65}, "unmapped[0].code must be a string of at most 64 printable characters"),
        ({"value": "a\nb"}, "unmapped[0].value must be a string of at most 200 printable characters"),
        ({"unit": 7}, "unmapped[0].unit must be a string"),
        ({"bed": ""}, "'bed' must be a string"),
        ({"t_dev": -1}, "'t_dev' must be an integer"),
    ],
)
def test_bad_unmapped_observations_are_schema_errors(change: dict, detail: str) -> None:
    item = {**unmapped_to_dict(UNMAPPED), **change}
    with pytest.raises(WireError) as err:
        decode_edge(json.dumps({"type": "obs", "seq": 5, "obs": [], "unmapped": [item]}).encode())
    assert err.value.code == "schema" and err.value.seq == 5 and detail in err.value.detail


def test_observations_and_unmapped_share_the_per_frame_limit() -> None:
    item = unmapped_to_dict(UNMAPPED)
    frame = {"type": "obs", "seq": 1, "obs": [], "unmapped": [item] * (MAX_OBS_PER_FRAME + 1)}
    with pytest.raises(WireError) as err:
        decode_edge(json.dumps(frame).encode())
    assert err.value.code == "oversized"


@given(text=st.text(max_size=400))
def test_clip_makes_any_text_fit_the_wire(text: str) -> None:
    fields = {f: clip(text, f) for f in ("system", "code", "name", "value", "unit", "status")}
    u = UnmappedObservation("A-01", "d", fields["system"], fields["code"] or "c", fields["name"], fields["value"], fields["unit"], fields["status"], 1, 2)
    assert decode_edge(encode_edge(ObsFrame(1, (), (u,)))).unmapped == (u,)
