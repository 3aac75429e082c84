"""Alarms as ``Flag`` resources: one per alarm, written whole on each of its events.

Why Flag and not DetectedIssue: an alarm's life is Flag's own status
(raised -> ``active``, resolved -> ``inactive``), Flag has the encounter and
the period (raised to resolved), and R4 core's ``flag-priority`` extension
carries the alarm priority in the IHE PCD codes made for it (PH, PM, PL).
DetectedIssue is for issues with clinical actions (interactions, duplicate
therapy), its status is an observation status with no "resolved", and R4 gives
it no encounter. What Flag lacks is the acknowledgement: it is the programme's
extension ``alarm-acknowledgement`` (who, when), present from the
acknowledgement on; the acknowledged event itself rewrites the Flag with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from records_bridge.fhir import clinical_text, ids, systems, text_fields
from records_bridge.fhir.contract import MappingError
from records_bridge.fhir.narrative import narrative
from records_bridge.fhir.refs import Refs
from records_bridge.fhir.times import instant, period
from wire.outbox_events import AlarmEvent, AlarmSummary

#: the hub's priority -> flag-priority code (R4: http://hl7.org/fhir/flag-priority-code)
PRIORITY: dict[str, tuple[str, str]] = {"high": ("PH", "High priority"), "medium": ("PM", "Medium priority"), "low": ("PL", "Low priority")}
CATEGORY_TEXT = {"physiological": "Physiological alarm", "technical": "Technical alarm"}


@dataclass(frozen=True, slots=True)
class Alarm:
    """What a Flag is written from, whichever event or summary it comes from."""

    flag_id: str
    alarm_id: str
    patient_id: str
    encounter_id: str
    kind: str
    detail: str
    priority: str
    category: str
    raised: int | None
    acknowledged_by: str | None
    acknowledged: int | None
    resolved: int | None


def flag_resource(ev: AlarmEvent, refs: Refs) -> dict[str, Any]:
    """The alarm as of ``ev``; ``MappingError`` for an acknowledgement that names no one, or as ``flag``."""
    by = text_fields.optional(ev.by)
    if ev.type == "alarm.acknowledged" and by is None:
        raise MappingError("alarm.acknowledged: who acknowledged is not given")
    alarm = Alarm(
        flag_id=ids.resource_id("Flag.alarm", ev.alarm_id),
        alarm_id=ev.alarm_id,
        patient_id=ev.patient_id,
        encounter_id=ev.encounter_id,
        kind=ev.kind,
        detail=ev.detail,
        priority=ev.priority,
        category=ev.category,
        raised=ev.raised if ev.raised is not None else (ev.t if ev.type == "alarm.raised" else None),
        acknowledged_by=by,
        acknowledged=ev.acknowledged if ev.acknowledged is not None else (ev.t if ev.type == "alarm.acknowledged" else None),
        resolved=ev.t if ev.type == "alarm.resolved" else None,
    )
    return flag(alarm, refs)


def summary_flag(a: AlarmSummary, patient_id: str, encounter_id: str, document_id: str, refs: Refs) -> dict[str, Any]:
    """An alarm of the stay as the discharge document records it (the summary lists physiological alarms)."""
    alarm = Alarm(
        flag_id=ids.resource_id("Flag.alarm.history", document_id, a.alarm_id),
        alarm_id=a.alarm_id,
        patient_id=patient_id,
        encounter_id=encounter_id,
        kind=a.kind,
        detail="",
        priority=a.priority,
        category="physiological",
        raised=a.raised,
        acknowledged_by=text_fields.optional(a.acknowledged_by),
        acknowledged=None,
        resolved=a.resolved,
    )
    return flag(alarm, refs)


def flag(a: Alarm, refs: Refs) -> dict[str, Any]:
    """``MappingError`` as ``check_alarm``, or for a blank alarm id."""
    kind = check_alarm(a.priority, a.category, a.kind)
    detail = text_fields.optional(a.detail) or kind
    code, display = PRIORITY[a.priority]
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "id": a.flag_id,
        "text": narrative(_summary(a, detail)),
        "extension": [
            {
                "url": systems.EXT_FLAG_PRIORITY,
                "valueCodeableConcept": {"coding": [{"system": systems.FLAG_PRIORITY, "code": code, "display": display}]},
            }
        ],
        "identifier": [{"system": systems.HUB_ALARM_ID, "value": text_fields.required(a.alarm_id, "the alarm id")}],
        "status": "inactive" if a.resolved is not None else "active",
        "category": [_category(a.category)],
        "code": {"coding": [{"system": systems.ALARM_KIND, "code": kind}], "text": detail},
        "subject": refs("Patient", ids.patient_id(a.patient_id)),
        "encounter": refs("Encounter", ids.encounter_id(a.encounter_id)),
    }
    if a.acknowledged_by is not None:
        resource["extension"].append(acknowledgement(a.acknowledged_by, a.acknowledged))
    span = period(a.raised, a.resolved)
    if span:
        resource["period"] = span
    return resource


def check_alarm(priority: str, category: str, kind: str) -> str:
    """The alarm's kind; ``MappingError`` for an unknown priority or category or a blank kind."""
    if priority not in PRIORITY:
        raise MappingError(f"alarm: unknown priority {priority!r}")
    if category not in CATEGORY_TEXT:
        raise MappingError(f"alarm: unknown alarm category {category!r}")
    return text_fields.required(kind, "the alarm kind")


def acknowledgement(by: str, at: int | None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "by", "valueString": by}]
    if at is not None:
        parts.append({"url": "at", "valueDateTime": instant(at)})
    return {"url": systems.EXT_ALARM_ACKNOWLEDGEMENT, "extension": parts}


def _category(category: str) -> dict[str, Any]:
    if category == "physiological":
        return {"coding": [{"system": systems.FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}], "text": CATEGORY_TEXT[category]}
    return {"text": CATEGORY_TEXT[category]}


def _summary(a: Alarm, detail: str) -> str:
    parts = [f"{a.priority.capitalize()} priority {CATEGORY_TEXT[a.category].lower()}: {detail}."]
    if a.raised is not None:
        parts.append(f"Raised {clinical_text.when(a.raised)}.")
    if a.acknowledged_by is not None:
        at = f" {clinical_text.when(a.acknowledged)}" if a.acknowledged is not None else ""
        parts.append(f"Acknowledged by {a.acknowledged_by}{at}.")
    if a.resolved is not None:
        parts.append(f"Resolved {clinical_text.when(a.resolved)}.")
    return " ".join(parts)
