"""The events the ADT parser produces: one per accepted message, and its errors.

Every event carries ``event_id`` (the parser's number for it: the listener
answers ``accepted(event_id)`` or ``refused(event_id, reason)``), the message
control id (MSH-10), ``message_key`` (the same for a message re-sent by the
HIS: a digest of MSH-3/4/9/10 and every segment after the MSH, so a new MSH-7
on a re-send does not make it a new message), the event time ``t`` (EVN-6,
else EVN-2, else MSH-7; ms UTC) and the patient (``PatientIdentity``).
Beds are our bed ids, from the location mapping; ``location`` is the PV1-3
key as sent (``point of care^room^bed``). Sex and discharge outcome use the
words of ``wire.outbox_events`` (``Sex``, ``Outcome``).
"""

from __future__ import annotations

from dataclasses import dataclass

from wire.outbox_events import Outcome, Sex


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    """Who the message is about, from PID."""

    mrn: str  # PID-3: the hospital's medical record number
    mrn_authority: str  # its assigning authority (PID-3.4 namespace id, else universal id); "" if none
    abha: str | None  # PID-3 repetition for ABDM: the ABHA number, 14 digits; None if absent or invalid
    family: str  # PID-5.1
    given: str  # PID-5.2 and PID-5.3 (given and middle names)
    birth_date: str | None  # PID-7 as a date: "YYYY-MM-DD" (or "YYYY-MM", "YYYY" if sent so)
    sex: Sex  # PID-8, HL7 table 0001

    @property
    def name(self) -> str:
        """The name as a person reads it: given names, then family name."""
        return " ".join(part for part in (self.given, self.family) if part)


@dataclass(frozen=True, slots=True)
class Clinician:
    """A doctor named in PV1 (XCN): id and name as a person reads it (``Dr Anita Rao``)."""

    id: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AdtEvent:
    """What every ADT event carries (see the module docstring)."""

    event_id: int
    control_id: str
    message_key: str
    t: int
    patient: PatientIdentity
    warnings: tuple[str, ...] = ()  # what was not used and why (also ERR segments, severity W, in the ACK)


@dataclass(frozen=True, slots=True, kw_only=True)
class Admit(AdtEvent):
    """A01: the patient is admitted to ``bed``."""

    bed: str
    location: str
    attending: Clinician | None  # PV1-7
    reason: str  # PV2-3, else the admitting DG1 (DG1-4, else DG1-3); "" if none


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer(AdtEvent):
    """A02: the patient moves from PV1-6 to PV1-3.

    At least one side is one of our beds. ``from_bed`` None: from a location we do
    not serve, or PV1-6 not sent (the hub knows where the patient is); ``to_bed``
    None: to a location we do not serve, so the patient leaves the tele-ICU's beds.
    """

    from_bed: str | None
    from_location: str
    to_bed: str | None
    to_location: str
    attending: Clinician | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Discharge(AdtEvent):
    """A03: the encounter ends at ``discharged_at`` (PV1-45, else the event time) with ``outcome``."""

    bed: str | None  # None: PV1-3 not sent (the hub finds the patient's bed)
    location: str
    discharged_at: int
    outcome: Outcome
    disposition: str  # PV1-36 as sent ("" if none)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdatePatient(AdtEvent):
    """A08: the patient's demographics (and visit details) changed."""

    bed: str | None
    location: str
    attending: Clinician | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAdmit(AdtEvent):
    """A11: the admission was entered in error; the encounter is void."""

    bed: str | None
    location: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelDischarge(AdtEvent):
    """A13: the discharge was entered in error; the patient is back in ``bed``."""

    bed: str | None
    location: str


AnyAdtEvent = Admit | Transfer | Discharge | UpdatePatient | CancelAdmit | CancelDischarge


@dataclass(frozen=True, slots=True)
class AdtError:
    """A message, or bytes, the parser could not use, and why (``code``: see ``ingest.adt.parser``)."""

    code: str
    detail: str
    discarded: int = 0  # bytes not used
    control_id: str = ""  # MSH-10 when it could be read
