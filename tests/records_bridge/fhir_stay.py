"""One ICU stay as the hub's outbox would tell it, event by event, for the FHIR mapping tests.

Each builder returns a fresh ``Event``; keyword arguments replace fields of
its data, so a test states only what it changes.
"""

from __future__ import annotations

from typing import Any

from records_bridge.fhir import MappingContext
from wire.outbox_events import Event

CTX = MappingContext(mrn_system="https://ihms.rajasthan.gov.in/fhir/mrn", facility_name="SMS Hospital, Jaipur", facility_id="IN0810012345")
HOUR = 1_714_557_600_000  # 2024-05-01T10:00:00Z, 15:30 IST
MINUTE = 60_000
PATIENT_ID = "018f3334-1a00-7000-8000-00000000a001"
ENCOUNTER_ID = "018f3334-1a00-7000-8000-00000000e001"

PATIENT: dict[str, Any] = {
    "patient_id": PATIENT_ID,
    "mrn": "SMS-2024-004217",
    "abha": "91234567890123",
    "name": "Sita Devi Meena",
    "sex": "female",
    "birth_date": "1961-04-12",
    "diagnosis": "Community-acquired pneumonia with septic shock",
    "attending": "Dr. Rakesh Sharma",
}
ENCOUNTER: dict[str, Any] = {"encounter_id": ENCOUNTER_ID, "patient_id": PATIENT_ID, "bed": "MICU-03", "ward": "Medical ICU", "start": HOUR}
END = HOUR + 3 * 24 * 60 * MINUTE
AT_BED = {"encounter_id": ENCOUNTER_ID, "patient_id": PATIENT_ID, "bed": "MICU-03"}


def event(data: dict[str, Any], at: int = HOUR, number: int = 1) -> Event:
    return Event.model_validate({"id": number, "at": at, "data": data})


def admitted(**change: Any) -> Event:
    return event({"type": "patient.admitted", "patient": PATIENT, "encounter": ENCOUNTER, "by": "adt"} | change)


def updated(**change: Any) -> Event:
    return event({"type": "patient.updated", "patient": PATIENT | {"attending": "Dr. Anita Rao"}, "by": "adt"} | change)


def transferred(**change: Any) -> Event:
    data = {"type": "patient.transferred", "encounter": ENCOUNTER | {"bed": "MICU-07"}, "from_bed": "MICU-03", "by": "nurse.meena",
            "patient": PATIENT}  # fmt: skip
    return event(data | change, at=HOUR + 6 * 60 * MINUTE)


def hourly(values: list[dict[str, Any]] | None = None, **change: Any) -> Event:
    def v(param: str, median: float, unit: str, n: int) -> dict[str, Any]:
        return {"param": param, "median": median, "unit": unit, "n": n, "first": HOUR + 4_000, "last": HOUR + 3_598_000}

    default = [v("hr", 112, "/min", 3597), v("spo2", 93.5, "%", 3420), v("rr", 24, "/min", 3590), v("temp", 38.4, "Cel", 60),
               v("nibp_sys", 96, "mm[Hg]", 4), v("nibp_dia", 58, "mm[Hg]", 4), v("nibp_mean", 71, "mm[Hg]", 4)]  # fmt: skip
    data = {"type": "vitals.hourly", **AT_BED, "hour": HOUR, "values": default if values is None else values}
    return event(data | change, at=HOUR + 61 * MINUTE)


def charted(param: str = "acvpu", value: float = 0, unit: str = "{ACVPU}", **change: Any) -> Event:
    data = {"type": "observation.charted", **AT_BED, "value": {"param": param, "value": value, "unit": unit, "t": HOUR + 20 * MINUTE},
            "by": "Nurse Meena Kumari"}  # fmt: skip
    return event(data | change, at=HOUR + 21 * MINUTE)


COMPLETE_SUBSCORES = {"rr": 2, "spo2": 1, "o2": 0, "sbp": 2, "hr": 2, "acvpu": 0, "temp": 1}


def news2(**change: Any) -> Event:
    data = {"type": "score.band_changed", **AT_BED, "t": HOUR + 30 * MINUTE, "total": 8, "partial": 8, "band": "high",
            "subscores": COMPLETE_SUBSCORES, "missing": []}  # fmt: skip
    return event(data | change, at=HOUR + 30 * MINUTE)


def news2_incomplete(**change: Any) -> Event:
    subscores = COMPLETE_SUBSCORES | {"sbp": None, "temp": None}
    return news2(total=None, partial=5, band="medium", subscores=subscores, missing=["sbp", "temp"], **change)


def alarm(kind: str = "alarm.raised", **change: Any) -> Event:
    data = {"type": kind, **AT_BED, "alarm_id": "018f3334-2b00-7000-8000-0000000a1a01", "kind": "limit:spo2_low", "priority": "high",
            "category": "physiological", "detail": "SpO₂ 86% (limit 90%)", "t": HOUR + 40 * MINUTE,
            "raised": HOUR + 40 * MINUTE}  # fmt: skip
    if kind != "alarm.raised":
        data |= {"t": HOUR + 41 * MINUTE, "by": "Nurse Meena Kumari", "acknowledged": HOUR + 41 * MINUTE}
    if kind == "alarm.resolved":
        data |= {"t": HOUR + 55 * MINUTE}
    return event(data | change, at=data["t"])


SUMMARY: dict[str, Any] = {
    "news2": [
        {"t": HOUR + 10 * MINUTE, "total": None, "band": "unknown", "partial": 3},
        {"t": HOUR + 30 * MINUTE, "total": 8, "band": "high", "partial": 8},
        {"t": HOUR + 20 * 60 * MINUTE, "total": 5, "band": "medium", "partial": 5},
        {"t": HOUR + 50 * 60 * MINUTE, "total": 2, "band": "low", "partial": 2},
    ],
    "last_vitals": [
        {"param": "hr", "value": 84, "unit": "/min", "t": END - 15 * MINUTE},
        {"param": "spo2", "value": 97, "unit": "%", "t": END - 15 * MINUTE},
        {"param": "rr", "value": 16, "unit": "/min", "t": END - 15 * MINUTE},
        {"param": "temp", "value": 37.1, "unit": "Cel", "t": END - 60 * MINUTE},
        {"param": "nibp_sys", "value": 124, "unit": "mm[Hg]", "t": END - 30 * MINUTE},
    ],
    "alarms": [
        {"alarm_id": "018f3334-2b00-7000-8000-0000000a1a01", "kind": "limit:spo2_low", "priority": "high", "raised": HOUR + 40 * MINUTE,
         "acknowledged_by": "Nurse Meena Kumari", "resolved": HOUR + 55 * MINUTE},
        {"alarm_id": "018f3334-2b00-7000-8000-0000000a1a02", "kind": "news2", "priority": "medium", "raised": HOUR + 31 * MINUTE},
    ],
    "charted": 42,
}  # fmt: skip


def discharged(summary: dict[str, Any] | None = None, **change: Any) -> Event:
    data = {"type": "patient.discharged", "patient": PATIENT, "encounter": ENCOUNTER | {"end": END, "outcome": "discharged"},
            "summary": SUMMARY if summary is None else summary, "by": "Dr. Rakesh Sharma"}  # fmt: skip
    return event(data | change, at=END + 2 * MINUTE)


def admission_cancelled(**change: Any) -> Event:
    return event({"type": "admission.cancelled", "encounter": ENCOUNTER, "by": "adt", "patient": PATIENT} | change, at=HOUR + 5 * MINUTE)


def discharge_cancelled(**change: Any) -> Event:
    return event({"type": "discharge.cancelled", "encounter": ENCOUNTER, "by": "adt", "patient": PATIENT} | change, at=END + 9 * MINUTE)


def whole_stay() -> list[Event]:
    """Every event type once, in an order the hub could write them."""
    return [admitted(), charted(), news2_incomplete(), news2(), alarm("alarm.raised"), alarm("alarm.acknowledged"), alarm("alarm.resolved"),
            hourly(), updated(), transferred(), discharged(), discharge_cancelled(), discharged(), admission_cancelled()]  # fmt: skip
