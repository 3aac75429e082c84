"""Shapes of simulated waveforms: one ECG beat, one ventricular-tachycardia complex, one pleth pulse.

Pure functions of time, shared by the bedside monitor model (``physiology``) and
the labelled episode generator (``episodes``), so both draw the same heart.

* ``ecg_beat_mv(tau, rr)``: lead II in mV at ``tau`` seconds into a sinus beat
  of length ``rr`` s: five Gaussians (P, Q, R, S, T). With k = min(1, RR / 0.8 s)
  the R wave is at 0.25 k s; P-R shrinks for short beats, QT stretches with
  sqrt(RR).
* ``vt_beat_mv(tau, rr)``: a wide (about 160 ms), tall monomorphic ventricular
  complex with a discordant T wave and no P wave; its peak is at 0.25 k s too.
* ``add_pleth_pulses(t, onsets, rr, amp)``: the plethysmogram, a sum of pulses
  each starting at its foot (``onsets``, s), a systolic peak about 0.13 k s
  later and a smaller dicrotic wave; ``amp`` is the pulse height in the pleth
  lead's unit (AC/DC ratio: 0.03 is a perfusion index of 3 %).
"""

from __future__ import annotations

import numpy as np

R_AT_K = 0.25  # the R wave (or VT peak) is at R_AT_K * k seconds into its beat

# One sinus beat: P, Q, R, S, T. centre = k * _CENTRE_K + root * _CENTRE_ROOT + _CENTRE_0, likewise widths.
_ECG_AMPLITUDES = np.array([0.15, -0.10, 1.10, -0.25, 0.30])  # mV
_CENTRE_K = np.array([0.09, 0.25, 0.25, 0.25, 0.25])
_CENTRE_ROOT = np.array([0.0, 0.0, 0.0, 0.0, 0.28])
_CENTRE_0 = np.array([0.0, -0.035, 0.0, 0.035, 0.0])
_WIDTH_K = np.array([0.025, 0.0, 0.0, 0.0, 0.0])
_WIDTH_ROOT = np.array([0.0, 0.0, 0.0, 0.0, 0.055])
_WIDTH_0 = np.array([0.0, 0.010, 0.011, 0.012, 0.0])

# One VT complex: a broad R, a broad S and a discordant (inverted) T; no P.
_VT_AMPLITUDES = np.array([1.6, -0.6, -0.45])  # mV
_VT_CENTRE_K = np.array([0.25, 0.25, 0.25])
_VT_CENTRE_0 = np.array([0.0, 0.07, 0.0])
_VT_CENTRE_RR = np.array([0.0, 0.0, 0.45])  # the T wave sits at 45 % of the cycle after the peak
_VT_WIDTH = np.array([0.035, 0.03, 0.05])

# One pleth pulse: systolic and dicrotic Gaussians, in units of k = min(1, RR / 0.8 s).
_PULSE_CENTRE = np.array([0.13, 0.34])
_PULSE_WIDTH = np.array([0.05, 0.07])
_PULSE_HEIGHT = np.array([1.0, 0.32])
_PULSE_RISE_S = 0.03  # the foot: a smooth ramp over the first 30 ms
_PULSE_SPAN_K = 0.75  # a pulse is zero from 0.75 k s after its foot (the Gaussians are < 1e-4 there)


def _k(rr: np.ndarray | float) -> np.ndarray:
    return np.minimum(1.0, np.asarray(rr, dtype=float) / 0.8)


def ecg_beat_mv(tau: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """Lead II (mV) at ``tau`` s into sinus beats of length ``rr`` s (arrays of one shape)."""
    k = _k(rr)[:, None]
    root = np.sqrt(rr)[:, None]
    centres = k * _CENTRE_K + root * _CENTRE_ROOT + _CENTRE_0
    widths = k * _WIDTH_K + root * _WIDTH_ROOT + _WIDTH_0
    z = (tau[:, None] - centres) / widths
    return np.exp(-0.5 * z * z) @ _ECG_AMPLITUDES


def vt_beat_mv(tau: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """Lead II (mV) at ``tau`` s into ventricular complexes of length ``rr`` s."""
    k = _k(rr)[:, None]
    centres = k * _VT_CENTRE_K + _VT_CENTRE_0 + np.asarray(rr)[:, None] * _VT_CENTRE_RR
    z = (tau[:, None] - centres) / _VT_WIDTH
    return np.exp(-0.5 * z * z) @ _VT_AMPLITUDES


def pleth_pulse(x: np.ndarray, rr: float) -> np.ndarray:
    """One pulse of height 1 at ``x`` s after its foot, for a beat of ``rr`` s; 0 before the foot."""
    k = float(_k(rr))
    z = (x[:, None] - k * _PULSE_CENTRE) / (k * _PULSE_WIDTH)
    shape = np.exp(-0.5 * z * z) @ _PULSE_HEIGHT
    ramp = np.clip(x / _PULSE_RISE_S, 0.0, 1.0)
    return np.where(x >= 0.0, shape * ramp * ramp * (3.0 - 2.0 * ramp), 0.0)


def add_pleth_pulses(out: np.ndarray, t: np.ndarray, onsets: np.ndarray, rr: np.ndarray, amp: np.ndarray) -> None:
    """Add pulses (feet at ``onsets`` s, beat lengths ``rr``, heights ``amp``) to ``out`` sampled at times ``t`` (ascending)."""
    for onset, beat, height in zip(onsets, rr, amp):
        lo = int(np.searchsorted(t, onset))
        hi = int(np.searchsorted(t, onset + _PULSE_SPAN_K * float(_k(beat))))
        if hi > lo:
            out[lo:hi] += height * pleth_pulse(t[lo:hi] - onset, float(beat))


def pulse_span_s(rr: float) -> float:
    """How long after its foot a pulse of a beat of ``rr`` s is non-zero."""
    return _PULSE_SPAN_K * float(_k(rr))
