"""The facility service's KPI store as a sink: the outbox events its KPIs are computed from, each posted once.

Admissions, transfers, discharges and their cancellations, NEWS2 band changes,
alarms and hourly vitals counts go to ``POST /api/kpi/events`` with the hub's
id, so the facility service keys each by (hub, event id) and a replay after a
kill stores nothing twice. An event that names an encounter's ward carries the
facility that ward belongs to (``facility.wards``); a ward not mapped is not
this service's, and its events are not sent. Events that name only the
encounter (alarms, scores, hourly counts) are attributed by the facility
service to their encounter's facility.

Only what a KPI needs leaves the hospital's records path: the patient's name,
birth date, diagnosis and attending are blanked, and a discharge's summary
(its NEWS2 history, last vitals and alarms) is left out; the MRN and ABHA
number stay, because readmission within 48 h is counted by patient.
"""

from __future__ import annotations

from collections.abc import Mapping

from records_bridge.bridge.outcomes import Poison, Retry
from records_bridge.bridge.service_client import ServiceClient
from wire.outbox_events import (AdmissionCancelled, AlarmEvent, DischargeCancelled, DischargeSummary, Event, Patient, PatientAdmitted,
                                 PatientDischarged, PatientTransferred, ScoreBandChanged, VitalsHourly)  # fmt: skip

WITH_ENCOUNTER = (PatientAdmitted, PatientTransferred, PatientDischarged, AdmissionCancelled, DischargeCancelled)
BY_ENCOUNTER_ID = (ScoreBandChanged, AlarmEvent, VitalsHourly)
NO_SUMMARY = DischargeSummary(news2=[], last_vitals=[], alarms=[], charted=0)


def minimal_patient(p: Patient) -> Patient:
    return Patient(patient_id=p.patient_id, mrn=p.mrn, abha=p.abha, name="", sex=p.sex)


def minimised(event: Event) -> Event:
    """The event with no more about the patient than a KPI needs."""
    ev = event.data
    changes: dict[str, object] = {}
    if getattr(ev, "patient", None) is not None:
        changes["patient"] = minimal_patient(ev.patient)  # type: ignore[union-attr]
    if isinstance(ev, PatientDischarged):
        changes["summary"] = NO_SUMMARY
        changes["follow_up"] = None
    if not changes:
        return event
    return event.model_copy(update={"data": ev.model_copy(update=changes)})


class FacilitySink:
    def __init__(self, service: ServiceClient, wards: Mapping[str, str], hub_id: str, *, name: str = "facility") -> None:
        self.name = name
        self.service = service
        self.wards = dict(wards)
        self.hub_id = hub_id
        self.posted = 0

    async def ready(self) -> None:
        """The service answers, and takes KPI events (an empty batch): a URL that is some other service waits, visibly,
        rather than parking every event as refused."""
        await self.service.ready()
        try:
            await self.service.call("POST", "/api/kpi/events", {"hub": self.hub_id, "events": []})
        except Poison as exc:
            raise Retry(f"{self.service.base} does not take KPI events: {exc}") from None

    async def handle(self, event: Event) -> None:
        ev = event.data
        if isinstance(ev, WITH_ENCOUNTER):
            facility = self.wards.get(ev.encounter.ward)
            if facility is None:
                return  # a ward of another facility service, or none
        elif isinstance(ev, BY_ENCOUNTER_ID):
            facility = None
        else:
            return  # demographics and charted values: no KPI is computed from them
        body = {"hub": self.hub_id, "events": [{"event": minimised(event).model_dump(mode="json"), "facility_id": facility}]}
        await self.service.call("POST", "/api/kpi/events", body)
        self.posted += 1
