"""Labelled episodes: ECG and pleth with one artefact or one true event each, and what a monitor would show.

For the evaluation of waveform signal quality and artefact-aware alarming
(issue 18). ``generate_episode(kind, seed)`` gives, deterministically for the
seed, an ``Episode``:

* ``ecg``: lead II in mV at ``ECG_FS`` (250 Hz); ``pleth``: the plethysmogram as
  an AC/DC ratio at ``PLETH_FS`` (125 Hz), each pulse's foot a pulse transit
  time (150-250 ms) after its beat's R wave, its height the perfusion;
* ``numerics``: 1 Hz series as a monitor reports them (value ``i`` is what it
  shows at ``t0_ms + (i + 1) * 1000``): ``hr`` counted by a *naive* QRS counter
  on the ECG (high-pass, fixed threshold learnt in the first 10 s, 250 ms
  refractory, mean of the last 8 intervals, 0 after 4 s without a beat), so
  ECG artefact makes it alarm falsely as real monitors do; ``pr`` counted the
  same way on the pleth; ``spo2``; and the truth, ``true_hr`` and ``true_spo2``.
  NaN: the monitor shows no value (in the first 10 s, while it learns the
  signals; SpO2 and PR also when it has found no pulse on the pleth for 4 s);
* ``labels``: what happened, when and on which signal (``Label``);
* ``r_peaks_s`` and ``pulse_feet_s``: the true beats and their pulses.

Kinds (``KINDS``), each at a random time between 35 and 55 s into the episode
(default 120 s), with random severity and duration:

=================  ======  ===============================================================
kind               signal  what
=================  ======  ===============================================================
normal             -       nothing (for the false-alarm rate of a quiet bed)
ecg_motion         ecg     band-limited motion noise, 0.3-1.0 mV rms in bursts, 8-20 s
electrode_pop      ecg     3-8 steps of 1.5-4 mV decaying in 0.15-0.5 s, over 5-15 s
baseline_wander    ecg     1-2.5 mV at 0.15-0.6 Hz, 15-40 s
pleth_dropout      pleth   no pulsatile signal (probe slipping), 8-25 s: SpO2 and PR go blank
pleth_motion       pleth   motion 2-6 x the pulse height at 0.5-3 Hz, 8-20 s: SpO2 reads
                           falsely low (75-88 %)
poor_perfusion     pleth   pulses shrink to 8-15 % (perfusion index ~0.3 %), 30-60 s: SpO2
                           reads falsely low (83-89 %)
bradycardia        ecg     HR falls to 32-42 within 4 s, 20-40 s
tachycardia        ecg     HR rises to 140-170 within 4 s, 20-40 s
asystole           ecg     no beat (and no pulse) for 6-15 s
vtach              ecg     wide complexes at 150-200/min, 8-30 s; pulses at 25-45 % height
desaturation       spo2    true SpO2 falls to 78-86 % over 10-15 s, stays 20-40 s, recovers
=================  ======  ===============================================================

A label's ``start_ms``/``end_ms`` bound the artefact or the event (for
asystole: from when the missing beat was due to the next beat). True events are
``true_event=True``; the alarm side must raise them, the artefacts it should not.
Pure numpy, no I/O; one 120 s episode takes a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from simulators.physiology import ECG_RATE_HZ, PLETH_RATE_HZ, PTT_RANGE_S
from simulators.waveshapes import R_AT_K, add_pleth_pulses, ecg_beat_mv, vt_beat_mv

ECG_FS = ECG_RATE_HZ
PLETH_FS = PLETH_RATE_HZ
DEFAULT_T0_MS = 1_700_000_000_000
DEFAULT_DURATION_S = 120.0

ARTEFACT_KINDS: tuple[str, ...] = ("ecg_motion", "electrode_pop", "baseline_wander", "pleth_dropout", "pleth_motion", "poor_perfusion")
EVENT_KINDS: tuple[str, ...] = ("bradycardia", "tachycardia", "asystole", "vtach", "desaturation")
KINDS: tuple[str, ...] = ("normal", *ARTEFACT_KINDS, *EVENT_KINDS)
SIGNAL_OF: dict[str, str] = {
    "ecg_motion": "ecg", "electrode_pop": "ecg", "baseline_wander": "ecg",
    "pleth_dropout": "pleth", "pleth_motion": "pleth", "poor_perfusion": "pleth",
    "bradycardia": "ecg", "tachycardia": "ecg", "asystole": "ecg", "vtach": "ecg", "desaturation": "spo2",
}  # fmt: skip

_NO_BEAT_S = 4.0  # the naive counters show HR 0 / no pulse after this long without a detection
_LEARN_S = 10.0


@dataclass(frozen=True, slots=True)
class Label:
    """One artefact or true event: ``kind`` (a ``KINDS`` entry), the ``signal`` it is on ("ecg", "pleth" or "spo2")
    and its span in ms since the epoch."""

    kind: str
    signal: str
    start_ms: int
    end_ms: int
    true_event: bool


@dataclass(frozen=True)
class Episode:
    """A labelled stretch of one patient's monitoring; see the module docstring for each field."""

    kind: str
    seed: int
    t0_ms: int  # time of the first ECG and pleth sample
    duration_s: float
    ecg: np.ndarray  # mV at ECG_FS
    pleth: np.ndarray  # AC/DC ratio at PLETH_FS
    numerics: dict[str, np.ndarray]  # 1 Hz: hr, pr, spo2 (monitor; NaN = no value), true_hr, true_spo2
    r_peaks_s: np.ndarray  # true R waves (VT peaks), s since t0
    pulse_feet_s: np.ndarray  # the foot of each beat's pleth pulse, s since t0
    labels: tuple[Label, ...]
    ecg_fs: int = ECG_FS
    pleth_fs: int = PLETH_FS
    numerics_t_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # time of each numerics value


def evaluation_set(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """``n`` (kind, seed) pairs cycling through ``KINDS``, so every kind has ``n // len(KINDS)`` or one more."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return [(KINDS[i % len(KINDS)], seed * 1_000_003 + i) for i in range(n)]


# -- beats ----------------------------------------------------------------------


@dataclass(slots=True)
class _Beats:
    start: np.ndarray  # s
    shape_rr: np.ndarray  # the beat length its shape is drawn for (a pause after it is flat)
    vt: np.ndarray  # bool: a ventricular complex

    @property
    def r(self) -> np.ndarray:
        return self.start + R_AT_K * np.minimum(1.0, self.shape_rr / 0.8)


def _beats(rng: np.random.Generator, duration: float, hr_at: Callable[[float], float],
           vt_span: tuple[float, float, float] | None, pause: tuple[float, float] | None) -> _Beats:  # fmt: skip
    """Beat starts from -1 s to the end: sinus at ``hr_at(t)``, VT (start, end, rate) inside ``vt_span``,
    nothing inside ``pause`` (the next beat comes at its end)."""
    starts, rrs, vts = [], [], []
    t = -float(rng.uniform(0.3, 1.0))
    while t < duration:
        in_vt = vt_span is not None and vt_span[0] <= t < vt_span[1]
        rate = vt_span[2] if in_vt and vt_span is not None else hr_at(t)
        rr = 60.0 / rate * (1.0 + float(np.clip(rng.normal(0.0, 0.01 if in_vt else 0.02), -0.05, 0.05)))
        starts.append(t)
        rrs.append(rr)
        vts.append(in_vt)
        nxt = t + rr
        if pause is not None and pause[0] <= nxt < pause[1]:
            nxt = pause[1]
        t = nxt
    return _Beats(np.array(starts), np.array(rrs), np.array(vts, dtype=bool))


def _render_ecg(b: _Beats, t: np.ndarray) -> np.ndarray:
    """The beats on the time grid ``t``: each sample gets its own beat and the tail of the one before."""
    j = np.searchsorted(b.start, t, side="right") - 1
    out = np.zeros(len(t))
    for lag in (0, 1):
        idx = j - lag
        ok = idx >= 0
        tau = t[ok] - b.start[idx[ok]]
        rr = b.shape_rr[idx[ok]]
        vt = b.vt[idx[ok]]
        part = np.zeros(int(ok.sum()))
        if (~vt).any():
            part[~vt] = ecg_beat_mv(tau[~vt], rr[~vt])
        if vt.any():
            part[vt] = vt_beat_mv(tau[vt], rr[vt])
        out[ok] += part
    return out


# -- noise ----------------------------------------------------------------------


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average over ``n`` samples (edges padded with the end values)."""
    if n <= 1:
        return x.copy()
    pad = np.concatenate([np.full(n, x[0]), x, np.full(n, x[-1])])
    c = np.cumsum(pad)
    avg = (c[n:] - c[:-n]) / n
    lo = n - n // 2
    return avg[lo : lo + len(x)]


def _gate(t: np.ndarray, start: float, end: float, ramp: float = 0.5) -> np.ndarray:
    """1 inside [start, end], 0 outside, with cosine ramps of ``ramp`` s inside the span."""
    up = np.clip((t - start) / ramp, 0.0, 1.0)
    down = np.clip((end - t) / ramp, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(up, down))


def _motion(rng: np.random.Generator, t: np.ndarray, fs: float, start: float, end: float, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Unit-rms band-limited noise (roughly ``lo_hz``-``hi_hz``) in bursts inside [start, end]."""
    w = rng.normal(0.0, 1.0, len(t))
    band = _smooth(w, max(1, int(fs / (2 * hi_hz)))) - _smooth(w, max(2, int(fs / (2 * lo_hz))))
    env = np.zeros(len(t))
    s = start
    while s < end:
        length = float(rng.uniform(0.4, 2.0))
        env = np.maximum(env, float(rng.uniform(0.5, 1.0)) * _gate(t, s, min(end, s + length), 0.1))
        s += length + float(rng.uniform(0.0, 0.6))
    x = band * env
    inside = (t >= start) & (t <= end)
    rms = float(np.sqrt(np.mean(x[inside] ** 2))) if inside.any() else 0.0
    return x / rms if rms > 0 else x


# -- what the monitor shows -------------------------------------------------------


def _local_maxima(x: np.ndarray) -> np.ndarray:
    return np.flatnonzero((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])) + 1


def _naive_beats(x: np.ndarray, fs: float, *, hp_s: float, threshold: float, refractory_s: float, smooth_s: float,
                 auto_gain: float = 0.0) -> np.ndarray:  # fmt: skip
    """Times (s) a simple counter fires: local maxima of |x - moving average| above ``threshold`` times the
    amplitude it learnt in the first 10 s, at least ``refractory_s`` apart (the larger wins). With
    ``auto_gain`` > 0 (an oximeter), the signal is first scaled to its amplitude over the last 2 s, by at
    most ``auto_gain`` times, so weak pulses are counted and a probe with no signal is not."""
    hp = x - _smooth(x, max(2, int(hp_s * fs)))
    d = _smooth(np.abs(hp), max(1, int(smooth_s * fs)))
    sec = int(fs)
    learn = d[: int(_LEARN_S * fs)]
    learnt = float(np.median([learn[i : i + sec].max() for i in range(0, len(learn) - sec + 1, sec)]))
    if auto_gain > 0.0:
        win = 2 * sec
        padded = np.concatenate([np.full(win - 1, d[0]), d])
        local = np.lib.stride_tricks.sliding_window_view(padded, win).max(axis=1)  # trailing 2 s maximum
        d = d / np.maximum(local, learnt / auto_gain) * learnt
    cand = _local_maxima(d)
    cand = cand[d[cand] > threshold * learnt]
    beats: list[int] = []
    for i in cand:
        if not beats or i - beats[-1] >= refractory_s * fs:
            beats.append(int(i))
        elif d[i] > d[beats[-1]]:
            beats[-1] = int(i)  # the larger peak in a refractory period is the beat
    return np.array(beats, dtype=float) / fs


def _rate_series(beat_s: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """At each time: 60 / mean of the last (up to 8) intervals within 10 s and since the last gap of
    ``_NO_BEAT_S``; 0 when there is no such interval (no beat for ``_NO_BEAT_S``)."""
    out = np.zeros(len(seconds))
    for i, s in enumerate(seconds):
        upto = beat_s[(beat_s <= s) & (beat_s > s - 10.0)]
        if len(upto) < 2 or s - upto[-1] > _NO_BEAT_S:
            continue
        gaps = np.flatnonzero(np.diff(upto) > _NO_BEAT_S)
        if len(gaps):
            upto = upto[gaps[-1] + 1 :]
        if len(upto) >= 2:
            out[i] = round(60.0 / float(np.diff(upto[-9:]).mean()))
    return out


# -- episodes ---------------------------------------------------------------------


def generate_episode(kind: str, seed: int, *, duration_s: float = DEFAULT_DURATION_S, t0_ms: int = DEFAULT_T0_MS) -> Episode:
    """One labelled episode of ``kind`` (see ``KINDS``), the same for the same arguments."""
    if kind not in KINDS:
        raise ValueError(f"unknown episode kind {kind!r}; known: {', '.join(KINDS)}")
    if not 60.0 <= duration_s <= 3600.0:
        raise ValueError("duration_s must be within 60..3600")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), KINDS.index(kind), 0xE915]))
    hr0 = float(rng.uniform(62.0, 95.0))
    spo2_0 = float(rng.uniform(94.0, 98.5))
    pi0 = float(rng.uniform(1.5, 5.0)) / 100.0  # pulse height, AC/DC
    ptt = float(rng.uniform(0.17, 0.23))
    resp_hz = float(rng.uniform(12.0, 20.0)) / 60.0
    start = float(rng.uniform(35.0, 55.0))
    span = {
        "normal": (0.0, 0.0), "ecg_motion": (8, 20), "electrode_pop": (5, 15), "baseline_wander": (15, 40),
        "pleth_dropout": (8, 25), "pleth_motion": (8, 20), "poor_perfusion": (30, 60), "bradycardia": (20, 40),
        "tachycardia": (20, 40), "asystole": (6, 15), "vtach": (8, 30), "desaturation": (20, 40),
    }[kind]  # fmt: skip
    end = min(start + float(rng.uniform(*span)), duration_s - 15.0)
    severity = float(rng.uniform(0.0, 1.0))  # 0 mildest .. 1 most severe, mapped per kind below

    # heart: rate course, VT run, pause
    target = {"bradycardia": 42.0 - 10.0 * severity, "tachycardia": 140.0 + 30.0 * severity}.get(kind)
    ramp = 4.0

    def hr_at(t: float) -> float:
        if target is None:
            return hr0
        w = min(1.0, max(0.0, (t - start) / ramp), max(0.0, (end - t) / ramp))
        return hr0 + (target - hr0) * w

    vt_span = (start, end, 150.0 + 50.0 * severity) if kind == "vtach" else None
    pause = (start, end) if kind == "asystole" else None
    beats = _beats(rng, duration_s, hr_at, vt_span, pause)
    labels: list[Label] = []
    if pause is not None:
        before = beats.start[beats.start < start]
        due = float(before[-1] + beats.shape_rr[len(before) - 1])  # the beat that never came
        nxt = float(beats.start[beats.start >= start][0])
        start, end = due, nxt

    n_ecg = int(round(duration_s * ECG_FS))
    n_pl = int(round(duration_s * PLETH_FS))
    te = np.arange(n_ecg) / ECG_FS
    tp = np.arange(n_pl) / PLETH_FS
    ecg = _render_ecg(beats, te)
    ecg += 0.04 * np.sin(2 * np.pi * resp_hz * te + float(rng.uniform(0, 2 * np.pi))) + rng.normal(0.0, 0.008, n_ecg)

    # pleth: one pulse per beat, a PTT after its R wave
    r = beats.r
    feet = r + np.clip(ptt + rng.normal(0.0, 0.006, len(r)), *PTT_RANGE_S)
    amp = pi0 * (1.0 + 0.08 * rng.uniform(-1.0, 1.0, len(r)))
    if kind == "vtach":
        amp[beats.vt] *= 0.25 + 0.2 * severity  # a weak pulse during VT
    has_pulse = np.ones(len(r), dtype=bool)
    pleth = rng.normal(0.0, 0.0004, n_pl) * pi0 / 0.03 + 0.1 * pi0 * np.sin(2 * np.pi * resp_hz * tp)

    spo2_true = np.full(int(duration_s), spo2_0)
    spo2_shown_offset = np.zeros(int(duration_s))  # falsely low readings
    secs = np.arange(1, int(duration_s) + 1, dtype=float)

    if kind == "ecg_motion":
        ecg += (0.3 + 0.7 * severity) * _motion(rng, te, ECG_FS, start, end, 1.0, 20.0)
    elif kind == "electrode_pop":
        n_pops = int(rng.integers(3, 9))
        for tp_s in np.sort(rng.uniform(start, end, n_pops)):
            height = float(rng.choice([-1.0, 1.0])) * float(rng.uniform(1.5, 4.0))
            tau = float(rng.uniform(0.15, 0.5))
            after = te >= tp_s
            ecg[after] += height * np.exp(-(te[after] - tp_s) / tau)
    elif kind == "baseline_wander":
        f = float(rng.uniform(0.15, 0.6))
        a = 1.0 + 1.5 * severity
        ph = float(rng.uniform(0, 2 * np.pi))
        ecg += a * _gate(te, start, end, 2.0) * (np.sin(2 * np.pi * f * te + ph) + 0.3 * np.sin(4 * np.pi * f * te))
    elif kind == "pleth_dropout":
        has_pulse = (feet < start) | (feet > end)
        pleth *= 1.0 - _gate(tp, start, end, 0.3) * 0.9
    elif kind == "pleth_motion":
        pleth += (2.0 + 4.0 * severity) * pi0 * _motion(rng, tp, PLETH_FS, start, end, 0.5, 3.0)
        spo2_shown_offset -= _gate(secs, start + 3.0, end + 4.0, 3.0) * (spo2_0 - (88.0 - 13.0 * severity))
    elif kind == "poor_perfusion":
        factor = 1.0 - _gate(feet, start, end, 3.0) * (1.0 - (0.15 - 0.07 * severity))
        amp = amp * factor
        spo2_shown_offset -= _gate(secs, start + 5.0, end + 5.0, 5.0) * (spo2_0 - (89.0 - 6.0 * severity))
    elif kind == "desaturation":
        low = 86.0 - 8.0 * severity
        fall = float(rng.uniform(10.0, 15.0))
        spo2_true = spo2_0 + (low - spo2_0) * _gate(secs, start, end, fall)
    add_pleth_pulses(pleth, tp, feet[has_pulse], beats.shape_rr[has_pulse], amp[has_pulse])

    # the monitor
    ecg_beats = _naive_beats(ecg, ECG_FS, hp_s=0.2, threshold=0.5, refractory_s=0.25, smooth_s=0.0)
    pulse_beats = _naive_beats(pleth, PLETH_FS, hp_s=1.0, threshold=0.4, refractory_s=0.3, smooth_s=0.04, auto_gain=15.0)
    hr_shown = _rate_series(ecg_beats, secs)
    pr_shown = _rate_series(pulse_beats, secs)
    no_pulse = pr_shown == 0.0
    pr_shown[no_pulse] = np.nan
    learning = secs < _LEARN_S  # the monitor shows nothing while it learns the signals
    hr_shown[learning] = np.nan
    lagged = np.array([spo2_true[max(0, i - 4) : i + 1].mean() for i in range(len(spo2_true))])  # 5 s averaging
    spo2_shown = np.round(np.clip(lagged + spo2_shown_offset + rng.uniform(-0.5, 0.5, len(secs)), 50.0, 100.0))
    spo2_shown[no_pulse | learning] = np.nan
    pr_shown[learning] = np.nan
    true_hr = np.zeros(len(secs))
    for i, s in enumerate(secs):
        recent = beats.r[(beats.r <= s) & (beats.r > s - 5.0)]
        true_hr[i] = 0.0 if len(recent) < 2 or s - recent[-1] > 2.5 else round(60.0 / float(np.diff(recent).mean()))

    if kind != "normal":
        labels.append(Label(kind, SIGNAL_OF[kind], t0_ms + int(round(start * 1000)), t0_ms + int(round(end * 1000)), kind in EVENT_KINDS))
    in_span = (r >= 0.0) & (r < duration_s)
    keep_feet = has_pulse & (feet >= 0.0) & (feet < duration_s)
    return Episode(
        kind=kind,
        seed=int(seed),
        t0_ms=t0_ms,
        duration_s=float(duration_s),
        ecg=ecg.astype(np.float32),
        pleth=pleth.astype(np.float32),
        numerics={"hr": hr_shown, "pr": pr_shown, "spo2": spo2_shown, "true_hr": true_hr, "true_spo2": np.round(spo2_true, 1)},
        r_peaks_s=r[in_span],
        pulse_feet_s=feet[keep_feet],
        labels=tuple(labels),
        numerics_t_ms=t0_ms + (secs * 1000).astype(np.int64),
    )
