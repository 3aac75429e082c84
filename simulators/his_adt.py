"""A simulated hospital information system (HIS) sending HL7 v2.5 ADT over MLLP to the hub, as a TCP client.

Patients: ``synthetic_patients(n, seed=...)`` makes the same patients for the
same seed: Indian names (given, middle, family, as registered in Rajasthan),
an MRN of the facility (``SMS2025`` + two digits of the seed + a serial: ``SMS2025030001``), a sex, a birth date of an adult ICU
patient, and for about two in three an ABHA number (14 digits, written
``91-XXXX-XXXX-XXXX`` as on the ABHA card). They are made up; any likeness is
chance.

Messages: ``encode_adt(trigger, patient, ...)`` writes the bytes a HIS sends
(no MLLP framing, segments ended by ``\\r``): MSH (``ADT^A01^ADT_A01``, version
2.5, processing id P, times with the +0530 offset of India), EVN (EVN-2
recorded, EVN-6 occurred), PID (PID-3 the MRN with its facility and type
``MR``, then the ABHA number as a second repetition whose assigning authority
is ``ABDM&https://healthid.ndhm.gov.in&URI`` and type ``NI``; PID-5 legal name,
PID-7 birth date, PID-8 sex, PID-30 ``Y`` when the patient died), PV1 (PV1-3
location, PV1-6 prior location on A02, PV1-7 attending, PV1-36 disposition and
PV1-45 discharge time on A03), and on A01/A08 PV2-3 and an admitting DG1 with
the ICD-10 diagnosis. Triggers: A01 admit, A02 transfer, A03 discharge, A08
update, A11 cancel admit, A13 cancel discharge.

Sending: ``HisClient(host, port, tls=None)`` holds one connection (MLLP over
TLS when given an ``ssl.SSLContext``) and sends one message
at a time (HL7 original mode): it waits for the ACK with the message's control
id, re-sends the same bytes after ``ack_timeout_s`` (at most ``max_resends``
times), and reconnects if the connection drops; ``admit``, ``transfer``,
``discharge``, ``update``, ``cancel_admit`` and ``cancel_discharge`` build and
send in one call and return the ``AckResult`` (AA/AE/AR, MSA-3 text, ERR
texts). ``HisNoAck`` is raised when no ACK came after every attempt.
``HisCensus`` keeps a set of locations occupied for the demo: it admits a
patient to each, then now and then discharges, transfers or updates one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from wire.abha import format_abha
from wire.clock import wall_ms
from wire.hl7v2 import END_BLOCK, START_BLOCK, escape

log = logging.getLogger(__name__)

MAX_ACK_BUFFER = 65536  # bytes of unread ACK data kept
IST = timedelta(hours=5, minutes=30)
STRUCTURES = {"A01": "ADT_A01", "A02": "ADT_A02", "A03": "ADT_A03", "A08": "ADT_A01", "A11": "ADT_A09", "A13": "ADT_A01"}

_MALE = ("Ramesh", "Suresh", "Mahendra", "Rajendra", "Vikram", "Arjun", "Mohan", "Gopal", "Prakash", "Dinesh", "Sunil",
         "Anil", "Harish", "Naresh", "Bhanwar", "Kishan", "Madan", "Jagdish", "Imran", "Salim", "Gurpreet", "Rohit")  # fmt: skip
_FEMALE = ("Sunita", "Kamla", "Meena", "Santosh", "Pushpa", "Geeta", "Sita", "Radha", "Anita", "Kavita", "Pooja", "Priya",
           "Lalita", "Manju", "Savitri", "Bhanwari", "Shabnam", "Farida", "Harpreet", "Neha", "Rekha", "Sushila")  # fmt: skip
_MALE_MIDDLE = ("Kumar", "Lal", "Singh", "Prasad", "")
_FEMALE_MIDDLE = ("Devi", "Kumari", "Kanwar", "")
_FAMILY = ("Sharma", "Meena", "Choudhary", "Jat", "Rathore", "Shekhawat", "Gurjar", "Bishnoi", "Saini", "Jain", "Agarwal",
           "Gupta", "Khandelwal", "Mali", "Prajapat", "Yadav", "Verma", "Joshi", "Purohit", "Bairwa", "Khan", "Qureshi",
           "Kumawat", "Soni")  # fmt: skip
_DOCTORS = (("D1021", "Mathur", "Anjali"), ("D1047", "Rao", "Vivek"), ("D1102", "Bhatnagar", "Seema"), ("D1188", "Siddiqui", "Faraz"))
#: (ICD-10 code, diagnosis as written) for ICU admissions
DIAGNOSES = (
    ("A41.9", "Sepsis, unspecified organism"),
    ("J18.9", "Pneumonia, unspecified organism"),
    ("I21.9", "Acute myocardial infarction"),
    ("J96.0", "Acute respiratory failure"),
    ("I63.9", "Cerebral infarction"),
    ("K85.9", "Acute pancreatitis"),
    ("E10.1", "Type 1 diabetes mellitus with ketoacidosis"),
    ("T65.9", "Toxic effect of unspecified substance"),
    ("A90", "Dengue fever"),
    ("S06.9", "Intracranial injury"),
)


@dataclass(frozen=True, slots=True)
class HisPatient:
    """A registered patient as the HIS knows them."""

    mrn: str
    family: str
    given: str
    middle: str
    sex: str  # HL7 table 0001: M or F
    birth_date: str  # YYYYMMDD
    abha: str | None = None  # 91-XXXX-XXXX-XXXX

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.given, self.middle, self.family) if p)


def synthetic_patients(n: int, *, seed: int = 1, facility: str = "SMS", year: int = 2025, abha_share: float = 0.65,
                       today: date = date(2025, 1, 1)) -> list[HisPatient]:  # fmt: skip
    """``n`` made-up adult patients; the same seed gives the same patients."""
    rng = random.Random(seed)
    out: list[HisPatient] = []
    for i in range(n):
        male = rng.random() < 0.55
        given = rng.choice(_MALE if male else _FEMALE)
        middle = rng.choice(_MALE_MIDDLE if male else _FEMALE_MIDDLE)
        born = today - timedelta(days=rng.randint(18 * 365, 90 * 365))
        abha = format_abha("91" + "".join(str(rng.randint(0, 9)) for _ in range(12))) if rng.random() < abha_share else None
        out.append(HisPatient(mrn=f"{facility}{year}{seed % 100:02d}{i + 1:04d}", family=rng.choice(_FAMILY), given=given,
                              middle=middle, sex="M" if male else "F", birth_date=born.strftime("%Y%m%d"), abha=abha))  # fmt: skip
    return out


def hl7_ist(t_ms: int) -> str:
    """``YYYYMMDDHHMMSS+0530``: the time as an Indian HIS writes it."""
    return (datetime.fromtimestamp(t_ms // 1000, tz=UTC) + IST).strftime("%Y%m%d%H%M%S") + "+0530"


def mllp(message: bytes) -> bytes:
    return START_BLOCK + message + END_BLOCK


def _fields(*values: str) -> str:
    out = list(values)
    while out and not out[-1]:
        out.pop()
    return "|".join(out)


def _padded(segment: str, fields: dict[int, str]) -> str:
    """``segment`` with field n set to ``fields[n]`` (already escaped), empty fields between."""
    top = max(fields) if fields else 0
    return _fields(segment, *(fields.get(n, "") for n in range(1, top + 1)))


def encode_adt(
    trigger: str,
    patient: HisPatient,
    *,
    control_id: str,
    t_ms: int,
    location: str = "",
    prior_location: str = "",
    attending: tuple[str, str, str] | None = None,
    diagnosis: tuple[str, str] | None = None,
    disposition: str = "",
    discharge_ms: int | None = None,
    died: bool = False,
    event_ms: int | None = None,
    sender: tuple[str, str] = ("HIS", "SMS"),
    receiver: tuple[str, str] = ("TELEICU", "HUB"),
) -> bytes:
    """One ADT message (no MLLP framing), segments ended by ``\\r``. Locations are PV1-3 as sent (``MICU^^01``)."""
    if trigger not in STRUCTURES:
        raise ValueError(f"trigger {trigger!r} is not one of {', '.join(STRUCTURES)}")
    ts = hl7_ist(t_ms)
    msh = "|".join(("MSH", "^~\\&", escape(sender[0]), escape(sender[1]), escape(receiver[0]), escape(receiver[1]), ts, "",
                    f"ADT^{trigger}^{STRUCTURES[trigger]}", escape(control_id), "P", "2.5"))  # fmt: skip
    evn = _fields("EVN", trigger, ts, "", "", "", hl7_ist(event_ms if event_ms is not None else t_ms))
    ids = f"{escape(patient.mrn)}^^^{escape(sender[1])}^MR"
    if patient.abha:
        ids += f"~{escape(patient.abha)}^^^ABDM&https://healthid.ndhm.gov.in&URI^NI"
    name = f"{escape(patient.family)}^{escape(patient.given)}^{escape(patient.middle)}^^^^L"
    pid = _padded("PID", {1: "1", 3: ids, 5: name, 7: patient.birth_date, 8: patient.sex, 30: "Y" if died else ""})
    pv1_fields = {1: "1", 2: "I", 3: location, 6: prior_location}
    if attending is not None:
        doc_id, family, given = attending
        pv1_fields[7] = f"{escape(doc_id)}^{escape(family)}^{escape(given)}^^^Dr"
    if trigger == "A03":
        pv1_fields[36] = escape(disposition)
        pv1_fields[45] = hl7_ist(discharge_ms if discharge_ms is not None else t_ms)
    segments = [msh, evn, pid, _padded("PV1", pv1_fields)]
    if diagnosis is not None and trigger in ("A01", "A08"):
        code, text = (escape(x) for x in diagnosis)
        segments.append(_padded("PV2", {3: f"{code}^{text}^I10"}))
        segments.append(_padded("DG1", {1: "1", 3: f"{code}^{text}^I10", 4: text, 5: ts, 6: "A"}))
    return ("\r".join(segments) + "\r").encode("utf-8")


@dataclass(frozen=True, slots=True)
class AckResult:
    """What the receiver answered: MSA-1 (AA/AE/AR), MSA-2, MSA-3, and each ERR's text (ERR-8) with its severity (ERR-4)."""

    code: str
    control_id: str
    text: str = ""
    errors: tuple[tuple[str, str], ...] = ()  # (severity, text)


class HisNoAck(Exception):
    """No ACK for a message after every attempt."""


def _unescape(text: str) -> str:
    for seq, c in (("\\F\\", "|"), ("\\S\\", "^"), ("\\R\\", "~"), ("\\T\\", "&"), ("\\E\\", "\\")):
        text = text.replace(seq, c)
    return text


class _AckReader:
    """Reads MLLP-framed ACKs: ``AckResult`` per complete block. Bounded buffer."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[AckResult]:
        self.buf += data
        out: list[AckResult] = []
        while True:
            start = self.buf.find(START_BLOCK)
            if start < 0:
                self.buf.clear()
                return out
            end = self.buf.find(END_BLOCK, start)
            if end < 0:
                del self.buf[:start]
                if len(self.buf) > MAX_ACK_BUFFER:
                    self.buf.clear()
                return out
            body = bytes(self.buf[start + 1 : end]).decode("utf-8", "replace")
            del self.buf[: end + 2]
            msa: list[str] = []
            errors: list[tuple[str, str]] = []
            for seg in body.split("\r"):
                fields = seg.split("|") + [""] * 9
                if seg.startswith("MSA|"):
                    msa = fields
                elif seg.startswith("ERR|"):
                    errors.append((fields[4], _unescape(fields[8])))
            if msa:
                out.append(AckResult(msa[1], _unescape(msa[2]), _unescape(msa[3]), tuple(errors)))


class HisClient:
    """One HIS interface connection: sends a message, waits for its ACK, re-sends and reconnects as needed."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: tuple[str, str] = ("HIS", "SMS"),
        control_prefix: str = "HIS",
        ack_timeout_s: float = 5.0,
        max_resends: int = 3,
        connect_timeout_s: float = 5.0,
        tls: ssl.SSLContext | None = None,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.host, self.port = host, port
        self.tls = tls
        self.sender = sender
        self.control_prefix = control_prefix
        self.ack_timeout_s = ack_timeout_s
        self.max_resends = max_resends
        self.connect_timeout_s = connect_timeout_s
        self._clock_ms = clock_ms
        self._next = 1
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._acks = _AckReader()
        #: sent, resends, ack_timeouts, stale_acks, connects, connect_failures, disconnects, aa, ae, ar
        self.counters: Counter[str] = Counter()

    def next_control_id(self) -> str:
        cid = f"{self.control_prefix}{self._next:06d}"
        self._next += 1
        return cid

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            async with asyncio.timeout(self.connect_timeout_s):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port, ssl=self.tls)
            self._acks = _AckReader()
            self.counters["connects"] += 1
        return self._reader, self._writer

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def send(self, message: bytes, control_id: str) -> AckResult:
        """Send one message (unframed) and return its ACK; re-send on timeout, reconnect on a lost connection."""
        frame = mllp(message)
        for attempt in range(self.max_resends + 1):
            try:
                reader, writer = await self._connect()
                writer.write(frame)
                async with asyncio.timeout(self.ack_timeout_s):
                    await writer.drain()
                self.counters["sent"] += 1
                if attempt:
                    self.counters["resends"] += 1
                async with asyncio.timeout(self.ack_timeout_s):
                    ack = await self._await_ack(reader, control_id)
            except TimeoutError:
                self.counters["ack_timeouts"] += 1
                continue
            except OSError as exc:  # ConnectionError and refused connections
                self.counters["disconnects" if self._writer is not None else "connect_failures"] += 1
                log.info("HIS: connection to %s:%d lost (%s); reconnecting", self.host, self.port, exc)
                await self.close()
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
                continue
            self.counters[ack.code.lower() if ack.code in ("AA", "AE", "AR") else "ack_other"] += 1
            return ack
        raise HisNoAck(f"no ACK for {control_id} after {self.max_resends + 1} attempts")

    async def _await_ack(self, reader: asyncio.StreamReader, control_id: str) -> AckResult:
        while True:
            data = await reader.read(4096)
            if not data:
                raise ConnectionError("the receiver closed the connection")
            for ack in self._acks.feed(data):
                if ack.control_id == control_id:
                    return ack
                self.counters["stale_acks"] += 1

    async def _event(self, trigger: str, patient: HisPatient, **fields) -> AckResult:
        cid = self.next_control_id()
        message = encode_adt(trigger, patient, control_id=cid, t_ms=fields.pop("t_ms", None) or self._clock_ms(), sender=self.sender, **fields)
        return await self.send(message, cid)

    async def admit(self, patient: HisPatient, location: str, *, attending: tuple[str, str, str] | None = None,
                    diagnosis: tuple[str, str] | None = None, t_ms: int | None = None) -> AckResult:  # fmt: skip
        return await self._event("A01", patient, location=location, attending=attending, diagnosis=diagnosis, t_ms=t_ms)

    async def transfer(self, patient: HisPatient, to_location: str, from_location: str, *, t_ms: int | None = None) -> AckResult:
        return await self._event("A02", patient, location=to_location, prior_location=from_location, t_ms=t_ms)

    async def discharge(self, patient: HisPatient, location: str, *, disposition: str = "01", died: bool = False,
                        discharge_ms: int | None = None, t_ms: int | None = None) -> AckResult:  # fmt: skip
        return await self._event("A03", patient, location=location, disposition=disposition, died=died, discharge_ms=discharge_ms, t_ms=t_ms)

    async def update(self, patient: HisPatient, location: str, *, diagnosis: tuple[str, str] | None = None, t_ms: int | None = None) -> AckResult:
        return await self._event("A08", patient, location=location, diagnosis=diagnosis, t_ms=t_ms)

    async def cancel_admit(self, patient: HisPatient, location: str, *, t_ms: int | None = None) -> AckResult:
        return await self._event("A11", patient, location=location, t_ms=t_ms)

    async def cancel_discharge(self, patient: HisPatient, location: str, *, t_ms: int | None = None) -> AckResult:
        return await self._event("A13", patient, location=location, t_ms=t_ms)


class HisCensus:
    """Keeps ``locations`` occupied for a demo: admit everyone, then every ``interval_s`` discharge, move or update one."""

    def __init__(self, client: HisClient, locations: Sequence[str], *, seed: int = 1, interval_s: float = 60.0) -> None:
        self.client = client
        self.locations = list(locations)
        self.rng = random.Random(seed)
        self.interval_s = interval_s
        self._patients = iter(synthetic_patients(10_000, seed=seed))
        self.occupied: dict[str, HisPatient] = {}
        self.results: Counter[str] = Counter()

    def _doctor(self) -> tuple[str, str, str]:
        return self.rng.choice(_DOCTORS)

    async def _admit(self, location: str) -> None:
        patient = next(self._patients)
        ack = await self.client.admit(patient, location, attending=self._doctor(), diagnosis=self.rng.choice(DIAGNOSES))
        self.results[f"A01_{ack.code}"] += 1
        if ack.code == "AA":
            self.occupied[location] = patient

    async def step(self) -> None:
        """One change: a transfer into a free bed, or filling free beds; then a discharge (the bed frees) or an update."""
        free = [loc for loc in self.locations if loc not in self.occupied]
        if free and self.occupied and self.rng.random() < 0.3:
            loc = self.rng.choice(sorted(self.occupied))
            ack = await self.client.transfer(self.occupied[loc], free[0], loc)
            self.results[f"A02_{ack.code}"] += 1
            if ack.code == "AA":
                self.occupied[free[0]] = self.occupied.pop(loc)
        else:
            for loc in free:
                await self._admit(loc)
        if not self.occupied:
            return
        loc = self.rng.choice(sorted(self.occupied))
        patient = self.occupied[loc]
        if self.rng.random() < 0.6:
            died = self.rng.random() < 0.1
            disposition = "20" if died else self.rng.choice(("01", "01", "02", "07"))
            ack = await self.client.discharge(patient, loc, disposition=disposition, died=died)
            self.results[f"A03_{ack.code}"] += 1
            if ack.code == "AA":
                del self.occupied[loc]
        else:
            ack = await self.client.update(patient, loc, diagnosis=self.rng.choice(DIAGNOSES))
            self.results[f"A08_{ack.code}"] += 1

    async def run(self, duration_s: float | None = None) -> None:
        """Fill the locations, then change one every ``interval_s`` until cancelled or ``duration_s`` passes."""
        loop = asyncio.get_running_loop()
        end = None if duration_s is None else loop.time() + duration_s
        for loc in self.locations:
            await self._admit(loc)
        while end is None or loop.time() < end:
            await asyncio.sleep(self.interval_s if end is None else max(0.0, min(self.interval_s, end - loop.time())))
            if end is not None and loop.time() >= end:
                break
            await self.step()
