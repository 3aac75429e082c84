"""``since_last_beat_s`` (ECG) and ``since_last_pulse_s`` (pleth): seconds from the last beat to the window's end.

The asystole alarm (``alerts.arrhythmia``) reads them; here they are checked on
synthetic signals whose beats are known: a regular rhythm, a rhythm that stops,
and flat lines with small noise (which must not count as beats: ANSI/AAMI EC13's
0.15 mV for a QRS).
"""

from __future__ import annotations

import numpy as np
import pytest
from waveform_support import ECG_FS, PLETH_FS, heart_with_pause, sinus_ecg, sinus_pleth

from alerts.waveforms.quality import analyse_ecg, analyse_pleth


@pytest.mark.parametrize("rate", [35.0, 60.0, 120.0])
def test_a_regular_rhythm_has_its_last_beat_within_one_interval(rate: float) -> None:
    x, r = sinus_ecg(rate)
    q = analyse_ecg(x, ECG_FS, 0)
    assert q.indices["since_last_beat_s"] == pytest.approx((len(x) - r[-1]) / ECG_FS, abs=0.03)
    assert q.indices["since_last_beat_s"] < 60.0 / rate + 0.05
    p, feet = sinus_pleth(rate)
    qp = analyse_pleth(p, PLETH_FS, 0)
    assert qp.indices["since_last_pulse_s"] == pytest.approx(10.0 - feet[-1], abs=0.1)


@pytest.mark.parametrize("stop", [3.0, 5.5, 8.0])
def test_a_rhythm_that_stops_is_measured_from_its_last_beat(stop: float) -> None:
    ecg, pleth, r = heart_with_pause(70.0, 10.0, (stop, 10.0))
    q = analyse_ecg(ecg, ECG_FS, 0)
    assert q.indices["since_last_beat_s"] == pytest.approx(10.0 - r[-1], abs=0.03)
    qp = analyse_pleth(pleth, PLETH_FS, 0)
    assert qp.indices["since_last_pulse_s"] == pytest.approx(10.0 - (r[-1] + 0.2), abs=0.1)


def test_a_flat_line_with_noise_or_small_waves_counts_no_beat() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(int(10 * ECG_FS)) / ECG_FS
    for x in (rng.normal(0.0, 0.01, len(t)), rng.normal(0.0, 0.03, len(t)),
              0.1 * np.exp(-(((t % 1.2) - 0.3) ** 2) / (2 * 0.02**2)) + rng.normal(0.0, 0.005, len(t))):  # P-like waves of 0.1 mV
        q = analyse_ecg(x, ECG_FS, 0)
        assert q.indices["since_last_beat_s"] == 10.0  # the window's length: no beat in it
    tp = np.arange(int(10 * PLETH_FS)) / PLETH_FS
    flat = rng.normal(0.0, 0.0001, len(tp)) + 0.0002 * np.sin(2 * np.pi * 0.3 * tp)  # noise and breathing, no pulse
    assert analyse_pleth(flat, PLETH_FS, 0).indices["since_last_pulse_s"] == 10.0


def test_the_index_can_tell_a_pause_from_a_beat_at_the_window_end() -> None:
    """The same rhythm, stopped 4.5 s before the window's end or not at all: the index differs by seconds."""
    beating, _, _ = heart_with_pause(70.0, 10.0)
    stopped, _, r = heart_with_pause(70.0, 10.0, (5.5, 10.0))
    a = analyse_ecg(beating, ECG_FS, 0).indices["since_last_beat_s"]
    b = analyse_ecg(stopped, ECG_FS, 0).indices["since_last_beat_s"]
    assert a < 0.9 and b >= 4.0
