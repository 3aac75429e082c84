"""Bytes <-> wire messages, for the edge-to-hub WebSocket.

Text frames carry JSON (hello, observation frames, and the hub's replies).
Binary frames carry waveform chunks in a fixed little-endian layout:

    offset size field
    0      2    magic b"TW"
    2      1    version (1)
    3      1    reserved (0)
    4      8    seq        u64
    12     8    t_first    i64, ms
    20     2    rate_hz    u16
    22     2    n samples  u16
    24     4    scale      f32, units per count
    28     1    len(bed)   u8
    29     1    len(lead)  u8
    30     ..   bed, lead  UTF-8
    ..     2n   samples    i16

Every decoder takes bytes, returns a message or raises ``WireError`` with a code
from ``ERROR_CODES``; nothing else escapes. Sizes are bounded by the constants below.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any

from wire.messages import (
    Ack,
    EdgeMessage,
    ErrorReport,
    Hello,
    HubMessage,
    ObsFrame,
    Observation,
    Pace,
    PatientSeen,
    Status,
    UnmappedObservation,
    WaveChunk,
    Welcome,
)

MAX_TEXT_FRAME = 256 * 1024  # bytes of JSON in one text frame
MAX_BINARY_FRAME = 64 * 1024  # bytes in one waveform chunk
MAX_OBS_PER_FRAME = 2000
MAX_SAMPLES_PER_CHUNK = 8192
MAX_ID_LEN = 64  # agent, ward, bed, device and lead identifiers
MAX_BEDS_PER_AGENT = 2000
MIN_PACE, MAX_PACE = 0.01, 100_000.0  # frames per second a ``Pace`` may name
#: longest text of each field of an unmapped observation (characters); a driver clips to these (``clip``)
UNMAPPED_LIMITS = {"system": 32, "code": 64, "name": 64, "value": 200, "unit": 64, "status": 8}

ERROR_CODES = {
    "oversized": "frame larger than the documented limit",
    "malformed": "not valid JSON / not a valid binary chunk",
    "schema": "a field is missing, of the wrong type or out of its documented bounds",
    "unknown_type": "the 'type' field names no known message",
    "protocol": "message not allowed in this state (for example data before hello)",
}
# Codes only the hub sends (not decoding errors): "rejected" (some values of a frame),
# "rate_limited" (reading slowed down), "unknown_agent" (connection refused).

_WAVE_HEADER = struct.Struct("<2sBBQqHHfBB")
_WAVE_MAGIC = b"TW"


class WireError(ValueError):
    """A frame could not be decoded. ``code`` is one of ``ERROR_CODES``."""

    def __init__(self, code: str, detail: str, seq: int | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.seq = seq


# --- encoding -------------------------------------------------------------------


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def observation_to_dict(o: Observation) -> dict[str, Any]:
    return {
        "bed": o.bed,
        "param": o.param,
        "value": o.value,
        "t_dev": o.t_dev,
        "t_rx": o.t_rx,
        "device": o.device,
        "flags": o.flags,
    }


def unmapped_to_dict(u: UnmappedObservation) -> dict[str, Any]:
    return {
        "bed": u.bed,
        "device": u.device,
        "system": u.system,
        "code": u.code,
        "name": u.name,
        "value": u.value,
        "unit": u.unit,
        "status": u.status,
        "t_dev": u.t_dev,
        "t_rx": u.t_rx,
    }


def clip(text: str, field: str) -> str:
    """``text`` fit for an unmapped observation's ``field``: control characters as ``?``, cut to its limit."""
    text = text[: UNMAPPED_LIMITS[field]]
    return "".join("?" if ch < " " or ch == "\x7f" else ch for ch in text)


def encode_edge(msg: EdgeMessage) -> bytes:
    """Encode an edge-to-hub message: JSON bytes for text frames, or a binary chunk."""
    if isinstance(msg, WaveChunk):
        return encode_wave_chunk(msg)
    if isinstance(msg, ObsFrame):
        frame: dict[str, Any] = {"type": "obs", "seq": msg.seq, "obs": [observation_to_dict(o) for o in msg.obs]}
        if msg.unmapped:
            frame["unmapped"] = [unmapped_to_dict(u) for u in msg.unmapped]
        if msg.patients:
            frame["patients"] = [{"bed": p.bed, "patient_id": p.patient_id, "device": p.device, "t": p.t} for p in msg.patients]
        return _dumps(frame)
    if isinstance(msg, Status):
        return _dumps({"type": "status", "devices": list(msg.devices), "spool": msg.spool})
    if isinstance(msg, Hello):
        return _dumps(
            {
                "type": "hello",
                "proto": msg.proto,
                "agent": msg.agent,
                "epoch": msg.epoch,
                "ward": msg.ward,
                "beds": list(msg.beds),
                "floor": msg.floor,
            }
            | ({"pace": True} if msg.pace else {})  # only when true: the hello of an agent without pacing is unchanged
        )
    raise TypeError(f"not an edge message: {type(msg).__name__}")


def encode_wave_chunk(c: WaveChunk) -> bytes:
    bed, lead = c.bed.encode(), c.lead.encode()
    n = len(c.samples)
    if n > MAX_SAMPLES_PER_CHUNK or len(bed) > MAX_ID_LEN or len(lead) > MAX_ID_LEN:
        raise WireError("oversized", "waveform chunk exceeds documented limits", c.seq)
    head = _WAVE_HEADER.pack(_WAVE_MAGIC, 1, 0, c.seq, c.t_first, c.rate_hz, n, c.scale, len(bed), len(lead))
    return head + bed + lead + struct.pack(f"<{n}h", *c.samples)


def encode_hub(msg: HubMessage) -> bytes:
    if isinstance(msg, Ack):
        return _dumps({"type": "ack", "seq": msg.seq, "also": list(msg.also)} if msg.also else {"type": "ack", "seq": msg.seq})
    if isinstance(msg, Welcome):
        return _dumps({"type": "welcome", "last_seq": msg.last_seq})
    if isinstance(msg, ErrorReport):
        return _dumps(
            {
                "type": "error",
                "code": msg.code,
                "detail": msg.detail,
                "seq": msg.seq,
                "rejected": list(msg.rejected),
            }
        )
    if isinstance(msg, Pace):
        return _dumps({"type": "pace", "frames_per_s": msg.frames_per_s})
    raise TypeError(f"not a hub message: {type(msg).__name__}")


# --- decoding -------------------------------------------------------------------


def _load_json(data: bytes | str, limit: int) -> dict[str, Any]:
    if len(data) > limit:
        raise WireError("oversized", f"text frame of {len(data)} bytes exceeds {limit}")
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError("malformed", f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise WireError("malformed", "a frame must be a JSON object")
    return obj


def _int(obj: dict[str, Any], key: str, lo: int, hi: int, seq: int | None = None) -> int:
    v = obj.get(key)
    if type(v) is not int or not lo <= v <= hi:
        raise WireError("schema", f"'{key}' must be an integer in [{lo}, {hi}], got {v!r}", seq)
    return v


def _ident(obj: dict[str, Any], key: str, seq: int | None = None, *, empty: bool = False) -> str:
    v = obj.get(key, "" if empty else None)
    if not isinstance(v, str) or len(v) > MAX_ID_LEN or (not v and not empty):
        raise WireError("schema", f"'{key}' must be a string of 1..{MAX_ID_LEN} characters, got {v!r}", seq)
    if _UNPRINTABLE.search(v):
        raise WireError("schema", f"'{key}' contains control characters or unpaired surrogates", seq)
    return v


_MAX_SEQ = 2**63 - 1
#: control characters, and the halves of a surrogate pair that JSON's ``\ud800`` escapes can leave alone (no UTF-8
#: encodes them: a store would fail on them later)
_UNPRINTABLE = re.compile("[\x00-\x1f\ud800-\udfff]")
_T_MIN, _T_MAX = 0, 2**53  # ms; JSON-safe integers


def is_wave_chunk(data: bytes | str) -> bool:
    """Whether an encoded edge frame is a binary waveform chunk (else a JSON text message); nothing is decoded."""
    return isinstance(data, (bytes, bytearray, memoryview)) and bytes(data[:2]) == _WAVE_MAGIC


def decode_edge(data: bytes | str) -> EdgeMessage:
    """Decode one frame sent by an edge agent. Raises ``WireError``."""
    if is_wave_chunk(data):
        return decode_wave_chunk(bytes(data))
    obj = _load_json(data, MAX_TEXT_FRAME)
    kind = obj.get("type")
    if kind == "obs":
        return _decode_obs_frame(obj)
    if kind == "hello":
        return _decode_hello(obj)
    if kind == "status":
        return _decode_status(obj)
    raise WireError("unknown_type", f"unknown frame type {kind!r}", obj.get("seq") if type(obj.get("seq")) is int else None)


def _decode_hello(obj: dict[str, Any]) -> Hello:
    proto = _int(obj, "proto", 1, 1)
    beds = obj.get("beds", [])
    if not isinstance(beds, list) or len(beds) > MAX_BEDS_PER_AGENT:
        raise WireError("schema", f"'beds' must be a list of at most {MAX_BEDS_PER_AGENT} bed ids")
    bed_ids = tuple(_ident({"bed": b}, "bed") for b in beds)
    return Hello(
        agent=_ident(obj, "agent"),
        epoch=_int(obj, "epoch", 0, _T_MAX),
        ward=_ident(obj, "ward"),
        beds=bed_ids,
        proto=proto,
        floor=_int(obj, "floor", 0, _MAX_SEQ) if "floor" in obj else 0,
        pace=_bool(obj, "pace") if "pace" in obj else False,
    )


def _bool(obj: dict[str, Any], key: str) -> bool:
    v = obj.get(key)
    if type(v) is not bool:
        raise WireError("schema", f"'{key}' must be true or false, got {v!r}")
    return v


MAX_STATUS_DEVICES = 2000
_SPOOL_KEYS = ("frames", "bytes", "dropped_frames", "dropped_wave_frames", "dropped_obs_frames", "oldest_t", "floor")


def _decode_status(obj: dict[str, Any]) -> Status:
    devices = obj.get("devices", [])
    if not isinstance(devices, list) or len(devices) > MAX_STATUS_DEVICES:
        raise WireError("schema", f"'devices' must be a list of at most {MAX_STATUS_DEVICES} entries")
    out = []
    for i, d in enumerate(devices):
        if not isinstance(d, dict):
            raise WireError("schema", f"devices[{i}] must be an object")
        detail = d.get("detail", "")
        if not isinstance(detail, str) or len(detail) > 200:
            raise WireError("schema", f"devices[{i}].detail must be a string of at most 200 characters")
        out.append(
            {
                "bed": _ident(d, "bed"),
                "device": _ident(d, "device"),
                "status": _ident(d, "status"),
                "detail": detail,
                "t": _int(d, "t", _T_MIN, _T_MAX),
            }
        )
    spool = obj.get("spool")
    if spool is not None:
        if not isinstance(spool, dict) or set(spool) - set(_SPOOL_KEYS):
            raise WireError("schema", f"'spool' must be an object with keys among {_SPOOL_KEYS}")
        spool = {k: _int(spool, k, 0, _T_MAX) for k in spool}
    return Status(devices=tuple(out), spool=spool)


def _decode_obs_frame(obj: dict[str, Any]) -> ObsFrame:
    seq = _int(obj, "seq", 1, _MAX_SEQ)
    items = obj.get("obs")
    if not isinstance(items, list):
        raise WireError("schema", "'obs' must be a list", seq)
    unmapped = obj.get("unmapped", [])
    if not isinstance(unmapped, list):
        raise WireError("schema", "'unmapped' must be a list", seq)
    patients = obj.get("patients", [])
    if not isinstance(patients, list):
        raise WireError("schema", "'patients' must be a list", seq)
    if len(items) + len(unmapped) + len(patients) > MAX_OBS_PER_FRAME:
        raise WireError("oversized", f"{len(items) + len(unmapped) + len(patients)} observations exceed {MAX_OBS_PER_FRAME} per frame", seq)
    out: list[Observation] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise WireError("schema", f"obs[{i}] must be an object", seq)
        value = item.get("value")
        if value is not None:
            if type(value) not in (int, float):
                raise WireError("schema", f"obs[{i}].value must be a finite number or null", seq)
            try:
                value = float(value)
            except OverflowError:  # an integer of hundreds of digits
                value = math.inf
            if not math.isfinite(value):
                raise WireError("schema", f"obs[{i}].value must be a finite number or null", seq)
        out.append(
            Observation(
                bed=_ident(item, "bed", seq),
                param=_ident(item, "param", seq),
                value=value,
                t_dev=_int(item, "t_dev", _T_MIN, _T_MAX, seq),
                t_rx=_int(item, "t_rx", _T_MIN, _T_MAX, seq),
                device=_ident(item, "device", seq, empty=True),
                flags=_int(item, "flags", 0, 255, seq) if "flags" in item else 0,
            )
        )
    return ObsFrame(seq=seq, obs=tuple(out), unmapped=tuple(_decode_unmapped(item, i, seq) for i, item in enumerate(unmapped)),
                    patients=tuple(_decode_patient(item, i, seq) for i, item in enumerate(patients)))  # fmt: skip


def _decode_patient(item: Any, i: int, seq: int) -> PatientSeen:
    if not isinstance(item, dict):
        raise WireError("schema", f"patients[{i}] must be an object", seq)
    return PatientSeen(bed=_ident(item, "bed", seq), patient_id=_ident(item, "patient_id", seq), device=_ident(item, "device", seq, empty=True),
                       t=_int(item, "t", _T_MIN, _T_MAX, seq))  # fmt: skip


def _text(obj: dict[str, Any], key: str, where: str, seq: int) -> str:
    v = obj.get(key)
    limit = UNMAPPED_LIMITS[key]
    if not isinstance(v, str) or len(v) > limit or _UNPRINTABLE.search(v):
        raise WireError("schema", f"{where}.{key} must be a string of at most {limit} printable characters", seq)
    return v


def _decode_unmapped(item: Any, i: int, seq: int) -> UnmappedObservation:
    where = f"unmapped[{i}]"
    if not isinstance(item, dict):
        raise WireError("schema", f"{where} must be an object", seq)
    code = _text(item, "code", where, seq)
    if not code:
        raise WireError("schema", f"{where}.code must not be empty", seq)
    return UnmappedObservation(
        bed=_ident(item, "bed", seq),
        device=_ident(item, "device", seq, empty=True),
        system=_text(item, "system", where, seq),
        code=code,
        name=_text(item, "name", where, seq),
        value=_text(item, "value", where, seq),
        unit=_text(item, "unit", where, seq),
        status=_text(item, "status", where, seq),
        t_dev=_int(item, "t_dev", _T_MIN, _T_MAX, seq),
        t_rx=_int(item, "t_rx", _T_MIN, _T_MAX, seq),
    )


def decode_wave_chunk(data: bytes) -> WaveChunk:
    if len(data) > MAX_BINARY_FRAME:
        raise WireError("oversized", f"binary frame of {len(data)} bytes exceeds {MAX_BINARY_FRAME}")
    if len(data) < _WAVE_HEADER.size:
        raise WireError("malformed", f"binary frame of {len(data)} bytes is shorter than the {_WAVE_HEADER.size}-byte header")
    magic, version, _res, seq, t_first, rate, n, scale, bed_len, lead_len = _WAVE_HEADER.unpack_from(data)
    if magic != _WAVE_MAGIC or version != 1:
        raise WireError("malformed", f"unknown binary frame (magic {magic!r}, version {version})")
    if seq == 0 or seq > _MAX_SEQ:
        raise WireError("schema", f"seq must be in [1, {_MAX_SEQ}]")
    expected = _WAVE_HEADER.size + bed_len + lead_len + 2 * n
    if len(data) != expected:
        raise WireError("malformed", f"binary frame is {len(data)} bytes, header says {expected}", seq)
    if not 1 <= rate <= 10_000 or not math.isfinite(scale) or scale <= 0 or not _T_MIN <= t_first <= _T_MAX:
        raise WireError("schema", "rate, scale or t_first out of bounds", seq)
    off = _WAVE_HEADER.size
    try:
        bed = data[off : off + bed_len].decode()
        lead = data[off + bed_len : off + bed_len + lead_len].decode()
    except UnicodeDecodeError:
        raise WireError("malformed", "bed or lead is not UTF-8", seq) from None
    for name, ident in (("bed", bed), ("lead", lead)):
        _ident({name: ident}, name, seq)
    samples = struct.unpack_from(f"<{n}h", data, off + bed_len + lead_len)
    return WaveChunk(seq=seq, bed=bed, lead=lead, t_first=t_first, rate_hz=rate, scale=scale, samples=samples)


def decode_hub(data: bytes | str) -> HubMessage:
    """Decode one frame sent by the hub to an edge agent. Raises ``WireError``."""
    obj = _load_json(data, MAX_TEXT_FRAME)
    kind = obj.get("type")
    if kind == "ack":
        also = obj.get("also", [])
        if not isinstance(also, list) or len(also) > 100_000 or any(type(x) is not int for x in also):
            raise WireError("schema", "'also' must be a list of sequence numbers")
        return Ack(seq=_int(obj, "seq", 0, _MAX_SEQ), also=tuple(also))
    if kind == "welcome":
        return Welcome(last_seq=_int(obj, "last_seq", 0, _MAX_SEQ))
    if kind == "pace":
        return _decode_pace(obj)
    if kind == "error":
        seq = obj.get("seq")
        rejected = obj.get("rejected", [])
        return ErrorReport(
            code=str(obj.get("code", "")),
            detail=str(obj.get("detail", "")),
            seq=seq if type(seq) is int else None,
            rejected=tuple(r for r in rejected if isinstance(r, dict)) if isinstance(rejected, list) else (),
        )
    raise WireError("unknown_type", f"unknown hub frame type {kind!r}")


def _decode_pace(obj: dict[str, Any]) -> Pace:
    """``frames_per_s``: a number in [MIN_PACE, MAX_PACE], or null or absent for "unpaced"."""
    rate = obj.get("frames_per_s")
    if rate is None:
        return Pace(None)
    if type(rate) not in (int, float) or not MIN_PACE <= rate <= MAX_PACE:  # NaN and infinities fail the bounds
        raise WireError("schema", f"'frames_per_s' must be null or a number in [{MIN_PACE:g}, {MAX_PACE:g}], got {rate!r}")
    return Pace(float(rate))
