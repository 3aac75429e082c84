"""Driver for TSP/1, the teleicu serial protocol spoken by our simulated monitors.

This module is the sans-I/O parser (bytes in, events out); the serial transport
lives in ``edge_agent.transports.serial_port`` and the encoder in
``simulators.tsp_encoder``. TSP is send-only from the monitor: the parser never
has anything to send back.

TSP/1 wire format
=================

A frame is one ASCII line::

    $<body>*<CCCC>\\r\\n

* ``$`` starts a frame and never occurs inside one.
* ``<body>`` is printable ASCII (0x20-0x7E) without ``$`` or ``*``.
* ``<CCCC>`` is the CRC-16/CCITT-FALSE (polynomial 0x1021, initial value
  0xFFFF) of the body bytes, as four hex digits (sent uppercase; lowercase is
  accepted). An earlier XOR checksum could not see a lost pair of equal bytes
  (``00`` dropped from a time); a CRC-16 catches every burst of up to 16 bits.
* A frame is at most ``MAX_FRAME`` (4096) bytes, from ``$`` to ``\\n`` inclusive.
* Times ``<t_ms>`` are device time, non-negative integer milliseconds since the
  Unix epoch (UTC).

The body is comma-separated; the first field is the frame type.

``N,<t_ms>,<key>=<value>[@<t_meas>][!<flags>],...`` - numerics
    ``key`` is a parameter key of ``wire.vocabulary.PARAMETERS`` (``hr``,
    ``spo2``, ``rr``, ``nibp_sys``, ``nibp_dia``, ``nibp_mean``, ``temp``,
    ``etco2``, ``o2``, ``acvpu``...). ``value`` is a plain decimal number
    (``-?digits[.digits]``; no exponent, no ``nan``/``inf``) or ``-`` for no
    value. ``flags`` is one or more letters: ``p`` probe off, ``l`` leads off,
    ``a`` artefact, ``i`` invalid (``wire.vocabulary.Flag``). A ``-`` without
    flags is reported with the ``invalid`` flag, so a missing value always says
    why. ``@<t_meas>`` gives the time the value was measured when it differs
    from the frame time: a monitor repeats its last NIBP reading in every frame,
    stamped with the time of that cuff cycle. Example:
    ``N,1700000000000,hr=72,spo2=-!p,temp=36.9,nibp_sys=118@1699999940000``.

``W,<t_ms>,<lead>,<rate_hz>,<scale>,<base64>`` - waveform segment
    ``lead`` is a key of ``wire.vocabulary.LEADS`` (``ecg_ii``...), ``t_ms``
    the time of the first sample, ``rate_hz`` an integer sample rate (1-65535),
    ``scale`` the positive physical value of one count (``value = count *
    scale``; decimal, an exponent such as ``5e-3`` is allowed), and the last
    field standard base64 (with padding) of little-endian int16 samples (at
    least one).

``S,<t_ms>,<status>[,<detail>]`` - device status
    ``status`` is a lowercase token: ``probe_off``, ``leads_off``, ``ok``...
    ``detail`` is free text (it may contain commas), e.g. the parameter concerned.

Error handling
==============

``TspParser.feed`` never raises. Whatever it cannot use becomes a
``ParseError`` event; it then resynchronises at the next ``$``.

=================  ===========================================================
code               meaning
=================  ===========================================================
``framing``        bytes outside a frame, a frame cut short by a new ``$``, a
                   missing ``\\r``, ``*CCCC`` trailer or non-printable byte
``oversized``      no ``\\n`` within ``MAX_FRAME`` bytes; skipped to the next
                   ``\\n`` or ``$``
``checksum``       the CRC does not match; the whole frame is discarded
``unknown_type``   the first field is not ``N``, ``W`` or ``S``
``bad_field``      a malformed frame-level field (time, rate, scale, status...)
``unknown_param``  a numerics key not in the vocabulary; the other values of
                   the frame are still emitted
``bad_value``      a numerics item whose value or flags cannot be read; the
                   other values of the frame are still emitted
``unknown_lead``   a waveform lead not in the vocabulary
``bad_base64``     the sample field is not valid base64
``bad_samples``    the samples are empty or not a whole number of int16
=================  ===========================================================

``discarded`` in a ``ParseError`` counts the bytes thrown away. Bytes outside
frames are reported in one event per run of garbage (at the next ``$``, or every
``MAX_FRAME`` bytes of a longer run), so the events do not depend on how the
byte stream was chunked.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import sys
from array import array
from collections import Counter
from collections.abc import Callable
from enum import Enum

from edge_agent.drivers import register
from edge_agent.drivers.base import DriverSpec, ErrorAccounting
from edge_agent.events import DeviceStatus, DriverEvent, WaveSegment
from wire.messages import Observation
from wire.vocabulary import BY_KEY, LEAD_BY_KEY, Flag
from wire.clock import wall_ms

MAX_FRAME = 4096  # bytes, from "$" to "\n" inclusive
START = 0x24  # "$"

FLAG_LETTERS: dict[str, int] = {
    "p": Flag.PROBE_OFF,
    "l": Flag.LEADS_OFF,
    "a": Flag.ARTEFACT,
    "i": Flag.INVALID,
}

_NUMBER = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,9})?")
_TIME = re.compile(r"[0-9]{1,15}")
_RATE = re.compile(r"[0-9]{1,5}")
_SCALE = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,12})?(?:[eE]-?[0-9]{1,2})?")
_STATUS = re.compile(r"[a-z][a-z0-9_]{0,31}")
_HEX = frozenset(b"0123456789ABCDEFabcdef")
_BODY_BYTES = bytes(b for b in range(0x20, 0x7F) if b not in b"$*")  # allowed in a body
_BIG_ENDIAN = sys.byteorder == "big"


def crc16(body: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``body`` (the TSP/1 frame check)."""
    return binascii.crc_hqx(body, 0xFFFF)


class _State(Enum):
    HUNT = 0  # looking for "$"
    FRAME = 1  # inside a frame, waiting for "\n"
    OVERSIZED = 2  # skipping the rest of an over-long frame


class TspParser(ErrorAccounting):
    """Sans-I/O TSP/1 parser for one device on one bed.

    ``feed`` accepts any bytes and returns the events they complete. At most
    ``MAX_FRAME`` bytes are ever buffered (see ``buffered``).
    """

    GARBAGE_DETAIL = "bytes outside a frame"
    GARBAGE_CHUNK = MAX_FRAME

    def __init__(self, bed: str, device: str, clock_ms: Callable[[], int] = wall_ms) -> None:
        self.bed = bed
        self.device = device
        self._clock_ms = clock_ms
        self._state = _State.HUNT
        self._buf = bytearray()
        self._garbage = 0  # bytes discarded in HUNT state, not yet reported
        self._skipped = 0  # bytes discarded in OVERSIZED state, not yet reported
        #: ParseError counts by code, and total bytes discarded, since creation
        self.errors: Counter[str] = Counter()
        self.discarded_bytes = 0
        self.frames = 0  # frames accepted (checksum good)

    @property
    def buffered(self) -> int:
        """Bytes currently held for an incomplete frame (never above ``MAX_FRAME``)."""
        return len(self._buf)

    def bytes_to_send(self) -> bytes:
        return b""

    def feed(self, data: bytes) -> list[DriverEvent]:
        events: list[DriverEvent] = []
        data = bytes(data)
        pos, n = 0, len(data)
        while pos < n:
            if self._state is _State.HUNT:
                i = data.find(b"$", pos)
                if i < 0:
                    self._add_garbage(n - pos, events)
                    pos = n
                else:
                    self._add_garbage(i - pos, events)
                    self._flush_garbage(events)
                    self._start_frame()
                    pos = i + 1
            elif self._state is _State.FRAME:
                limit = min(n, pos + MAX_FRAME - len(self._buf))
                j_end = data.find(b"\n", pos, limit)
                j_start = data.find(b"$", pos, limit if j_end < 0 else j_end)
                if j_start >= 0:
                    cut = len(self._buf) + (j_start - pos)
                    self._error(events, "framing", "frame cut short by a new '$'", cut)
                    self._start_frame()
                    pos = j_start + 1
                elif j_end >= 0:
                    self._buf += data[pos : j_end + 1]
                    pos = j_end + 1
                    line = bytes(self._buf)
                    self._buf.clear()
                    self._state = _State.HUNT
                    self._frame(line, events)
                else:
                    self._buf += data[pos:limit]
                    pos = limit
                    if len(self._buf) >= MAX_FRAME:
                        self._skipped = len(self._buf)
                        self._buf.clear()
                        self._state = _State.OVERSIZED
            else:  # OVERSIZED
                j_end = data.find(b"\n", pos)
                j_start = data.find(b"$", pos, n if j_end < 0 else j_end)
                if j_start >= 0:
                    self._skipped += j_start - pos
                    self._report_oversized(events)
                    self._start_frame()
                    pos = j_start + 1
                elif j_end >= 0:
                    self._skipped += j_end + 1 - pos
                    self._report_oversized(events)
                    self._state = _State.HUNT
                    pos = j_end + 1
                else:
                    self._skipped += n - pos
                    pos = n
        return events

    # -- stream-level helpers ------------------------------------------------

    def _start_frame(self) -> None:
        self._buf.clear()
        self._buf.append(START)
        self._state = _State.FRAME

    def _report_oversized(self, events: list[DriverEvent]) -> None:
        self._error(events, "oversized", f"no end of frame within {MAX_FRAME} bytes", self._skipped)
        self._skipped = 0

    # -- frame-level parsing -------------------------------------------------

    def _frame(self, line: bytes, events: list[DriverEvent]) -> None:
        """``line`` runs from ``$`` to ``\\n`` inclusive and holds no other ``$``."""
        size = len(line)
        if size < 8 or line[-2] != 0x0D or line[-7] != 0x2A:
            self._error(events, "framing", "frame does not end in '*CCCC\\r\\n'", size)
            return
        hex_digits = line[-6:-2]
        if any(d not in _HEX for d in hex_digits):
            self._error(events, "framing", "checksum is not four hex digits", size)
            return
        body = line[1:-7]
        if body.translate(None, _BODY_BYTES):
            self._error(events, "framing", "non-printable byte or '*' in frame body", size)
            return
        expected = int(hex_digits, 16)
        actual = crc16(body)
        if expected != actual:
            self._error(events, "checksum", f"checksum {expected:04X} != computed {actual:04X}", size)
            return
        self.frames += 1
        text = body.decode("ascii")
        kind, _, rest = text.partition(",")
        if kind == "N":
            self._numerics(rest, size, events)
        elif kind == "W":
            self._wave(rest, size, events)
        elif kind == "S":
            self._status(rest, size, events)
        else:
            self._error(events, "unknown_type", f"unknown frame type {kind[:16]!r}", size)

    def _numerics(self, rest: str, size: int, events: list[DriverEvent]) -> None:
        t_text, _, items = rest.partition(",")
        if not _TIME.fullmatch(t_text):
            self._error(events, "bad_field", f"bad time {t_text[:20]!r}", size)
            return
        t_dev = int(t_text)
        t_rx = self._clock_ms()
        if not items:
            return
        for item in items.split(","):
            key, eq, value_text = item.partition("=")
            if not eq:
                self._error(events, "bad_value", f"item {item[:40]!r} is not key=value", len(item))
                continue
            if key not in BY_KEY:
                self._error(events, "unknown_param", f"unknown parameter {key[:32]!r}", len(item))
                continue
            value_text, bang, letters = value_text.partition("!")
            value_text, at, t_meas_text = value_text.partition("@")
            t_obs = t_dev
            if at:
                if not _TIME.fullmatch(t_meas_text):
                    self._error(events, "bad_value", f"{key}: bad measurement time {t_meas_text[:20]!r}", len(item))
                    continue
                t_obs = int(t_meas_text)
            flags = 0
            if bang:
                if not letters or any(c not in FLAG_LETTERS for c in letters):
                    self._error(events, "bad_value", f"{key}: bad flags {letters[:16]!r}", len(item))
                    continue
                for c in letters:
                    flags |= FLAG_LETTERS[c]
            value: float | None
            if value_text == "-":
                value = None
                if not flags:
                    flags = Flag.INVALID
            elif _NUMBER.fullmatch(value_text):
                value = float(value_text)
            else:
                self._error(events, "bad_value", f"{key}: bad value {value_text[:20]!r}", len(item))
                continue
            events.append(
                Observation(
                    bed=self.bed,
                    param=key,
                    value=value,
                    t_dev=t_obs,
                    t_rx=t_rx,
                    device=self.device,
                    flags=int(flags),
                )
            )

    def _wave(self, rest: str, size: int, events: list[DriverEvent]) -> None:
        fields = rest.split(",")
        if len(fields) != 5:
            self._error(events, "bad_field", f"waveform frame has {len(fields) + 1} fields, not 6", size)
            return
        t_text, lead, rate_text, scale_text, b64 = fields
        if not _TIME.fullmatch(t_text):
            self._error(events, "bad_field", f"bad time {t_text[:20]!r}", size)
            return
        if lead not in LEAD_BY_KEY:
            self._error(events, "unknown_lead", f"unknown lead {lead[:32]!r}", size)
            return
        rate = int(rate_text) if _RATE.fullmatch(rate_text) else 0
        if not 1 <= rate <= 65535:
            self._error(events, "bad_field", f"bad sample rate {rate_text[:20]!r}", size)
            return
        scale = float(scale_text) if _SCALE.fullmatch(scale_text) else 0.0
        if not (scale > 0.0 and math.isfinite(scale)):
            self._error(events, "bad_field", f"bad scale {scale_text[:20]!r}", size)
            return
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            self._error(events, "bad_base64", "sample field is not valid base64", size)
            return
        if not raw or len(raw) % 2:
            self._error(events, "bad_samples", f"{len(raw)} sample bytes is not a whole number of int16", size)
            return
        samples = array("h")
        samples.frombytes(raw)
        if _BIG_ENDIAN:
            samples.byteswap()
        events.append(
            WaveSegment(
                bed=self.bed,
                lead=lead,
                t_first=int(t_text),
                rate_hz=rate,
                scale=scale,
                samples=tuple(samples),
            )
        )

    def _status(self, rest: str, size: int, events: list[DriverEvent]) -> None:
        fields = rest.split(",", 2)
        if len(fields) < 2:
            self._error(events, "bad_field", "status frame without a status", size)
            return
        t_text, status = fields[0], fields[1]
        detail = fields[2] if len(fields) == 3 else ""
        if not _TIME.fullmatch(t_text):
            self._error(events, "bad_field", f"bad time {t_text[:20]!r}", size)
            return
        if not _STATUS.fullmatch(status):
            self._error(events, "bad_field", f"bad status {status[:32]!r}", size)
            return
        events.append(DeviceStatus(bed=self.bed, device=self.device, status=status, t_dev=int(t_text), detail=detail))


register(
    DriverSpec(
        name="tsp",
        transport="serial",
        parser=TspParser,
        default_baud=115200,
        description="TSP/1, the teleicu serial protocol of the simulated monitors (framed ASCII lines)",
    )
)
