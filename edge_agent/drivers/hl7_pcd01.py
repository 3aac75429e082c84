"""Driver for HL7 v2 ORU^R01 (IHE PCD-01) over MLLP: the sans-I/O parser and its ACKs.

One ``Pcd01Parser`` serves one TCP connection from a monitor gateway (the
``tcp_listen`` transport builds one per accepted connection). Bytes go in;
``Observation`` and ``ParseError`` events come out; ``bytes_to_send()`` returns
the MLLP-framed ACK of every complete message, in order. ``feed`` never raises:
whatever it cannot use becomes a documented ``ParseError`` and an AE/AR ACK.
The user-facing description (bed mapping, ACK policy, error codes, sample YAML)
is in ``hl7_pcd01.md`` beside this file; the rules are summarised here.

Framing (MLLP)
    A block is ``0x0B`` message ``0x1C 0x0D``. Bytes outside blocks are
    ``framing`` errors. A block cut short by a new ``0x0B``, or whose ``0x1C`` is
    not followed by ``0x0D``, is discarded as ``framing`` *without* an ACK, so
    the sender times out and re-sends it (an AR would tell it not to). A block
    over ``max_message`` bytes (1 MiB) is skipped to its end (``oversized``) and
    answered AR; only its first ``HEAD_BYTES`` (at most ``max_message``) are
    kept, to read the MSH.

Message
    Segments are separated by ``\\r`` (HL7); ``\\n`` and ``\\r\\n`` are accepted
    too. Encoding characters come from MSH-2; the escapes ``\\F\\ \\S\\ \\T\\
    \\R\\ \\E\\`` are decoded, others are kept literally. MSH-9 must be ORU^R01,
    MSH-10 (control id) non-empty, MSH-11 ``P`` (or empty), MSH-12 a 2.x
    version and MSH-7 a valid time, else AR. PID-3 (patient id) is recorded per
    bed in ``patients``; the wire has no patient field yet, so it is not
    forwarded. A PID starts a new patient: its OBX rows need their own PV1.

Bed mapping
    The key is PV1-3's first three components (point of care ^ room ^ bed) of
    its first repetition, unescaped, joined with ``^``, with trailing empty
    components dropped, compared exactly (case-sensitive) with the keys of
    ``beds``: ``ICU^^BED04`` matches PV1-3 ``ICU^^BED04`` and
    ``ICU^^BED04^^^^HOSP``. OBX rows under an unknown or missing location are
    not used: one ``unknown_location`` error per patient group, ACK AE.

OBX rows
    OBX-3 is ``code^ref id^MDC``; the numeric code alone decides the parameter
    (``wire.vocabulary.BY_MDC``, with the cuff-pressure and Philips pulse-rate
    variants); the reference id is reported, not checked.

    * Code not in the vocabulary: with no value (OBX-2 or OBX-5 empty, or
      OBX-11 ``X``) the row is device context (MDS, VMD, channel) and skipped;
      with a value it becomes an ``UnmappedObservation`` (coding system, code,
      ref id, value, unit and status as sent, at the row's time), which the hub
      stores and lists per device but never scores. Never guessed; the ACK
      stays AA. Counted per code in ``unknown_codes``.
    * Code in the vocabulary, OBX-11 ``X`` or OBX-5 empty: an ``Observation``
      with value ``None`` and flag ``invalid`` (PCD-01 does not say why; a
      probe-off arrives this way).
    * Otherwise OBX-2 must be ``NM``, OBX-5 a decimal number, OBX-11 ``R``,
      ``F``, ``C`` or empty, OBX-6 a unit convertible to the vocabulary's UCUM
      unit (``MDC_UNITS`` by MDC unit code, ``UCUM_UNITS`` when OBX-6.3 is ``UCUM``;
      kPa -> mm[Hg] and degF -> Cel are converted and rounded to 0.01), and
      the value plausible (``wire.screen``). A failure is ``bad_value``,
      ``bad_unit`` or ``bad_time`` for that row only; the rest of the message is
      used and the ACK is AE.
    * Time: OBX-14, else OBR-7 of its OBR, else MSH-7. Format
      ``YYYYMMDDHHMM[SS[.S{1,4}]][+/-ZZZZ]`` (at least minutes). Without an
      offset the ``timezone`` option applies (default ``UTC``; ``+0530`` or an
      IANA name such as ``Asia/Kolkata``; a repeated wall-clock hour at a DST
      change is read as its first occurrence).

ACK (HL7 original mode; one per complete message, whatever MSH-15/16 ask)
    ``MSH|^~\\&|TELEICU|<device id>|<their MSH-3>|<their MSH-4>|<now UTC>||ACK^R01^ACK|<id>|<MSH-11>|<MSH-12>``
    (the trigger is echoed from MSH-9.2: an ADT^A01 sent by mistake gets ``ACK^A01^ACK``)
    then ``MSA|AA|<control id>``; for AE/AR ``MSA|AE|<control id>|<first reason>``
    and one ``ERR`` per reason (at most ``MAX_ERR_SEGMENTS``) with the HL7
    table 0357 code. The ACK's own control id is the parser's start time (ms)
    and a 7-digit counter. Pending ACK bytes are bounded (``MAX_PENDING_OUT``);
    beyond that an ACK is dropped and counted (``acks_dropped``): the sender
    re-sends, and a repeated message is harmless (the hub keeps one value per
    bed, parameter and device time).

Error codes (``ParseError.code``; ``discarded`` counts bytes not used)
    =====================  =====  ======================================================
    code                   ACK    meaning
    =====================  =====  ======================================================
    ``framing``            none   bytes outside a block; block cut short; 0x1C without 0x0D;
                                  connection closed inside a block (``eof``)
    ``oversized``          AR     block larger than ``max_message``
    ``malformed``          AR     no MSH first, bad encoding characters, MSH-7/MSH-10 bad
    ``unsupported``        AR     not ORU^R01, processing id not P, version not 2.x
    ``malformed_segment``  AE     a segment id that is not three capitals/digits
    ``unknown_location``   AE     PV1-3 missing or not in ``beds``; its OBX rows unused
    ``bad_value``          AE     not NM, not a number, implausible, unusable status
    ``bad_unit``           AE     unit missing, unknown, or not convertible
    ``bad_time``           AE     OBX-14 / OBR-7 not a valid time
    ``internal``           AR     a bug caught by the safety net (never expected)
    =====================  =====  ======================================================
"""

from __future__ import annotations

import calendar
import re
import zoneinfo
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from edge_agent.drivers import register
from edge_agent.drivers.base import DriverSpec, ErrorAccounting, parser_options
from edge_agent.events import DriverEvent
from wire.codec import clip
from wire.messages import Observation, UnmappedObservation
from wire.screen import screen
from wire.vocabulary import BY_MDC, Flag, Parameter
from wire.clock import wall_ms
from wire.config import ConfigModel

VT, FS, CR = 0x0B, 0x1C, 0x0D
START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"
MAX_MESSAGE = 1 << 20  # bytes of one message between 0x0B and 0x1C
MIN_MAX_MESSAGE, MAX_MAX_MESSAGE = 1024, 16 << 20  # allowed range of the max_message option
HEAD_BYTES = 4096  # kept of an oversized message, to read its MSH for the AR
GARBAGE_REPORT = 65536  # bytes outside blocks are reported at least this often
MAX_PENDING_OUT = 1 << 20  # ACK bytes waiting for bytes_to_send()
MAX_ERR_SEGMENTS = 10
MAX_CONTROL_ID = 199  # MSH-10 length limit (HL7 v2.6)
MAX_UNKNOWN_CODES = 1024  # distinct entries kept in ``unknown_codes``
ACK_APPLICATION = "TELEICU"

_SEGMENT_SPLIT = re.compile(r"\r\n|\r|\n")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})")
_TIMESTAMP = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})(?:([0-9]{2})(?:\.([0-9]{1,4}))?)?(?:([+-])([0-9]{2})([0-9]{2}))?")
_OFFSET_OPTION = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")
_VALUE_STATUSES = frozenset({"", "R", "F", "C"})


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit as a device may send it, and how to turn it into a vocabulary UCUM unit."""

    name: str
    ucum: str  # the vocabulary unit this converts to
    scale: float = 1.0  # ucum_value = value * scale + offset
    offset: float = 0.0


_PER_MIN, _PERCENT, _MMHG, _CEL = Unit("/min", "/min"), Unit("%", "%"), Unit("mm[Hg]", "mm[Hg]"), Unit("Cel", "Cel")
_KPA = Unit("kPa", "mm[Hg]", 760.0 / 101.325)
_DEGF = Unit("[degF]", "Cel", 5.0 / 9.0, -32.0 * 5.0 / 9.0)

#: units by MDC unit code (IEEE 11073-10101 partition 4: 262144 + term code)
MDC_UNITS: dict[str, Unit] = {
    "264864": _PER_MIN,  # MDC_DIM_BEAT_PER_MIN
    "264928": _PER_MIN,  # MDC_DIM_RESP_PER_MIN
    "262688": _PERCENT,  # MDC_DIM_PERCENT
    "266016": _MMHG,  # MDC_DIM_MMHG
    "265987": _KPA,  # MDC_DIM_KILO_PASCAL (3843)
    "268192": _CEL,  # MDC_DIM_DEGC
    "266560": _DEGF,  # MDC_DIM_FAHR (4416)
}
#: units by UCUM code, used when OBX-6.3 is UCUM
UCUM_UNITS: dict[str, Unit] = {
    "/min": _PER_MIN,
    "{beats}/min": _PER_MIN,
    "{breaths}/min": _PER_MIN,
    "%": _PERCENT,
    "mm[Hg]": _MMHG,
    "kPa": _KPA,
    "Cel": _CEL,
    "[degF]": _DEGF,
}


def parse_timezone(spec: str) -> tzinfo:
    """The ``timezone`` option: ``UTC``, ``+HHMM``/``-HH:MM``, or an IANA name. Raises ``ValueError``."""
    if spec in ("UTC", "Z", "+0000"):
        return UTC
    m = _OFFSET_OPTION.fullmatch(spec)
    if m:
        hours, minutes = int(m[2]), int(m[3])
        if hours > 14 or minutes > 59:
            raise ValueError(f"timezone offset {spec!r} is out of range")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if m[1] == "-" else delta)
    try:
        return zoneinfo.ZoneInfo(spec)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"timezone {spec!r} is not UTC, +HHMM or a known IANA zone name: {exc}") from None


def parse_hl7_time(text: str, default_tz: tzinfo) -> int | None:
    """HL7 DTM with at least minutes -> ms since the epoch (UTC), or ``None`` if unreadable."""
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute = int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5])
    second = int(m[6]) if m[6] else 0
    try:
        wall = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    if m[8]:
        off_h, off_m = int(m[9]), int(m[10])
        if off_h > 14 or off_m > 59:
            return None
        offset_s = (off_h * 3600 + off_m * 60) * (-1 if m[8] == "-" else 1)
    else:
        delta = default_tz.utcoffset(wall)
        offset_s = int(delta.total_seconds()) if delta is not None else 0
    frac_ms = int((m[7] + "00")[:3]) if m[7] else 0
    return (calendar.timegm(wall.timetuple()) - offset_s) * 1000 + frac_ms


def format_hl7_time(t_ms: int) -> str:
    """``YYYYMMDDHHMMSS.fff+0000`` (UTC) for ms since the epoch."""
    dt = datetime.fromtimestamp(t_ms // 1000, tz=UTC)
    return f"{dt:%Y%m%d%H%M%S}.{t_ms % 1000:03d}+0000"


# -- encoding characters and escapes ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Encoding:
    field: str
    comp: str
    rep: str
    esc: str
    sub: str

    def unescape(self, text: str) -> str:
        """Decode ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``; other or unterminated escapes stay as they are."""
        esc = self.esc
        if esc not in text:
            return text
        out: list[str] = []
        i = 0
        while True:
            j = text.find(esc, i)
            k = text.find(esc, j + 1) if j >= 0 else -1
            if j < 0 or k < 0:
                out.append(text[i:])
                return "".join(out)
            out.append(text[i:j])
            seq = text[j + 1 : k]
            out.append(
                {"F": self.field, "S": self.comp, "T": self.sub, "R": self.rep, "E": esc}.get(seq, text[j : k + 1])
            )
            i = k + 1

    def components(self, field: str) -> list[str]:
        """Components of the first repetition of ``field``, unescaped."""
        first = field.split(self.rep, 1)[0] if self.rep in field else field
        if self.esc not in first:
            return first.split(self.comp)
        return [self.unescape(c) for c in first.split(self.comp)]


_CONTROL_CHARS = dict.fromkeys(range(0x20), " ") | {0x7F: " "}
_NEEDS_ESCAPE = re.compile(r"[\x00-\x1f\x7f|^~\\&]")


def escape(text: str) -> str:
    """Text for a field of our ACKs (standard delimiters), control characters blanked."""
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    text = text.translate(_CONTROL_CHARS)
    return (
        text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("~", "\\R\\").replace("&", "\\T\\")
    )


def _printable(text: str, limit: int = 80) -> str:
    """A device-supplied string for an error message: quoted, clipped."""
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


@dataclass(frozen=True, slots=True)
class _Header:
    enc: _Encoding
    sender: tuple[list[str], list[str]]  # MSH-3, MSH-4 components
    control_id: str
    processing_id: str
    version: str
    msg_time: int | None
    trigger: str  # MSH-9.2, echoed in the ACK's MSH-9 (R01 for PCD-01)


@dataclass(frozen=True, slots=True)
class _Problem:
    """A reason for AE/AR: the ParseError code, the HL7 table 0357 code, where, and why."""

    code: str
    hl7: tuple[int, str]
    where: str  # ERL: segment id ^ occurrence ^ field
    text: str


_E_SEQUENCE = (100, "Segment sequence error")
_E_REQUIRED = (101, "Required field missing")
_E_DATA_TYPE = (102, "Data type error")
_E_TABLE = (103, "Table value not found")
_E_MESSAGE_TYPE = (200, "Unsupported message type")
_E_EVENT = (201, "Unsupported event code")
_E_PROCESSING_ID = (202, "Unsupported processing id")
_E_VERSION = (203, "Unsupported version id")
_E_UNKNOWN_KEY = (204, "Unknown key identifier")
_E_INTERNAL = (207, "Application internal error")


class _State(Enum):
    HUNT = 0  # outside a block, looking for 0x0B
    BLOCK = 1  # inside a block, buffering
    SKIP = 2  # inside an oversized block, counting
    END = 3  # saw 0x1C of a block, expecting 0x0D
    SKIP_END = 4  # saw 0x1C of an oversized block, expecting 0x0D


def _timezone(spec: str) -> str:
    parse_timezone(spec)  # raises ValueError naming the problem
    return spec


class Pcd01Options(ConfigModel):
    """``options:`` of an ``hl7_pcd01`` device entry."""

    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"  # of HL7 times sent without an offset
    max_message: Annotated[int, Field(ge=MIN_MAX_MESSAGE, le=MAX_MAX_MESSAGE)] = MAX_MESSAGE  # bytes of one message


class Pcd01Parser(ErrorAccounting):
    """Sans-I/O HL7 PCD-01 receiver for one MLLP connection (see the module docstring).

    ``beds`` maps a PV1-3 location key (``"ICU^^BED04"``) to our bed id;
    ``device`` is the gateway's device id. At most ``max_message`` bytes are
    buffered (``buffered``) and ``MAX_PENDING_OUT`` bytes of ACKs held.
    """

    GARBAGE_DETAIL = "bytes outside an MLLP block"
    GARBAGE_CHUNK = GARBAGE_REPORT

    def __init__(
        self, beds: Mapping[str, str], device: str, *, clock_ms: Callable[[], int] = wall_ms, **options: Any
    ) -> None:
        opts = parser_options(Pcd01Options, options, "hl7_pcd01")
        self.beds = dict(beds)
        self.device = device
        self.max_message = opts.max_message
        self._tz = parse_timezone(opts.timezone)
        self._clock_ms = clock_ms
        self._t0 = clock_ms()
        self._state = _State.HUNT
        self._buf = bytearray()
        self._size = 0  # bytes of the current block so far (more than len(_buf) when oversized)
        self._garbage = 0
        self._out = bytearray()
        #: patient id (PID-3) last seen per bed on this connection
        self.patients: dict[str, str] = {}
        self.messages = 0  # complete blocks handled (each got an ACK)
        self.acks: Counter[str] = Counter()  # AA / AE / AR sent
        self.acks_dropped = 0
        self.errors: Counter[str] = Counter()
        self.discarded_bytes = 0
        self.unknown_codes: Counter[str] = Counter()  # "code ref_id" -> times seen (bounded)

    # -- the driver contract --------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete block (at most ``max_message``)."""
        return len(self._buf)

    def bytes_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def feed(self, data: bytes) -> list[DriverEvent]:
        events: list[DriverEvent] = []
        data = bytes(data)
        pos, n = 0, len(data)
        while pos < n:
            state = self._state
            if state is _State.HUNT:
                i = data.find(START_BLOCK, pos)
                if i < 0:
                    self._add_garbage(n - pos, events)
                    pos = n
                else:
                    self._add_garbage(i - pos, events)
                    self._flush_garbage(events)
                    self._begin_block()
                    pos = i + 1
            elif state is _State.BLOCK or state is _State.SKIP:
                i_fs = data.find(b"\x1c", pos)
                i_vt = data.find(START_BLOCK, pos, n if i_fs < 0 else i_fs)
                stop = i_vt if i_vt >= 0 else (i_fs if i_fs >= 0 else n)
                self._take(data, pos, stop)
                pos = stop
                if i_vt >= 0:
                    self._cut_short(events, "MLLP block cut short by a new start byte 0x0B")
                    self._begin_block()
                    pos += 1
                elif i_fs >= 0:
                    self._state = _State.END if self._state is _State.BLOCK else _State.SKIP_END
                    pos += 1
            else:  # END or SKIP_END: the byte after 0x1C
                if data[pos] == CR:
                    pos += 1
                    if state is _State.END:
                        block = bytes(self._buf)
                        self._reset()
                        self._message(block, events)
                    else:
                        head, size = bytes(self._buf), self._size
                        self._reset()
                        self._oversized(head, size, events)
                else:  # not consumed: looked at again outside a block
                    self._size += 1  # the 0x1C
                    self._cut_short(events, f"MLLP end byte 0x1C followed by 0x{data[pos]:02X}, not 0x0D")
                    self._reset()
        return events

    def eof(self) -> list[DriverEvent]:
        """The connection closed: report a block left incomplete and garbage not yet reported."""
        events: list[DriverEvent] = []
        if self._state is not _State.HUNT:
            if self._state in (_State.END, _State.SKIP_END):
                self._size += 1
            self._cut_short(events, "connection closed inside an MLLP block")
            self._reset()
        self._flush_garbage(events)
        return events

    # -- framing ----------------------------------------------------------------------

    def _begin_block(self) -> None:
        self._buf.clear()
        self._size = 0
        self._state = _State.BLOCK

    def _reset(self) -> None:
        self._buf.clear()
        self._size = 0
        self._state = _State.HUNT

    def _take(self, data: bytes, start: int, stop: int) -> None:
        k = stop - start
        if k <= 0:
            return
        if self._state is _State.BLOCK and self._size + k <= self.max_message:
            self._buf += data[start:stop]
        elif self._state is _State.BLOCK:  # overflow: keep the head only, count the rest
            head = min(HEAD_BYTES, self.max_message)
            if len(self._buf) >= head:
                del self._buf[head:]
            else:
                self._buf += data[start : start + head - len(self._buf)]
            self._state = _State.SKIP
        self._size += k

    def _cut_short(self, events: list[DriverEvent], why: str) -> None:
        if self._state in (_State.SKIP, _State.SKIP_END):
            self._error(events, "oversized", f"{why}; block over {self.max_message} bytes, no ACK", self._size)
        else:
            self._error(events, "framing", f"{why}; {self._size} bytes discarded, no ACK (the sender re-sends)", self._size)

    # -- messages ------------------------------------------------------------------------

    def _oversized(self, head: bytes, size: int, events: list[DriverEvent]) -> None:
        self.messages += 1
        text = head.decode("utf-8", "replace")
        first = _SEGMENT_SPLIT.split(text, 1)
        header = self._header(first[0])[0] if len(first) > 1 else None  # MSH only if complete in the head
        problem = _Problem("oversized", _E_INTERNAL, "", f"message of {size} bytes exceeds the limit of {self.max_message}")
        self._error(events, "oversized", problem.text, size)
        self._queue_ack(header, "AR", [problem])

    def _message(self, block: bytes, events: list[DriverEvent]) -> None:
        self.messages += 1
        mark = len(events)
        try:
            header, code, problems = self._process(block, events)
        except Exception as exc:  # noqa: BLE001 - safety net: feed() never raises on any input
            del events[mark:]
            text = f"internal error {type(exc).__name__}: {exc}"[:200]
            self._error(events, "internal", text, len(block))
            header, code, problems = None, "AR", [_Problem("internal", _E_INTERNAL, "", text)]
        self._queue_ack(header, code, problems)

    def _header(self, msh: str) -> tuple[_Header | None, _Problem | None]:
        """Parse the MSH segment; a header (possibly with a rejection reason) or only a reason."""
        if not msh.startswith("MSH") or len(msh) < 8:
            return None, _Problem("malformed", _E_SEQUENCE, "MSH^1", "message does not start with an MSH segment")
        fs = msh[3]
        fields = msh.split(fs)
        enc_chars = fields[1]
        chars = fs + enc_chars
        if (
            len(enc_chars) not in (4, 5)
            or len(set(chars)) != len(chars)
            or any(c.isalnum() or not c.isprintable() or c == " " or ord(c) > 0x7E for c in chars)
        ):
            return None, _Problem("malformed", _E_DATA_TYPE, "MSH^1^2", f"bad encoding characters {_printable(chars)}")
        enc = _Encoding(fs, enc_chars[0], enc_chars[1], enc_chars[2], enc_chars[3])

        def msh_field(n: int) -> str:  # MSH-1 is the separator itself: MSH-n is fields[n - 1]
            return fields[n - 1] if n - 1 < len(fields) else ""

        control_id = enc.unescape(msh_field(10))
        time_text = msh_field(7).split(enc.comp, 1)[0]
        msg_time = parse_hl7_time(time_text, self._tz)
        kind = enc.components(msh_field(9)) + ["", ""]
        header = _Header(
            enc=enc,
            sender=(enc.components(msh_field(3)), enc.components(msh_field(4))),
            control_id=control_id[:MAX_CONTROL_ID],
            processing_id=enc.components(msh_field(11))[0],
            version=enc.components(msh_field(12))[0],
            msg_time=msg_time,
            trigger=kind[1][:8],
        )
        if not control_id:
            return header, _Problem("malformed", _E_REQUIRED, "MSH^1^10", "MSH-10 (message control id) is empty")
        if len(control_id) > MAX_CONTROL_ID:
            return header, _Problem("malformed", _E_DATA_TYPE, "MSH^1^10", f"MSH-10 is longer than {MAX_CONTROL_ID} characters")
        if kind[0] != "ORU":
            return header, _Problem("unsupported", _E_MESSAGE_TYPE, "MSH^1^9", f"message type {_printable(kind[0])} is not ORU")
        if kind[1] != "R01":
            return header, _Problem("unsupported", _E_EVENT, "MSH^1^9", f"trigger event {_printable(kind[1])} is not R01")
        if header.processing_id not in ("P", ""):
            why = f"processing id {_printable(header.processing_id)} is not P (production): test data is not charted"
            return header, _Problem("unsupported", _E_PROCESSING_ID, "MSH^1^11", why)
        if not header.version.startswith("2."):
            return header, _Problem("unsupported", _E_VERSION, "MSH^1^12", f"version {_printable(header.version)} is not HL7 v2.x")
        if msg_time is None:
            where, why = "MSH^1^7", f"MSH-7 {_printable(time_text)} is not a valid time (YYYYMMDDHHMM[SS[.SSSS]][+ZZZZ])"
            return header, _Problem("malformed", _E_REQUIRED if not time_text else _E_DATA_TYPE, where, why)
        return header, None

    def _process(self, block: bytes, events: list[DriverEvent]) -> tuple[_Header | None, str, list[_Problem]]:
        text = block.decode("utf-8", "replace")
        segments = [s for s in _SEGMENT_SPLIT.split(text) if s]
        header, problem = self._header(segments[0] if segments else "")
        if problem is not None:
            self._error(events, problem.code, problem.text, len(block))
            return header, "AR", [problem]
        assert header is not None and header.msg_time is not None
        msg = _MessageReader(self, header, len(block), events)
        for segment in segments[1:]:
            msg.segment(segment)
        msg.close_group()
        return header, ("AE" if msg.problems else "AA"), msg.problems

    # -- ACK ---------------------------------------------------------------------------------

    def _queue_ack(self, header: _Header | None, code: str, problems: list[_Problem]) -> None:
        ack = self.build_ack(header, code, problems)
        if len(self._out) + len(ack) > MAX_PENDING_OUT:
            self.acks_dropped += 1
            return
        self._out += ack
        self.acks[code] += 1

    def build_ack(self, header: _Header | None, code: str, problems: list[_Problem]) -> bytes:
        """The MLLP-framed ACK for a message (``header`` None when its MSH was unreadable)."""
        n = sum(self.acks.values()) + self.acks_dropped + 1
        their_app, their_facility = header.sender if header is not None else ([], [])
        msh = "|".join(
            (
                "MSH",
                "^~\\&",
                ACK_APPLICATION,
                escape(self.device),
                "^".join(escape(c) for c in their_app),
                "^".join(escape(c) for c in their_facility),
                format_hl7_time(self._clock_ms()),
                "",
                f"ACK^{escape(header.trigger) if header is not None and header.trigger else 'R01'}^ACK",
                f"{self._t0}{n % 10_000_000:07d}",
                escape(header.processing_id) if header is not None and header.processing_id else "P",
                escape(header.version) if header is not None and header.version.startswith("2.") else "2.6",
            )
        )
        control_id = escape(header.control_id) if header is not None else ""
        segments = [msh]
        if code == "AA" or not problems:
            segments.append(f"MSA|{code}|{control_id}")
        else:
            segments.append(f"MSA|{code}|{control_id}|{escape(problems[0].text[:80])}")
            for p in problems[:MAX_ERR_SEGMENTS]:
                segments.append(f"ERR||{p.where}|{p.hl7[0]}^{p.hl7[1]}^HL70357|E||||{escape(p.text)}")
            if len(problems) > MAX_ERR_SEGMENTS:
                more = f"{len(problems) - MAX_ERR_SEGMENTS} more errors not listed"
                segments.append(f"ERR|||{_E_INTERNAL[0]}^{_E_INTERNAL[1]}^HL70357|W||||{more}")
        return START_BLOCK + ("\r".join(segments) + "\r").encode("utf-8") + END_BLOCK


class _MessageReader:
    """Walks the segments of one accepted message, emitting observations and errors in order."""

    def __init__(self, parser: Pcd01Parser, header: _Header, size: int, events: list[DriverEvent]) -> None:
        self.p = parser
        self.enc = header.enc
        self.msg_time: int = header.msg_time  # type: ignore[assignment]
        self.size = size
        self.events = events
        self.t_rx = parser._clock_ms()
        self.problems: list[_Problem] = []
        self.seen: Counter[str] = Counter()  # segment id -> occurrences so far
        self.times: dict[str, int | None] = {}
        # current patient group
        self.patient = ""
        self.bed: str | None = None
        self.location: str | None = None  # None: no PV1 yet in this group
        self.unmapped_rows = 0
        self.unmapped_bytes = 0
        self.obr_time: int | None = None

    def problem(self, code: str, hl7: tuple[int, str], where: str, text: str, discarded: int) -> None:
        self.p._error(self.events, code, text, discarded)
        self.problems.append(_Problem(code, hl7, where, text))

    def segment(self, seg: str) -> None:
        sid = seg[:3]
        if not _SEGMENT_ID.fullmatch(sid) or (len(seg) > 3 and seg[3] != self.enc.field):
            self.problem("malformed_segment", _E_SEQUENCE, "", f"segment {_printable(seg, 20)} has no valid segment id", len(seg))
            return
        self.seen[sid] += 1
        fields = seg.split(self.enc.field)
        if sid == "PID":
            self.close_group()
            self.patient = self.enc.components(fields[3])[0] if len(fields) > 3 else ""
        elif sid == "PV1":
            self.close_group()
            self.pv1(fields)
        elif sid == "OBR":
            self.obr(fields)
        elif sid == "OBX":
            self.obx(fields, len(seg))

    def close_group(self) -> None:
        """End of a patient group: report OBX rows that had no known bed."""
        if self.unmapped_rows:
            if self.location is None:
                where, why = "PV1^1^3", "no PV1-3 location before the OBX rows"
            else:
                where = f"PV1^{self.seen['PV1']}^3"
                why = f"PV1-3 location {_printable(self.location)} is not in this device's beds mapping"
            self.problem("unknown_location", _E_UNKNOWN_KEY, where, f"{why}; {self.unmapped_rows} OBX row{'s' if self.unmapped_rows != 1 else ''} not used", self.unmapped_bytes)
        self.unmapped_rows = self.unmapped_bytes = 0
        self.bed = None
        self.location = None

    def pv1(self, fields: list[str]) -> None:
        comps = self.enc.components(fields[3])[:3] if len(fields) > 3 else []
        while comps and not comps[-1]:
            comps.pop()
        self.location = "^".join(comps)
        self.bed = self.p.beds.get(self.location)
        if self.bed is not None and self.patient:
            self.p.patients[self.bed] = self.patient

    def obr(self, fields: list[str]) -> None:
        self.obr_time = None
        text = fields[7].split(self.enc.comp, 1)[0] if len(fields) > 7 else ""
        if text:
            self.obr_time = self.time(text)
            if self.obr_time is None:
                why = f"OBR-7 {_printable(text)} is not a valid time; rows without OBX-14 use MSH-7"
                self.problem("bad_time", _E_DATA_TYPE, f"OBR^{self.seen['OBR']}^7", why, 0)

    def time(self, text: str) -> int | None:
        if text not in self.times:
            self.times[text] = parse_hl7_time(text, self.p._tz)
        return self.times[text]

    def obx(self, fields: list[str], size: int) -> None:
        if len(fields) < 15:
            fields = fields + [""] * (15 - len(fields))
        enc = self.enc
        vtype = enc.unescape(fields[2]).strip()
        code_c = enc.components(fields[3]) + ["", ""]
        code, ref_id, system = code_c[0].strip(), code_c[1], code_c[2]
        raw_value = enc.unescape(fields[5].split(enc.rep, 1)[0]).strip()
        status = enc.unescape(fields[11]).strip()
        param = BY_MDC.get(int(code)) if code.isascii() and code.isdigit() and len(code) <= 9 and system in ("MDC", "") else None
        no_value = status == "X" or not raw_value
        if param is None and (no_value or not vtype):
            return  # MDS / VMD / channel row: context, not a value
        if self.bed is None:
            self.unmapped_rows += 1
            self.unmapped_bytes += size
            return
        row = f"OBX^{self.seen['OBX']}"
        what = param.key if param is not None else f"code {_printable(code, 40)}"
        t_text = fields[14].split(enc.comp, 1)[0]
        if t_text:
            t_dev = self.time(t_text)
            if t_dev is None:
                self.problem("bad_time", _E_DATA_TYPE, f"{row}^14", f"{what}: OBX-14 {_printable(t_text)} is not a valid time", size)
                return
        else:
            t_dev = self.obr_time if self.obr_time is not None else self.msg_time
        if param is None:
            if not code:
                self.problem("bad_value", _E_REQUIRED, f"{row}^3", f"OBX-3 names no code: value {_printable(raw_value, 40)} cannot be kept", size)
                return
            self.unknown(code, ref_id, system, raw_value, fields[6], status, t_dev)
            return
        if no_value:
            self.emit(param, None, t_dev, Flag.INVALID)
            return
        value = self.number(param, row, vtype, raw_value, status, fields[6], size)
        if value is not None:
            self.emit(param, value, t_dev, 0, row=row, size=size)

    def number(self, param: Parameter, row: str, vtype: str, raw: str, status: str, unit_field: str, size: int) -> float | None:
        if vtype != "NM":
            self.problem("bad_value", _E_DATA_TYPE, f"{row}^2", f"{param.key}: value type {_printable(vtype)} is not NM", size)
            return None
        if status not in _VALUE_STATUSES:
            why = f"{param.key}: result status {_printable(status)} is not R, F, C or X"
            self.problem("bad_value", _E_TABLE, f"{row}^11", why, size)
            return None
        if not _NUMBER.fullmatch(raw):
            self.problem("bad_value", _E_DATA_TYPE, f"{row}^5", f"{param.key}: value {_printable(raw)} is not a number", size)
            return None
        unit_c = self.enc.components(unit_field) + ["", ""]
        unit_code, unit_system = unit_c[0].strip(), unit_c[2].strip()
        if not unit_code:
            self.problem("bad_unit", _E_REQUIRED, f"{row}^6", f"{param.key}: no unit (expected {param.ucum})", size)
            return None
        unit = UCUM_UNITS.get(unit_code) if unit_system == "UCUM" else MDC_UNITS.get(unit_code)
        if unit is None or unit.ucum != param.ucum:
            name = "^".join(c for c in unit_c[:3] if c)
            known = f"{unit.name}, " if unit is not None else "unknown, "
            why = f"{param.key}: unit {_printable(name)} ({known}expected {param.ucum}) cannot be converted"
            self.problem("bad_unit", _E_TABLE, f"{row}^6", why, size)
            return None
        value = float(raw)
        if unit.scale != 1.0 or unit.offset != 0.0:
            value = round(value * unit.scale + unit.offset, 2)
        return value

    def emit(self, param: Parameter, value: float | None, t_dev: int, flags: int, *, row: str = "", size: int = 0) -> None:
        assert self.bed is not None
        obs = Observation(
            bed=self.bed, param=param.key, value=value, t_dev=t_dev, t_rx=self.t_rx, device=self.p.device, flags=int(flags)
        )
        reason = screen(obs)
        if reason is not None:
            self.problem("bad_value", _E_DATA_TYPE, f"{row}^5", reason, size)
            return
        self.events.append(obs)

    def unknown(self, code: str, ref_id: str, system: str, value: str, unit_field: str, status: str, t_dev: int) -> None:
        """A code with a value that the vocabulary does not map: kept as sent, as an unmapped observation."""
        assert self.bed is not None
        unit = "^".join(self.enc.components(unit_field)[:3]).rstrip("^")
        key = f"{code} {ref_id}"[:120]
        if key in self.p.unknown_codes or len(self.p.unknown_codes) < MAX_UNKNOWN_CODES:
            self.p.unknown_codes[key] += 1
        self.events.append(
            UnmappedObservation(
                bed=self.bed, device=self.p.device, system=clip(system, "system"), code=clip(code, "code"),
                name=clip(ref_id, "name"), value=clip(value, "value"), unit=clip(unit, "unit"), status=clip(status, "status"),
                t_dev=t_dev, t_rx=self.t_rx,
            )
        )  # fmt: skip


register(
    DriverSpec(
        name="hl7_pcd01",
        transport="tcp_listen",
        parser=Pcd01Parser,
        multi_bed=True,
        options=Pcd01Options,
        description="HL7 v2 ORU^R01 (IHE PCD-01) over MLLP from monitor gateways; every message is ACKed",
    )
)
