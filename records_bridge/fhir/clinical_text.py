"""Parameters, values and times as clinicians write them: "SpO₂ 96%", "37.2 °C", "breaths/min", IST wall time.

Every person-readable string the mapping writes (narratives, ``Quantity.unit``,
the discharge summary PDF) comes from here, so the UCUM codes (``Cel``, ``/min``)
stay in the coded fields only.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from records_bridge.fhir.times import instant
from wire.vocabulary import ACVPU, BY_KEY, O2, written_value

#: the hospitals are in India; IST has no daylight saving
IST = timezone(timedelta(hours=5, minutes=30), "IST")

#: key -> label as written (the unit as written is the vocabulary's: ``wire.vocabulary.Parameter.written``)
_LABELS: dict[str, str] = {
    "hr": "Heart rate",
    "pr": "Pulse rate (oximeter)",
    "spo2": "SpO₂",
    "rr": "Respiratory rate",
    "nibp_sys": "NIBP systolic",
    "nibp_dia": "NIBP diastolic",
    "nibp_mean": "NIBP mean",
    "abp_sys": "Arterial BP systolic",
    "abp_dia": "Arterial BP diastolic",
    "abp_mean": "Arterial BP mean",
    "temp": "Temperature",
    "etco2": "EtCO₂",
    "o2_flow": "O₂ flow",
    "fio2": "FiO₂",
    "o2": "Air or oxygen",
    "acvpu": "Consciousness (ACVPU)",
    "hr_ecg": "Heart rate (from ECG)",
    "pr_pleth": "Pulse rate (from pleth)",
}

CATEGORY_TEXT: dict[str, dict[int, str]] = {
    "o2": {O2.AIR: "Air", O2.OXYGEN: "Supplemental oxygen"},
    "acvpu": {ACVPU.A: "Alert", ACVPU.C: "New confusion", ACVPU.V: "Responds to voice", ACVPU.P: "Responds to pain",
              ACVPU.U: "Unresponsive"},
}  # fmt: skip

NEWS2_BAND: dict[str, str] = {
    "low": "Low",
    "low-medium": "Low–medium",
    "medium": "Medium",
    "high": "High",
    "unknown": "Unknown",
}


def label(param: str) -> str:
    return _LABELS[param]


def unit(param: str) -> str:
    return BY_KEY[param].written


def number(value: float) -> str:
    """72.0 -> "72", 37.25 -> "37.25": what was measured, without a trailing ".0"."""
    return f"{value:.6g}" if value != int(value) else str(int(value))


def value_text(param: str, value: float) -> str:
    """ "Alert", "96%", "37.2 °C", "72 beats/min"."""
    if param in CATEGORY_TEXT:
        return CATEGORY_TEXT[param][int(value)]
    return written_value(param, number(value))


def when(ms: int) -> str:
    """Wall time in IST, as a ward writes it: "01 May 2024 15:30 IST" (``MappingError`` where ``instant`` raises it)."""
    instant(ms)  # the range check
    return datetime.fromtimestamp(ms // 1000, tz=IST).strftime("%d %b %Y %H:%M IST")


def alarm_text(kind: str) -> str:
    """An alarm kind as words: ``limit:spo2_low`` -> "SpO₂ low", ``trend:news2_rise`` -> "NEWS2 rise"."""
    family, _, what = kind.partition(":")
    if family == "limit":
        param, _, side = what.rpartition("_")
        if param in _LABELS and side in ("low", "high"):
            return f"{label(param)} {side}"
    words = (what or family).replace("_", " ").replace("news2", "NEWS2").replace("spo2", "SpO₂")
    return words[:1].upper() + words[1:]


def band_text(band: str, complete: bool) -> str:
    """ "Medium"; for an incomplete score the band its known sub-scores prove: "Medium or higher (incomplete)"."""
    if complete or band == "unknown":
        return NEWS2_BAND[band] + ("" if complete else " (incomplete)")
    return f"{NEWS2_BAND[band]} or higher (incomplete)"
