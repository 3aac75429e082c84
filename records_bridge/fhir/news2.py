"""NEWS2 as an Observation: the total, one component per sub-score, the clinical-risk band as interpretation.

Codes: NEWS2 has no LOINC code (88330-6, sometimes used for it, is a CMS
mobility item), so the total and sub-scores carry the SNOMED CT concepts of
the UK edition (module 999000011000000103), e.g. 1104051000000101 "Royal College
of Physicians NEWS2 (National Early Warning Score 2) total score"; a receiver on
the International edition alone keeps ``code.text``.

The band is the interpretation (what the total means clinically) rather than
a component, so the components stay exactly the seven sub-scores. An
incomplete score has no value: ``dataAbsentReason`` on the total and on each
missing sub-score, the band the known sub-scores already prove, and a note with
their partial sum in words. A total is never made from missing inputs.
"""

from __future__ import annotations

from typing import Any

from records_bridge.fhir import clinical_text, ids, systems, values
from records_bridge.fhir.contract import MappingError
from records_bridge.fhir.narrative import narrative
from records_bridge.fhir.refs import Refs
from records_bridge.fhir.times import instant
from wire.outbox_events import Band, ScoreBandChanged, ScorePoint

_RCP = "Royal College of Physicians NEWS2 (National Early Warning Score 2)"
TOTAL = {"system": systems.SNOMED, "code": "1104051000000101", "display": f"{_RCP} total score"}

#: sub-score key (the hub's) -> (SNOMED CT code, what it scores, clinician's label)
SUBSCORES: dict[str, tuple[str, str, str]] = {
    "rr": ("1104301000000104", "respiration rate score", "Respiration rate"),
    "spo2": ("1104311000000102", "oxygen saturation scale 1 score", "SpO₂ (scale 1)"),
    "o2": ("1104331000000105", "air or oxygen score", "Air or oxygen"),
    "sbp": ("1104341000000101", "systolic blood pressure score", "Systolic BP"),
    "hr": ("1104351000000103", "pulse score", "Pulse"),
    "acvpu": ("1104361000000100", "consciousness score", "Consciousness"),
    "temp": ("1104371000000107", "temperature score", "Temperature"),
}
SPO2_SCALE_2 = ("1104321000000108", "oxygen saturation scale 2 score", "SpO₂ (scale 2)")
_MISSING = "Input missing or out of date"


def news2_observation(ev: ScoreBandChanged, refs: Refs) -> dict[str, Any]:
    """The score at ``ev.t``; ``MappingError`` when the sub-scores, total, partial sum and missing list disagree."""
    _check(ev)
    components = [_component(key, ev.subscores.get(key), ev.spo2_scale) for key in SUBSCORES]
    complete = ev.total is not None
    headline = _headline(ev.total, ev.t, ev.band)
    rows = [
        (_subscore_text(key, ev.spo2_scale), "missing" if ev.subscores.get(key) is None else str(ev.subscores[key])) for key in SUBSCORES
    ]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ids.resource_id("Observation.news2", ev.encounter_id, ev.t),
        "text": narrative(headline, table=(("Parameter", "Score"), rows)),
        "status": "final",
        "category": [{"coding": [{"system": systems.OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [TOTAL], "text": "NEWS2 total score"},
        "subject": refs("Patient", ids.patient_id(ev.patient_id)),
        "encounter": refs("Encounter", ids.encounter_id(ev.encounter_id)),
        "effectiveDateTime": instant(ev.t),
        **total_value(ev.total),
        "interpretation": [band_concept(ev.band, complete)],
    }
    if not complete:
        missing = ", ".join(_subscore_text(k, ev.spo2_scale) for k in SUBSCORES if ev.subscores.get(k) is None)
        resource["note"] = [{"text": f"Incomplete: no score for {missing}. The known sub-scores sum to {ev.partial}; this is not a total."}]
    resource["component"] = components
    return resource


def total_value(total: int | None) -> dict[str, Any]:
    if total is None:
        return {"dataAbsentReason": values.data_absent("unknown", "Incomplete: an input is missing or out of date")}
    return {"valueInteger": total}


def band_concept(band: Band, complete: bool) -> dict[str, Any]:
    """The RCP clinical-risk band, in the programme's code system, with the text a clinician reads."""
    coding = {"system": systems.NEWS2_RISK_BAND, "code": band, "display": clinical_text.NEWS2_BAND[band]}
    return {"coding": [coding], "text": f"{clinical_text.band_text(band, complete)} clinical risk"}


def history_observation(encounter_id: str, patient_id: str, point: ScorePoint, document_id: str, refs: Refs) -> dict[str, Any]:
    """One point of the stay's NEWS2 history, as the discharge document records it (total and band only)."""
    check_point(point)
    complete = point.total is not None
    text = _headline(point.total, point.t, point.band)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ids.resource_id("Observation.news2.history", document_id, point.t),
        "text": narrative(text),
        "status": "final",
        "category": [{"coding": [{"system": systems.OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [TOTAL], "text": "NEWS2 total score"},
        "subject": refs("Patient", ids.patient_id(patient_id)),
        "encounter": refs("Encounter", ids.encounter_id(encounter_id)),
        "effectiveDateTime": instant(point.t),
        **total_value(point.total),
        "interpretation": [band_concept(point.band, complete)],
    }
    if not complete:
        resource["note"] = [{"text": f"Incomplete: the known sub-scores sum to {point.partial}; this is not a total."}]
    return resource


def check_point(point: ScorePoint) -> None:
    """``MappingError`` for a total or partial sum NEWS2 cannot have, or a complete total without a band."""
    instant(point.t)
    if point.total is not None and (not 0 <= point.total <= 20 or point.band == "unknown" or point.partial != point.total):
        raise MappingError(f"NEWS2 history: total {point.total} ({point.band}, partial {point.partial}) is not a NEWS2 total")
    if not 0 <= point.partial <= 20:
        raise MappingError(f"NEWS2 history: partial sum {point.partial} is outside 0..20")


def _headline(total: int | None, t: int, band: Band) -> str:
    """ "NEWS2 8 at 01 May 2024 16:00 IST: High clinical risk."."""
    risk = clinical_text.band_text(band, total is not None)
    return f"NEWS2 {'incomplete' if total is None else total} at {clinical_text.when(t)}: {risk} clinical risk."


def _subscore_text(key: str, scale: int) -> str:
    return SPO2_SCALE_2[2] if key == "spo2" and scale == 2 else SUBSCORES[key][2]


def _component(key: str, score: int | None, scale: int) -> dict[str, Any]:
    code, scores, label = SPO2_SCALE_2 if key == "spo2" and scale == 2 else SUBSCORES[key]
    concept = {
        "coding": [{"system": systems.SNOMED, "code": code, "display": f"{_RCP} - {scores}"}],
        "text": f"NEWS2 {label.lower()} score",
    }
    if score is None:
        return {"code": concept, "dataAbsentReason": values.data_absent("unknown", _MISSING)}
    return {"code": concept, "valueInteger": score}


def _check(ev: ScoreBandChanged) -> None:
    unknown = set(ev.subscores) - SUBSCORES.keys()
    if unknown:
        raise MappingError(f"score.band_changed: unknown NEWS2 sub-scores {sorted(unknown)}")
    known = {k: v for k, v in ev.subscores.items() if v is not None}
    if any(not 0 <= v <= 3 for v in known.values()):
        raise MappingError("score.band_changed: a NEWS2 sub-score is outside 0..3")
    missing = sorted(k for k in SUBSCORES if ev.subscores.get(k) is None)
    if sorted(ev.missing) != missing:
        raise MappingError(f"score.band_changed: missing {sorted(ev.missing)} but no sub-score for {missing}")
    if ev.partial != sum(known.values()):
        raise MappingError("score.band_changed: the partial sum is not the sum of the known sub-scores")
    if (ev.total is None) != bool(missing):
        raise MappingError("score.band_changed: a total must be given exactly when no sub-score is missing")
    if ev.total is not None and ev.total != ev.partial:
        raise MappingError("score.band_changed: the total is not the sum of the sub-scores")
    if ev.total is not None and ev.band == "unknown":
        raise MappingError("score.band_changed: a complete total always has a band")
