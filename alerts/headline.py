"""One headline per patient: which open alarms of a bed belong to one deterioration.

The rule (deterministic, documented in docs/clinical-rules.md):

- **Groups.** All open physiological alarms of one bed (active, acknowledged or
  latched) form one group, ``"<bed>/physiological"``. Each technical alarm is a
  group of its own, ``"<subject>/<kind>"``: equipment trouble is not the patient's.
- **Head.** The member with the highest priority; among equals the most specific
  (an arrhythmia, then a limit names what to treat, then a trend, then a score); then the earliest
  raised; then the lowest id.
- **Headline.** A group of one is headed by its kind's label ("SpO2 low"). A
  larger group is named by the body systems its arrhythmia, limit and trend alarms point to:
  one system gives "Respiratory deterioration"; two or more give
  "Deterioration: respiratory and cardiovascular"; scores alone (NEWS2, MEWS,
  qSOFA, NEWS2 rising) give "Clinical deterioration (early warning scores)".

Each alarm keeps its own lifecycle; the group only says how they are shown together.
The engine writes ``group``, ``headline``, ``group_head`` and ``group_size`` on each
open alarm after every pass, and reports a ``regrouped`` event for an alarm whose
grouping changed while nothing else happened to it (so consoles stay current).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alerts.kinds import BY_KEY, TECHNICAL, family_of
from alerts.lifecycle import Alert, AlertEvent, Priority

PHYSIOLOGICAL_GROUP = "physiological"

#: the body system a parameter's limit (or trend) alarm points to
SYSTEM_OF_PARAM: dict[str, str] = {
    "spo2": "respiratory", "rr": "respiratory", "etco2": "respiratory", "fio2": "respiratory", "o2_flow": "respiratory",
    "o2": "respiratory",
    "hr": "cardiovascular", "pr": "cardiovascular", "nibp_sys": "cardiovascular", "nibp_dia": "cardiovascular",
    "nibp_mean": "cardiovascular", "abp_sys": "cardiovascular", "abp_dia": "cardiovascular", "abp_mean": "cardiovascular",
    "temp": "temperature", "acvpu": "neurological",
}  # fmt: skip
SYSTEM_OF_TREND = {"trend:spo2_fall": "respiratory"}
SYSTEM_OF_ARRHYTHMIA = {"arrhythmia:asystole": "cardiovascular"}
SYSTEM_ORDER = ("respiratory", "cardiovascular", "neurological", "temperature")
SPECIFICITY = {"arrhythmia": 4, "limit": 3, "trend": 2}  # anything else (scores) is 1
SCORES_ONLY = "Clinical deterioration (early warning scores)"


@dataclass(frozen=True, slots=True)
class Headline:
    group: str
    head: str  # the id of the alarm heading the group
    label: str
    parts: tuple[str, ...]  # ids of every member, the head first


def group_of(a: Alert) -> str:
    if a.category == TECHNICAL:
        return f"{a.subject}/{a.kind}"
    return f"{a.bed or a.subject}/{PHYSIOLOGICAL_GROUP}"


def system_of(kind: str) -> str | None:
    family = family_of(kind)
    if family == "limit":
        return SYSTEM_OF_PARAM.get(kind.split(":", 1)[1].rsplit("_", 1)[0])
    return SYSTEM_OF_TREND.get(kind) or SYSTEM_OF_ARRHYTHMIA.get(kind)


def _rank(a: Alert) -> tuple:
    return (-Priority[a.priority.upper()], -SPECIFICITY.get(a.family, 1), a.raised, a.id)


def label_of(members: list[Alert]) -> str:
    if len(members) == 1:
        k = BY_KEY.get(members[0].kind)
        return k.label if k is not None else members[0].title
    systems = {s for s in (system_of(a.kind) for a in members) if s}
    if not systems:
        return SCORES_ONLY
    named = [s for s in SYSTEM_ORDER if s in systems]
    if len(named) == 1:
        return f"{named[0].capitalize()} deterioration"
    return "Deterioration: " + ", ".join(named[:-1]) + " and " + named[-1]


def headlines(alerts: Iterable[Alert]) -> dict[str, Headline]:
    """The headline of every group the ``alerts`` (open alarms) form."""
    groups: dict[str, list[Alert]] = {}
    for a in alerts:
        groups.setdefault(group_of(a), []).append(a)
    out = {}
    for g, members in groups.items():
        members.sort(key=_rank)
        out[g] = Headline(g, members[0].id, label_of(members), tuple(a.id for a in members))
    return out


def regroup(open_alerts: dict[tuple[str, str], Alert], subjects: set[str] | None, events: list[AlertEvent], now: int) -> list[AlertEvent]:
    """Write the grouping onto the open alarms of ``subjects`` (all when None); ``regrouped`` events for the
    alarms whose grouping changed and that have no other event in ``events`` (those carry it already)."""
    chosen = [a for a in open_alerts.values() if subjects is None or a.subject in subjects]
    with_event = {ev.alert.id for ev in events}
    out: list[AlertEvent] = []
    by_id = {a.id: a for a in chosen}
    for h in headlines(chosen).values():
        for aid in h.parts:
            a = by_id[aid]
            new = (h.group, h.label, aid == h.head, len(h.parts))
            if (a.group, a.headline, a.group_head, a.group_size) == new:
                continue
            a.group, a.headline, a.group_head, a.group_size = new
            if aid not in with_event:
                a.updated = now
                out.append(AlertEvent("regrouped", a, note=f"{h.label} ({len(h.parts)} alarm{'s' if len(h.parts) > 1 else ''})"))
    return out
