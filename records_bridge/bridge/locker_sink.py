"""The health locker as a sink: each discharge summary (FHIR document Bundle and its PDF) into the patient's locker.

The record id is derived from the hub's encounter id and the body is built only
from the outbox event (the PDF and the Bundle are dated with the event's time),
so a replay after a kill is byte-identical and the locker answers 200 without
storing anything twice. The patient is named by ABHA number when the hub has
one, otherwise by this hospital's facility id and MRN. Other events are not the
locker's. A withdrawn discharge (``discharge.cancelled``) is left in the locker:
the locker keeps what a patient was given (docs/locker.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from records_bridge.bridge.outcomes import Poison, Retry
from records_bridge.bridge.service_client import ServiceClient
from records_bridge.fhir import FontMissing, MappingContext, MappingError
from records_bridge.fhir import discharge_pdf
from records_bridge.fhir.discharge_document import check_summary, discharge_bundle
from wire.outbox_events import Event, Patient, PatientDischarged

log = logging.getLogger(__name__)


def locker_patient(p: Patient, facility: str) -> dict[str, str]:
    """How the locker names the patient: this hospital's id and the MRN, and the ABHA number when known (both, so a
    locker first keyed by MRN is found again once the patient's ABHA number is linked, not doubled)."""
    return {"facility": facility, "mrn": p.mrn} | ({"abha": p.abha} if p.abha else {})


def local_day(ms: int, tz: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, tz).date()


class LockerSink:
    def __init__(self, locker: ServiceClient, ctx: MappingContext, facility: str, tz: ZoneInfo, *, name: str = "locker") -> None:
        self.name = name
        self.locker = locker
        self.ctx = ctx
        self.facility = facility
        self.tz = tz
        self.records = 0

    async def ready(self) -> None:
        await self.locker.ready()

    async def handle(self, event: Event) -> None:
        ev = event.data
        if not isinstance(ev, PatientDischarged):
            return
        try:
            check_summary(ev)
            pdf = discharge_pdf.render(ev, self.ctx, event.at)
            bundle = discharge_bundle(ev, pdf, self.ctx, event.at)
        except FontMissing as exc:
            raise Retry(str(exc)) from exc
        except MappingError as exc:
            raise Poison(f"cannot write the discharge summary: {exc}") from exc
        enc = ev.encounter
        assert enc.end is not None
        body: dict[str, Any] = {
            "patient": locker_patient(ev.patient, self.facility), "name": ev.patient.name[:200],
            "type": "DischargeSummary", "date": local_day(enc.end, self.tz).isoformat(), "facility": self.ctx.facility_name[:200],
            "title": "ICU discharge summary", "bundle": bundle, "pdf": base64.b64encode(pdf).decode(),
        }  # fmt: skip
        await self.locker.call("PUT", f"/api/records/discharge-{enc.encounter_id}", body)
        self.records += 1
