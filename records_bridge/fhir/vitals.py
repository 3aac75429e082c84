"""Vital-sign Observations: one per parameter (or BP panel) per clock hour from ``vitals.hourly``, one per charted value.

An hourly Observation's ``effectivePeriod`` is the hour and its note says it is
the median of that hour's n valid samples; blood pressure becomes the R4 panel
(85354-9) with systolic, diastolic and mean as components, each the median of
its own samples. A charted value is effective when the nurse took it and names
her as performer.
"""

from __future__ import annotations

from typing import Any

from records_bridge.fhir import clinical_text, ids, text_fields, values, vital_codes
from records_bridge.fhir.contract import MappingError
from records_bridge.fhir.narrative import narrative
from records_bridge.fhir.refs import Refs, display_only
from records_bridge.fhir.times import HOUR_MS, instant, period
from records_bridge.fhir.vital_codes import PANEL_OF, Panel
from wire.outbox_events import HourlyValue, ObservationCharted, VitalsHourly, VitalValue

HOURLY_METHOD = {"text": "Median of the hour's valid monitor samples"}


def hourly_observations(ev: VitalsHourly, refs: Refs) -> list[dict[str, Any]]:
    """The Observations of one bed-hour: single parameters in the event's order, then the BP panels."""
    if ev.hour % HOUR_MS:
        raise MappingError(f"vitals.hourly: hour {ev.hour} is not the start of a clock hour")
    seen: dict[str, HourlyValue] = {}
    for v in ev.values:
        if v.param in seen:
            raise MappingError(f"vitals.hourly: {v.param} appears twice in one hour")
        _check_hourly(ev.hour, v)
        seen[v.param] = v
    out = [_hourly_single(ev, v, refs) for v in ev.values if v.param not in PANEL_OF]
    for panel in vital_codes.PANELS:
        members = {p: seen[p] for p in panel.members if p in seen}
        if members:
            out.append(_hourly_panel(ev, panel, members, refs))
    return out


def charted_observation(ev: ObservationCharted, refs: Refs) -> dict[str, Any]:
    """A value a nurse charted, effective when she took it, with her as performer."""
    v = ev.value
    obs = point_observation(ids.resource_id("Observation.charted", ev.encounter_id, v.param, v.t), v, ev.patient_id, ev.encounter_id, refs)
    obs["text"] = narrative(
        f"{clinical_text.label(v.param)} {clinical_text.value_text(v.param, v.value)}, charted by {ev.by} at {clinical_text.when(v.t)}."
    )
    obs["performer"] = [display_only(text_fields.required(ev.by, "who charted"))]
    return obs


def point_observation(resource_id: str, v: VitalValue, patient_id: str, encounter_id: str, refs: Refs) -> dict[str, Any]:
    """One value at one time (a charted value, the last value of a stay); ``MappingError`` as ``values.check``."""
    values.check(v.param, v.value, v.unit)
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "text": narrative(f"{clinical_text.label(v.param)} {clinical_text.value_text(v.param, v.value)} at {clinical_text.when(v.t)}."),
        "status": "final",
        "category": vital_codes.category(v.param),
        "code": vital_codes.parameter_code(v.param),
        "subject": refs("Patient", ids.patient_id(patient_id)),
        "encounter": refs("Encounter", ids.encounter_id(encounter_id)),
        "effectiveDateTime": instant(v.t),
        **values.value_element(v.param, v.value),
    }


def _check_hourly(hour: int, v: HourlyValue) -> None:
    values.check(v.param, v.median, v.unit)
    if v.n < 1:
        raise MappingError(f"vitals.hourly: {v.param} has a median of {v.n} samples")
    if not hour <= v.first <= v.last < hour + HOUR_MS:
        raise MappingError(f"vitals.hourly: {v.param}'s samples ({v.first}..{v.last}) are not all in the hour {hour}")


def _samples_note(v: HourlyValue) -> str:
    samples = "1 valid sample" if v.n == 1 else f"{v.n} valid samples"
    return f"Median of {samples}, taken {instant(v.first)} to {instant(v.last)}."


def _common(ev: VitalsHourly, key: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": ids.resource_id("Observation.hourly", ev.encounter_id, ev.hour, key),
        "status": "final",
    }


def _context(ev: VitalsHourly, refs: Refs) -> dict[str, Any]:
    return {
        "subject": refs("Patient", ids.patient_id(ev.patient_id)),
        "encounter": refs("Encounter", ids.encounter_id(ev.encounter_id)),
        "effectivePeriod": period(ev.hour, ev.hour + HOUR_MS),
    }


def _hourly_single(ev: VitalsHourly, v: HourlyValue, refs: Refs) -> dict[str, Any]:
    note = _samples_note(v)
    headline = f"{clinical_text.label(v.param)} {clinical_text.value_text(v.param, v.median)}, hour from {clinical_text.when(ev.hour)}."
    return {
        **_common(ev, v.param),
        "text": narrative(headline, note),
        "category": vital_codes.category(v.param),
        "code": vital_codes.parameter_code(v.param),
        **_context(ev, refs),
        **values.value_element(v.param, v.median),
        "method": HOURLY_METHOD,
        "note": [{"text": note}],
    }


def _hourly_panel(ev: VitalsHourly, panel: Panel, members: dict[str, HourlyValue], refs: Refs) -> dict[str, Any]:
    components: list[dict[str, Any]] = []
    notes: list[str] = []
    for param in panel.members:
        v = members.get(param)
        if v is not None:
            components.append({"code": vital_codes.parameter_code(param), **values.value_element(param, v.median)})
            notes.append(f"{clinical_text.label(param)} {clinical_text.value_text(param, v.median)}: {_samples_note(v)}")
        elif param in panel.required:
            absent = values.data_absent("unknown", "No valid sample in the hour")
            components.append({"code": vital_codes.parameter_code(param), "dataAbsentReason": absent})
            notes.append(f"{clinical_text.label(param)}: no valid sample in the hour.")
    headline = f"{panel.text}, hour from {clinical_text.when(ev.hour)}."
    return {
        **_common(ev, panel.key),
        "text": narrative(headline, *notes),
        "category": vital_codes.category(None),
        "code": vital_codes.panel_code(panel),
        **_context(ev, refs),
        "method": HOURLY_METHOD,
        "note": [{"text": " ".join(notes)}],
        "component": components,
    }
