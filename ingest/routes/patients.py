"""Patients and encounters: admit, transfer, discharge, cancel in error, correct details; the stay's trends and
alarms; nurse charting.

Admitting and charting are for the intensivist and both nurses (a ward nurse
in her wards: a bed outside them is answered like an unknown one, 404). Every
change is one transaction with its outbox event and audit entry
(``ingest.patients.service``); every view of a patient or an encounter is
audited. Who acted is the signed-in user.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from ingest.auth.audit_log import AuditEntry
from ingest.auth.guards import Admitter, Charter, Clinician, client_address
from ingest.auth.roles import Principal
from ingest.hub import Hub
from ingest.patients import tables
from ingest.patients.charting import CHARTABLE
from ingest.patients.records import PatientDetails
from ingest.patients.service import Actor, PatientRefused
from ingest.routes import GUARDED, HubDep, errors
from ingest.routes.beds import Param, visible_bed
from wire.outbox_events import Encounter, FollowUp, Outcome, Patient

router = APIRouter(prefix="/api", tags=["patients"], responses=GUARDED)


class AdmitBody(BaseModel):
    patient: PatientDetails
    bed: str = Field(min_length=1, max_length=64)
    t: int | None = Field(None, ge=0, description="when the stay began, ms; default now")


class TransferBody(BaseModel):
    bed: str = Field(min_length=1, max_length=64)
    t: int | None = Field(None, ge=0)


class DischargeBody(BaseModel):
    outcome: Outcome = "discharged"
    t: int | None = Field(None, ge=0)
    follow_up: FollowUp | None = None  # an OPD visit to book after discharge (the records bridge books it)


class ChartBody(BaseModel):
    param: Literal[CHARTABLE]  # type: ignore[valid-type]
    value: float | str = Field(description="a number in the vocabulary's unit; ACVPU as A/C/V/P/U, oxygen as air/oxygen")
    t: int | None = Field(None, ge=0, description="when it was measured, ms; default now")


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal.username, client_address(request))


def _refused(exc: PatientRefused) -> HTTPException:
    return HTTPException(exc.status, exc.message)


def _audit_view(hub: Hub, request: Request, principal: Principal, target: str, detail: dict[str, Any]) -> None:
    hub.audit.persist(AuditEntry(hub.clock(), principal.username, "patient.view", target, detail, client_address(request)))


def _encounter_json(enc: Encounter, status: str, stays: list[tables.Stay] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = enc.model_dump() | {"status": status}
    if stays is not None:
        out["stays"] = [{"bed": s.bed, "ward": s.ward, "start": s.start, "end": s.end} for s in stays]
    return out


async def _visible_encounter(hub: Hub, principal: Principal, encounter_id: str) -> tuple[Encounter, str, list[tables.Stay]]:
    """The encounter, if one of its stays is in the principal's wards; 404 otherwise (no probing)."""
    found = await hub.patients.encounter(encounter_id)
    if found is None or not any(principal.sees_ward(s.ward) for s in found[2]):
        raise HTTPException(404, f"unknown encounter {encounter_id!r}")
    return found


@router.post("/admissions", status_code=201, responses=errors(400, 404, 409, 503))
async def admit(hub: HubDep, principal: Admitter, request: Request, body: AdmitBody) -> dict[str, Any]:
    """Admit a patient to a bed (the patient is found by MRN, or created); 409 when the bed or the patient is taken."""
    i = await visible_bed(hub, principal, body.bed)
    try:
        enc, patient = await hub.patients.admit(body.patient, body.bed, hub.state.beds[i].ward, body.t, _actor(request, principal))
    except PatientRefused as exc:
        raise _refused(exc) from None
    return {"encounter": _encounter_json(enc, "open"), "patient": patient.model_dump()}


@router.post("/encounters/{encounter_id}/transfer", responses=errors(400, 404, 409, 503))
async def transfer(hub: HubDep, principal: Admitter, request: Request, encounter_id: str, body: TransferBody) -> dict[str, Any]:
    enc, _status, _stays = await _visible_encounter(hub, principal, encounter_id)
    i = await visible_bed(hub, principal, body.bed)
    try:
        moved = await hub.patients.transfer(encounter_id, body.bed, hub.state.beds[i].ward, body.t, _actor(request, principal))
    except PatientRefused as exc:
        raise _refused(exc) from None
    return {"encounter": _encounter_json(moved, "open")}


@router.post("/encounters/{encounter_id}/discharge", responses=errors(400, 404, 409, 503))
async def discharge(hub: HubDep, principal: Admitter, request: Request, encounter_id: str, body: DischargeBody) -> dict[str, Any]:
    await _visible_encounter(hub, principal, encounter_id)
    try:
        ended = await hub.patients.discharge(encounter_id, body.outcome, body.t, _actor(request, principal), follow_up=body.follow_up)
    except PatientRefused as exc:
        raise _refused(exc) from None
    return {"encounter": _encounter_json(ended, "ended")}


@router.post("/encounters/{encounter_id}/cancel", responses=errors(404, 409, 503))
async def cancel_admission(hub: HubDep, principal: Admitter, request: Request, encounter_id: str) -> dict[str, Any]:
    """An admission entered in error: the encounter is void and the bed free (HL7 A11)."""
    await _visible_encounter(hub, principal, encounter_id)
    try:
        enc = await hub.patients.cancel_admission(encounter_id, _actor(request, principal))
    except PatientRefused as exc:
        raise _refused(exc) from None
    return {"encounter": _encounter_json(enc, "cancelled")}


@router.post("/encounters/{encounter_id}/reopen", responses=errors(404, 409, 503))
async def cancel_discharge(hub: HubDep, principal: Admitter, request: Request, encounter_id: str) -> dict[str, Any]:
    """A discharge entered in error: the encounter is open again in its last bed (HL7 A13)."""
    await _visible_encounter(hub, principal, encounter_id)
    try:
        enc = await hub.patients.cancel_discharge(encounter_id, _actor(request, principal))
    except PatientRefused as exc:
        raise _refused(exc) from None
    return {"encounter": _encounter_json(enc, "open")}


@router.get("/encounters", responses=errors(503))
async def list_encounters(
    hub: HubDep,
    principal: Clinician,
    bed: str | None = Query(None, max_length=64),
    patient_id: str | None = Query(None, max_length=64),
    open: bool = Query(False, description="only open encounters"),
    limit: int = Query(200, ge=1, le=1000),
) -> dict[str, Any]:
    found = await hub.patients.encounters(bed=bed, patient_id=patient_id, open_only=open, limit=limit)
    return {"encounters": [_encounter_json(e, status) for e, status in found if principal.sees_ward(e.ward)]}


@router.get("/encounters/{encounter_id}", responses=errors(404, 503))
async def get_encounter(hub: HubDep, principal: Clinician, request: Request, encounter_id: str) -> dict[str, Any]:
    enc, status, stays = await _visible_encounter(hub, principal, encounter_id)
    patient = await hub.patients.patient(enc.patient_id)
    _audit_view(hub, request, principal, f"patient:{enc.patient_id}", {"encounter": encounter_id})
    return {"encounter": _encounter_json(enc, status, stays), "patient": patient.model_dump() if patient else None}


@router.get("/encounters/{encounter_id}/trend", responses=errors(404, 503))
async def encounter_trend(
    hub: HubDep, principal: Clinician, encounter_id: str, param: Param, limit: int = Query(20_000, ge=1, le=200_000)
) -> dict[str, Any]:
    """One parameter over the whole stay, across the beds it was in (transfers), oldest first."""
    enc, _status, stays = await _visible_encounter(hub, principal, encounter_id)
    points: list[dict[str, Any]] = []
    now = hub.clock()
    for s in stays:
        got = await hub.store.trend(s.bed, param, s.start, s.end if s.end is not None else now, limit - len(points))
        points += [{"t": p.t, "value": p.value, "flags": p.flags, "bed": s.bed} for p in got]
        if len(points) >= limit:
            break
    return {"encounter_id": encounter_id, "patient_id": enc.patient_id, "param": param, "points": points}


@router.get("/encounters/{encounter_id}/alerts", responses=errors(404, 503))
async def encounter_alerts(hub: HubDep, principal: Clinician, encounter_id: str) -> dict[str, Any]:
    """Every alarm of the stay's beds while the patient was in them, with its audited events, oldest first."""
    _enc, _status, stays = await _visible_encounter(hub, principal, encounter_id)
    now = hub.clock()
    rows = await hub.patients.db.read_with(lambda c: tables.alarm_rows(c, stays, now, physiological_only=False))
    alarms: dict[str, dict[str, Any]] = {}
    for alert_id, at, event, body in rows:
        a = alarms.setdefault(alert_id, {"alert": body, "events": []})
        a["alert"] = body
        a["events"].append({"at": at, "event": event})
    return {"encounter_id": encounter_id, "alerts": list(alarms.values())}


async def _visible_patient(hub: Hub, principal: Principal, patient_id: str) -> Patient:
    patient = await hub.patients.patient(patient_id)
    if patient is None:
        raise HTTPException(404, f"unknown patient {patient_id!r}")
    if not principal.all_wards:
        stays = await hub.patients.encounters(bed=None, patient_id=patient_id, open_only=False, limit=1000)
        if not any(principal.sees_ward(e.ward) for e, _status in stays):
            raise HTTPException(404, f"unknown patient {patient_id!r}")
    return patient


@router.get("/patients/{patient_id}", responses=errors(404, 503))
async def get_patient(hub: HubDep, principal: Clinician, request: Request, patient_id: str) -> dict[str, Any]:
    patient = await _visible_patient(hub, principal, patient_id)
    found = await hub.patients.encounters(bed=None, patient_id=patient_id, open_only=False, limit=1000)
    _audit_view(hub, request, principal, f"patient:{patient_id}", {})
    return {"patient": patient.model_dump(), "encounters": [_encounter_json(e, s) for e, s in found if principal.sees_ward(e.ward)]}


@router.put("/patients/{patient_id}", responses=errors(400, 404, 409, 503))
async def update_patient(hub: HubDep, principal: Admitter, request: Request, patient_id: str, body: PatientDetails) -> dict[str, Any]:
    """Correct a patient's details (HL7 A08); an unchanged record writes nothing."""
    await _visible_patient(hub, principal, patient_id)
    try:
        patient = await hub.patients.update_patient(patient_id, body, _actor(request, principal))
    except PatientRefused as exc:
        raise _refused(exc) from None
    for bed, (_enc, p) in hub.patients.census.by_bed.items():
        if p.patient_id == patient_id:
            hub.bed_changed(bed)
    return {"patient": patient.model_dump()}


@router.post("/beds/{bed}/chart", status_code=201, responses=errors(400, 404, 409, 503))
async def chart(hub: HubDep, principal: Charter, request: Request, bed: str, body: ChartBody) -> dict[str, Any]:
    """Chart a value monitors do not send, for the patient in ``bed``; it counts in NEWS2 like a monitor's."""
    await visible_bed(hub, principal, bed)
    try:
        return await hub.chart(bed, body.param, body.value, body.t, _actor(request, principal))
    except PatientRefused as exc:
        raise _refused(exc) from None

