"""The msgspec fast path for observation frames gives exactly the reference decoder's answer, or leaves it the frame.

Generated frames are near-valid on purpose: each field is drawn from values the
reference accepts and values it refuses (wrong types, out of bounds, control
characters, unpaired surrogates, huge integers, duplicate keys), so both the
"accepted" and the "let the reference decide" sides are exercised.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from wire import codec, obs_frame_fast
from wire.codec import WireError, encode_edge
from wire.messages import ObsFrame, Observation

IDENT = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=1, max_size=8),
    st.sampled_from(["", "A\n", "x" * 64, "x" * 65, "A\x00", "\ud800", "bed\t1", "é-01"]),
    st.integers(-1, 3), st.none(),
)  # fmt: skip
MILLIS = st.one_of(st.integers(0, 2**53), st.sampled_from([-1, 2**53 + 1, 1.0, True, "1", None, 10**30]))
VALUE = st.one_of(st.none(), st.floats(allow_nan=False), st.integers(-(10**20), 10**20),
                  st.sampled_from([True, "72", 10**400, [1]]))  # fmt: skip
SEQ = st.one_of(st.integers(1, 2**63 - 1), st.sampled_from([0, -1, 2**63, 1.5, True, "7", None]))


@st.composite
def items(draw: st.DrawFn) -> dict:
    item: dict = {}
    for key, strategy in (("bed", IDENT), ("param", IDENT), ("value", VALUE), ("t_dev", MILLIS), ("t_rx", MILLIS),
                          ("device", IDENT), ("flags", st.one_of(st.integers(-1, 256), st.none())), ("extra", st.integers())):  # fmt: skip
        if draw(st.integers(0, 9)) > 0 or key in ("extra",):
            item[key] = draw(strategy)
    return item


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    frame: dict = {"type": draw(st.sampled_from(["obs", "obs", "obs", "hello", "status", 7])), "seq": draw(SEQ),
                   "obs": draw(st.lists(items(), max_size=6))}  # fmt: skip
    if draw(st.integers(0, 9)) == 0:
        frame["unmapped"] = draw(st.sampled_from([[], None, [{"code": "x"}]]))
    if draw(st.integers(0, 9)) == 0:
        frame["patients"] = draw(st.sampled_from([[], None, [{"bed": "A", "patient_id": "P", "t": 1}]]))
    text = json.dumps(frame, separators=(",", ":"))
    if draw(st.integers(0, 19)) == 0:  # a duplicate key: the last one counts, in either decoder
        text = text.replace('"bed":', '"bed":"A\\n","bed":', 1)
    return text.encode("utf-8", "surrogatepass")


def reference(data: bytes) -> object:
    try:
        return codec.decode_edge(data)
    except WireError as exc:
        return ("error", exc.code, exc.detail, exc.seq)


@settings(max_examples=600, deadline=None)
@given(frames())
def test_the_fast_path_answers_as_the_reference_decoder_or_not_at_all(data: bytes) -> None:
    expected = reference(data)
    fast = obs_frame_fast.decode(data)
    if fast is not None:
        assert fast == expected
    try:
        got: object = obs_frame_fast.decode_edge(data)
    except WireError as exc:
        got = ("error", exc.code, exc.detail, exc.seq)
    assert got == expected


def test_a_plain_numerics_frame_takes_the_fast_path() -> None:
    frame = ObsFrame(seq=9, obs=tuple(Observation(f"A-{b:02d}", "hr", 70.0 + b, 1_764_480_000_000, 1_764_480_000_001, f"mon-{b}")
                                      for b in range(25)))  # fmt: skip
    data = encode_edge(frame)
    assert obs_frame_fast.decode(data) == frame == codec.decode_edge(data)


def test_frames_the_fast_path_leaves_to_the_reference() -> None:
    base = {"type": "obs", "seq": 1, "obs": [{"bed": "A", "param": "hr", "value": 1, "t_dev": 1, "t_rx": 1}]}
    for change in ({"unmapped": [{"system": "MDC", "code": "x", "name": "", "value": "1", "unit": "", "status": "F", "t_dev": 1, "t_rx": 1,
                                  "bed": "A", "device": "d"}]},
                   {"obs": [{"bed": "A\ud800", "param": "hr", "t_dev": 1, "t_rx": 1}]},
                   {"obs": [{"bed": "A", "param": "hr", "value": 10**400, "t_dev": 1, "t_rx": 1}]},
                   {"obs": [{"bed": "A", "param": "hr", "t_dev": 1, "t_rx": 1, "device": "quoted \"name\""}]}):  # fmt: skip
        data = json.dumps(base | change).encode("utf-8", "surrogatepass")
        assert obs_frame_fast.decode(data) is None
    raw_control = b'{"type":"obs","seq":1,"obs":[{"bed":"A\x01","param":"hr","t_dev":1,"t_rx":1}]}'  # invalid JSON
    assert obs_frame_fast.decode(raw_control) is None and reference(raw_control)[:2] == ("error", "malformed")


def test_an_integer_too_large_for_a_float_is_a_schema_error_not_a_crash() -> None:
    data = b'{"type":"obs","seq":3,"obs":[{"bed":"A","param":"hr","value":' + b"9" * 400 + b',"t_dev":1,"t_rx":1}]}'
    for decode in (codec.decode_edge, obs_frame_fast.decode_edge):
        try:
            decode(data)
        except WireError as exc:
            assert (exc.code, exc.seq) == ("schema", 3)
        else:
            raise AssertionError("accepted a value no float can hold")


def test_an_unpaired_surrogate_in_an_identifier_is_refused() -> None:
    data = json.dumps({"type": "obs", "seq": 4, "obs": [{"bed": "A", "param": "hr", "t_dev": 1, "t_rx": 1, "device": "m\ud800"}]}).encode()
    try:
        obs_frame_fast.decode_edge(data)
    except WireError as exc:
        assert exc.code == "schema" and "surrogate" in exc.detail
    else:
        raise AssertionError("accepted a device id no UTF-8 store can hold")
