"""The parameter vocabulary: one key per physiological parameter, with its codes.

Every observation inside teleicu names its parameter by a key from ``PARAMETERS``.
The table mirrors ``shared/clinical/codes.md`` (MDC for HL7 PCD-01, LOINC for FHIR,
UCUM for storage) and adds what the hub needs to validate a value: the range a
real measurement can take. A value outside that range is a device or transport
fault, not physiology, and is rejected with an error naming the parameter.

The order of ``PARAMETERS`` is the column order of the hub's bed-state matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


@dataclass(frozen=True, slots=True)
class Parameter:
    key: str
    meaning: str
    mdc: tuple[int, ...]  # first is the canonical code, the rest are accepted variants
    mdc_ref: str | None
    loinc: str | None
    ucum: str
    lo: float  # lowest value a real measurement can take (inclusive)
    hi: float  # highest value a real measurement can take (inclusive)
    written: str = ""  # the unit as clinicians write it ("°C", "mmHg", "beats/min"); "" for a category
    label: str = ""  # the parameter as a chart or a monitor names it ("SpO₂", "NIBP sys")


class ACVPU(IntEnum):
    """Level of consciousness, as the integer carried in the ``acvpu`` parameter."""

    A = 0  # alert
    C = 1  # new confusion
    V = 2  # responds to voice
    P = 3  # responds to pain
    U = 4  # unresponsive


class O2(IntEnum):
    """Air or supplemental oxygen, as the integer carried in the ``o2`` parameter."""

    AIR = 0
    OXYGEN = 1


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("hr", "heart rate (ECG)", (147842,), "MDC_ECG_HEART_RATE", "8867-4", "/min", 0, 350, "beats/min", "HR"),
    Parameter("pr", "pulse rate (oximeter)", (149530, 149538), "MDC_PULS_OXIM_PULS_RATE", "8889-8", "/min", 0, 350, "beats/min", "Pulse (oximeter)"),
    Parameter("spo2", "oxygen saturation", (150456,), "MDC_PULS_OXIM_SAT_O2", "59408-5", "%", 0, 100, "%", "SpO₂"),
    Parameter("rr", "respiration rate", (151562,), "MDC_RESP_RATE", "9279-1", "/min", 0, 150, "breaths/min", "RR"),
    Parameter("nibp_sys", "non-invasive BP, systolic", (150021, 150301), "MDC_PRESS_BLD_NONINV_SYS", "8480-6", "mm[Hg]", 0, 350, "mmHg", "NIBP sys"),
    Parameter("nibp_dia", "non-invasive BP, diastolic", (150022, 150302), "MDC_PRESS_BLD_NONINV_DIA", "8462-4", "mm[Hg]", 0, 300, "mmHg", "NIBP dia"),
    Parameter("nibp_mean", "non-invasive BP, mean", (150023, 150303), "MDC_PRESS_BLD_NONINV_MEAN", "8478-0", "mm[Hg]", 0, 320, "mmHg", "NIBP mean"),
    Parameter("abp_sys", "arterial BP, systolic", (150033,), "MDC_PRESS_BLD_ART_ABP_SYS", "76215-3", "mm[Hg]", -50, 400, "mmHg", "ABP sys"),
    Parameter("abp_dia", "arterial BP, diastolic", (150034,), "MDC_PRESS_BLD_ART_ABP_DIA", "76213-8", "mm[Hg]", -50, 350, "mmHg", "ABP dia"),
    Parameter("abp_mean", "arterial BP, mean", (150035,), "MDC_PRESS_BLD_ART_ABP_MEAN", "76214-6", "mm[Hg]", -50, 370, "mmHg", "ABP mean"),
    Parameter("temp", "body temperature", (150344,), "MDC_TEMP", "8310-5", "Cel", 15, 46, "°C", "Temp"),
    Parameter("etco2", "end-tidal CO2", (151708,), "MDC_AWAY_CO2_ET", "19889-5", "mm[Hg]", 0, 150, "mmHg", "EtCO₂"),
    Parameter("o2_flow", "supplemental O2 flow", (), None, "3151-8", "L/min", 0, 80, "L/min", "O₂ flow"),
    Parameter("fio2", "inspired O2 fraction", (), None, "3150-0", "%", 21, 100, "%", "FiO₂"),
    Parameter("o2", "on supplemental oxygen (0 air, 1 oxygen)", (), None, None, "{bool}", 0, 1, "", "Air/O₂"),
    Parameter("acvpu", "consciousness (0 A, 1 C, 2 V, 3 P, 4 U)", (), None, "67775-7", "{ACVPU}", 0, 4, "", "ACVPU"),
    # Derived at the hub from the waveforms (alerts.waveforms), beside the monitor's own hr and pr: no MDC
    # code of their own (MDC_ECG_HEART_RATE and MDC_PULS_OXIM_PULS_RATE name the monitor's values above, and
    # one code maps to one key); the same LOINC. A poor-quality window is sent with Flag.ARTEFACT.
    Parameter("hr_ecg", "heart rate from the ECG waveform (hub)", (), None, "8867-4", "/min", 0, 350, "beats/min", "HR (ECG, hub)"),
    Parameter("pr_pleth", "pulse rate from the pleth waveform (hub)", (), None, "8889-8", "/min", 0, 350, "beats/min", "Pulse (pleth, hub)"),
)

BY_KEY: dict[str, Parameter] = {p.key: p for p in PARAMETERS}
HUB_DERIVED: frozenset[str] = frozenset({"hr_ecg", "pr_pleth"})  # computed by the hub, never measured by a device


def written_value(key: str, number: str) -> str:
    """A number with its unit as clinicians write it: "39.1 °C", "85%", "72 beats/min" (the UCUM code stays in data)."""
    unit = BY_KEY[key].written
    return f"{number}%" if unit == "%" else f"{number} {unit}".rstrip()
COLUMN: dict[str, int] = {p.key: i for i, p in enumerate(PARAMETERS)}
BY_MDC: dict[int, Parameter] = {code: p for p in PARAMETERS for code in p.mdc}

#: parameters whose value is a category code and must be a whole number
CATEGORICAL: frozenset[str] = frozenset({"o2", "acvpu"})


@dataclass(frozen=True, slots=True)
class Lead:
    key: str
    meaning: str
    mdc: int
    unit: str


#: waveform leads carried in binary chunks
LEADS: tuple[Lead, ...] = (
    Lead("ecg_ii", "ECG lead II", 131330, "mV"),
    Lead("pleth", "plethysmogram", 150452, "{ratio}"),
    Lead("resp", "respiration (impedance)", 151780, "Ohm"),
)
LEAD_BY_KEY: dict[str, Lead] = {lead.key: lead for lead in LEADS}


class Flag(IntEnum):
    """Status bits carried with an observation; a flagged value is not a clean measurement."""

    PROBE_OFF = 1
    LEADS_OFF = 2
    ARTEFACT = 4
    INVALID = 8


FLAG_NAMES: dict[int, str] = {f.value: f.name.lower() for f in Flag}
ALL_FLAGS: int = sum(f.value for f in Flag)


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]
