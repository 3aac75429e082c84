"""HL7 v2 over MLLP: the sans-I/O pieces every teleicu HL7 receiver shares.

Used by the edge agent's PCD-01 driver (``edge_agent.drivers.hl7_pcd01``, ORU^R01
from monitor gateways) and by the hub's ADT receiver (``ingest.adt``, admissions
from the hospital information system). Nothing here does I/O or raises on bad
input: bytes go in, typed results come out.

Framing (``MllpFramer``)
    A block is ``0x0B`` message ``0x1C 0x0D``. ``feed(bytes)`` returns, in
    order, each complete ``Block``, each ``OversizedBlock`` (longer than
    ``max_message``: skipped to its end, only its first ``head_bytes`` kept so
    the receiver can read the MSH and refuse it) and each ``FramingError``:
    bytes outside a block (reported in runs of at most ``garbage_report``
    bytes), a block cut short by a new ``0x0B``, a ``0x1C`` not followed by
    ``0x0D`` (that byte is looked at again outside a block), and, from
    ``eof()``, a connection closed inside a block. A block cut short gets no
    ACK: its sender times out and re-sends it. At most ``max_message`` bytes
    are buffered.

Message text
    ``split_segments`` splits on ``\\r`` (HL7), ``\\n`` or ``\\r\\n``.
    ``Encoding`` holds the MSH-1/MSH-2 delimiters and decodes the escapes
    ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` (others are kept literally); ``escape``
    writes text for our own messages with the standard delimiters.

Header (``read_header``)
    The MSH checks both message kinds share, in this order: MSH first,
    encoding characters (4 or 5, distinct, printable ASCII, not alphanumeric),
    MSH-10 control id (non-empty, at most ``MAX_CONTROL_ID``), MSH-9 message
    type and trigger (the caller says which it takes), MSH-11 processing id
    ``P`` or empty, MSH-12 version ``2.x``, MSH-7 a valid time. A failure is a
    ``Problem`` to answer with AR.

Times
    ``parse_hl7_time``: HL7 DTM ``YYYYMMDDHHMM[SS[.S{1,4}]][+/-ZZZZ]`` (with
    ``reduced=True`` also ``YYYYMMDD`` and ``YYYYMMDDHH``), read in
    ``default_tz`` when it has no offset; ``format_hl7_time`` writes UTC.
    ``parse_timezone`` reads a ``timezone`` option.

ACK (``build_ack``)
    HL7 original-mode acknowledgement: ``MSH`` (our application and facility,
    the sender's MSH-3/MSH-4 echoed, ``ACK^<trigger>^ACK``), ``MSA`` and one
    ``ERR`` per problem (HL7 table 0357 code, location, severity ``E`` or
    ``W``), at most ``MAX_ERR_SEGMENTS``.
"""

from __future__ import annotations

import calendar
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import Enum

VT, FS, CR = 0x0B, 0x1C, 0x0D
START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"
HEAD_BYTES = 4096  # kept of an oversized message, to read its MSH for the AR
GARBAGE_REPORT = 65536  # bytes outside blocks are reported at least this often
MAX_PENDING_OUT = 1 << 20  # ACK bytes a receiver holds for bytes_to_send()
MAX_ERR_SEGMENTS = 10
MAX_CONTROL_ID = 199  # MSH-10 length limit (HL7 v2.6)
ACK_APPLICATION = "TELEICU"

SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_SEGMENT_SPLIT = re.compile(r"\r\n|\r|\n")
_TIMESTAMP = re.compile(
    r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})(?:([0-9]{2})(?:\.([0-9]{1,4}))?)?(?:([+-])([0-9]{2})([0-9]{2}))?"
)
_REDUCED_TIMESTAMP = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})?(?:([+-])([0-9]{2})([0-9]{2}))?")
_OFFSET_OPTION = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")


# -- framing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """A complete MLLP block: the message between ``0x0B`` and ``0x1C 0x0D``."""

    data: bytes


@dataclass(frozen=True, slots=True)
class OversizedBlock:
    """A complete block longer than the limit: its first bytes and its whole size."""

    head: bytes
    size: int


@dataclass(frozen=True, slots=True)
class FramingError:
    """Bytes the framer discarded: ``code`` is ``framing`` or ``oversized``; never answered."""

    code: str
    detail: str
    discarded: int


Framed = Block | OversizedBlock | FramingError


class _State(Enum):
    HUNT = 0  # outside a block, looking for 0x0B
    BLOCK = 1  # inside a block, buffering
    SKIP = 2  # inside an oversized block, counting
    END = 3  # saw 0x1C of a block, expecting 0x0D
    SKIP_END = 4  # saw 0x1C of an oversized block, expecting 0x0D


class MllpFramer:
    """Sans-I/O MLLP framing for one connection (see the module docstring)."""

    GARBAGE_DETAIL = "bytes outside an MLLP block"

    def __init__(self, max_message: int, *, head_bytes: int = HEAD_BYTES, garbage_report: int = GARBAGE_REPORT) -> None:
        if max_message < 1 or head_bytes < 1 or garbage_report < 1:
            raise ValueError("max_message, head_bytes and garbage_report must be positive")
        self.max_message = max_message
        self.head_bytes = min(head_bytes, max_message)
        self.garbage_report = garbage_report
        self._state = _State.HUNT
        self._buf = bytearray()
        self._size = 0  # bytes of the current block so far (more than len(_buf) when oversized)
        self._garbage = 0

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete block (at most ``max_message``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Framed]:
        out: list[Framed] = []
        data = bytes(data)
        pos, n = 0, len(data)
        while pos < n:
            state = self._state
            if state is _State.HUNT:
                i = data.find(START_BLOCK, pos)
                if i < 0:
                    self._add_garbage(n - pos, out)
                    pos = n
                else:
                    self._add_garbage(i - pos, out)
                    self._flush_garbage(out)
                    self._begin_block()
                    pos = i + 1
            elif state is _State.BLOCK or state is _State.SKIP:
                i_fs = data.find(b"\x1c", pos)
                i_vt = data.find(START_BLOCK, pos, n if i_fs < 0 else i_fs)
                stop = i_vt if i_vt >= 0 else (i_fs if i_fs >= 0 else n)
                self._take(data, pos, stop)
                pos = stop
                if i_vt >= 0:
                    self._cut_short(out, "MLLP block cut short by a new start byte 0x0B")
                    self._begin_block()
                    pos += 1
                elif i_fs >= 0:
                    self._state = _State.END if self._state is _State.BLOCK else _State.SKIP_END
                    pos += 1
            else:  # END or SKIP_END: the byte after 0x1C
                if data[pos] == CR:
                    pos += 1
                    if state is _State.END:
                        out.append(Block(bytes(self._buf)))
                    else:
                        out.append(OversizedBlock(bytes(self._buf), self._size))
                    self._reset()
                else:  # not consumed: looked at again outside a block
                    self._size += 1  # the 0x1C
                    self._cut_short(out, f"MLLP end byte 0x1C followed by 0x{data[pos]:02X}, not 0x0D")
                    self._reset()
        return out

    def eof(self) -> list[FramingError]:
        """The connection closed: a block left incomplete, and garbage not yet reported."""
        out: list[Framed] = []
        if self._state is not _State.HUNT:
            if self._state in (_State.END, _State.SKIP_END):
                self._size += 1
            self._cut_short(out, "connection closed inside an MLLP block")
            self._reset()
        self._flush_garbage(out)
        return [e for e in out if isinstance(e, FramingError)]

    def _add_garbage(self, count: int, out: list[Framed]) -> None:
        self._garbage += count
        while self._garbage >= self.garbage_report:
            self._garbage -= self.garbage_report
            out.append(FramingError("framing", self.GARBAGE_DETAIL, self.garbage_report))

    def _flush_garbage(self, out: list[Framed]) -> None:
        if self._garbage:
            out.append(FramingError("framing", self.GARBAGE_DETAIL, self._garbage))
            self._garbage = 0

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
            head = self.head_bytes
            if len(self._buf) >= head:
                del self._buf[head:]
            else:
                self._buf += data[start : start + head - len(self._buf)]
            self._state = _State.SKIP
        self._size += k

    def _cut_short(self, out: list[Framed], why: str) -> None:
        if self._state in (_State.SKIP, _State.SKIP_END):
            out.append(FramingError("oversized", f"{why}; block over {self.max_message} bytes, no ACK", self._size))
        else:
            out.append(FramingError("framing", f"{why}; {self._size} bytes discarded, no ACK (the sender re-sends)", self._size))


# -- message text ------------------------------------------------------------------------------


def split_segments(text: str) -> list[str]:
    """The non-empty segments of a message; ``\\r``, ``\\n`` and ``\\r\\n`` all end a segment."""
    return [s for s in _SEGMENT_SPLIT.split(text) if s]


def first_segment(text: str) -> str | None:
    """The first segment, only if it is complete (a separator follows it)."""
    parts = _SEGMENT_SPLIT.split(text, 1)
    return parts[0] if len(parts) > 1 else None


@dataclass(frozen=True, slots=True)
class Encoding:
    """A message's delimiters: MSH-1 and the four MSH-2 encoding characters."""

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
            out.append({"F": self.field, "S": self.comp, "T": self.sub, "R": self.rep, "E": esc}.get(seq, text[j : k + 1]))
            i = k + 1

    def components(self, field: str) -> list[str]:
        """Components of the first repetition of ``field``, unescaped."""
        first = field.split(self.rep, 1)[0] if self.rep in field else field
        if self.esc not in first:
            return first.split(self.comp)
        return [self.unescape(c) for c in first.split(self.comp)]

    def repetitions(self, field: str) -> list[str]:
        """The repetitions of ``field``, still escaped (split them with ``rep_components``)."""
        return field.split(self.rep)

    def rep_components(self, repetition: str) -> list[str]:
        """Components of one repetition, still escaped (their subcomponents are not yet split)."""
        return repetition.split(self.comp)

    def subcomponents(self, component: str) -> list[str]:
        """Subcomponents of one still-escaped component, unescaped."""
        return [self.unescape(s) for s in component.split(self.sub)]

    def component_text(self, component: str) -> str:
        """A still-escaped component as text: its subcomponents unescaped and joined with ``&``."""
        return "&".join(self.subcomponents(component)) if self.sub in component else self.unescape(component)


def location_key(enc: Encoding, field: str) -> str:
    """The bed mapping key of a PL field (PV1-3, PV1-6): point of care ^ room ^ bed.

    The first three components of the first repetition, unescaped, joined with
    ``^``, trailing empty components dropped: ``ICU^^BED04^^^^HOSP`` gives
    ``ICU^^BED04``. Compared exactly (case-sensitive) with a site's mapping.
    """
    comps = enc.components(field)[:3]
    while comps and not comps[-1]:
        comps.pop()
    return "^".join(comps)


_CONTROL_CHARS = dict.fromkeys(range(0x20), " ") | {0x7F: " "}
_NEEDS_ESCAPE = re.compile(r"[\x00-\x1f\x7f|^~\\&]")


def escape(text: str) -> str:
    """Text for a field of our own messages (standard delimiters), control characters blanked."""
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    text = text.translate(_CONTROL_CHARS)
    return text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("~", "\\R\\").replace("&", "\\T\\")


def printable(text: str, limit: int = 80) -> str:
    """A sender-supplied string for an error message: quoted, clipped."""
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


# -- times ---------------------------------------------------------------------------------------


def parse_timezone(spec: str) -> tzinfo:
    """A ``timezone`` option: ``UTC``, ``+HHMM``/``-HH:MM``, or an IANA name. Raises ``ValueError``."""
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


def _to_ms(wall: datetime, sign: str | None, off_h: str | None, off_m: str | None, default_tz: tzinfo, frac_ms: int) -> int | None:
    if sign:
        hours, minutes = int(off_h or 0), int(off_m or 0)
        if hours > 14 or minutes > 59:
            return None
        offset_s = (hours * 3600 + minutes * 60) * (-1 if sign == "-" else 1)
    else:
        delta = default_tz.utcoffset(wall)
        offset_s = int(delta.total_seconds()) if delta is not None else 0
    return (calendar.timegm(wall.timetuple()) - offset_s) * 1000 + frac_ms


def parse_hl7_time(text: str, default_tz: tzinfo, *, reduced: bool = False) -> int | None:
    """HL7 DTM -> ms since the epoch (UTC), or ``None`` if unreadable.

    At least minutes are required; with ``reduced`` a day (``YYYYMMDD``, read as
    local midnight) or an hour (``YYYYMMDDHH``) is enough too. Without an offset
    the time is read in ``default_tz`` (a repeated wall-clock hour at a DST change
    is read as its first occurrence).
    """
    m = _TIMESTAMP.fullmatch(text)
    if m is not None:
        second = int(m[6]) if m[6] else 0
        try:
            wall = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), second)
        except ValueError:
            return None
        frac_ms = int((m[7] + "00")[:3]) if m[7] else 0
        return _to_ms(wall, m[8], m[9], m[10], default_tz, frac_ms)
    if not reduced:
        return None
    r = _REDUCED_TIMESTAMP.fullmatch(text)
    if r is None:
        return None
    try:
        wall = datetime(int(r[1]), int(r[2]), int(r[3]), int(r[4] or 0))
    except ValueError:
        return None
    return _to_ms(wall, r[5], r[6], r[7], default_tz, 0)


def format_hl7_time(t_ms: int) -> str:
    """``YYYYMMDDHHMMSS.fff+0000`` (UTC) for ms since the epoch."""
    dt = datetime.fromtimestamp(t_ms // 1000, tz=UTC)
    return f"{dt:%Y%m%d%H%M%S}.{t_ms % 1000:03d}+0000"


# -- problems and the header ---------------------------------------------------------------------

#: HL7 table 0357 (message error condition codes) used in our ERR segments
E_SEQUENCE = (100, "Segment sequence error")
E_REQUIRED = (101, "Required field missing")
E_DATA_TYPE = (102, "Data type error")
E_TABLE = (103, "Table value not found")
E_MESSAGE_TYPE = (200, "Unsupported message type")
E_EVENT = (201, "Unsupported event code")
E_PROCESSING_ID = (202, "Unsupported processing id")
E_VERSION = (203, "Unsupported version id")
E_UNKNOWN_KEY = (204, "Unknown key identifier")
E_DUPLICATE_KEY = (205, "Duplicate key identifier")
E_RECORD_LOCKED = (206, "Application record locked")
E_INTERNAL = (207, "Application internal error")
TABLE_0357: dict[int, tuple[int, str]] = {
    c[0]: c
    for c in (
        E_SEQUENCE, E_REQUIRED, E_DATA_TYPE, E_TABLE, E_MESSAGE_TYPE, E_EVENT, E_PROCESSING_ID,
        E_VERSION, E_UNKNOWN_KEY, E_DUPLICATE_KEY, E_RECORD_LOCKED, E_INTERNAL,
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Problem:
    """A reason for AE/AR (or, with severity ``W``, a warning): our error code, the table 0357 code, where, why."""

    code: str
    hl7: tuple[int, str]
    where: str  # ERL: segment id ^ occurrence ^ field
    text: str
    severity: str = "E"  # HL7 table 0516: E error, W warning


@dataclass(frozen=True, slots=True)
class Header:
    """What the receiver keeps of an MSH segment."""

    enc: Encoding
    sender: tuple[list[str], list[str]]  # MSH-3, MSH-4 components
    control_id: str
    processing_id: str
    version: str
    msg_time: int | None
    trigger: str  # MSH-9.2, echoed in the ACK's MSH-9


def _one_of(options: Sequence[str]) -> str:
    return options[0] if len(options) == 1 else "one of " + ", ".join(options)


def read_header(
    msh: str,
    default_tz: tzinfo,
    *,
    message_type: str,
    triggers: Sequence[str],
    test_data_note: str,
) -> tuple[Header | None, Problem | None]:
    """Parse and check the MSH segment: a header (possibly with a reason to refuse it) or only a reason.

    ``message_type`` and ``triggers`` are what the receiver takes (``ORU``,
    ``("R01",)``); ``test_data_note`` ends the reason given for a processing id
    other than P (for example ``"test data is not charted"``).
    """
    if not msh.startswith("MSH") or len(msh) < 8:
        return None, Problem("malformed", E_SEQUENCE, "MSH^1", "message does not start with an MSH segment")
    fs = msh[3]
    fields = msh.split(fs)
    enc_chars = fields[1]
    chars = fs + enc_chars
    if (
        len(enc_chars) not in (4, 5)
        or len(set(chars)) != len(chars)
        or any(c.isalnum() or not c.isprintable() or c == " " or ord(c) > 0x7E for c in chars)
    ):
        return None, Problem("malformed", E_DATA_TYPE, "MSH^1^2", f"bad encoding characters {printable(chars)}")
    enc = Encoding(fs, enc_chars[0], enc_chars[1], enc_chars[2], enc_chars[3])

    def msh_field(n: int) -> str:  # MSH-1 is the separator itself: MSH-n is fields[n - 1]
        return fields[n - 1] if n - 1 < len(fields) else ""

    control_id = enc.unescape(msh_field(10))
    time_text = msh_field(7).split(enc.comp, 1)[0]
    msg_time = parse_hl7_time(time_text, default_tz)
    kind = enc.components(msh_field(9)) + ["", ""]
    header = Header(
        enc=enc,
        sender=(enc.components(msh_field(3)), enc.components(msh_field(4))),
        control_id=control_id[:MAX_CONTROL_ID],
        processing_id=enc.components(msh_field(11))[0],
        version=enc.components(msh_field(12))[0],
        msg_time=msg_time,
        trigger=kind[1][:8],
    )
    if not control_id:
        return header, Problem("malformed", E_REQUIRED, "MSH^1^10", "MSH-10 (message control id) is empty")
    if len(control_id) > MAX_CONTROL_ID:
        return header, Problem("malformed", E_DATA_TYPE, "MSH^1^10", f"MSH-10 is longer than {MAX_CONTROL_ID} characters")
    if kind[0] != message_type:
        return header, Problem("unsupported", E_MESSAGE_TYPE, "MSH^1^9", f"message type {printable(kind[0])} is not {message_type}")
    if kind[1] not in triggers:
        return header, Problem("unsupported", E_EVENT, "MSH^1^9", f"trigger event {printable(kind[1])} is not {_one_of(triggers)}")
    if header.processing_id not in ("P", ""):
        why = f"processing id {printable(header.processing_id)} is not P (production): {test_data_note}"
        return header, Problem("unsupported", E_PROCESSING_ID, "MSH^1^11", why)
    if not header.version.startswith("2."):
        return header, Problem("unsupported", E_VERSION, "MSH^1^12", f"version {printable(header.version)} is not HL7 v2.x")
    if msg_time is None:
        where, why = "MSH^1^7", f"MSH-7 {printable(time_text)} is not a valid time (YYYYMMDDHHMM[SS[.SSSS]][+ZZZZ])"
        return header, Problem("malformed", E_REQUIRED if not time_text else E_DATA_TYPE, where, why)
    return header, None


# -- ACK ---------------------------------------------------------------------------------------


def ack_control_id(t0_ms: int, n: int) -> str:
    """Our ACK's MSH-10: the receiver's start time (ms) and a 7-digit counter."""
    return f"{t0_ms}{n % 10_000_000:07d}"


def build_ack(
    header: Header | None,
    code: str,
    problems: Sequence[Problem],
    *,
    facility: str,
    now_ms: int,
    control_id: str,
    default_trigger: str | None,
    application: str = ACK_APPLICATION,
) -> bytes:
    """The MLLP-framed ACK of one message (``header`` None when its MSH was unreadable).

    ``MSA|AA|<id>`` then any problems as ``ERR`` segments (warnings, for AA);
    ``MSA|AE|<id>|<first reason>`` or ``AR`` then one ``ERR`` per problem. MSH-9
    echoes the message's trigger (``ACK^A01^ACK``), else ``default_trigger``, else
    is plain ``ACK``; MSH-11/12 echo the message's processing id and version
    (``P``, ``2.6`` when it had none usable).
    """
    their_app, their_facility = header.sender if header is not None else ([], [])
    trigger = header.trigger if header is not None and header.trigger else default_trigger
    msh = "|".join(
        (
            "MSH",
            "^~\\&",
            application,
            escape(facility),
            "^".join(escape(c) for c in their_app),
            "^".join(escape(c) for c in their_facility),
            format_hl7_time(now_ms),
            "",
            f"ACK^{escape(trigger)}^ACK" if trigger else "ACK",
            control_id,
            escape(header.processing_id) if header is not None and header.processing_id else "P",
            escape(header.version) if header is not None and header.version.startswith("2.") else "2.6",
        )
    )
    msg_id = escape(header.control_id) if header is not None else ""
    segments = [msh]
    if code == "AA" or not problems:
        segments.append(f"MSA|{code}|{msg_id}")
    else:
        segments.append(f"MSA|{code}|{msg_id}|{escape(problems[0].text[:80])}")
    for p in problems[:MAX_ERR_SEGMENTS]:
        segments.append(f"ERR||{p.where}|{p.hl7[0]}^{p.hl7[1]}^HL70357|{p.severity}||||{escape(p.text)}")
    if len(problems) > MAX_ERR_SEGMENTS:
        more = f"{len(problems) - MAX_ERR_SEGMENTS} more errors not listed"
        segments.append(f"ERR|||{E_INTERNAL[0]}^{E_INTERNAL[1]}^HL70357|W||||{more}")
    return START_BLOCK + ("\r".join(segments) + "\r").encode("utf-8") + END_BLOCK
