"""How each vocabulary parameter is coded in an Observation: LOINC and MDC side by side, and the BP panels.

The LOINC and MDC codes are ``wire.vocabulary``'s; this table adds what FHIR's
R4 vital-signs profiles ask for on top (hl7.org/fhir/R4/observation-vitalsigns.html):

- SpO₂ carries 2708-6, the profile's oxygen saturation code, before the
  vocabulary's pulse-oximetry code 59408-5;
- the oximeter's pulse rate carries 8867-4, the profile's heart rate code,
  after its own 8889-8;
- blood pressure is the profile's panel 85354-9 with components systolic
  8480-6 and diastolic 8462-4 (and mean 8478-0); the arterial line's
  components also carry their invasive codes 76215-3, 76213-8 and 76214-6.
  The panels' MDC codes are the compound ones, MDC_PRESS_BLD_NONINV (150020)
  and MDC_PRESS_BLD_ART_ABP (150032), one below their systolic codes.

A ``display`` is written only where the LOINC name is certain; ``text`` is
always the clinician's label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from records_bridge.fhir import clinical_text, systems
from wire.vocabulary import BY_KEY, CATEGORICAL

_LOINC_DISPLAY: dict[str, str] = {
    "8867-4": "Heart rate",
    "8889-8": "Heart rate by Pulse oximetry",
    "2708-6": "Oxygen saturation in Arterial blood",
    "59408-5": "Oxygen saturation in Arterial blood by Pulse oximetry",
    "9279-1": "Respiratory rate",
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
    "8478-0": "Mean blood pressure",
    "8310-5": "Body temperature",
    "85354-9": "Blood pressure panel with all children optional",
    "3151-8": "Inhaled oxygen flow rate",
    "3150-0": "Inhaled oxygen concentration",
}

#: LOINC codes a parameter carries before (profile codes) and after (broader codes) the vocabulary's own
_LOINC_BEFORE: dict[str, tuple[str, ...]] = {"spo2": ("2708-6",), "abp_sys": ("8480-6",), "abp_dia": ("8462-4",), "abp_mean": ("8478-0",)}
_LOINC_AFTER: dict[str, tuple[str, ...]] = {"pr": ("8867-4",)}

#: categorical parameters are not vital signs in the profile's sense (their value is a code, not a Quantity)
_CATEGORY: dict[str, str] = {"acvpu": "exam", "o2": "therapy"}
_CATEGORY_DISPLAY = {"vital-signs": "Vital Signs", "exam": "Exam", "therapy": "Therapy", "survey": "Survey"}


@dataclass(frozen=True, slots=True)
class Panel:
    """A blood pressure panel: the parameters that become its components, in order."""

    key: str  # "nibp", "abp"
    text: str
    mdc: int
    mdc_ref: str
    members: tuple[str, ...]  # systolic, diastolic, mean
    required: tuple[str, ...]  # the profile's components, present with a value or a data-absent reason


PANELS: tuple[Panel, ...] = (
    Panel("nibp", "Blood pressure (non-invasive)", 150020, "MDC_PRESS_BLD_NONINV", ("nibp_sys", "nibp_dia", "nibp_mean"),
          ("nibp_sys", "nibp_dia")),
    Panel("abp", "Blood pressure (arterial line)", 150032, "MDC_PRESS_BLD_ART_ABP", ("abp_sys", "abp_dia", "abp_mean"),
          ("abp_sys", "abp_dia")),
)  # fmt: skip
PANEL_OF: dict[str, Panel] = {member: panel for panel in PANELS for member in panel.members}
BP_PANEL_LOINC = "85354-9"


def loinc(code: str) -> dict[str, Any]:
    coding = {"system": systems.LOINC, "code": code}
    return coding | {"display": _LOINC_DISPLAY[code]} if code in _LOINC_DISPLAY else coding


def mdc(code: int, ref: str | None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": systems.MDC, "code": str(code)}
    return coding | {"display": ref} if ref else coding


def parameter_code(param: str) -> dict[str, Any]:
    """Observation.code (or a component's code) for a vocabulary key: its LOINC codes, then its MDC code."""
    p = BY_KEY[param]
    codes = [*_LOINC_BEFORE.get(param, ()), *([p.loinc] if p.loinc else []), *_LOINC_AFTER.get(param, ())]
    codings = [loinc(c) for c in dict.fromkeys(codes)]
    if p.mdc:
        codings.append(mdc(p.mdc[0], p.mdc_ref))
    return {"coding": codings, "text": clinical_text.label(param)} if codings else {"text": clinical_text.label(param)}


def panel_code(panel: Panel) -> dict[str, Any]:
    return {"coding": [loinc(BP_PANEL_LOINC), mdc(panel.mdc, panel.mdc_ref)], "text": panel.text}


def category(param: str | None) -> list[dict[str, Any]]:
    """Observation.category: vital-signs for measured parameters and panels (``None``), else exam or therapy."""
    code = _CATEGORY.get(param, "vital-signs") if param else "vital-signs"
    return [{"coding": [{"system": systems.OBSERVATION_CATEGORY, "code": code, "display": _CATEGORY_DISPLAY[code]}]}]


def is_categorical(param: str) -> bool:
    return param in CATEGORICAL
