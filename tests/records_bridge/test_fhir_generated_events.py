"""Generated outbox events through the FHIR mapping (hypothesis).

- Events that keep the outbox contract always map: every resource valid R4,
  every rule of ``fhir_rules`` kept, and a replay byte-identical.
- Any event the pydantic models accept, however absurd its values, either maps
  or raises ``MappingError``: no other exception reaches the bridge.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from fhir_rules import check_resource
from fhir_stay import CTX
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from records_bridge.fhir import MappingError, writes_for
from wire.outbox_events import Event
from wire.vocabulary import CATEGORICAL, PARAMETERS

HOUR_MS = 3_600_000
ids = st.uuids().map(str)
hours = st.integers(450_000, 520_000).map(lambda h: h * HOUR_MS)  # 2021 to 2029
words = st.text(st.characters(categories=("L", "N", "Zs", "P", "S")), min_size=1, max_size=30).filter(lambda s: s.strip())
maybe_words = st.one_of(st.just(""), words)
NUMERIC = [p for p in PARAMETERS if p.key not in CATEGORICAL]


@st.composite
def measured(draw: st.DrawFn, among: Any = PARAMETERS) -> tuple[str, float, str]:
    p = draw(st.sampled_from(among))
    if p.key in CATEGORICAL:
        return p.key, float(draw(st.integers(int(p.lo), int(p.hi)))), p.ucum
    return p.key, draw(st.floats(p.lo, p.hi, allow_nan=False)), p.ucum


@st.composite
def patients(draw: st.DrawFn, patient_id: str) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "mrn": draw(words),
        "abha": draw(st.none() | st.from_regex(r"[0-9]{14}", fullmatch=True)),
        "name": draw(words),
        "sex": draw(st.sampled_from(["male", "female", "other", "unknown"])),
        "birth_date": draw(st.none() | st.dates(date(1900, 1, 1), date(2024, 12, 31)).map(str)),
        "diagnosis": draw(maybe_words),
        "attending": draw(maybe_words),
    }


@st.composite
def stays(draw: st.DrawFn) -> dict[str, Any]:
    patient_id, start = draw(ids), draw(hours) + draw(st.integers(0, HOUR_MS - 1))
    return {
        "patient": draw(patients(patient_id)),
        "encounter": {"encounter_id": draw(ids), "patient_id": patient_id, "bed": draw(words), "ward": draw(words), "start": start},
    }


@st.composite
def news2_points(draw: st.DrawFn) -> dict[str, Any]:
    subscores = {k: draw(st.none() | st.integers(0, 3)) for k in ("rr", "spo2", "o2", "sbp", "hr", "acvpu", "temp")}
    partial = sum(v for v in subscores.values() if v is not None)
    missing = [k for k, v in subscores.items() if v is None]
    total = None if missing else partial
    band = draw(st.sampled_from(["low", "low-medium", "medium", "high"] + (["unknown"] if missing else [])))
    return {"subscores": subscores, "missing": missing, "partial": partial, "total": total, "band": band}


def _discharged(draw: st.DrawFn, p: dict[str, Any], enc: dict[str, Any], end: int) -> dict[str, Any]:
    start = enc["start"]
    # the hub lists each NEWS2 time once (the contract: a time listed twice is refused), so the times are distinct
    points = [{"t": t, **{k: v for k, v in draw(news2_points()).items() if k in ("total", "band", "partial")}}
              for t in draw(st.lists(st.integers(start, end), max_size=4, unique=True))]  # fmt: skip
    vitals = [{"param": param, "value": value, "unit": unit, "t": draw(st.integers(start, end))}
              for param, value, unit in draw(st.lists(measured(), max_size=5, unique_by=lambda m: m[0]))]  # fmt: skip
    alarms = []
    for i in range(draw(st.integers(0, 3))):
        raised = draw(st.integers(start, end))
        alarms.append({"alarm_id": f"{i}-{draw(ids)}", "kind": draw(words), "priority": draw(st.sampled_from(["high", "medium", "low"])),
                       "raised": raised, "acknowledged_by": draw(st.none() | words),
                       "resolved": draw(st.none() | st.integers(raised, end))})  # fmt: skip
    outcome = draw(st.sampled_from(["discharged", "transferred_out", "died", "left_against_advice"]))
    summary = {"news2": points, "last_vitals": vitals, "alarms": alarms, "charted": draw(st.integers(0, 10_000))}
    return {"patient": p, "encounter": enc | {"end": end, "outcome": outcome}, "summary": summary, "by": draw(words)}


def _alarm(draw: st.DrawFn, at_bed: dict[str, Any], t: int) -> dict[str, Any]:
    step = draw(st.sampled_from(["alarm.raised", "alarm.acknowledged", "alarm.resolved"]))
    acked = step != "alarm.raised"
    priority = draw(st.sampled_from(["high", "medium", "low"]))
    return {"type": step, **at_bed, "alarm_id": draw(ids), "kind": draw(words), "priority": priority,
            "category": draw(st.sampled_from(["physiological", "technical"])), "detail": draw(maybe_words), "t": t + 2,
            "raised": draw(st.none() | st.just(t)), "by": draw(words) if acked else None,
            "acknowledged": t + 1 if acked else None}  # fmt: skip


def _hourly(draw: st.DrawFn, at_bed: dict[str, Any]) -> dict[str, Any]:
    hour = draw(hours)
    values = []
    for param, value, unit in draw(st.lists(measured(NUMERIC), min_size=1, max_size=8, unique_by=lambda m: m[0])):
        first = hour + draw(st.integers(0, HOUR_MS - 1))
        last = draw(st.integers(first, hour + HOUR_MS - 1))
        values.append({"param": param, "median": value, "unit": unit, "n": draw(st.integers(1, 3600)), "first": first, "last": last})
    return {**at_bed, "hour": hour, "values": values}


@st.composite
def valid_events(draw: st.DrawFn) -> Event:
    stay = draw(stays())
    p, enc = stay["patient"], stay["encounter"]
    at_bed = {"encounter_id": enc["encounter_id"], "patient_id": p["patient_id"], "bed": enc["bed"]}
    t = enc["start"] + draw(st.integers(0, 30 * 24 * HOUR_MS))
    by, patient_or_none = draw(words), draw(st.none() | st.just(p))
    builders = {
        "patient.admitted": lambda: {"patient": p, "encounter": enc, "by": by},
        "patient.updated": lambda: {"patient": p, "by": by},
        "patient.transferred": lambda: {"encounter": enc, "from_bed": enc["bed"] + "x", "by": by, "patient": patient_or_none},
        "admission.cancelled": lambda: {"encounter": enc, "by": by, "patient": patient_or_none},
        "discharge.cancelled": lambda: {"encounter": enc, "by": by, "patient": patient_or_none},
        "patient.discharged": lambda: _discharged(draw, p, enc, t),
        "observation.charted": lambda: {**at_bed, "value": dict(zip(("param", "value", "unit"), draw(measured()), strict=True)) | {"t": t},
                                        "by": by},
        "score.band_changed": lambda: {**at_bed, "t": t, "spo2_scale": draw(st.sampled_from([1, 2])), **draw(news2_points())},
        "alarm": lambda: _alarm(draw, at_bed, t),
        "vitals.hourly": lambda: _hourly(draw, at_bed),
    }  # fmt: skip
    kind = draw(st.sampled_from(sorted(builders)))
    data = {"type": kind} | builders[kind]()
    return Event.model_validate({"id": draw(st.integers(1, 2**62)), "at": t + 5, "data": data})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(valid_events())
def test_events_that_keep_the_contract_map_to_valid_resources_and_replay_identically(ev: Event) -> None:
    writes = writes_for(ev, CTX)
    assert writes
    for w in writes:
        check_resource(w.resource)
    again = writes_for(Event.model_validate_json(ev.model_dump_json()), CTX)
    assert json.dumps([(w.path, w.resource) for w in writes]) == json.dumps([(w.path, w.resource) for w in again])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.builds(Event))
def test_any_event_the_models_accept_maps_or_raises_mapping_error(ev: Event) -> None:
    try:
        writes = writes_for(ev, CTX)
    except MappingError:
        return
    for w in writes:
        check_resource(w.resource)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() if k != "type" for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))]
    return [path]


_ANY_LEAF = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=20), st.booleans())
_LIKE = {str: st.text(max_size=20), int: st.integers(), float: st.floats(), bool: st.booleans()}


@st.composite
def mutated_events(draw: st.DrawFn) -> Event:
    """A valid event with one value replaced by anything of its type (or anything at all where it was None)."""
    raw = json.loads(draw(valid_events()).model_dump_json())
    path = draw(st.sampled_from(_leaves(raw)))
    *parents, last = path
    node = raw
    for key in parents:
        node = node[key]
    node[last] = draw(_LIKE.get(type(node[last]), _ANY_LEAF))
    try:
        return Event.model_validate(raw)
    except ValueError:  # the models refuse it before the mapping sees it
        reject()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(mutated_events())
def test_a_valid_event_with_one_value_changed_maps_or_raises_mapping_error(ev: Event) -> None:
    try:
        writes = writes_for(ev, CTX)
    except MappingError:
        return
    for w in writes:
        check_resource(w.resource)
