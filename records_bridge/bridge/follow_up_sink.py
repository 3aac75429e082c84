"""The OPD queue as a sink: a discharge that asks for a follow-up books it, and the token lands in the locker.

For a ``patient.discharged`` event with ``follow_up``, the bridge books a slot in
the OPD queue of the department (``queue.queues`` maps department codes to the
queue service's queue ids; a department with no queue is parked, with why) on
the day the follow-up is due (the discharge day plus ``after_days``, in the
hospital's time zone). The booking id is derived from the encounter, so a
replay returns the same token (the queue service's rule). Then the token goes
into the patient's locker as an ``OPDToken`` record, also under an id derived
from the encounter: booked once, filed once, across kills of either service.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from records_bridge.bridge.locker_sink import local_day, locker_patient
from records_bridge.bridge.outcomes import Poison
from records_bridge.bridge.service_client import ServiceClient
from records_bridge.fhir import MappingContext, MappingError
from records_bridge.fhir.opd_token_document import opd_token_bundle
from wire.outbox_events import Event, PatientDischarged

log = logging.getLogger(__name__)


class FollowUpSink:
    def __init__(self, queue: ServiceClient, locker: ServiceClient | None, queues: dict[str, str], ctx: MappingContext, facility: str,
                 tz: ZoneInfo, *, name: str = "opd") -> None:  # fmt: skip
        self.name = name
        self.queue = queue
        self.locker = locker
        self.queues = queues
        self.ctx = ctx
        self.facility = facility
        self.tz = tz
        self.booked = 0

    async def ready(self) -> None:
        await self.queue.ready()
        if self.locker is not None:
            await self.locker.ready()

    async def handle(self, event: Event) -> None:
        ev = event.data
        if not isinstance(ev, PatientDischarged) or ev.follow_up is None:
            return
        fu, enc = ev.follow_up, ev.encounter
        queue_id = self.queues.get(fu.department)
        if queue_id is None:
            raise Poison(f"no OPD queue is configured for department {fu.department!r} (bridge queue.queues)")
        assert enc.end is not None
        day = local_day(enc.end, self.tz) + dt.timedelta(days=fu.after_days)
        patient: dict[str, str] = {"ref": f"{self.facility}/{ev.patient.mrn}"[:64]}
        if ev.patient.abha:
            patient["abha"] = ev.patient.abha
        booking = {"booking_id": f"follow-up-{enc.encounter_id}", "queue_id": queue_id, "day": day.isoformat(), "patient": patient}
        token = await self.queue.call("POST", "/api/bookings", booking)
        self.booked += 1
        if self.locker is None:
            return
        try:
            bundle = opd_token_bundle(ev, token, fu.department, self.ctx, event.at)
        except (MappingError, KeyError) as exc:
            raise Poison(f"cannot write the OPD token {token.get('display')!r} as a document: {exc}") from exc
        body = {"patient": locker_patient(ev.patient, self.facility), "name": ev.patient.name[:200], "type": "OPDToken",
                "date": token["day"], "facility": self.ctx.facility_name[:200], "title": f"OPD token {token['display']}", "bundle": bundle}  # fmt: skip
        await self.locker.call("PUT", f"/api/records/opd-token-{enc.encounter_id}", body)
