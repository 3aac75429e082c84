"""analyse_ecg / analyse_pleth: bounded, documented errors, and any finite input within limits gives a LeadQuality."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from alerts.lead_quality import LeadQuality
from alerts.waveforms.quality import MAX_WINDOW_S, MIN_WINDOW_S, WaveformInputError, analyse_ecg, analyse_pleth

ANALYSE = [analyse_ecg, analyse_pleth]


@pytest.mark.parametrize("analyse", ANALYSE)
def test_bad_input_is_a_documented_error(analyse) -> None:
    ok = np.zeros(1250)
    for bad, fs, words in [
        (np.full(1250, np.nan), 125.0, "finite"),
        (np.r_[ok, np.inf], 125.0, "finite"),
        (np.zeros((2, 1250)), 125.0, "one-dimensional"),
        (np.zeros(int(MAX_WINDOW_S * 125) + 1), 125.0, "between"),
        (np.zeros(int(MIN_WINDOW_S * 125) - 1), 125.0, "between"),
        (ok, 10.0, "sample rate"),
        (ok, math.nan, "sample rate"),
        (np.array(["a"] * 1250), 125.0, "numbers"),
        (np.full(1250, 1e9), 125.0, "unit"),
    ]:
        with pytest.raises(WaveformInputError, match=words):
            analyse(bad, fs, 0)
    assert issubclass(WaveformInputError, ValueError)


@st.composite
def windows(draw: st.DrawFn) -> tuple[np.ndarray, float]:
    fs = draw(st.sampled_from([50.0, 100.0, 125.0, 250.0]))
    n = draw(st.integers(int(MIN_WINDOW_S * fs), int(12 * fs)))
    elements = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    x = draw(hnp.arrays(np.float64, n, elements=elements, fill=st.sampled_from([0.0, 1.0, -3.5])))
    return x, fs


@pytest.mark.parametrize("analyse", ANALYSE)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(window=windows())
def test_any_finite_window_gives_a_lead_quality(analyse, window: tuple[np.ndarray, float]) -> None:
    x, fs = window
    q = analyse(x, fs, 123)
    assert isinstance(q, LeadQuality) and q.t_end == 123 and q.window_s == pytest.approx(len(x) / fs)
    assert 0.0 <= q.sqi <= 1.0 and (q.reason == "") == q.good
    assert q.rate is None or 15.0 <= q.rate <= 350.0
    assert all(math.isfinite(v) for v in q.indices.values())
