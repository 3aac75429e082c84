"""Signal quality indices of one window of one lead, each from its published source.

ECG (all from Li, Mark & Clifford (2008), "Robust heart rate estimation from
multiple asynchronous noisy sources using signal quality indices and a Kalman
filter", Physiol Meas 29(1):15-32; thresholds as used by Clifford et al. (2012),
"Signal quality indices and data fusion for determining clinical acceptability
of electrocardiograms", Physiol Meas 33(9):1419-1433, and Behar et al. (2013)):

* ``bsqi``: agreement of two independent beat detectors: beats matched within
  150 ms over all beats either found; 1 = full agreement. Good at 0.9 and above.
* ``ksqi``: the (Pearson) kurtosis of the signal; a clean ECG is peaky, above 5;
  Gaussian noise is 3, a sine 1.5.
* ``psqi``: the share of the 5-40 Hz power that lies in the QRS band 5-15 Hz
  (Welch spectrum); about 0.5-0.8 for a clean ECG, low for broadband noise.
* ``bas_sqi``: 1 minus the share of the 0-40 Hz power below 1 Hz (the baseline);
  near 1 for a steady baseline, low for baseline wander and electrode pops.

Pleth:

* ``template_sqi``: after Li & Clifford (2012), "Dynamic time warping and
  machine learning for signal quality assessment of pulsatile signals",
  Physiol Meas 33(9):1491-1501: each pulse (onset to next onset, linearly
  resampled to the median pulse length, their "linear resampling" matching) is
  correlated with the window's mean pulse; the index is the mean correlation.
  Near 1 for a clean pleth, also while the rate changes; low with motion.
* ``skew_sqi``: the skewness of the pleth, after Elgendi (2016), "Optimal
  signal quality index for photoplethysmogram signals", Bioengineering 3(4):21,
  where it was the best single PPG index; a clean pulse is skewed (positive).

All are pure functions of numpy arrays.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import welch
from scipy.stats import kurtosis, skew

MATCH_S = 0.15  # bSQI: two detections of one beat are within 150 ms


def bsqi(a: np.ndarray, b: np.ndarray, fs: float, tolerance_s: float = MATCH_S) -> float:
    """Beats (sample indices) found by both detectors over beats found by either; 0 when neither found any."""
    if len(a) == 0 and len(b) == 0:
        return 0.0
    if len(a) == 0 or len(b) == 0:
        return 0.0
    tol = tolerance_s * fs
    j = np.searchsorted(b, a)
    near = np.minimum(np.abs(a - b[np.clip(j, 0, len(b) - 1)]), np.abs(a - b[np.clip(j - 1, 0, len(b) - 1)]))
    matched = int(np.count_nonzero(near <= tol))
    return matched / (len(a) + len(b) - matched)


def ksqi(x: np.ndarray) -> float:
    """Pearson kurtosis (3 for Gaussian noise); 0 for a constant signal."""
    if float(np.ptp(x)) == 0.0:
        return 0.0
    return float(kurtosis(x, fisher=False, bias=True))


def _band_powers(x: np.ndarray, fs: float, bands: list[tuple[float, float]]) -> list[float]:
    nper = min(len(x), int(4 * fs))
    freqs, pxx = welch(x - np.mean(x), fs=fs, nperseg=nper)
    return [float(pxx[(freqs >= lo) & (freqs <= hi)].sum()) for lo, hi in bands]


def psqi(x: np.ndarray, fs: float) -> float:
    """Power 5-15 Hz over power 5-40 Hz (Welch, 4 s segments); 0 when there is no power there."""
    qrs, wide = _band_powers(x, fs, [(5.0, 15.0), (5.0, min(40.0, fs / 2))])
    return qrs / wide if wide > 0 else 0.0


def bas_sqi(x: np.ndarray, fs: float) -> float:
    """1 - power 0-1 Hz over power 0-40 Hz (Welch, 4 s segments); 1 when there is no power."""
    base, wide = _band_powers(x, fs, [(0.0, 1.0), (0.0, min(40.0, fs / 2))])
    return 1.0 - base / wide if wide > 0 else 1.0


def template_sqi(f: np.ndarray, onsets: np.ndarray) -> float:
    """Mean correlation of each pulse (onset to next onset, linearly resampled to the median pulse length)
    with the mean pulse; 0 with fewer than 3 whole pulses."""
    if len(onsets) < 4:
        return 0.0
    length = int(np.median(np.diff(onsets)))
    if length < 4:
        return 0.0
    grid = np.linspace(0.0, 1.0, length)
    beats = np.array([np.interp(grid, np.linspace(0.0, 1.0, b - a), f[a:b]) for a, b in zip(onsets[:-1], onsets[1:]) if b - a >= 2])
    if len(beats) < 3:
        return 0.0
    template = beats.mean(axis=0)
    t = template - template.mean()
    tn = float(np.sqrt((t * t).sum()))
    if tn == 0.0:
        return 0.0
    b = beats - beats.mean(axis=1, keepdims=True)
    bn = np.sqrt((b * b).sum(axis=1))
    r = np.where(bn > 0, (b @ t) / np.where(bn > 0, bn, 1.0) / tn, 0.0)
    return float(np.clip(r, 0.0, 1.0).mean())


def skew_sqi(x: np.ndarray) -> float:
    """Skewness of the signal; 0 for a constant signal."""
    if float(np.ptp(x)) == 0.0:
        return 0.0
    return float(skew(x, bias=True))
