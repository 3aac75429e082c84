"""The two R-wave detectors on ECGs with known beats: both find every beat, and agree."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.waveforms.ecg_beats import hilbert_beats, pan_tompkins
from alerts.waveforms.sqi import bsqi
from waveform_support import ECG_FS, band_noise, sinus_ecg


def matched(found: np.ndarray, truth: np.ndarray, tol: int) -> int:
    return sum(int(np.min(np.abs(found - r)) <= tol) for r in truth) if len(found) else 0


@pytest.mark.parametrize("detector", [pan_tompkins, hilbert_beats])
@pytest.mark.parametrize("rate", [35.0, 60.0, 72.0, 110.0, 150.0, 200.0])
def test_each_detector_finds_every_beat_of_a_clean_sinus_rhythm(detector, rate: float) -> None:
    x, truth = sinus_ecg(rate, seconds=10.0)
    found = detector(x, ECG_FS)
    inner = truth[(truth > 0.3 * ECG_FS) & (truth < len(x) - 0.3 * ECG_FS)]  # filter edges aside
    assert matched(found, inner, tol=int(0.02 * ECG_FS)) == len(inner)  # each within 20 ms of the R wave
    assert len(found) <= len(truth)  # and nothing else (no T waves, no P waves)


def test_detectors_agree_on_clean_ecg_and_not_under_motion_noise() -> None:
    x, _ = sinus_ecg(80.0)
    assert bsqi(pan_tompkins(x, ECG_FS), hilbert_beats(x, ECG_FS), ECG_FS) == 1.0
    worst = 1.0
    for seed in range(5):
        noisy = x + band_noise(len(x), ECG_FS, 1.0, 20.0, rms=0.6, seed=seed)
        worst = min(worst, bsqi(pan_tompkins(noisy, ECG_FS), hilbert_beats(noisy, ECG_FS), ECG_FS))
        assert bsqi(pan_tompkins(noisy, ECG_FS), hilbert_beats(noisy, ECG_FS), ECG_FS) < 0.9
    assert worst < 0.75


def test_bsqi_counts_matches_within_150_ms() -> None:
    a = np.array([100, 300, 500, 700])
    assert bsqi(a, a + 30, 250.0) == 1.0  # 120 ms apart: the same beats
    assert bsqi(a, a + 45, 250.0) == 0.0  # 180 ms apart: no beat matched
    assert bsqi(a, np.array([100, 300]), 250.0) == pytest.approx(2 / 4)
    assert bsqi(a, np.array([]), 250.0) == 0.0 and bsqi(np.array([]), np.array([]), 250.0) == 0.0
