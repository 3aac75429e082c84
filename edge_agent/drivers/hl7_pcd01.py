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
    version and MSH-7 a valid time, else AR (these checks, the framing, the
    escapes, times and the ACK are ``wire.hl7v2``'s, shared with the hub's ADT
    receiver). PID-3 (patient id, its first component) is recorded per bed in
    ``patients``; with the option ``patient_events: true`` each patient group
    whose PV1-3 is a known bed also emits ``PatientSeen(bed, patient_id,
    device, t=MSH-7)`` before its observations (off by default until the edge
    forwards it to the hub). A PID starts a new patient: its OBX rows need
    their own PV1.

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

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from edge_agent.drivers import register
from edge_agent.drivers.base import DriverSpec, ErrorAccounting, parser_options
from edge_agent.events import DriverEvent
from wire.clock import wall_ms
from wire.codec import clip
from wire.config import ConfigModel
from wire.hl7v2 import (
    E_DATA_TYPE,
    E_INTERNAL,
    E_REQUIRED,
    E_SEQUENCE,
    E_TABLE,
    E_UNKNOWN_KEY,
    GARBAGE_REPORT,
    HEAD_BYTES,
    MAX_PENDING_OUT,
    SEGMENT_ID,
    Block,
    FramingError,
    Header,
    MllpFramer,
    OversizedBlock,
    Problem,
    ack_control_id,
    build_ack,
    first_segment,
    location_key,
    parse_hl7_time,
    parse_timezone,
    read_header,
    split_segments,
)
from wire.hl7v2 import format_hl7_time as format_hl7_time  # re-exported: the driver's tests and tools use it
from wire.hl7v2 import printable as _printable
from wire.messages import Observation, PatientSeen, UnmappedObservation
from wire.screen import screen
from wire.vocabulary import BY_MDC, Flag, Parameter

MAX_MESSAGE = 1 << 20  # bytes of one message between 0x0B and 0x1C
MIN_MAX_MESSAGE, MAX_MAX_MESSAGE = 1024, 16 << 20  # allowed range of the max_message option
MAX_UNKNOWN_CODES = 1024  # distinct entries kept in ``unknown_codes``
TRIGGERS = ("R01",)
TEST_DATA_NOTE = "test data is not charted"

_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})")
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


def _timezone(spec: str) -> str:
    parse_timezone(spec)  # raises ValueError naming the problem
    return spec


class Pcd01Options(ConfigModel):
    """``options:`` of an ``hl7_pcd01`` device entry."""

    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"  # of HL7 times sent without an offset
    max_message: Annotated[int, Field(ge=MIN_MAX_MESSAGE, le=MAX_MAX_MESSAGE)] = MAX_MESSAGE  # bytes of one message
    patient_events: bool = False  # emit a PatientSeen for every patient group with a known bed


class Pcd01Parser(ErrorAccounting):
    """Sans-I/O HL7 PCD-01 receiver for one MLLP connection (see the module docstring).

    ``beds`` maps a PV1-3 location key (``"ICU^^BED04"``) to our bed id;
    ``device`` is the gateway's device id. At most ``max_message`` bytes are
    buffered (``buffered``) and ``MAX_PENDING_OUT`` bytes of ACKs held.
    """

    def __init__(
        self, beds: Mapping[str, str], device: str, *, clock_ms: Callable[[], int] = wall_ms, **options: Any
    ) -> None:
        opts = parser_options(Pcd01Options, options, "hl7_pcd01")
        self.beds = dict(beds)
        self.device = device
        self.max_message = opts.max_message
        self.patient_events = opts.patient_events
        self._tz = parse_timezone(opts.timezone)
        self._clock_ms = clock_ms
        self._t0 = clock_ms()
        self._framer = MllpFramer(self.max_message, head_bytes=HEAD_BYTES, garbage_report=GARBAGE_REPORT)
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
        return self._framer.buffered

    def bytes_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def feed(self, data: bytes) -> list[DriverEvent]:
        events: list[DriverEvent] = []
        for item in self._framer.feed(data):
            if isinstance(item, Block):
                self._message(item.data, events)
            elif isinstance(item, OversizedBlock):
                self._oversized(item.head, item.size, events)
            else:
                self._framing_error(item, events)
        return events

    def eof(self) -> list[DriverEvent]:
        """The connection closed: report a block left incomplete and garbage not yet reported."""
        events: list[DriverEvent] = []
        for item in self._framer.eof():
            self._framing_error(item, events)
        return events

    def _framing_error(self, item: FramingError, events: list[DriverEvent]) -> None:
        self._error(events, item.code, item.detail, item.discarded)

    # -- messages ------------------------------------------------------------------------

    def _oversized(self, head: bytes, size: int, events: list[DriverEvent]) -> None:
        self.messages += 1
        msh = first_segment(head.decode("utf-8", "replace"))
        header = self._header(msh)[0] if msh is not None else None  # MSH only if complete in the head
        problem = Problem("oversized", E_INTERNAL, "", f"message of {size} bytes exceeds the limit of {self.max_message}")
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
            header, code, problems = None, "AR", [Problem("internal", E_INTERNAL, "", text)]
        self._queue_ack(header, code, problems)

    def _header(self, msh: str) -> tuple[Header | None, Problem | None]:
        """Parse the MSH segment; a header (possibly with a rejection reason) or only a reason."""
        return read_header(msh, self._tz, message_type="ORU", triggers=TRIGGERS, test_data_note=TEST_DATA_NOTE)

    def _process(self, block: bytes, events: list[DriverEvent]) -> tuple[Header | None, str, list[Problem]]:
        segments = split_segments(block.decode("utf-8", "replace"))
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

    def _queue_ack(self, header: Header | None, code: str, problems: list[Problem]) -> None:
        ack = self.build_ack(header, code, problems)
        if len(self._out) + len(ack) > MAX_PENDING_OUT:
            self.acks_dropped += 1
            return
        self._out += ack
        self.acks[code] += 1

    def build_ack(self, header: Header | None, code: str, problems: list[Problem]) -> bytes:
        """The MLLP-framed ACK for a message (``header`` None when its MSH was unreadable)."""
        n = sum(self.acks.values()) + self.acks_dropped + 1
        return build_ack(
            header, code, problems, facility=self.device, now_ms=self._clock_ms(), control_id=ack_control_id(self._t0, n), default_trigger="R01"
        )


class _MessageReader:
    """Walks the segments of one accepted message, emitting observations and errors in order."""

    def __init__(self, parser: Pcd01Parser, header: Header, size: int, events: list[DriverEvent]) -> None:
        self.p = parser
        self.enc = header.enc
        self.msg_time: int = header.msg_time  # type: ignore[assignment]
        self.size = size
        self.events = events
        self.t_rx = parser._clock_ms()
        self.problems: list[Problem] = []
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
        self.problems.append(Problem(code, hl7, where, text))

    def segment(self, seg: str) -> None:
        sid = seg[:3]
        if not SEGMENT_ID.fullmatch(sid) or (len(seg) > 3 and seg[3] != self.enc.field):
            self.problem("malformed_segment", E_SEQUENCE, "", f"segment {_printable(seg, 20)} has no valid segment id", len(seg))
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
            self.problem("unknown_location", E_UNKNOWN_KEY, where, f"{why}; {self.unmapped_rows} OBX row{'s' if self.unmapped_rows != 1 else ''} not used", self.unmapped_bytes)
        self.unmapped_rows = self.unmapped_bytes = 0
        self.bed = None
        self.location = None

    def pv1(self, fields: list[str]) -> None:
        self.location = location_key(self.enc, fields[3]) if len(fields) > 3 else ""
        self.bed = self.p.beds.get(self.location)
        if self.bed is not None and self.patient:
            self.p.patients[self.bed] = self.patient
            if self.p.patient_events:
                self.events.append(PatientSeen(bed=self.bed, patient_id=self.patient, device=self.p.device, t=self.msg_time))

    def obr(self, fields: list[str]) -> None:
        self.obr_time = None
        text = fields[7].split(self.enc.comp, 1)[0] if len(fields) > 7 else ""
        if text:
            self.obr_time = self.time(text)
            if self.obr_time is None:
                why = f"OBR-7 {_printable(text)} is not a valid time; rows without OBX-14 use MSH-7"
                self.problem("bad_time", E_DATA_TYPE, f"OBR^{self.seen['OBR']}^7", why, 0)

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
                self.problem("bad_time", E_DATA_TYPE, f"{row}^14", f"{what}: OBX-14 {_printable(t_text)} is not a valid time", size)
                return
        else:
            t_dev = self.obr_time if self.obr_time is not None else self.msg_time
        if param is None:
            if not code:
                self.problem("bad_value", E_REQUIRED, f"{row}^3", f"OBX-3 names no code: value {_printable(raw_value, 40)} cannot be kept", size)
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
            self.problem("bad_value", E_DATA_TYPE, f"{row}^2", f"{param.key}: value type {_printable(vtype)} is not NM", size)
            return None
        if status not in _VALUE_STATUSES:
            why = f"{param.key}: result status {_printable(status)} is not R, F, C or X"
            self.problem("bad_value", E_TABLE, f"{row}^11", why, size)
            return None
        if not _NUMBER.fullmatch(raw):
            self.problem("bad_value", E_DATA_TYPE, f"{row}^5", f"{param.key}: value {_printable(raw)} is not a number", size)
            return None
        unit_c = self.enc.components(unit_field) + ["", ""]
        unit_code, unit_system = unit_c[0].strip(), unit_c[2].strip()
        if not unit_code:
            self.problem("bad_unit", E_REQUIRED, f"{row}^6", f"{param.key}: no unit (expected {param.ucum})", size)
            return None
        unit = UCUM_UNITS.get(unit_code) if unit_system == "UCUM" else MDC_UNITS.get(unit_code)
        if unit is None or unit.ucum != param.ucum:
            name = "^".join(c for c in unit_c[:3] if c)
            known = f"{unit.name}, " if unit is not None else "unknown, "
            why = f"{param.key}: unit {_printable(name)} ({known}expected {param.ucum}) cannot be converted"
            self.problem("bad_unit", E_TABLE, f"{row}^6", why, size)
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
            self.problem("bad_value", E_DATA_TYPE, f"{row}^5", reason, size)
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
