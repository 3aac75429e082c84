"""Scenarios reach their designed NEWS2 bands for every seed; the demo mix is deterministic."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from news2_ref import news2_totals, reference_news2

from simulators.physiology import Physiology
from simulators.scenarios import DEMO_MIX, SCENARIOS, assign_scenarios, get_scenario

SEEDS = range(30)
SECONDS = 330


def simulate(name: str, seed: int, seconds: int = SECONDS, nibp_interval_s: float = 60.0) -> list[dict[str, float]]:
    """Per second: the monitor's numerics plus ``sbp``, the last NIBP reading (as the hub scores)."""
    p = Physiology(seed, get_scenario(name).vitals, nibp_interval_s=nibp_interval_s)
    rows = []
    sbp = float("nan")
    for _ in range(seconds):
        row = p.step()
        sbp = row.get("nibp_sys", sbp)
        rows.append({**row, "sbp": sbp})
    return rows


def news2_matrix(name: str) -> tuple[np.ndarray, np.ndarray, list[list[dict[str, float]]]]:
    """(totals [seed x second], any-three [seed x second], rows)."""
    runs = [simulate(name, seed) for seed in SEEDS]
    flat = [row for rows in runs for row in rows]
    totals, threes = news2_totals(flat)
    return totals.reshape(len(SEEDS), SECONDS), threes.reshape(len(SEEDS), SECONDS), runs


def column(runs: list[list[dict[str, float]]], key: str) -> np.ndarray:
    return np.array([[row[key] for row in rows] for rows in runs])


def test_reference_news2_matches_the_published_worked_examples() -> None:
    assert reference_news2(rr=16, spo2=98, o2=0, sbp=120, hr=80, acvpu=0, temp=37.0) == 0
    assert reference_news2(rr=18, spo2=90, o2=1, sbp=100, hr=100, acvpu=2, temp=36.5) == 11
    assert reference_news2(rr=7, spo2=80, o2=1, sbp=85, hr=140, acvpu=4, temp=34.5) == 20


def test_news2_helper_agrees_with_reference() -> None:
    rows = [row for seed in range(3) for row in simulate("sepsis", seed, 300)]
    totals, _ = news2_totals(rows)
    keys = ("rr", "spo2", "o2", "sbp", "hr", "acvpu", "temp")
    assert totals.tolist() == [reference_news2(**{k: r[k] for k in keys}) for r in rows]  # type: ignore[arg-type]


def test_stable_stays_low_without_single_three() -> None:
    totals, threes, _ = news2_matrix("stable")
    assert totals.min() >= 0 and totals.max() <= 2
    assert not threes.any()


@pytest.mark.parametrize("name", ["probe_off", "silent"])
def test_device_scenarios_have_stable_vitals(name: str) -> None:
    totals, threes, _ = news2_matrix(name)
    assert totals.max() <= 2 and not threes.any()


def test_sepsis_develops_over_minutes() -> None:
    totals, _, runs = news2_matrix("sepsis")
    start = totals[:, :5]
    assert 2 <= np.median(start) <= 3 and start.max() <= 6
    assert totals[:, 30:].min() >= 5
    assert totals[:, 120:].min() >= 7
    assert np.median(totals[:, 30]) < np.median(totals[:, 120]) < np.median(totals[:, 300])
    hr, rr, temp, spo2, sbp, acvpu = (column(runs, k) for k in ("hr", "rr", "temp", "spo2", "sbp", "acvpu"))
    early, late = slice(0, 10), slice(300, 330)
    assert (hr[:, late].mean(axis=1) - hr[:, early].mean(axis=1) >= 30).all()
    assert (rr[:, late].mean(axis=1) - rr[:, early].mean(axis=1) >= 7).all()
    assert (temp[:, late].mean(axis=1) - temp[:, early].mean(axis=1) >= 1.0).all()
    assert (sbp[:, late].mean(axis=1) < sbp[:, early].mean(axis=1) - 15).all()
    assert (spo2[:, late].mean(axis=1) < spo2[:, early].mean(axis=1) - 1).all()
    assert spo2.min() >= 88  # "slightly" down
    assert (acvpu[:, :170] == 0).all() and (acvpu[:, 180:] == 1).all()  # new confusion later


def test_hypoxia_is_acute() -> None:
    totals, _, runs = news2_matrix("hypoxia")
    spo2, rr, hr, o2 = (column(runs, k) for k in ("spo2", "rr", "hr", "o2"))
    assert (spo2[:, :3] >= 95).all()
    assert (spo2[:, 15:120] >= 84).all() and (spo2[:, 15:120] <= 88).all()
    assert (rr[:, 20:120] - rr[:, :3].mean(axis=1, keepdims=True) >= 8).all()
    assert (hr[:, 20:120] - hr[:, :3].mean(axis=1, keepdims=True) >= 20).all()
    assert totals[:, :3].max() <= 1
    assert totals[:, 20:].min() >= 5
    assert (o2[:, :120] == 0).all() and (o2[:, 120:] == 1).all()


def test_bradycardia() -> None:
    totals, threes, runs = news2_matrix("bradycardia")
    hr = column(runs, "hr")
    assert hr.min() >= 33 and hr.max() <= 40 and 36 <= np.median(hr) <= 38
    assert threes.all()  # HR <= 40 scores 3 on its own
    assert totals.min() >= 3 and totals.max() <= 4


def test_probe_off_schedule() -> None:
    s = get_scenario("probe_off")
    assert not s.spo2_probe_off(9.8) and s.spo2_probe_off(10) and s.spo2_probe_off(69)
    assert not s.spo2_probe_off(70) and s.spo2_probe_off(250) and not s.spo2_probe_off(400)
    assert not any(SCENARIOS[n].spo2_probe_off(t) for n in SCENARIOS if n != "probe_off" for t in range(0, 400, 5))


def test_silent_schedule() -> None:
    s = get_scenario("silent")
    assert not s.silent(14.8) and s.silent(15) and s.silent(10_000)
    assert not any(SCENARIOS[n].silent(t) for n in SCENARIOS if n != "silent" for t in range(0, 400, 5))


def test_unknown_scenario() -> None:
    with pytest.raises(KeyError, match="unknown scenario"):
        get_scenario("zombie")


def test_assign_scenarios_demo_mix_for_50_beds() -> None:
    names = assign_scenarios(50, seed=1)
    assert Counter(names) == {"stable": 30, "sepsis": 5, "hypoxia": 5, "bradycardia": 3, "probe_off": 4, "silent": 3}
    assert names == assign_scenarios(50, seed=1)
    assert names != assign_scenarios(50, seed=2)  # a different order...
    assert Counter(assign_scenarios(50, seed=2)) == Counter(names)  # ...of the same mix


@pytest.mark.parametrize("n", range(121))
def test_assign_scenarios_every_scenario_from_six_beds(n: int) -> None:
    names = assign_scenarios(n, seed=n)
    assert len(names) == n and set(names) <= set(SCENARIOS)
    counts = Counter(names)
    if n >= 6:
        assert set(counts) == set(DEMO_MIX)
    if n >= 20:
        assert counts["stable"] == max(counts.values())
        for name, share in DEMO_MIX.items():
            assert abs(counts[name] - share * n) <= 1.5, (name, counts)
