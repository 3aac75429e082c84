"""Two independent ECG R-wave detectors, for the beat-agreement index (bSQI).

* ``pan_tompkins``: after Pan & Tompkins (1985), "A real-time QRS detection
  algorithm", IEEE Trans Biomed Eng 32(3):230-236. Band-pass 5-15 Hz, derivative,
  squaring, 150 ms moving-window integration; peaks of the integrated signal are
  kept against a running signal/noise threshold (SPKI/NPKI), with search-back for
  a missed beat after 1.66 mean RR and a T-wave test within 360 ms.
* ``hilbert_beats``: after Benitez et al. (2001), "The use of the Hilbert
  transform in ECG signal analysis", Comput Biol Med 31(5):399-406. Band-pass
  8-20 Hz, first difference, envelope of its analytic signal (Hilbert
  transform), and a threshold set per 2 s block from the block's maximum and RMS.

Both take a 1-D signal in mV at ``fs`` Hz and return R-wave sample indices
(ascending), each placed on the largest absolute deflection of its own band-passed
signal. They share no code beyond scipy, so they err differently on noise.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, find_peaks, hilbert, sosfiltfilt

REFRACTORY_S = 0.2  # no two beats closer than this (300/min)


def _bandpass(x: np.ndarray, fs: float, lo: float, hi: float, order: int) -> np.ndarray:
    sos = butter(order, [lo, min(hi, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    return sosfiltfilt(sos, x)


def _place(f: np.ndarray, centres: np.ndarray, half: int) -> np.ndarray:
    """Each centre moved to the largest |f| within +-``half`` samples; duplicates dropped."""
    if len(centres) == 0:
        return centres.astype(np.int64)
    out = []
    a = np.abs(f)
    for c in centres:
        lo, hi = max(0, int(c) - half), min(len(f), int(c) + half + 1)
        out.append(lo + int(np.argmax(a[lo:hi])))
    return np.unique(np.array(out, dtype=np.int64))


def pan_tompkins(x: np.ndarray, fs: float) -> np.ndarray:
    """R-wave indices by a Pan-Tompkins-style detector (see the module docstring)."""
    f = _bandpass(x, fs, 5.0, 15.0, 2)
    d = np.gradient(f) * fs
    w = max(1, int(round(0.15 * fs)))
    mwi = np.convolve(d * d, np.ones(w) / w, mode="same")
    peaks, _ = find_peaks(mwi, distance=max(1, int(REFRACTORY_S * fs)))
    if len(peaks) == 0:
        return peaks.astype(np.int64)
    learn = mwi[: int(2 * fs)]
    spki, npki = learn.max() / 3.0, learn.mean() / 2.0
    slope = np.abs(d)
    half_w = max(1, int(0.075 * fs))

    def max_slope(p: int) -> float:
        return float(slope[max(0, p - half_w) : p + half_w + 1].max())

    beats: list[int] = []
    rejected: list[int] = []
    rr_recent: list[float] = []
    for p in peaks:
        p = int(p)
        h = float(mwi[p])
        thr = npki + 0.25 * (spki - npki)
        if beats and rr_recent and p - beats[-1] > 1.66 * float(np.mean(rr_recent)):
            back = [q for q in rejected if q - beats[-1] > REFRACTORY_S * fs and mwi[q] > 0.5 * thr]
            if back:  # search-back: the largest missed peak is a beat
                q = max(back, key=lambda i: mwi[i])
                rr_recent = (rr_recent + [q - beats[-1]])[-8:]
                beats.append(q)
                spki = 0.25 * float(mwi[q]) + 0.75 * spki
            rejected = []
        if h > thr:
            if beats and p - beats[-1] < 0.36 * fs and max_slope(p) < 0.5 * max_slope(beats[-1]):
                npki = 0.125 * h + 0.875 * npki  # a T wave
                continue
            if beats:
                rr_recent = (rr_recent + [p - beats[-1]])[-8:]
            beats.append(p)
            spki = 0.125 * h + 0.875 * spki
            rejected = []
        else:
            npki = 0.125 * h + 0.875 * npki
            rejected.append(p)
    return _place(f, np.array(beats), int(0.1 * fs))


def hilbert_beats(x: np.ndarray, fs: float) -> np.ndarray:
    """R-wave indices by a Hilbert-envelope detector (see the module docstring)."""
    f = _bandpass(x, fs, 8.0, 20.0, 3)
    d = np.diff(f, prepend=f[0])
    env = np.abs(hilbert(d))
    block = max(1, int(2 * fs))
    thr = np.empty_like(env)
    for i in range(0, len(env), block):
        part = env[i : i + block]
        top = float(part.max())
        rms = float(np.sqrt(np.mean(part * part)))
        thr[i : i + block] = 0.39 * top if rms >= 0.18 * top else 1.6 * rms
    peaks, _ = find_peaks(env, height=thr, distance=max(1, int(REFRACTORY_S * fs)))
    return _place(f, peaks, int(0.06 * fs))
