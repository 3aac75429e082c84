"""Signal quality indices and verdicts on signals with known answers: clean, motion, pops, flat, dropout, weak."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.waveforms.pleth_beats import pleth_pulses
from alerts.waveforms.quality import analyse_ecg, analyse_pleth
from alerts.waveforms.sqi import bas_sqi, ksqi, psqi, template_sqi
from waveform_support import ECG_FS, PLETH_FS, band_noise, sinus_ecg, sinus_pleth

T_END = 1_700_000_010_000


@pytest.mark.parametrize("rate", [40.0, 72.0, 130.0])
def test_clean_sinus_is_good_with_the_exact_rate(rate: float) -> None:
    x, _ = sinus_ecg(rate)
    q = analyse_ecg(x, ECG_FS, T_END)
    assert q.good and q.reason == "" and q.signal == "ecg" and q.t_end == T_END and q.window_s == 10.0
    assert q.indices["bsqi"] == 1.0 and q.indices["ksqi"] > 5 and 0.4 < q.indices["psqi"] < 0.95 and q.indices["bas_sqi"] > 0.8
    assert q.rate is not None and abs(q.rate - rate) <= 1.0
    assert q.sqi > 0.9


def test_motion_noise_drops_bsqi_and_ksqi_and_the_verdict() -> None:
    x, _ = sinus_ecg(75.0)
    clean = analyse_ecg(x, ECG_FS, T_END)
    for seed in range(3):
        q = analyse_ecg(x + band_noise(len(x), ECG_FS, 1.0, 20.0, rms=0.6, seed=seed), ECG_FS, T_END)
        assert not q.good and q.reason == "ECG noisy (motion?)"
        assert q.indices["bsqi"] < clean.indices["bsqi"] and q.indices["ksqi"] < 5 < clean.indices["ksqi"]
        assert q.sqi < clean.sqi


def test_electrode_pops_drop_the_baseline_index_and_the_verdict() -> None:
    x, _ = sinus_ecg(75.0)
    t = np.arange(len(x)) / ECG_FS
    popped = x.copy()
    for at, height in ((2.1, 3.0), (4.7, -2.5), (7.3, 3.5)):
        popped[t >= at] += height * np.exp(-(t[t >= at] - at) / 0.3)
    q = analyse_ecg(popped, ECG_FS, T_END)
    assert not q.good and "baseline" in q.reason
    assert q.indices["bas_sqi"] < 0.7 < analyse_ecg(x, ECG_FS, T_END).indices["bas_sqi"]


def test_flat_ecg_is_poor_with_a_reason_and_no_rate() -> None:
    flat = np.random.default_rng(1).normal(0.0, 0.005, int(10 * ECG_FS))
    q = analyse_ecg(flat, ECG_FS, T_END)
    assert not q.good and q.reason == "ECG flat (leads off?)" and q.rate is None and q.sqi == 0.0
    assert not analyse_ecg(np.zeros(2500), ECG_FS, T_END).good


def test_gaussian_noise_alone_is_poor_by_kurtosis_and_spectrum() -> None:
    noise = np.random.default_rng(2).normal(0.0, 0.5, 2500)
    assert ksqi(noise) == pytest.approx(3.0, abs=0.3)
    assert psqi(noise, ECG_FS) < 0.4
    assert not analyse_ecg(noise, ECG_FS, T_END).good


def test_wander_lowers_bas_sqi() -> None:
    x, _ = sinus_ecg(70.0)
    t = np.arange(len(x)) / ECG_FS
    assert bas_sqi(x, ECG_FS) > 0.9 > 0.5 > bas_sqi(x + 2.0 * np.sin(2 * np.pi * 0.3 * t), ECG_FS)


@pytest.mark.parametrize("rate", [45.0, 75.0, 140.0])
def test_clean_pleth_is_good_with_the_exact_pulse_rate(rate: float) -> None:
    x, feet = sinus_pleth(rate)
    q = analyse_pleth(x, PLETH_FS, T_END)
    assert q.good and q.reason == "" and q.signal == "pleth"
    assert q.rate is not None and abs(q.rate - rate) <= 1.0
    assert q.indices["template_sqi"] > 0.95 and q.indices["skew_sqi"] > 0
    onsets = pleth_pulses(x, PLETH_FS).onsets / PLETH_FS
    inner = feet[(feet > 0.5) & (feet < 9.5)]
    assert all(np.min(np.abs(onsets - f)) < 0.05 for f in inner)  # each foot found within 50 ms


def test_template_sqi_high_on_clean_low_on_motion() -> None:
    x, _ = sinus_pleth(80.0)
    moved = x + band_noise(len(x), PLETH_FS, 0.5, 3.0, rms=0.06, seed=3)
    clean_p, moved_p = pleth_pulses(x, PLETH_FS), pleth_pulses(moved, PLETH_FS)
    assert template_sqi(clean_p.filtered, clean_p.onsets) > 0.95
    assert template_sqi(moved_p.filtered, moved_p.onsets) < 0.9  # the verdict's threshold
    q = analyse_pleth(moved, PLETH_FS, T_END)
    assert not q.good and q.reason == "pleth irregular (motion?)"


def test_pleth_dropout_is_poor_flat() -> None:
    x, _ = sinus_pleth(80.0)
    x[300:] = np.random.default_rng(4).normal(0.0, 0.00002, len(x) - 300)  # the probe lost the signal after 2.4 s
    q = analyse_pleth(x[400:], PLETH_FS, T_END)
    assert not q.good and q.reason == "pleth flat (probe off?)" and q.rate is None
    assert not analyse_pleth(x, PLETH_FS, T_END).good  # partly dropped out: too few pulses to trust


def test_weak_pleth_is_poor_perfusion() -> None:
    x, _ = sinus_pleth(80.0, height=0.002)
    q = analyse_pleth(x, PLETH_FS, T_END)
    assert not q.good and "perfusion" in q.reason
    assert analyse_pleth(x, PLETH_FS, T_END, weak=0.001).good  # a caller's own threshold
