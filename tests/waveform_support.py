"""Synthetic ECG and pleth with known beats, for the waveform tests (no randomness beyond the given seed)."""

from __future__ import annotations

import numpy as np

from simulators.waveshapes import R_AT_K, add_pleth_pulses, ecg_beat_mv

ECG_FS = 250.0
PLETH_FS = 125.0


def sinus_ecg(rate_bpm: float, seconds: float = 10.0, fs: float = ECG_FS, noise_mv: float = 0.01, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A regular sinus rhythm at exactly ``rate_bpm``: (mV samples, true R-wave sample indices)."""
    rr = 60.0 / rate_bpm
    t = np.arange(int(seconds * fs)) / fs
    start = -0.4 * rr
    tau = (t - start) % rr
    x = ecg_beat_mv(tau, np.full(len(t), rr))
    x += np.random.default_rng(seed).normal(0.0, noise_mv, len(t))
    r = np.arange(start + R_AT_K * min(1.0, rr / 0.8), seconds, rr)
    r = r[r >= 0]
    return x, np.rint(r * fs).astype(int)


def sinus_pleth(rate_bpm: float, seconds: float = 10.0, fs: float = PLETH_FS, height: float = 0.03, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A regular pleth at ``rate_bpm`` with pulses of ``height`` (AC/DC): (samples, pulse-foot times in s)."""
    rr = 60.0 / rate_bpm
    t = np.arange(int(seconds * fs)) / fs
    feet = np.arange(-rr + 0.1, seconds, rr)
    x = np.random.default_rng(seed).normal(0.0, height * 0.01, len(t))
    add_pleth_pulses(x, t, feet, np.full(len(feet), rr), np.full(len(feet), height))
    return x, feet[feet >= 0]


def band_noise(n: int, fs: float, lo_hz: float, hi_hz: float, rms: float, seed: int) -> np.ndarray:
    """Gaussian noise band-limited to lo..hi Hz (FFT mask), scaled to ``rms``."""
    spec = np.fft.rfft(np.random.default_rng(seed).normal(0.0, 1.0, n))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spec[(f < lo_hz) | (f > hi_hz)] = 0.0
    x = np.fft.irfft(spec, n)
    return x / np.sqrt(np.mean(x * x)) * rms


def heart_with_pause(rate_bpm: float, seconds: float, pause: tuple[float, float] | None = None, *, ptt_s: float = 0.2,
                     height: float = 0.03, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """A regular sinus ECG (mV at ``ECG_FS``) and its pleth (AC/DC at ``PLETH_FS``, each pulse ``ptt_s`` after its
    R wave) with no beat starting inside ``pause`` (start, end s): (ecg, pleth, R-wave times in s)."""
    rr = 60.0 / rate_bpm
    starts = np.arange(0.2, seconds, rr)
    if pause is not None:
        starts = starts[(starts < pause[0]) | (starts >= pause[1])]
    rng = np.random.default_rng(seed)
    te = np.arange(int(seconds * ECG_FS)) / ECG_FS
    ecg = rng.normal(0.0, 0.01, len(te))
    for s in starts:
        on = (te >= s) & (te < s + 1.5 * rr)
        ecg[on] += ecg_beat_mv(te[on] - s, np.full(int(on.sum()), rr))
    r = starts + R_AT_K * min(1.0, rr / 0.8)
    tp = np.arange(int(seconds * PLETH_FS)) / PLETH_FS
    pleth = rng.normal(0.0, height * 0.01, len(tp))
    add_pleth_pulses(pleth, tp, r + ptt_s, np.full(len(r), rr), np.full(len(r), height))
    return ecg, pleth, r
