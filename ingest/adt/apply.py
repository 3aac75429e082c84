"""The hub's side of HL7 ADT: each parsed event becomes a patient operation, applied once, or refused with a reason.

``AdtApplier`` is the listener's ``apply`` (``ingest.adt.listener``): it finds
the patient by MRN, the encounter by the patient, the ward by the bed, and
calls ``PatientService``, passing the message's key so a message re-sent after
a lost ACK is applied once even across a hub restart (``AlreadyApplied``: it is
answered AA again). What the hub will not do is raised as ``AdtRefused`` (AE):
an unknown bed (204), a bed or patient already taken (205), no open encounter
for a transfer or discharge (204), details that do not pass the hub's checks
(207). A02 to a location the tele-ICU does not serve ends the encounter as
``transferred_out``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ingest.adt.events import Admit, AnyAdtEvent, CancelAdmit, CancelDischarge, Discharge, PatientIdentity, Transfer, UpdatePatient
from ingest.adt.listener import AdtRefused
from ingest.patients.records import PatientDetails
from ingest.patients.service import Actor, AlreadyApplied, PatientRefused
from wire.outbox_events import Encounter, Patient

if TYPE_CHECKING:
    from ingest.hub import Hub

ACTOR = Actor("his", "hl7-adt")  # who: the hospital information system, through the ADT interface
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
HL7_CODE = {404: 204, 409: 205}  # our refusals as HL7 table 0357 codes (unknown key, duplicate key); else 207


class AdtApplier:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def __call__(self, ev: AnyAdtEvent) -> None:
        try:
            await self._apply(ev)
        except AlreadyApplied:
            self.hub.counters["adt_repeats"] += 1
        except PatientRefused as exc:
            raise AdtRefused(exc.message, hl7_code=HL7_CODE.get(exc.status, 207)) from None
        else:
            self.hub.counters["adt_applied"] += 1

    async def _apply(self, ev: AnyAdtEvent) -> None:
        patients, once = self.hub.patients, ev.message_key
        if isinstance(ev, Admit):
            details = self._details(ev.patient, None, ev.reason, ev.attending.name if ev.attending else "")
            await patients.admit(details, ev.bed, self._ward(ev.bed), ev.t, ACTOR, once=once)
        elif isinstance(ev, Transfer):
            enc = await self._open_encounter(ev.patient)
            if ev.to_bed is None:  # to a location we do not serve: the tele-ICU stay ends here
                await patients.discharge(enc.encounter_id, "transferred_out", ev.t, ACTOR, once=once)
            else:
                await patients.transfer(enc.encounter_id, ev.to_bed, self._ward(ev.to_bed), ev.t, ACTOR, once=once)
        elif isinstance(ev, Discharge):
            enc = await self._open_encounter(ev.patient)
            await patients.discharge(enc.encounter_id, ev.outcome, ev.discharged_at, ACTOR, once=once)
        elif isinstance(ev, UpdatePatient):
            known = await self._patient(ev.patient)
            details = self._details(ev.patient, known, ev.reason, ev.attending.name if ev.attending else "")
            await patients.update_patient(known.patient_id, details, ACTOR, once=once)
        elif isinstance(ev, CancelAdmit):
            enc = await self._open_encounter(ev.patient)
            await patients.cancel_admission(enc.encounter_id, ACTOR, once=once)
        elif isinstance(ev, CancelDischarge):
            known = await self._patient(ev.patient)
            ended = [e for e, status in await patients.encounters(bed=None, patient_id=known.patient_id, open_only=False, limit=1)
                     if status == "ended"]  # fmt: skip
            if not ended:
                raise AdtRefused(f"MRN {ev.patient.mrn}: no discharge to cancel", hl7_code=204)
            await patients.cancel_discharge(ended[0].encounter_id, ACTOR, once=once)

    def _ward(self, bed: str) -> str:
        ward = self.hub.ward_of(bed)
        if ward is None:
            raise AdtRefused(f"bed {bed} is not on the hub's census: its gateway has not connected yet", hl7_code=204)
        return ward

    async def _patient(self, who: PatientIdentity) -> Patient:
        known = await self.hub.patients.patient_by_mrn(who.mrn)
        if known is None:
            raise AdtRefused(f"no patient with MRN {who.mrn}", hl7_code=204)
        return known

    async def _open_encounter(self, who: PatientIdentity) -> Encounter:
        known = await self._patient(who)
        found = await self.hub.patients.encounters(bed=None, patient_id=known.patient_id, open_only=True, limit=1)
        if not found:
            raise AdtRefused(f"MRN {who.mrn} is not admitted", hl7_code=204)
        return found[0][0]

    @staticmethod
    def _details(who: PatientIdentity, known: Patient | None, reason: str, attending: str) -> PatientDetails:
        """The patient as the message describes them; what an A08 leaves out is kept from the record."""
        birth = who.birth_date if who.birth_date and _FULL_DATE.fullmatch(who.birth_date) else None
        try:
            return PatientDetails(
                mrn=who.mrn, abha=who.abha or (known.abha if known else None), name=who.name or (known.name if known else who.mrn),
                sex=who.sex if who.sex != "unknown" or known is None else known.sex,
                birth_date=birth or (known.birth_date if known else None),
                diagnosis=reason or (known.diagnosis if known else ""), attending=attending or (known.attending if known else ""),
            )  # fmt: skip
        except ValidationError as exc:
            raise AdtRefused(f"patient details refused: {exc.errors()[0]['msg']}", hl7_code=207) from None
