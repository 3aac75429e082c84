"""Sans-I/O receiver of HL7 v2 ADT over MLLP, for one connection from the hospital information system.

``AdtParser(beds, facility=..., timezone=..., max_message=..., dispositions=...)``
serves one TCP connection. ``feed(bytes)`` returns the events of the complete
messages in it (``Admit``, ``Transfer``, ``Discharge``, ``UpdatePatient``,
``CancelAdmit``, ``CancelDischarge``: one per usable message) and ``AdtError``
for what it could not use; it never raises. The ACK of an event waits for the
hub: the caller stores the change and then calls ``accepted(event_id)`` (AA) or
``refused(event_id, reason)`` (AE with an ERR); ``bytes_to_send()`` returns the
MLLP-framed ACKs that are ready, always in the order the messages came. A
message that cannot be used gets its AE or AR at once (in its turn) and no
event. The user-facing rules are in ``hl7_adt.md`` beside this file.

Framing, escapes, the MSH checks, times, the bed location key and the ACK
layout are ``wire.hl7v2``'s, shared with the edge's PCD-01 driver: MSH-9 must be
``ADT`` with trigger A01, A02, A03, A08, A11 or A13, MSH-11 ``P`` (or empty),
MSH-12 ``2.x``, MSH-10 non-empty, MSH-7 a valid time, else AR.

What is read (HL7 v2.5 field numbers; see ``hl7_adt.md`` for the table)
    PID-3 (MRN, its assigning authority, and the ABHA number), PID-5 name, PID-7
    birth date, PID-8 sex, PID-30 death indicator; PV1-3 location, PV1-6 prior
    location, PV1-7 attending, PV1-36 discharge disposition, PV1-45 discharge
    time; PV2-3 admit reason, else DG1 (the admitting one, DG1-6 ``A``, else the
    first): DG1-4, else DG1-3; EVN-6, else EVN-2, else MSH-7 as the event time.

Error codes (``AdtError.code``)
    =====================  =====  =============================================================
    code                   ACK    meaning
    =====================  =====  =============================================================
    ``framing``            none   bytes outside a block, a block cut short, connection closed
                                  inside a block: the HIS times out and re-sends
    ``oversized``          AR     message larger than ``max_message``
    ``malformed``          AR     no MSH first, bad encoding characters, MSH-10 or MSH-7 bad
    ``unsupported``        AR     not ADT, a trigger not listed, processing id not P, not v2.x
    ``malformed_segment``  AE     a segment id that is not three capitals/digits; a second MSH
    ``missing_segment``    AE     no PID, or no PV1
    ``missing_field``      AE     no MRN in PID-3; no PV1-3 in an A01 or A02
    ``unknown_location``   AE     PV1-3 not in ``beds`` (A02: neither PV1-3 nor PV1-6)
    ``bad_time``           AE     EVN-6, EVN-2 or (A03) PV1-45 is not a valid time
    ``bad_value``          AE     PV1-36 not mapped; PID-30 says died but PV1-36 does not
    ``busy``               AE     more than ``MAX_IN_FLIGHT`` events await the hub
    ``internal``           AR     a parser bug caught by its safety net (never expected)
    =====================  =====  =============================================================

    Warnings do not stop the event; they travel in the ACK as ``ERR`` segments
    with severity ``W`` and in ``AdtEvent.warnings``: an ABHA number that is not
    valid (dropped, see ``wire.abha``), a birth date that is not a date or is
    after the event (dropped), a PID-8 not in table 0001 (read as unknown).

Limits
    ``max_message`` bytes per message (default 256 KiB, 1 KiB to 16 MiB),
    ``MAX_IN_FLIGHT`` events awaiting the hub, ``MAX_PENDING_OUT`` bytes of
    ACKs held (beyond that an ACK is dropped and counted in ``acks_dropped``:
    the HIS re-sends).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ingest.adt.events import (
    Admit,
    AdtError,
    AnyAdtEvent,
    CancelAdmit,
    CancelDischarge,
    Clinician,
    Discharge,
    PatientIdentity,
    Transfer,
    UpdatePatient,
)
from ingest.adt.tables import DISPOSITION_0112, OUTCOMES, SEX_0001
from wire.abha import AbhaError, abha_number
from wire.clock import wall_ms
from wire.hl7v2 import (
    E_DATA_TYPE,
    E_INTERNAL,
    E_REQUIRED,
    E_SEQUENCE,
    E_TABLE,
    E_UNKNOWN_KEY,
    MAX_PENDING_OUT,
    SEGMENT_ID,
    TABLE_0357,
    Block,
    Encoding,
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
    printable,
    read_header,
    split_segments,
)

MAX_MESSAGE = 256 * 1024  # bytes of one message between 0x0B and 0x1C
MIN_MAX_MESSAGE, MAX_MAX_MESSAGE = 1024, 16 << 20
MAX_IN_FLIGHT = 64  # events handed out and not yet accepted or refused
DEFAULT_FACILITY = "TELEICU-HUB"
TRIGGERS = ("A01", "A02", "A03", "A08", "A11", "A13")
TEST_DATA_NOTE = "test data is not applied to patients"
REFUSAL_CODES = (204, 205, 206, 207)  # HL7 table 0357 codes the hub may give with a refusal

_BIRTH = re.compile(r"([0-9]{4})(?:([0-9]{2})(?:([0-9]{2})(?:[0-9]{2}(?:[0-9]{2}(?:[0-9]{2}(?:\.[0-9]{1,4})?)?)?)?)?)?(?:[+-][0-9]{4})?")
_ABDM_NAMESPACES = frozenset({"ABHA", "ABDM", "NDHM", "NHA"})
_ABDM_DOMAINS = ("ndhm.gov.in", "abdm.gov.in")


def _is_abdm(namespace: str, universal_id: str, id_type: str) -> bool:
    """Does a PID-3 repetition carry the ABHA number? (see ``hl7_adt.md``, "ABHA number")"""
    if id_type.upper() == "ABHA" or namespace.upper() in _ABDM_NAMESPACES:
        return True
    host = universal_id.strip().lower().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return any(host == d or host.endswith("." + d) for d in _ABDM_DOMAINS)


@dataclass(slots=True)
class _Answer:
    """One message's place in the ACK order: its ACK once known."""

    header: Header | None
    warnings: list[Problem]
    ack: bytes | None = None


@dataclass(slots=True)
class _Read:
    """What one message came to: a refusal (``code`` AR/AE with problems) or an event to build."""

    header: Header | None
    code: str | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    make: Callable[..., AnyAdtEvent] | None = None
    fields: dict[str, Any] = field(default_factory=dict)


class AdtParser:
    """Sans-I/O HL7 ADT receiver for one MLLP connection (see the module docstring).

    ``beds`` maps a PV1-3 location key (``"MICU^^01"``) to our bed id;
    ``facility`` is our MSH-4 in the ACKs; ``timezone`` reads HL7 times sent
    without an offset (``UTC``, ``+0530``, ``Asia/Kolkata``); ``dispositions``
    adds the site's PV1-36 codes to table 0112's (code -> outcome). Bad settings
    raise ``ValueError`` here, at construction.
    """

    def __init__(
        self,
        beds: Mapping[str, str],
        *,
        facility: str = DEFAULT_FACILITY,
        timezone: str = "UTC",
        max_message: int = MAX_MESSAGE,
        dispositions: Mapping[str, str] | None = None,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        if not MIN_MAX_MESSAGE <= max_message <= MAX_MAX_MESSAGE:
            raise ValueError(f"max_message must be {MIN_MAX_MESSAGE} to {MAX_MAX_MESSAGE} bytes, not {max_message}")
        site = dict(dispositions or {})
        wrong = {k: v for k, v in site.items() if not k or v not in OUTCOMES}
        if wrong:
            raise ValueError(f"dispositions must map non-empty codes to one of {', '.join(OUTCOMES)}: {wrong!r}")
        self.beds = dict(beds)
        self.facility = facility
        self.max_message = max_message
        self.dispositions: dict[str, str] = {**DISPOSITION_0112, **site}
        self._tz = parse_timezone(timezone)
        self._clock_ms = clock_ms
        self._t0 = clock_ms()
        self._framer = MllpFramer(max_message)
        self._order: deque[_Answer] = deque()  # answers not yet sent, in message order
        self._waiting: dict[int, _Answer] = {}  # event id -> its answer, until accepted or refused
        self._held = 0  # ACK bytes ready but held behind an earlier answer
        self._out = bytearray()
        self._next_id = 1
        self._acks_built = 0
        self.messages = 0  # complete blocks handled
        self.events: Counter[str] = Counter()  # event type -> events handed out
        self.acks: Counter[str] = Counter()  # AA / AE / AR queued
        self.acks_dropped = 0
        self.errors: Counter[str] = Counter()
        self.discarded_bytes = 0

    # -- the receiver contract ---------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete block (at most ``max_message``)."""
        return self._framer.buffered

    @property
    def in_flight(self) -> int:
        """Events handed out that still await ``accepted`` or ``refused``."""
        return len(self._waiting)

    def feed(self, data: bytes) -> list[AnyAdtEvent | AdtError]:
        out: list[AnyAdtEvent | AdtError] = []
        for item in self._framer.feed(data):
            if isinstance(item, Block):
                self._message(item.data, out)
            elif isinstance(item, OversizedBlock):
                self._oversized(item.head, item.size, out)
            else:
                self._error(out, item.code, item.detail, item.discarded)
        return out

    def eof(self) -> list[AdtError]:
        """The connection closed: a message left incomplete (never ACKed, so the HIS re-sends it)."""
        out: list[AnyAdtEvent | AdtError] = []
        for item in self._framer.eof():
            self._error(out, item.code, item.detail, item.discarded)
        return [e for e in out if isinstance(e, AdtError)]

    def accepted(self, event_id: int) -> None:
        """The hub stored the event: its ACK is AA (with any warnings). Raises ``KeyError`` for an unknown id."""
        answer = self._decide(event_id)
        self._ready(answer, "AA", answer.warnings)

    def refused(self, event_id: int, reason: str, hl7_code: int = 207) -> None:
        """The hub refused the event: its ACK is AE, ``reason`` in MSA-3 and an ERR (table 0357 ``hl7_code``)."""
        answer = self._decide(event_id)
        problem = Problem("refused", TABLE_0357[hl7_code] if hl7_code in REFUSAL_CODES else E_INTERNAL, "", reason)
        self._ready(answer, "AE", [problem, *answer.warnings])

    def bytes_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- answers, in order ------------------------------------------------------------------------

    def _decide(self, event_id: int) -> _Answer:
        try:
            return self._waiting.pop(event_id)
        except KeyError:
            raise KeyError(f"event {event_id} does not await a decision") from None

    def _ready(self, answer: _Answer, code: str, problems: list[Problem]) -> None:
        self._acks_built += 1
        ack = build_ack(
            answer.header, code, problems, facility=self.facility, now_ms=self._clock_ms(),
            control_id=ack_control_id(self._t0, self._acks_built), default_trigger=None,
        )  # fmt: skip
        if len(self._out) + self._held + len(ack) > MAX_PENDING_OUT:
            self.acks_dropped += 1
            ack = b""
        else:
            self.acks[code] += 1
        answer.ack = ack
        self._held += len(ack)
        while self._order and self._order[0].ack is not None:
            done = self._order.popleft()
            assert done.ack is not None
            self._held -= len(done.ack)
            self._out += done.ack

    def _error(self, out: list[AnyAdtEvent | AdtError], code: str, detail: str, discarded: int, control_id: str = "") -> None:
        self.errors[code] += 1
        self.discarded_bytes += discarded
        out.append(AdtError(code=code, detail=detail, discarded=discarded, control_id=control_id))

    # -- messages ---------------------------------------------------------------------------------

    def _header(self, msh: str) -> tuple[Header | None, Problem | None]:
        return read_header(msh, self._tz, message_type="ADT", triggers=TRIGGERS, test_data_note=TEST_DATA_NOTE)

    def _oversized(self, head: bytes, size: int, out: list[AnyAdtEvent | AdtError]) -> None:
        self.messages += 1
        msh = first_segment(head.decode("utf-8", "replace"))
        header = self._header(msh)[0] if msh is not None else None
        why = f"message of {size} bytes exceeds the limit of {self.max_message}"
        self._error(out, "oversized", why, size, header.control_id if header else "")
        self._refuse(header, "AR", [Problem("oversized", E_INTERNAL, "", why)])

    def _refuse(self, header: Header | None, code: str, problems: list[Problem]) -> None:
        answer = _Answer(header, [])
        self._order.append(answer)
        self._ready(answer, code, problems)

    def _message(self, block: bytes, out: list[AnyAdtEvent | AdtError]) -> None:
        self.messages += 1
        event: AnyAdtEvent | None = None
        try:
            read = self._read(block)
            if read.code is None and len(self._waiting) >= MAX_IN_FLIGHT:
                why = f"{MAX_IN_FLIGHT} messages already await the hub; send this one again later"
                read.code, read.problems = "AE", [Problem("busy", E_INTERNAL, "", why)]
            if read.code is None:
                assert read.make is not None and read.header is not None
                event = read.make(event_id=self._next_id, warnings=tuple(w.text for w in read.warnings), **read.fields)
        except Exception as exc:  # noqa: BLE001 - safety net: feed() never raises on any input
            text = f"internal error {type(exc).__name__}: {exc}"[:200]
            read, event = _Read(None, "AR", [Problem("internal", E_INTERNAL, "", text)]), None
        if event is None:
            cid = read.header.control_id if read.header else ""
            for i, p in enumerate(read.problems):
                self._error(out, p.code, p.text, len(block) if i == 0 else 0, cid)
            self._refuse(read.header, read.code or "AR", read.problems)
            return
        answer = _Answer(read.header, read.warnings)
        self._order.append(answer)
        self._waiting[event.event_id] = answer
        self._next_id += 1
        self.events[type(event).__name__] += 1
        out.append(event)

    def _read(self, block: bytes) -> _Read:
        segments = split_segments(block.decode("utf-8", "replace"))
        header, problem = self._header(segments[0] if segments else "")
        if problem is not None:
            return _Read(header, "AR", [problem])
        assert header is not None and header.msg_time is not None
        msg = _Message(self, header, segments)
        read = _Read(header, problems=msg.problems, warnings=msg.warnings)
        msg.build(read)
        if msg.problems:
            read.code, read.make, read.fields = "AE", None, {}
        return read


class _Message:
    """The segments of one accepted-header ADT message, read into an event's fields."""

    def __init__(self, parser: AdtParser, header: Header, segments: list[str]) -> None:
        self.p = parser
        self.header = header
        self.enc: Encoding = header.enc
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.first: dict[str, list[str]] = {}  # segment id -> fields of its first occurrence
        self.dg1: list[list[str]] = []
        fs = self.enc.field
        for seg in segments[1:]:
            sid = seg[:3]
            if not SEGMENT_ID.fullmatch(sid) or (len(seg) > 3 and seg[3] != fs):
                self.error("malformed_segment", E_SEQUENCE, "", f"segment {printable(seg, 20)} has no valid segment id")
                continue
            if sid == "MSH":
                self.error("malformed_segment", E_SEQUENCE, "MSH^2", "a second MSH segment: send one message per MLLP block")
                continue
            fields = seg.split(fs)
            self.first.setdefault(sid, fields)
            if sid == "DG1":
                self.dg1.append(fields)
        msh_fields = segments[0].split(fs)
        same_message = [msh_fields[i] if i < len(msh_fields) else "" for i in (2, 3, 8, 9)] + segments[1:]
        self.key = hashlib.sha256("\r".join(same_message).encode("utf-8")).hexdigest()

    def error(self, code: str, hl7: tuple[int, str], where: str, text: str) -> None:
        self.problems.append(Problem(code, hl7, where, text))

    def warn(self, code: str, hl7: tuple[int, str], where: str, text: str) -> None:
        self.warnings.append(Problem(code, hl7, where, text, "W"))

    def field(self, sid: str, n: int) -> str:
        fields = self.first.get(sid)
        return fields[n] if fields is not None and n < len(fields) else ""

    def time(self, sid: str, n: int) -> tuple[bool, int | None]:
        """(present, ms) of a DTM field; present but unreadable is a ``bad_time`` error."""
        text = self.enc.unescape(self.field(sid, n).split(self.enc.comp, 1)[0]).strip()
        if not text:
            return False, None
        t = parse_hl7_time(text, self.p._tz, reduced=True)
        if t is None:
            self.error("bad_time", E_DATA_TYPE, f"{sid}^1^{n}", f"{sid}-{n} {printable(text)} is not a valid time (YYYYMMDD[HHMM[SS]][+ZZZZ])")
        return True, t

    # -- building the event ----------------------------------------------------------------------

    def build(self, read: _Read) -> None:
        for sid in ("PID", "PV1"):
            if sid not in self.first:
                self.error("missing_segment", E_SEQUENCE, f"{sid}^1", f"no {sid} segment")
        if self.problems:
            return
        patient = self.patient()
        t = self.event_time()
        trigger = self.header.trigger
        location = location_key(self.enc, self.field("PV1", 3))
        common: dict[str, Any] = {"control_id": self.header.control_id, "message_key": self.key, "patient": patient}
        if trigger == "A01":
            read.make, read.fields = Admit, {**common, "bed": self.bed(location, required="an admission needs a bed"),
                                             "location": location, "attending": self.attending(), "reason": self.reason()}  # fmt: skip
        elif trigger == "A02":
            read.make, read.fields = Transfer, {**common, **self.transfer(location), "attending": self.attending()}
        elif trigger == "A03":
            read.make, read.fields = Discharge, {**common, "bed": self.bed(location), "location": location, **self.discharge(t)}
        elif trigger == "A08":
            read.make, read.fields = UpdatePatient, {**common, "bed": self.bed(location), "location": location,
                                                     "attending": self.attending(), "reason": self.reason()}  # fmt: skip
        elif trigger == "A11":
            read.make, read.fields = CancelAdmit, {**common, "bed": self.bed(location), "location": location}
        else:  # A13, the last of TRIGGERS
            read.make, read.fields = CancelDischarge, {**common, "bed": self.bed(location), "location": location}
        read.fields["t"] = t
        if patient is None or t is None:
            read.make = None

    def event_time(self) -> int | None:
        for n in (6, 2):  # EVN-6 event occurred, EVN-2 recorded date/time
            present, t = self.time("EVN", n)
            if present:
                return t
        return self.header.msg_time

    def bed(self, location: str, *, required: str = "") -> str | None:
        if not location:
            if required:
                self.error("missing_field", E_REQUIRED, "PV1^1^3", f"PV1-3 (assigned patient location) is empty: {required}")
            return None
        bed = self.p.beds.get(location)
        if bed is None:
            self.error("unknown_location", E_UNKNOWN_KEY, "PV1^1^3", f"PV1-3 location {printable(location)} is not in the hub's beds mapping")
        return bed

    def transfer(self, to_location: str) -> dict[str, Any]:
        from_location = location_key(self.enc, self.field("PV1", 6))
        if not to_location:
            self.error("missing_field", E_REQUIRED, "PV1^1^3", "PV1-3 (assigned patient location) is empty: a transfer needs the new location")
            return {}
        to_bed, from_bed = self.p.beds.get(to_location), self.p.beds.get(from_location) if from_location else None
        if to_bed is None and from_bed is None:
            where = f"PV1-3 {printable(to_location)} nor PV1-6 {printable(from_location)}" if from_location else f"PV1-3 {printable(to_location)} (no PV1-6)"
            self.error("unknown_location", E_UNKNOWN_KEY, "PV1^1^3", f"neither {where} is in the hub's beds mapping")
        return {"from_bed": from_bed, "from_location": from_location, "to_bed": to_bed, "to_location": to_location}

    def discharge(self, t: int | None) -> dict[str, Any]:
        present, at = self.time("PV1", 45)
        code = self.enc.components(self.field("PV1", 36))[0].strip()
        died = self.enc.components(self.field("PID", 30))[0].strip().upper() == "Y"
        if not code:
            outcome = "died" if died else "discharged"
        elif code in self.p.dispositions:
            outcome = self.p.dispositions[code]
        else:
            outcome = "discharged"
            why = f"PV1-36 discharge disposition {printable(code)} is not mapped (HL7 table 0112: 01-08, 20, 40-42; or the site's dispositions)"
            self.error("bad_value", E_TABLE, "PV1^1^36", why)
        if died and outcome != "died" and code in self.p.dispositions:
            self.error("bad_value", E_DATA_TYPE, "PID^1^30", f"PID-30 says the patient died, PV1-36 {printable(code)} says {outcome}")
        return {"discharged_at": at if present else t, "outcome": outcome, "disposition": code}

    def patient(self) -> PatientIdentity | None:
        enc = self.enc
        mrn: tuple[str, str] | None = None
        mr_typed: tuple[str, str] | None = None
        abha: str | None = None
        for k, rep in enumerate(enc.repetitions(self.field("PID", 3)), start=1):
            comps = enc.rep_components(rep) + [""] * 5
            ident = enc.unescape(comps[0]).strip()
            if not ident:
                continue
            hd = enc.subcomponents(comps[3]) + ["", ""]
            id_type = enc.unescape(comps[4]).strip()
            if _is_abdm(hd[0].strip(), hd[1], id_type):
                if abha is None:
                    try:
                        abha = abha_number(ident)
                    except AbhaError as exc:
                        self.warn("bad_abha", E_DATA_TYPE, f"PID^1^3^{k}", f"ABHA number not used: {exc}")
                continue
            authority = hd[0].strip() or hd[1].strip()
            if mrn is None:
                mrn = (ident, authority)
            if mr_typed is None and id_type == "MR":
                mr_typed = (ident, authority)
        chosen = mr_typed or mrn
        if chosen is None:
            self.error("missing_field", E_REQUIRED, "PID^1^3", "PID-3 has no patient identifier (MRN)")
            return None
        family, given = self.name()
        return PatientIdentity(
            mrn=chosen[0], mrn_authority=chosen[1], abha=abha, family=family, given=given, birth_date=self.birth_date(), sex=self.sex()
        )

    def name(self) -> tuple[str, str]:
        """PID-5: the legal name (XPN-7 ``L``) if marked, else the first; (family, given and middle)."""
        enc = self.enc
        reps = [enc.rep_components(r) + [""] * 7 for r in enc.repetitions(self.field("PID", 5))]
        chosen = next((r for r in reps if enc.unescape(r[6]).strip() == "L"), reps[0])
        family = enc.subcomponents(chosen[0])[0].strip()
        given = " ".join(p for p in (enc.component_text(chosen[1]).strip(), enc.component_text(chosen[2]).strip()) if p)
        return family, given

    def birth_date(self) -> str | None:
        text = self.enc.components(self.field("PID", 7))[0].strip()
        if not text:
            return None
        m = _BIRTH.fullmatch(text)
        try:
            if m is None:
                raise ValueError("not YYYY[MM[DD]]")
            day = date(int(m[1]), int(m[2] or 1), int(m[3] or 1))
        except ValueError:
            self.warn("bad_birth_date", E_DATA_TYPE, "PID^1^7", "PID-7 birth date is not a date (YYYY[MM[DD]]): not used")
            return None
        t = self.header.msg_time or 0
        if day > datetime.fromtimestamp(t // 1000 + 14 * 3600, tz=UTC).date():  # the latest calendar day anywhere then
            self.warn("bad_birth_date", E_DATA_TYPE, "PID^1^7", "PID-7 birth date is after the message: not used")
            return None
        return day.isoformat()[: {1: 4, 2: 7, 3: 10}[sum(g is not None for g in m.groups())]]

    def sex(self) -> str:
        code = self.enc.components(self.field("PID", 8))[0].strip()
        if not code:
            return "unknown"
        sex = SEX_0001.get(code.upper())
        if sex is None:
            self.warn("unknown_sex", E_TABLE, "PID^1^8", f"PID-8 sex {printable(code)} is not in HL7 table 0001 (F, M, O, A, U, N): read as unknown")
            return "unknown"
        return sex

    def attending(self) -> Clinician | None:
        """PV1-7 (XCN, first repetition): id ^ family ^ given ^ middle ^ suffix ^ prefix."""
        enc = self.enc
        c = enc.rep_components(enc.repetitions(self.field("PV1", 7))[0]) + [""] * 6
        family = enc.subcomponents(c[1])[0].strip()
        ident, given, middle, suffix, prefix = (enc.component_text(c[i]).strip() for i in (0, 2, 3, 4, 5))
        name = " ".join(p for p in (prefix, given, middle, family, suffix) if p)
        return Clinician(id=ident, name=name) if ident or name else None

    def reason(self) -> str:
        """PV2-3 admit reason (text, else code); else the admitting DG1's DG1-4, else DG1-3 (text, else code)."""
        c = self.enc.components(self.field("PV2", 3)) + [""]
        if c[1].strip() or c[0].strip():
            return c[1].strip() or c[0].strip()
        if not self.dg1:
            return ""
        fields = next((f for f in self.dg1 if len(f) > 6 and self.enc.components(f[6])[0].strip() == "A"), self.dg1[0])
        description = self.enc.unescape(fields[4]).strip() if len(fields) > 4 else ""
        code = self.enc.components(fields[3]) + [""] if len(fields) > 3 else ["", ""]
        return description or code[1].strip() or code[0].strip()
