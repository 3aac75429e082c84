"""Alarm rules over arrays of beds: limit persistence and hysteresis, trends, technical conditions."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.lifecycle import Priority
from alerts.limits import LimitTracker
from alerts.policy import Limit, PolicyError, parse_policy
from alerts.technical import TechnicalTracker, TechnicalView
from alerts.trends import TrendTracker
from config_support import alarm_policy, default_raw
from wire.vocabulary import COLUMN, PARAMETERS, Flag

S = 1000
SPO2 = Limit(param="spo2", low=88, high=None, delay_s=15, hysteresis=2, priority=Priority.HIGH)
HR = Limit(param="hr", low=40, high=140, delay_s=10, hysteresis=5, priority=Priority.MEDIUM)


def matrix(n: int, **cols: list[float]) -> np.ndarray:
    m = np.full((n, len(PARAMETERS)), np.nan)
    for k, v in cols.items():
        m[:, COLUMN[k]] = v
    return m


def kinds(tracker: LimitTracker, n: int, m: np.ndarray) -> set[tuple[str, str]]:
    return set(tracker.conditions([f"B{i}" for i in range(n)], ["A"] * n, m))


def test_limit_needs_persistence_and_clears_only_past_hysteresis() -> None:
    t = LimitTracker(["hr", "spo2"])
    t.set_limits([{"spo2": SPO2, "hr": HR}])
    seq = [(0, 87), (14, 87), (15, 87), (20, 89), (21, 89.9), (22, 90), (23, 87)]
    seen = []
    for sec, spo2 in seq:
        m = matrix(1, spo2=[spo2], hr=[80])
        t.update(m, sec * S)
        seen.append(bool(kinds(t, 1, m)))
    # fires after 15 s beyond the limit; 89 and 89.9 are inside the limit but not past the 2-point hysteresis;
    # 90 clears it; a new dip must persist again
    assert seen == [False, False, True, True, True, False, False]


def test_a_dip_shorter_than_the_delay_never_fires() -> None:
    t = LimitTracker(["spo2"])
    t.set_limits([{"spo2": SPO2}])
    for sec, v in [(0, 85), (10, 85), (14, 85), (15, 92), (16, 85), (29, 85)]:
        t.update(matrix(1, spo2=[v]), sec * S)
        assert not t.on_lo.any()
    t.update(matrix(1, spo2=[85]), 31 * S)
    assert t.on_lo[0, 0]


def test_lost_signal_cancels_a_pending_delay_but_does_not_clear_a_raised_alarm() -> None:
    t = LimitTracker(["hr"])
    t.set_limits([{"hr": HR}, {"hr": HR}])
    t.update(matrix(2, hr=[150, 150]), 0)
    t.update(matrix(2, hr=[150, np.nan]), 5 * S)  # bed 1 loses its signal while pending
    t.update(matrix(2, hr=[150, 150]), 10 * S)
    assert t.on_hi[:, 0].tolist() == [True, False]
    t.update(matrix(2, hr=[np.nan, 150]), 11 * S)  # bed 0 loses its signal after the alarm
    assert t.on_hi[0, 0]
    m = matrix(2, hr=[np.nan, 150])
    (cond,) = [c for c in t.conditions(["B0", "B1"], ["A", "A"], m).values() if c.bed == "B0"]
    assert "signal lost" in cond.title and cond.kind == "limit:hr_high" and cond.priority == Priority.MEDIUM


def test_limit_titles_write_units_as_clinicians_do() -> None:
    temp = Limit(param="temp", low=None, high=38.5, delay_s=0, hysteresis=0.2, priority=Priority.MEDIUM)
    t = LimitTracker(["temp", "spo2", "hr"])
    t.set_limits([{"temp": temp, "spo2": SPO2, "hr": HR}])
    m = matrix(1, temp=[39.1], spo2=[85], hr=[150])
    for sec in (0, 20):
        t.update(m, sec * S)
    titles = {k: c.title for (_, k), c in t.conditions(["B0"], ["A"], m).items()}
    assert titles == {"limit:temp_high": "Temp high: 39.1 °C (limit 38.5)", "limit:spo2_low": "SpO₂ low: 85% (limit 88)",
                      "limit:hr_high": "HR high: 150 beats/min (limit 140)"}  # fmt: skip


def test_news2_rise_must_hold_and_spo2_fall_must_be_sustained() -> None:
    pol = alarm_policy().defaults
    t = TrendTracker()
    rules = [(pol.news2_rise, pol.spo2_fall)]
    beds, wards = ["B0"], ["A"]
    t0 = 10 * 60 * S
    t.update(t0, np.array([1.0]), np.array([97.0]))
    t.conditions(t0, beds, wards, np.array([1.0]), rules)
    assert not t.conditions(t0 + 1 * S, beds, wards, np.array([3.0]), rules)  # the rise starts
    t.update(t0 + 29 * S, np.array([3.0]), np.array([97.0]))
    assert not t.conditions(t0 + 29 * S, beds, wards, np.array([3.0]), rules)
    (cond,) = t.conditions(t0 + 31 * S, beds, wards, np.array([3.0]), rules).values()
    assert cond.kind == "trend:news2_rise" and "up 2 to 3" in cond.title
    # SpO2: 97 for several minutes, then two minutes at 92 (a 5-point fall) -> fires; one minute is not enough
    t2 = TrendTracker()
    base = 100 * 60 * S
    for minute in range(6):
        t2.update(base + minute * 60 * S, np.array([np.nan]), np.array([97.0]))
    t2.update(base + 6 * 60 * S, np.array([np.nan]), np.array([92.0]))
    assert not (t2.spo2_fall(base + 6 * 60 * S, 1, pol.spo2_fall) >= 4).any()
    t2.update(base + 7 * 60 * S, np.array([np.nan]), np.array([92.0]))
    assert t2.spo2_fall(base + 7 * 60 * S, 1, pol.spo2_fall)[0] == pytest.approx(5)


def test_technical_conditions() -> None:
    pol = alarm_policy().defaults
    n, now = 5, 1_000_000
    flags = np.zeros((n, len(PARAMETERS)), dtype=np.int16)
    flags[1, COLUMN["spo2"]] = Flag.PROBE_OFF
    flags[2, COLUMN["hr"]] = Flag.LEADS_OFF
    flags[4, COLUMN["spo2"]] = Flag.INVALID  # an HL7 gateway says only "no value"
    view = TechnicalView(
        now=now - 20 * S, beds=["B0", "B1", "B2", "B3", "B4"], wards=["A"] * 5, agents=["e1", "e1", "e1", "e2", "e1"],
        last_rx=np.array([now - 31 * S, now, now, 0, now]), watched_since=np.array([now - 100 * S] * 5),
        flags=flags, agents_offline={"e2": ("A", now - 16 * S)}, store_error="disk full",
        overloaded="the hub is past its capacity",
    )  # fmt: skip
    t = TechnicalTracker()
    ms = np.full(n, pol.no_data_s * 1000), np.full(n, pol.probe_off_delay_s * 1000)
    t.conditions(view, [pol] * n, *ms)  # flags seen 20 s before now
    view.now = now
    got = t.conditions(view, [pol] * n, *ms)
    assert set(got) == {
        ("B0", "technical:no_data"),
        ("B1", "technical:probe_off"),
        ("B2", "technical:leads_off"),
        ("B4", "technical:probe_off"),
        ("agent:e2", "technical:agent_offline"),  # covers B3: no separate no-data alarm for it
        ("hub", "technical:store_unreachable"),
        ("hub", "technical:hub_overloaded"),
    }
    assert all(c.category == "technical" for c in got.values())
    overloaded = got[("hub", "technical:hub_overloaded")]
    assert overloaded.ward == "" and overloaded.priority == Priority.MEDIUM and overloaded.detail == "the hub is past its capacity"
    assert got[("B1", "technical:probe_off")].title == "SpO2 probe off"
    assert got[("B4", "technical:probe_off")].title == "SpO2 not valid"


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        ({"limits": {"hr": {"low": 150, "high": 140}}}, "must be below high"),
        ({"limits": {"spo2": {"low": 120}}}, "outside what spo2 can measure"),
        ({"limits": {"heart": {"low": 40, "delay_s": 1, "hysteresis": 1, "priority": "high"}}}, "unknown keys"),
        ({"limits": {"hr": {"priority": "urgent"}}}, "limits.hr.priority: must be high, medium or low, not 'urgent'"),
        ({"silence_max_s": 1800}, "at most 15 minutes"),
        ({"escalation": {"tiers": []}}, "non-empty list"),
        ({"scores": {"news2": {"medium_total": 8}}}, "unknown keys ['medium_total']"),
    ],
)
def test_invalid_ward_policies_are_refused(patch: dict, words: str) -> None:
    raw = default_raw("alarms.yaml")
    raw["wards"] = {"X": patch}
    with pytest.raises(PolicyError) as info:
        parse_policy(raw, "test")
    assert words in str(info.value) and "wards.X" in str(info.value)


def test_ward_override_merges_over_defaults() -> None:
    raw = default_raw("alarms.yaml")
    raw["wards"] = {"COPD": {"limits": {"spo2": {"low": 85}}}}
    pol = parse_policy(raw)
    assert pol.for_ward("COPD").limits["spo2"].low == 85 and pol.for_ward("COPD").limits["spo2"].delay_s == 15
    assert pol.for_ward("A").limits["spo2"].low == 88
