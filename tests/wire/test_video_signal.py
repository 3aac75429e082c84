"""The video signalling codec: every message round-trips, and any other bytes raise ``SignalError``, nothing else."""

from __future__ import annotations

import pytest
from fuzz_support import MUTATION, mutate
from hypothesis import given
from hypothesis import strategies as st

from wire.video_signal import MAX_SIGNAL_BYTES, Signal, SignalError, decode_signal, encode_signal

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
EXAMPLES = [
    Signal("hello", cameras=(("A-01", True), ("A-02", False))),
    Signal("session", session="v1-ab", bed="A-01", talkback=True, ice_servers=({"urls": ["turn:h:3478"], "username": "1:x", "credential": "c"},)),
    Signal("watch", session="v1-ab", bed="A-01", ice_servers=({"urls": "stun:h:3478"},)),
    Signal("offer", session="v1-ab", sdp=SDP),
    Signal("answer", session="v1-ab", sdp=SDP),
    Signal("candidate", session="v1-ab", candidate="candidate:1 1 udp 2130706431 10.0.0.2 50000 typ host", sdp_mid="0", sdp_mline_index=0),
    Signal("candidate", session="v1-ab", candidate=""),
    Signal("talk", session="v1-ab", on=True),
    Signal("state", session="v1-ab", state="failed", reason="camera not found: /dev/video0 does not exist"),
    Signal("camera", bed="A-01", running=False, reason="no viewer left"),
    Signal("hangup", session="v1-ab", reason="the viewer closed the video"),
]


@pytest.mark.parametrize("sig", EXAMPLES, ids=lambda s: s.type)
def test_every_message_round_trips(sig: Signal) -> None:
    assert decode_signal(encode_signal(sig)).to_json() == sig.to_json()


@pytest.mark.parametrize(("frame", "says"), [
    (b"x" * (MAX_SIGNAL_BYTES + 1), "over the 65536-byte limit"),
    (b"[1]", "not a JSON object"),
    (b'{"type": "dance"}', "unknown type 'dance'"),
    (b'{"type": "offer", "session": "s", "sdp": "hello"}', "sdp: not a session description"),
    (b'{"type": "answer", "sdp": "v=0"}', "session: a non-empty string is required"),
    (b'{"type": "state", "session": "s", "state": "fine"}', "state: one of connecting, live, reconnecting, failed"),
    (b'{"type": "talk", "session": "s", "on": "yes"}', "on: true or false"),
    (b'{"type": "hello", "cameras": [{"bed": ""}]}', "bed: a non-empty string is required"),
])  # fmt: skip
def test_bad_frames_are_refused_with_the_reason(frame: bytes, says: str) -> None:
    with pytest.raises(SignalError, match=says):
        decode_signal(frame)


def test_a_viewer_names_no_session() -> None:
    assert decode_signal(b'{"type": "answer", "sdp": "v=0"}', session_required=False).session == ""


@given(st.sampled_from(EXAMPLES), st.lists(MUTATION, max_size=6), st.booleans())
def test_mutated_frames_decode_or_raise_signal_error(sig: Signal, mutations: list, viewer: bool) -> None:
    data = mutate(encode_signal(sig).encode(), mutations)
    try:
        decoded = decode_signal(data, session_required=not viewer)
    except SignalError:
        return
    assert decoded.type in {e.type for e in EXAMPLES}


@given(st.binary(max_size=512))
def test_any_bytes_decode_or_raise_signal_error(data: bytes) -> None:
    try:
        decode_signal(data)
    except SignalError:
        pass
