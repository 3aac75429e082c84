"""The alarm side's view of a waveform: one verdict per lead and window (``LeadQuality``).

``analyse_ecg(samples, fs, t_end)`` and ``analyse_pleth(samples, fs, t_end)``
analyse the last ``WINDOW_S`` (10 s) of one lead; the hub calls them every
``CADENCE_S`` (2 s) per bed and lead. Ten seconds holds at least 5 beats at
30/min, enough for a median rate and for the beat-agreement and template
indices to mean something (Li et al. 2008 and Li & Clifford 2012 used 10 s
windows too); every 2 s keeps the verdict at most 2 s old, well inside the
alarm delays of IEC 60601-2-27 (10 s for asystole and extreme rates), at a cost
measured by ``bench/waveform_quality.py``.

Units: ECG in mV; pleth in the vocabulary's unit (AC/DC ratio; 0.01 = a perfusion
index of 1 %). The pleth's "flat" and "weak" tests use that unit (``PLETH_FLAT``,
``PLETH_WEAK``); a caller with pleth in other units passes its own thresholds.

Verdicts (documented thresholds, from the cited papers and checked on the
labelled episodes of ``simulators.episodes``):

ECG good when
    not flat (peak-to-peak of the 1-40 Hz band-passed signal >= ``ECG_FLAT_MV``),
    bSQI >= 0.9 (Li et al. 2008: the two detectors agree on 90 % of beats), and
    basSQI >= 0.7 (at most 30 % of the power below 1 Hz: no large wander or pop);
    and, when kSQI < 5 (not peaky), pSQI >= 0.4 (power in the QRS band: a wide
    ventricular rhythm has low kurtosis but keeps its spectrum).
Pleth good when
    not flat (the band-passed pleth spans >= ``PLETH_FLAT``, and no stretch
    without a pulse longer than 3 s or 2.5 beats: ``gap_s``), at least 3 pulses,
    and template SQI >= 0.9 (Li & Clifford 2012: each pulse like the mean pulse);
    ``weak`` (below ``PLETH_WEAK``, perfusion index 0.5 %) is reported as poor
    perfusion: good pulses too small to trust the SpO2.

Time since the last beat (for the asystole alarm, ``alerts.arrhythmia``):

``since_last_beat_s`` (ECG)
    seconds from the last R wave the Pan-Tompkins detector found (it tells a T
    wave from a QRS; the Hilbert detector's threshold falls with the signal, so
    on a flat line it finds noise) to the window's end, counting only beats at
    least ``ECG_FLAT_MV`` (0.15 mV) high in the 1-40 Hz band: ANSI/AAMI EC13 asks a monitor not to count a smaller deflection as a
    QRS, so that noise or P waves on a flat line do not hide an asystole. With
    no such beat in the window it is the window's length ("at least").
``since_last_pulse_s`` (pleth)
    the same for the last pulse (its foot) whose upstroke is at least ``flat``
    high: noise on a flat pleth is no pulse.

``sqi`` is a 0..1 summary for display and logs (the product of each index's
distance to its threshold, clipped); ``good`` is the verdict. A flat ECG is
*not* necessarily an artefact: a flat ECG with no pleth pulse may be asystole.
The alarm side must hold an ECG alarm as possible artefact only when the pleth
is good and its rate disagrees, never because the ECG is merely poor.

Errors: ``WaveformInputError`` (a ``ValueError``) for samples that are not a
1-D array of finite numbers, a rate outside ``FS_RANGE``, fewer than
``MIN_WINDOW_S`` or more than ``MAX_WINDOW_S`` seconds of samples.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

from alerts.lead_quality import LeadQuality
from alerts.waveforms.ecg_beats import hilbert_beats, pan_tompkins
from alerts.waveforms.pleth_beats import Pulses, pleth_pulses
from alerts.waveforms.sqi import bas_sqi, bsqi, ksqi, psqi, skew_sqi, template_sqi

WINDOW_S = 10.0  # analysed window
CADENCE_S = 2.0  # analysis interval per bed and lead
MIN_WINDOW_S = 4.0
MAX_WINDOW_S = 60.0
FS_RANGE = (50.0, 1000.0)
MAX_ABS = 1e6  # larger values are a unit error, not a signal

ECG_FLAT_MV = 0.15
BSQI_GOOD = 0.9
BAS_SQI_GOOD = 0.7
KSQI_PEAKY = 5.0
PSQI_GOOD = 0.4
PLETH_FLAT = 0.0005  # AC/DC: perfusion index 0.05 %
PLETH_WEAK = 0.005  # perfusion index 0.5 %
TEMPLATE_GOOD = 0.9
MAX_GAP_S = 3.0  # pleth: no pulse for longer than this (or 2.5 beats) is a dropout
RATE_RANGE = (15.0, 350.0)  # a rate outside is not computable from the window
QRS_HALF_S = 0.1  # a beat's height: the 1-40 Hz signal's span within +-100 ms of its R wave



class WaveformInputError(ValueError):
    """The samples cannot be analysed (not 1-D finite numbers, bad rate, too short or too long)."""


def _check(samples: np.ndarray, fs: float) -> np.ndarray:
    try:
        fs_ok = FS_RANGE[0] <= float(fs) <= FS_RANGE[1]
    except (TypeError, ValueError):
        fs_ok = False
    if not fs_ok:
        raise WaveformInputError(f"sample rate must be within {FS_RANGE[0]:g}..{FS_RANGE[1]:g} Hz, not {fs!r}")
    x = np.asarray(samples)
    if x.ndim != 1:
        raise WaveformInputError(f"samples must be one-dimensional, not of shape {x.shape}")
    if x.dtype.kind not in "iuf":
        raise WaveformInputError(f"samples must be numbers, not {x.dtype}")
    n_min, n_max = int(MIN_WINDOW_S * fs), int(MAX_WINDOW_S * fs)
    if not n_min <= len(x) <= n_max:
        raise WaveformInputError(f"{len(x)} samples at {fs:g} Hz; between {MIN_WINDOW_S:g} and {MAX_WINDOW_S:g} s are analysed")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise WaveformInputError("samples must be finite (no NaN or infinity)")
    if float(np.max(np.abs(x))) > MAX_ABS:
        raise WaveformInputError(f"samples beyond +-{MAX_ABS:g}: wrong unit?")
    return x


def _rate(beats: np.ndarray, fs: float) -> float | None:
    """60 / the mean of the beat intervals within 20 % of their median (a missed or extra beat left out)."""
    if len(beats) < 3:
        return None
    rr = np.diff(beats).astype(float)
    med = float(np.median(rr))
    near = rr[np.abs(rr - med) <= 0.2 * med]
    rate = 60.0 * fs / (float(near.mean()) if len(near) else med) if med > 0 else 0.0
    return round(rate, 1) if RATE_RANGE[0] <= rate <= RATE_RANGE[1] else None


def _finite(v: float) -> float:
    return v if np.isfinite(v) else 0.0


def _longest_gap_s(onsets: np.ndarray, n: int, fs: float) -> float:
    """The longest stretch of the window without a pulse, edges included."""
    edges = np.concatenate([[0], onsets, [n]]).astype(float)
    return float(np.diff(edges).max()) / fs


def _since_last_s(events: np.ndarray, n: int, fs: float) -> float:
    """Seconds from the last of ``events`` (sample indices) to the window's end; the window's length without one."""
    return round((n - int(events[-1])) / fs if len(events) else n / fs, 2)


def _tall_beats(f: np.ndarray, beats: np.ndarray, fs: float, least: float) -> np.ndarray:
    """The beats (sample indices) whose span in ``f`` within +-``QRS_HALF_S`` is at least ``least``."""
    half = max(1, int(QRS_HALF_S * fs))
    keep = [b for b in beats.tolist() if float(np.ptp(f[max(0, b - half) : b + half + 1])) >= least]
    return np.array(keep, dtype=np.int64)


def _score(value: float, good_at: float) -> float:
    return float(np.clip(value / good_at, 0.0, 1.0)) if good_at > 0 else 1.0


def _tall_pulses(pulses: Pulses, least: float) -> np.ndarray:
    """The onsets of the pulses whose upstroke (foot to peak in the band-passed pleth) is at least ``least``."""
    f = pulses.filtered
    rise = f[pulses.peaks] - f[pulses.onsets] if len(pulses.onsets) else np.zeros(0)
    return pulses.onsets[rise >= least]


def analyse_ecg(samples: np.ndarray, fs: float, t_end: int) -> LeadQuality:
    """Quality, verdict and heart rate of an ECG window (mV); see the module docstring."""
    x = _check(samples, fs)
    window_s = len(x) / fs
    sos = butter(2, [1.0, min(40.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    band = sosfiltfilt(sos, x)
    amplitude = float(np.ptp(band))
    pt = pan_tompkins(x, fs)
    hb = hilbert_beats(x, fs)
    tall = _tall_beats(band, pt, fs, ECG_FLAT_MV)
    idx = {
        "bsqi": round(bsqi(pt, hb, fs), 3),
        "ksqi": round(_finite(ksqi(x)), 3),
        "psqi": round(_finite(psqi(x, fs)), 3),
        "bas_sqi": round(_finite(bas_sqi(x, fs)), 3),
        "amplitude": round(_finite(amplitude), 3),
        "since_last_beat_s": _since_last_s(tall, len(x), fs),
    }
    flat = amplitude < ECG_FLAT_MV
    spectrum_ok = idx["ksqi"] >= KSQI_PEAKY or idx["psqi"] >= PSQI_GOOD
    good = not flat and idx["bsqi"] >= BSQI_GOOD and idx["bas_sqi"] >= BAS_SQI_GOOD and spectrum_ok
    if flat:
        reason = "ECG flat (leads off?)"
    elif idx["bas_sqi"] < BAS_SQI_GOOD:
        reason = "ECG baseline unsteady (loose electrode or movement?)"
    elif not good:
        reason = "ECG noisy (motion?)"
    else:
        reason = ""
    sqi = 0.0 if flat else _score(idx["bsqi"], 1.0) * _score(idx["bas_sqi"], BAS_SQI_GOOD) * (1.0 if spectrum_ok else 0.5)
    return LeadQuality("ecg", int(t_end), window_s, good, round(sqi, 3), _rate(pt, fs) if not flat else None, idx, reason)


def analyse_pleth(samples: np.ndarray, fs: float, t_end: int, *, flat: float = PLETH_FLAT, weak: float = PLETH_WEAK) -> LeadQuality:
    """Quality, verdict and pulse rate of a pleth window (AC/DC ratio unless ``flat``/``weak`` say otherwise)."""
    x = _check(samples, fs)
    window_s = len(x) / fs
    pulses = pleth_pulses(x, fs)
    f = pulses.filtered
    amplitude = float(np.percentile(f, 98) - np.percentile(f, 2))
    rate = _rate(pulses.onsets, fs)
    idx = {
        "template_sqi": round(_finite(template_sqi(f, pulses.onsets)), 3),
        "skew_sqi": round(_finite(skew_sqi(f)), 3),
        "amplitude": float(f"{_finite(amplitude):.4g}"),
        "pulses": float(len(pulses.onsets)),
        "gap_s": round(_longest_gap_s(pulses.onsets, len(x), fs), 2),
        "since_last_pulse_s": _since_last_s(_tall_pulses(pulses, flat), len(x), fs),
    }
    # a pulse lost for longer than 2.5 beats (at least 3 s) is a dropout, whatever the pulses around it look like
    lost = idx["gap_s"] > max(MAX_GAP_S, 2.5 * 60.0 / rate if rate else MAX_GAP_S)
    is_flat = amplitude < flat or lost
    is_weak = not is_flat and amplitude < weak
    good = not is_flat and not is_weak and len(pulses.onsets) >= 3 and idx["template_sqi"] >= TEMPLATE_GOOD
    if is_flat:
        reason = "pleth flat (probe off?)"
    elif is_weak:
        reason = "pleth weak (poor perfusion or cold hands?)"
    elif not good:
        reason = "pleth irregular (motion?)"
    else:
        reason = ""
    sqi = 0.0 if is_flat else _score(idx["template_sqi"], 1.0) * (0.5 if is_weak else 1.0)
    rate = rate if not is_flat else None
    return LeadQuality("pleth", int(t_end), window_s, good, round(sqi, 3), rate, idx, reason)
