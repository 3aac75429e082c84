"""TSP/1 encoder: numerics, waveform segments and status as the bytes a monitor sends.

The wire format is specified in ``edge_agent.drivers.tsp`` (the parser); this is
the independent sending side used by the simulated monitors. Pure functions, no I/O.
"""

from __future__ import annotations

import binascii

import base64
import math
from collections.abc import Mapping, Sequence

import numpy as np

from wire.vocabulary import Flag

MAX_FRAME = 4096

#: flag bit -> letter, in the order letters are written
FLAG_LETTERS: tuple[tuple[int, str], ...] = (
    (Flag.PROBE_OFF, "p"),
    (Flag.LEADS_OFF, "l"),
    (Flag.ARTEFACT, "a"),
    (Flag.INVALID, "i"),
)

#: decimals written per parameter (others: up to 2, trailing zeros dropped)
DECIMALS: dict[str, int] = {
    "hr": 0, "pr": 0, "spo2": 0, "rr": 0, "nibp_sys": 0, "nibp_dia": 0, "nibp_mean": 0,
    "etco2": 0, "o2": 0, "acvpu": 0, "temp": 1,
}


_BODY_BYTES = bytes(b for b in range(0x20, 0x7F) if b not in b"$*")


class EncodeError(ValueError):
    """The frame would break the TSP/1 format (bad characters, too long)."""


def checksum(body: bytes) -> int:
    """CRC-16/CCITT-FALSE of the body (polynomial 0x1021, initial 0xFFFF)."""
    return binascii.crc_hqx(body, 0xFFFF)


def frame(body: str | bytes) -> bytes:
    """Wrap a body as ``$body*CCCC\\r\\n``."""
    raw = body.encode("ascii") if isinstance(body, str) else bytes(body)
    if raw.translate(None, _BODY_BYTES):
        raise EncodeError("TSP body must be printable ASCII without '$' or '*'")
    out = b"$" + raw + b"*%04X\r\n" % checksum(raw)
    if len(out) > MAX_FRAME:
        raise EncodeError(f"frame of {len(out)} bytes exceeds {MAX_FRAME}")
    return out


def format_value(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        raise EncodeError(f"{key}: non-finite value {value!r}")
    decimals = DECIMALS.get(key)
    if decimals is None:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:.{decimals}f}"
    return "0" if text in ("-0", "") else text


def flag_letters(flags: int) -> str:
    return "".join(letter for bit, letter in FLAG_LETTERS if flags & bit)


def encode_numerics(
    t_ms: int,
    values: Mapping[str, float | None],
    flags: Mapping[str, int] | None = None,
    measured: Mapping[str, int] | None = None,
) -> bytes:
    """``N`` frame; ``flags`` maps a key to its ``Flag`` bits (``None`` values need no flag),
    ``measured`` a key to its measurement time when that is not ``t_ms`` (a repeated NIBP reading)."""
    parts = ["N", str(int(t_ms))]
    for key, value in values.items():
        item = f"{key}={format_value(key, value)}"
        if measured and key in measured:
            item += f"@{int(measured[key])}"
        bits = flags.get(key, 0) if flags else 0
        if bits:
            item += "!" + flag_letters(bits)
        parts.append(item)
    return frame(",".join(parts))


def encode_wave(t_ms: int, lead: str, rate_hz: int, scale: float, samples: np.ndarray | Sequence[int]) -> bytes:
    """``W`` frame of int16 samples (sent little-endian, base64)."""
    raw = np.asarray(samples, dtype="<i2").tobytes()
    b64 = base64.b64encode(raw).decode("ascii")
    return frame(f"W,{int(t_ms)},{lead},{int(rate_hz)},{scale:g},{b64}")


def encode_status(t_ms: int, status: str, detail: str = "") -> bytes:
    """``S`` frame: a device condition such as ``probe_off``, ``leads_off`` or ``ok``."""
    body = f"S,{int(t_ms)},{status}"
    if detail:
        body += "," + detail
    return frame(body)
