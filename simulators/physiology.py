"""Seeded patient physiology: 1 Hz numerics and a 250 Hz ECG lead II for one patient.

A scenario (``simulators.scenarios``) says what the patient's vitals are designed
to be at each second (a ``Trajectory``); this model turns that into what a
monitor measures:

* a per-patient offset, constant for the stay (this patient runs a bit fast...);
* a slow drift, an AR(1) process with a time constant of about 100 s;
* measurement noise, independent each second;
* NIBP taken once per cycle only (at t = 0, then every ``nibp_interval_s`` with
  a per-patient phase), as a cuff does;
* an ECG whose beats follow the patient's heart rate.

Every random component is *bounded* (see ``VARIATION``): scenarios add margins
of the worst-case deviation to their designed values, so a scenario's NEWS2 band
holds for every seed. Values are rounded to what monitors display (whole numbers,
temperature to 0.1 degC).

Same seed, same trajectory -> identical output. Numerics and ECG draw from two
independent generators, so turning waveforms on or off does not change numerics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

ECG_RATE_HZ = 250
ECG_SCALE_MV = 0.005  # mV per count
ECG_LEAD = "ecg_ii"


@dataclass(frozen=True, slots=True)
class Vitals:
    """Designed (mean) vitals at one instant. ``o2``: 0 air, 1 oxygen; ``acvpu``: 0 A .. 4 U."""

    hr: float
    rr: float
    spo2: float
    sbp: float
    dbp: float
    temp: float
    etco2: float
    o2: int = 0
    acvpu: int = 0


#: seconds since the start -> designed vitals
Trajectory = Callable[[float], Vitals]


@dataclass(frozen=True, slots=True)
class Variation:
    """Bounds of the random parts of one parameter; ``relative``: fractions of the designed value."""

    offset: float  # per patient, uniform in [-offset, offset]
    drift: float  # slow wander, clipped to [-drift, drift]
    noise: float  # per measurement, clipped to [-noise, noise]
    relative: bool = False

    @property
    def worst(self) -> float:
        """Largest possible deviation from the designed value (fraction if ``relative``)."""
        return self.offset + self.drift + self.noise


#: order of the continuous parameters in the model's vectors
CONTINUOUS: tuple[str, ...] = ("hr", "rr", "spo2", "sbp", "dbp", "temp", "etco2")

VARIATION: dict[str, Variation] = {
    "hr": Variation(0.04, 0.03, 0.015, relative=True),
    "rr": Variation(1.0, 0.5, 0.5),
    "spo2": Variation(1.0, 0.5, 0.5),
    "sbp": Variation(0.04, 0.03, 0.02, relative=True),
    "dbp": Variation(0.05, 0.03, 0.03, relative=True),
    "temp": Variation(0.15, 0.1, 0.05),
    "etco2": Variation(2.0, 1.5, 1.0),
}

_DRIFT_PHI = 0.99  # AR(1) coefficient per second: time constant ~100 s


def _bounds(attr: str) -> np.ndarray:
    return np.array([getattr(VARIATION[k], attr) for k in CONTINUOUS])


_OFFSET = _bounds("offset")
_DRIFT = _bounds("drift")
_NOISE = _bounds("noise")
_RELATIVE = np.array([VARIATION[k].relative for k in CONTINUOUS])
_DRIFT_STEP = _DRIFT / 2 * math.sqrt(1 - _DRIFT_PHI**2)  # stationary sd = bound / 2


def round_half_up(x: float, decimals: int = 0) -> float:
    """Round as a chart does (2.5 -> 3), not half-to-even like ``round``."""
    scale = 10.0**decimals
    return math.floor(x * scale + 0.5 + 1e-9) / scale


class Physiology:
    """One patient. Call ``step()`` once per simulated second; ``ecg(n)`` for samples."""

    def __init__(
        self,
        seed: int | Sequence[int],
        trajectory: Trajectory,
        *,
        nibp_interval_s: float = 60.0,
    ) -> None:
        if nibp_interval_s <= 0:
            raise ValueError("nibp_interval_s must be positive")
        numerics_seed, ecg_seed = np.random.SeedSequence(seed).spawn(2)
        self._rng = np.random.default_rng(numerics_seed)
        self._ecg_rng = np.random.default_rng(ecg_seed)
        self._trajectory = trajectory
        self.nibp_interval_s = float(nibp_interval_s)

        self._offset = self._rng.uniform(-1.0, 1.0, len(CONTINUOUS)) * _OFFSET
        self._drift = np.clip(self._rng.normal(0.0, 0.5, len(CONTINUOUS)), -1.0, 1.0) * _DRIFT
        phase = float(self._rng.uniform(0.0, self.nibp_interval_s))
        self._next_nibp = self.nibp_interval_s + math.floor(phase)
        self.t_s = 0  # second of the next step
        self.true_hr = 60.0  # heart rate the ECG follows (updated by step)
        self.true_rr = 15.0

        self._beat_t = 0.0  # seconds into the current beat
        self._beat_rr = 1.0  # length of the current beat, s
        self._resp_phase = 0.0  # radians, for baseline wander
        self._started_ecg = False

    # -- numerics -------------------------------------------------------------

    def _true_values(self, v: Vitals) -> np.ndarray:
        means = np.array([v.hr, v.rr, v.spo2, v.sbp, v.dbp, v.temp, v.etco2])
        dev = self._offset + self._drift
        return np.where(_RELATIVE, means * (1.0 + dev), means + dev)

    def step(self) -> dict[str, float]:
        """Advance one second; return the numerics a monitor shows for it.

        Keys: hr, spo2, rr, [nibp_sys, nibp_dia, nibp_mean when a cuff reading
        completes this second], temp, etco2, o2, acvpu.
        """
        t = self.t_s
        designed = self._trajectory(float(t))
        self._drift = np.clip(
            _DRIFT_PHI * self._drift + self._rng.normal(0.0, 1.0, len(CONTINUOUS)) * _DRIFT_STEP,
            -_DRIFT,
            _DRIFT,
        )
        true = self._true_values(designed)
        noise = np.clip(self._rng.normal(0.0, 0.5, len(CONTINUOUS)), -1.0, 1.0) * _NOISE
        means = np.array([designed.hr, designed.rr, designed.spo2, designed.sbp, designed.dbp, designed.temp, designed.etco2])
        measured = true + np.where(_RELATIVE, means * noise, noise)
        hr, rr, spo2, sbp, dbp, temp, etco2 = (float(x) for x in measured)
        self.true_hr = max(20.0, float(true[0]))
        self.true_rr = max(2.0, float(true[1]))

        out: dict[str, float] = {
            "hr": round_half_up(max(hr, 0.0)),
            "spo2": round_half_up(min(max(spo2, 50.0), 100.0)),
            "rr": round_half_up(max(rr, 0.0)),
        }
        if t == 0 or t >= self._next_nibp:
            if t > 0:
                self._next_nibp += self.nibp_interval_s * (1 + math.floor((t - self._next_nibp) / self.nibp_interval_s))
            sys_ = round_half_up(max(sbp, 40.0))
            dia = round_half_up(min(max(dbp, 20.0), sys_ - 10.0))
            out["nibp_sys"] = sys_
            out["nibp_dia"] = dia
            out["nibp_mean"] = round_half_up(dia + (sys_ - dia) / 3.0)
        out["temp"] = round_half_up(temp, 1)
        out["etco2"] = round_half_up(max(etco2, 0.0))
        out["o2"] = float(designed.o2)
        out["acvpu"] = float(designed.acvpu)
        self.t_s = t + 1
        return out

    # -- ECG --------------------------------------------------------------------

    def _next_beat_length(self) -> float:
        jitter = min(0.05, max(-0.05, float(self._ecg_rng.normal(0.0, 0.02))))
        return 60.0 / self.true_hr * (1.0 + jitter)

    def ecg(self, n: int) -> np.ndarray:
        """The next ``n`` samples of lead II at ``ECG_RATE_HZ``, int16 counts of ``ECG_SCALE_MV``.

        Each beat is a sum of Gaussians (P, Q, R, S, T); beat length follows the
        current heart rate with a little beat-to-beat jitter, the QT interval
        stretches with the square root of the beat length, and a breathing-rate
        baseline wander and noise are added.
        """
        if not self._started_ecg:
            self._beat_rr = self._next_beat_length()
            self._beat_t = float(self._ecg_rng.uniform(0.0, self._beat_rr))
            self._started_ecg = True
        fs = float(ECG_RATE_HZ)
        tau = np.empty(n)
        beat = np.empty(n)
        i = 0
        while i < n:
            left = self._beat_rr - self._beat_t
            m = min(n - i, max(1, math.ceil(left * fs - 1e-9)))
            tau[i : i + m] = self._beat_t + np.arange(m) / fs
            beat[i : i + m] = self._beat_rr
            self._beat_t += m / fs
            i += m
            if self._beat_t >= self._beat_rr - 1e-9:
                self._beat_t = max(0.0, self._beat_t - self._beat_rr)
                self._beat_rr = self._next_beat_length()

        k = np.minimum(1.0, beat / 0.8)[:, None]  # P-R shrinks for short beats
        root = np.sqrt(beat)[:, None]  # QT stretches with sqrt(RR)
        centres = k * _CENTRE_K + root * _CENTRE_ROOT + _CENTRE_0
        widths = k * _WIDTH_K + root * _WIDTH_ROOT + _WIDTH_0
        z = (tau[:, None] - centres) / widths
        mv = np.exp(-0.5 * z * z) @ _ECG_AMPLITUDES

        step = 2.0 * math.pi * self.true_rr / 60.0 / fs
        phases = self._resp_phase + step * np.arange(n)
        self._resp_phase = float((self._resp_phase + step * n) % (2.0 * math.pi))
        mv += 0.04 * np.sin(phases) + self._ecg_rng.normal(0.0, 0.008, n)
        return np.rint(mv / ECG_SCALE_MV).astype(np.int16)  # |mv| stays far below 163 mV


# One beat is five Gaussians: P, Q, R, S, T. With k = min(1, RR / 0.8 s) and
# root = sqrt(RR), centre = k * _CENTRE_K + root * _CENTRE_ROOT + _CENTRE_0 (s from
# beat start; R at 0.25 k), and likewise for the widths (standard deviations).
_ECG_AMPLITUDES = np.array([0.15, -0.10, 1.10, -0.25, 0.30])  # mV
_CENTRE_K = np.array([0.09, 0.25, 0.25, 0.25, 0.25])
_CENTRE_ROOT = np.array([0.0, 0.0, 0.0, 0.0, 0.28])
_CENTRE_0 = np.array([0.0, -0.035, 0.0, 0.035, 0.0])
_WIDTH_K = np.array([0.025, 0.0, 0.0, 0.0, 0.0])
_WIDTH_ROOT = np.array([0.0, 0.0, 0.0, 0.0, 0.055])
_WIDTH_0 = np.array([0.0, 0.010, 0.011, 0.012, 0.0])
