"""The table of alarm kinds: every kind the engine can raise, with its family, category, default priority and label.

A kind is ``family`` or ``family:what`` (``news2``, ``limit:spo2_low``,
``arrhythmia:asystole``, ``trend:news2_rise``, ``technical:no_data``). Rules build their kinds from this
table and the hub names kinds through it, never as string literals. The
default priority is the one ``shared/clinical/alarms.md`` gives; the ward's
policy (``config/alarms.yaml``) may set another, and for limits and scores it
always does. Labels are what a clinician reads in lists and statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.priority import Priority
from wire.vocabulary import PARAMETERS

PHYSIOLOGICAL, TECHNICAL = "physiological", "technical"


@dataclass(frozen=True, slots=True)
class AlarmKind:
    key: str
    family: str
    category: str
    priority: Priority  # default
    label: str


def _limit_kinds() -> list[AlarmKind]:
    out = []
    for p in PARAMETERS:
        name = p.meaning[0].upper() + p.meaning[1:]
        for side in ("low", "high"):
            out.append(AlarmKind(f"limit:{p.key}_{side}", "limit", PHYSIOLOGICAL, Priority.MEDIUM, f"{name} {side}"))
    return out


KINDS: tuple[AlarmKind, ...] = (
    *_limit_kinds(),
    AlarmKind("arrhythmia:asystole", "arrhythmia", PHYSIOLOGICAL, Priority.HIGH, "Asystole"),
    AlarmKind("news2", "news2", PHYSIOLOGICAL, Priority.MEDIUM, "NEWS2 response band"),
    AlarmKind("mews", "mews", PHYSIOLOGICAL, Priority.MEDIUM, "MEWS at or above its trigger"),
    AlarmKind("qsofa", "qsofa", PHYSIOLOGICAL, Priority.MEDIUM, "qSOFA positive"),
    AlarmKind("trend:news2_rise", "trend", PHYSIOLOGICAL, Priority.MEDIUM, "NEWS2 rising"),
    AlarmKind("trend:spo2_fall", "trend", PHYSIOLOGICAL, Priority.MEDIUM, "SpO2 falling"),
    AlarmKind("technical:no_data", "technical", TECHNICAL, Priority.MEDIUM, "No data from the bed"),
    AlarmKind("technical:probe_off", "technical", TECHNICAL, Priority.LOW, "SpO2 probe off"),
    AlarmKind("technical:leads_off", "technical", TECHNICAL, Priority.LOW, "ECG leads off"),
    AlarmKind("technical:device_disconnected", "technical", TECHNICAL, Priority.MEDIUM, "Monitor disconnected"),
    AlarmKind("technical:agent_offline", "technical", TECHNICAL, Priority.MEDIUM, "Edge gateway offline"),
    AlarmKind("technical:spool_dropping", "technical", TECHNICAL, Priority.HIGH, "Gateway dropping data"),
    AlarmKind("technical:store_unreachable", "technical", TECHNICAL, Priority.HIGH, "Store not taking data"),
    AlarmKind("technical:hub_overloaded", "technical", TECHNICAL, Priority.MEDIUM, "Hub overloaded, live data late"),
    AlarmKind("technical:undelivered", "technical", TECHNICAL, Priority.HIGH, "Alarm not delivered to a console"),
    AlarmKind("technical:patient_mismatch", "technical", TECHNICAL, Priority.HIGH, "Monitor names another patient"),
    AlarmKind("technical:ecg_poor", "technical", TECHNICAL, Priority.LOW, "Check ECG leads (poor signal)"),
    AlarmKind("technical:pleth_poor", "technical", TECHNICAL, Priority.LOW, "Check SpO2 probe (poor signal)"),
)

BY_KEY: dict[str, AlarmKind] = {k.key: k for k in KINDS}
FAMILIES: frozenset[str] = frozenset(k.family for k in KINDS)

ASYSTOLE = BY_KEY["arrhythmia:asystole"].key
NEWS2 = BY_KEY["news2"].key
MEWS = BY_KEY["mews"].key
QSOFA = BY_KEY["qsofa"].key
NEWS2_RISE = BY_KEY["trend:news2_rise"].key
SPO2_FALL = BY_KEY["trend:spo2_fall"].key
AGENT_OFFLINE = BY_KEY["technical:agent_offline"].key
UNDELIVERED = BY_KEY["technical:undelivered"].key
ECG_POOR = BY_KEY["technical:ecg_poor"].key
PLETH_POOR = BY_KEY["technical:pleth_poor"].key
HR_LOW, HR_HIGH, SPO2_LOW = BY_KEY["limit:hr_low"].key, BY_KEY["limit:hr_high"].key, BY_KEY["limit:spo2_low"].key


def kind(key: str) -> AlarmKind:
    """The kind named ``key``; ``KeyError`` for one the table does not hold (a bug in a rule)."""
    return BY_KEY[key]


def limit_kind(param: str, side: str) -> str:
    """``limit:<param>_<low|high>``, checked against the table."""
    return kind(f"limit:{param}_{side}").key


def technical_kind(what: str) -> str:
    """``technical:<what>``, checked against the table."""
    return kind(f"technical:{what}").key


def family_of(key: str) -> str:
    return key.split(":", 1)[0]
