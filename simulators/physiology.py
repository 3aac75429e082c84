"""Seeded patient physiology: 1 Hz numerics, a 250 Hz ECG lead II and a 125 Hz pleth for one patient.

A scenario (``simulators.scenarios``) says what the patient's vitals are designed
to be at each second (a ``Trajectory``); this model turns that into what a
monitor measures:

* a per-patient offset, constant for the stay (this patient runs a bit fast...);
* a slow drift, an AR(1) process with a time constant of about 100 s;
* measurement noise, independent each second;
* NIBP taken once per cycle only (at t = 0, then every ``nibp_interval_s`` with
  a per-patient phase), as a cuff does;
* an ECG whose beats follow the patient's heart rate;
* a pleth (SpO2 plethysmogram) whose pulses follow the ECG's beats, each a
  pulse transit time (150-250 ms) after its R wave, as high as the perfusion.

Every random component is *bounded* (see ``VARIATION``): scenarios add margins
of the worst-case deviation to their designed values, so a scenario's NEWS2 band
holds for every seed. Values are rounded to what monitors display (whole numbers,
temperature to 0.1 degC).

Same seed, same trajectory -> identical output. Numerics, ECG and pleth draw from
three independent generators, so turning waveforms on or off does not change
numerics, and drawing the pleth does not change the ECG. Waveform shapes are in
``simulators.waveshapes``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from simulators.waveshapes import R_AT_K, add_pleth_pulses, ecg_beat_mv, pulse_span_s

ECG_RATE_HZ = 250
ECG_SCALE_MV = 0.005  # mV per count
ECG_LEAD = "ecg_ii"
PLETH_RATE_HZ = 125  # half the ECG rate: pleth sample i is at the time of ECG sample 2 i
PLETH_SCALE = 1e-5  # AC/DC ratio per count: a pulse of perfusion index 3 % is 3000 counts
PLETH_LEAD = "pleth"
PTT_RANGE_S = (0.15, 0.25)  # pulse transit time, R wave to the pulse's foot at the finger


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
    """One patient. Call ``step()`` once per simulated second; ``ecg(n)`` then ``pleth(n // 2)`` for samples."""

    def __init__(
        self,
        seed: int | Sequence[int],
        trajectory: Trajectory,
        *,
        nibp_interval_s: float = 60.0,
    ) -> None:
        if nibp_interval_s <= 0:
            raise ValueError("nibp_interval_s must be positive")
        numerics_seed, ecg_seed, pleth_seed = np.random.SeedSequence(seed).spawn(3)  # the first two as before pleth existed
        self._rng = np.random.default_rng(numerics_seed)
        self._ecg_rng = np.random.default_rng(ecg_seed)
        self._pleth_rng = np.random.default_rng(pleth_seed)
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
        self._ecg_n = 0  # ECG samples drawn so far
        self._pleth_n = 0  # pleth samples drawn so far
        self._pleth_resp = 0.0
        self._ptt = float(self._pleth_rng.uniform(0.17, 0.23))  # this patient's pulse transit time, s
        self._pulses: deque[tuple[float, float, float]] = deque()  # (foot s, beat length s, height) not yet all drawn
        self.perfusion_index = 3.0  # %, the pleth pulse height (AC/DC); poor perfusion is below about 0.5

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
            self._new_beat(-self._beat_t, self._beat_rr)
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
                self._new_beat((self._ecg_n + i) / fs - self._beat_t, self._beat_rr)

        mv = ecg_beat_mv(tau, beat)

        step = 2.0 * math.pi * self.true_rr / 60.0 / fs
        phases = self._resp_phase + step * np.arange(n)
        self._resp_phase = float((self._resp_phase + step * n) % (2.0 * math.pi))
        mv += 0.04 * np.sin(phases) + self._ecg_rng.normal(0.0, 0.008, n)
        self._ecg_n += n
        return np.rint(mv / ECG_SCALE_MV).astype(np.int16)  # |mv| stays far below 163 mV

    # -- pleth ------------------------------------------------------------------

    def _new_beat(self, start_s: float, rr: float) -> None:
        """A beat starting at ``start_s`` (s since the ECG's first sample): its pulse reaches the finger a PTT later."""
        ptt = min(PTT_RANGE_S[1], max(PTT_RANGE_S[0], self._ptt + float(self._pleth_rng.normal(0.0, 0.006))))
        amp = self.perfusion_index / 100.0 * (1.0 + 0.08 * float(self._pleth_rng.uniform(-1.0, 1.0)))
        self._pulses.append((start_s + R_AT_K * min(1.0, rr / 0.8) + ptt, rr, amp))

    @property
    def pulse_feet_s(self) -> list[float]:
        """Feet of the pulses still pending or drawn (s since the first ECG sample), for tests and tools."""
        return [p[0] for p in self._pulses]

    def pleth(self, n: int) -> np.ndarray:
        """The next ``n`` pleth samples at ``PLETH_RATE_HZ``, int16 counts of ``PLETH_SCALE``.

        Each pulse belongs to one ECG beat: its foot comes a pulse transit time
        (``PTT_RANGE_S``, per patient with a little beat-to-beat jitter) after
        that beat's R wave, and its height is ``perfusion_index`` % (the pleth
        lead is AC/DC), varying a little from beat to beat. Sample ``i`` of the
        pleth is at the time of ECG sample ``2 i``. The pleth may not run ahead
        of the ECG by more than the shortest transit time, since a beat the ECG
        has not drawn yet has no pulse: call ``ecg`` first for the same span.
        """
        fs = float(PLETH_RATE_HZ)
        t = (self._pleth_n + np.arange(n)) / fs
        if n and t[-1] > self._ecg_n / float(ECG_RATE_HZ) + PTT_RANGE_S[0]:
            raise ValueError("pleth would run ahead of the ECG: draw the ECG for this span first")
        out = self._pleth_rng.normal(0.0, 0.0004, n) * (self.perfusion_index / 3.0)
        step = 2.0 * math.pi * self.true_rr / 60.0 / fs
        phases = self._pleth_resp + step * np.arange(n)
        self._pleth_resp = float((self._pleth_resp + step * n) % (2.0 * math.pi))
        out += 0.1 * self.perfusion_index / 100.0 * np.sin(phases)  # respiratory baseline variation
        if self._pulses:
            feet, rr, amp = (np.array(c) for c in zip(*self._pulses))
            add_pleth_pulses(out, t, feet, rr, amp)
        self._pleth_n += n
        now = self._pleth_n / fs
        while self._pulses and self._pulses[0][0] + pulse_span_s(self._pulses[0][1]) < now:
            self._pulses.popleft()
        return np.rint(np.clip(out / PLETH_SCALE, -32767, 32767)).astype(np.int16)
