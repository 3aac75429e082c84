"""Patient physiology model: determinism, ranges, NIBP cycle, ECG shape and rate."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.physiology import (
    ECG_RATE_HZ,
    ECG_SCALE_MV,
    Physiology,
    Vitals,
    round_half_up,
)
from simulators.scenarios import SCENARIOS, get_scenario
from wire.vocabulary import BY_KEY, CATEGORICAL

STABLE = get_scenario("stable").vitals


def run(p: Physiology, seconds: int) -> list[dict[str, float]]:
    return [p.step() for _ in range(seconds)]


def r_peaks(ecg: np.ndarray, threshold: int = 120) -> np.ndarray:
    """Indices of R waves: local maxima above ``threshold`` counts, at least 0.2 s apart."""
    x = ecg.astype(int)
    cand = np.flatnonzero((x[1:-1] > threshold) & (x[1:-1] >= x[:-2]) & (x[1:-1] > x[2:])) + 1
    peaks: list[int] = []
    for i in cand:
        if not peaks or i - peaks[-1] > 0.2 * ECG_RATE_HZ:
            peaks.append(int(i))
    return np.array(peaks)


def test_same_seed_same_output() -> None:
    a, b = Physiology(7, STABLE), Physiology(7, STABLE)
    assert run(a, 200) == run(b, 200)
    assert np.array_equal(a.ecg(2000), b.ecg(2000))


def test_sequence_seeds_work_and_differ() -> None:
    assert run(Physiology((7, 1), STABLE), 30) == run(Physiology((7, 1), STABLE), 30)
    assert run(Physiology((7, 1), STABLE), 30) != run(Physiology((7, 2), STABLE), 30)
    assert run(Physiology(1, STABLE), 30) != run(Physiology(2, STABLE), 30)


def test_waveforms_do_not_change_numerics() -> None:
    quiet, busy = Physiology(3, STABLE), Physiology(3, STABLE)
    out_quiet = run(quiet, 60)
    out_busy = []
    for _ in range(60):
        out_busy.append(busy.step())
        busy.ecg(ECG_RATE_HZ)
    assert out_quiet == out_busy


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_values_in_vocabulary_ranges_and_chart_precision(name: str) -> None:
    for seed in range(5):
        for row in run(Physiology(seed, SCENARIOS[name].vitals), 400):
            assert set(row) >= {"hr", "spo2", "rr", "temp", "etco2", "o2", "acvpu"}
            for key, value in row.items():
                p = BY_KEY[key]
                assert p.lo <= value <= p.hi, (key, value)
                decimals = 1 if key == "temp" else 0
                assert value == round(value, decimals), (key, value)
                if key in CATEGORICAL:
                    assert value in ((0, 1) if key == "o2" else (0, 1, 2, 3, 4))
            if "nibp_sys" in row:
                assert row["nibp_dia"] < row["nibp_mean"] < row["nibp_sys"]


def test_stable_values_are_plausible_and_vary_a_little() -> None:
    rows = run(Physiology(11, STABLE), 300)
    hr = np.array([r["hr"] for r in rows])
    spo2 = np.array([r["spo2"] for r in rows])
    temp = np.array([r["temp"] for r in rows])
    assert 65 <= hr.min() and hr.max() <= 85 and hr.std() > 0.3
    assert 94 <= spo2.min() and spo2.max() <= 100
    assert 36.5 <= temp.min() and temp.max() <= 37.5
    assert len(set(hr.tolist())) > 2  # not a constant
    assert np.abs(np.diff(hr)).max() <= 6  # no jumps: drift is slow, noise small


@pytest.mark.parametrize("interval", [60.0, 15.0, 7.5])
def test_nibp_only_once_per_cycle(interval: float) -> None:
    for seed in range(4):
        rows = run(Physiology(seed, STABLE, nibp_interval_s=interval), 600)
        times = [t for t, r in enumerate(rows) if "nibp_sys" in r]
        assert all(("nibp_dia" in rows[t]) and ("nibp_mean" in rows[t]) for t in times)
        assert all(("nibp_dia" in r) == ("nibp_sys" in r) for r in rows)
        assert times[0] == 0  # a reading when monitoring starts
        assert interval <= times[1] < 2 * interval  # then on the patient's own cycle phase
        gaps = np.diff(times[1:])
        assert np.all(np.abs(gaps - interval) <= 1), gaps  # one reading per cycle (whole seconds)
        assert abs(len(times) - 600 / interval) <= 2


def test_nibp_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Physiology(1, STABLE, nibp_interval_s=0)


def test_ecg_is_int16_with_qrs_of_the_right_size() -> None:
    p = Physiology(5, STABLE)
    p.step()
    ecg = p.ecg(ECG_RATE_HZ * 10)
    assert ecg.dtype == np.int16 and ecg.shape == (2500,)
    mv = ecg * ECG_SCALE_MV
    assert 0.8 < mv.max() < 1.6  # R wave around 1.1 mV
    assert -0.5 < mv.min() < -0.1  # S wave
    assert abs(np.median(mv)) < 0.1  # baseline near zero


@pytest.mark.parametrize(("name", "expected_hr"), [("stable", 76), ("bradycardia", 37), ("sepsis", 135)])
def test_ecg_rate_follows_heart_rate(name: str, expected_hr: float) -> None:
    p = Physiology(2, SCENARIOS[name].vitals)
    run(p, 300)  # sepsis: well into tachycardia
    chunks = []
    for _ in range(60):
        p.step()
        chunks += [p.ecg(50) for _ in range(5)]  # as the monitor does: 5 segments a second
    ecg = np.concatenate(chunks)
    beats_per_min = len(r_peaks(ecg))
    assert abs(beats_per_min - p.true_hr) <= 4
    assert abs(beats_per_min - expected_hr) <= 0.12 * expected_hr


def test_ecg_continuous_across_segments() -> None:
    p = Physiology(9, STABLE)
    p.step()
    ecg = np.concatenate([p.ecg(50) for _ in range(50)]).astype(int)
    assert np.abs(np.diff(ecg)).max() < 120  # no seams between segments (QRS slopes are < 0.6 mV/4 ms)


def test_trajectory_drives_the_model() -> None:
    def ramp(t: float) -> Vitals:
        return Vitals(hr=60 + t, rr=14, spo2=98, sbp=120, dbp=80, temp=37.0, etco2=38, o2=int(t >= 50), acvpu=0)

    rows = run(Physiology(1, ramp), 100)
    assert rows[10]["hr"] < 80 and rows[90]["hr"] > 140
    assert rows[49]["o2"] == 0 and rows[50]["o2"] == 1


def test_round_half_up() -> None:
    assert round_half_up(2.5) == 3 and round_half_up(3.5) == 4 and round_half_up(2.49) == 2
    assert round_half_up(35.05, 1) == 35.1 and round_half_up(36.85, 1) == 36.9
