"""A typed fast path (msgspec) for the edge's most common frame: observations and nothing else.

``decode_edge(data)`` is what the hub calls: ``wire.codec.decode_edge``'s
answer, taken through ``decode`` first. ``decode(data)`` returns the
``ObsFrame`` that the reference decoder would return, or None when the frame is
anything else: another type,
unmapped codes or patients in it, a missing or bad field, an identifier with a
control character, a value out of bounds, JSON that does not parse. None means
"let the reference decoder decide", and that decoder gives every error, so the
fast path never changes what is accepted, what is refused or why. Its
constraints are the reference decoder's, written as msgspec types, and a
property test (tests/wire/test_obs_frame_fast.py) holds the two to the same
answer on generated frames.

Why: the reference decoder checks each field in Python; at 2,000 beds the
decoding of edge frames was a fifth of the hub's event-loop time (issue 19).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import msgspec

from wire import codec
from wire.messages import EdgeMessage, ObsFrame, Observation

Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=codec.MAX_ID_LEN)]
OptionalIdent = Annotated[str, msgspec.Meta(max_length=codec.MAX_ID_LEN)]
Millis = Annotated[int, msgspec.Meta(ge=0, le=codec._T_MAX)]


class _Obs(msgspec.Struct, forbid_unknown_fields=False):
    bed: Ident
    param: Ident
    t_dev: Millis
    t_rx: Millis
    value: float | None = None
    device: OptionalIdent = ""
    flags: Annotated[int, msgspec.Meta(ge=0, le=255)] = 0


class _ObsFrame(msgspec.Struct, forbid_unknown_fields=False):
    type: Literal["obs"]
    seq: Annotated[int, msgspec.Meta(ge=1, le=codec._MAX_SEQ)]
    obs: list[_Obs]
    unmapped: list[Any] = []
    patients: list[Any] = []


_decoder = msgspec.json.Decoder(_ObsFrame)


def decode_edge(data: bytes | str) -> EdgeMessage:
    """One frame from an edge agent, as ``wire.codec.decode_edge`` decodes it (same messages, same ``WireError``)."""
    if isinstance(data, str) or bytes(data[:2]) != codec._WAVE_MAGIC:
        fast = decode(data)
        if fast is not None:
            return fast
    return codec.decode_edge(data)


def decode(data: bytes | str, max_obs: int = codec.MAX_OBS_PER_FRAME) -> ObsFrame | None:
    """The frame as the reference decoder would give it, or None to let that decoder decide (see the module's note)."""
    if isinstance(data, memoryview):
        data = bytes(data)
    if len(data) > codec.MAX_TEXT_FRAME:
        return None
    # JSON strings cannot hold a raw control character, so one in a decoded identifier, or an unpaired surrogate, can
    # only come from an escape: a frame with no backslash has none (a scan at C speed instead of a check per string)
    if (b"\\" if isinstance(data, (bytes, bytearray)) else "\\") in data:
        return None
    try:
        frame = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if frame.unmapped or frame.patients or len(frame.obs) > max_obs:
        return None
    out = []
    for o in frame.obs:
        value = o.value
        if value is not None and not math.isfinite(value):
            return None
        out.append(Observation(o.bed, o.param, value, o.t_dev, o.t_rx, o.device, o.flags))
    return ObsFrame(seq=frame.seq, obs=tuple(out), unmapped=(), patients=())
