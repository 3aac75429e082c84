"""Pulse detection on the plethysmogram by the slope sum function.

After Zong et al. (2003), "An open-source algorithm to detect onset of arterial
blood pressure pulses", Computers in Cardiology 30:259-262, applied to the pleth
as is usual since. The signal is band-passed 0.5-8 Hz; the slope sum function
(SSF) adds the rising slopes over the last 128 ms, so it peaks on each upstroke.
SSF peaks above 30 % of the window's 80th percentile of SSF peaks are pulses, no
two closer than an eye-closing period of 300 ms or 60 % of the median interval
of the strong peaks (above 60 %), whichever is longer, the larger kept; each pulse's onset (foot) is where its SSF
last rose above 5 % of that peak, and its peak the pleth maximum within the next
400 ms (or before the next onset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, find_peaks, sosfiltfilt

REFRACTORY_S = 0.3


@dataclass(frozen=True, slots=True)
class Pulses:
    onsets: np.ndarray  # sample indices of pulse feet, ascending
    peaks: np.ndarray  # sample index of each pulse's systolic peak
    filtered: np.ndarray  # the band-passed pleth they were found on


def bandpass_pleth(x: np.ndarray, fs: float) -> np.ndarray:
    sos = butter(2, [0.5, min(8.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    return sosfiltfilt(sos, x)


def slope_sum(f: np.ndarray, fs: float) -> np.ndarray:
    """Zong's SSF: the sum of the positive first differences over the last 128 ms."""
    du = np.maximum(np.diff(f, prepend=f[0]), 0.0)
    w = max(1, int(round(0.128 * fs)))
    c = np.cumsum(du)
    out = c.copy()
    out[w:] = c[w:] - c[:-w]
    return out


def pleth_pulses(x: np.ndarray, fs: float) -> Pulses:
    """Pulse onsets and peaks in a pleth (any unit) sampled at ``fs`` Hz (see the module docstring)."""
    f = bandpass_pleth(x, fs)
    ssf = slope_sum(f, fs)
    cand, _ = find_peaks(ssf, distance=max(1, int(REFRACTORY_S * fs)))
    empty = np.zeros(0, dtype=np.int64)
    if len(cand) == 0 or float(ssf[cand].max()) <= 0.0:
        return Pulses(empty, empty, f)
    top = float(np.percentile(ssf[cand], 80))
    strong = cand[ssf[cand] > 0.6 * top]
    # the eye-closing period follows the rate: 60 % of the median interval of the strong pulses (a dicrotic
    # or reflected wave a third of a second after the upstroke is not a pulse), at least REFRACTORY_S
    gap = max(REFRACTORY_S * fs, 0.6 * float(np.median(np.diff(strong)))) if len(strong) >= 3 else REFRACTORY_S * fs
    chosen: list[int] = []
    for c in cand[ssf[cand] > 0.3 * top]:
        if not chosen or c - chosen[-1] >= gap:
            chosen.append(int(c))
        elif ssf[c] > ssf[chosen[-1]]:
            chosen[-1] = int(c)
    keep = np.array(chosen, dtype=np.int64)
    onsets = []
    for p in keep:
        lo = max(0, int(p) - int(REFRACTORY_S * fs))
        below = np.flatnonzero(ssf[lo : int(p) + 1] <= 0.05 * ssf[p])
        onsets.append(lo + int(below[-1]) if len(below) else lo)
    on = np.array(onsets, dtype=np.int64)
    peaks = []
    for i, o in enumerate(on):
        hi = min(len(f), int(o) + int(0.4 * fs) + 1, int(on[i + 1]) if i + 1 < len(on) else len(f))
        peaks.append(int(o) + int(np.argmax(f[int(o) : max(hi, int(o) + 1)])))
    return Pulses(on, np.array(peaks, dtype=np.int64), f)
