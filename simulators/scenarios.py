"""Named clinical scenarios for simulated beds, and the demo ward's scenario mix.

A scenario is a piecewise-linear trajectory of designed vitals (keyframes,
interpolated; ``o2`` and ``acvpu`` step at their keyframe) plus device
behaviour (SpO2 probe falling off, monitor going silent). ``physiology.Physiology``
adds bounded per-patient offset, drift and noise (``physiology.VARIATION``:
HR and SBP +-8.5 % / +-9 %, RR and SpO2 +-2, temperature +-0.3 degC at worst);
every keyframe below keeps its designed NEWS2 band under that worst case. NEWS2
is scale 1 and uses the last NIBP reading (one per cuff cycle).

Time courses (t in seconds since the monitor started; vitals are designed means):

``stable``
    HR 76, RR 16, SpO2 96.5 %, BP 124/78, 37.0 degC, alert, air, for ever.
    NEWS2 0 (1 when SpO2 reads 95); never above 2, never a 3 in one parameter.

``sepsis`` (compressed over minutes for the demo)
    ====  ===  ==  ====  ======  ====  =====  =======================
    t     HR   RR  SpO2  BP      Temp  ACVPU  NEWS2: typical (worst)
    ====  ===  ==  ====  ======  ====  =====  =======================
    0     96   20  96    118/72  38.2  A      2 (1-4)
    30    124  24  95.5  108/64  38.7  A      6 (>= 5 from here on)
    120   128  28  94.5  100/58  39.4  A      9-10 (>= 7 from here on)
    180   134  29  94    95/54   39.5  C      13-15 (>= 10)
    240+  138  30  93.5  90/50   39.6  C      15-16 (>= 10)
    ====  ===  ==  ====  ======  ====  =====  =======================

    Between keyframes values move linearly, so HR, RR and temperature rise and
    SBP and SpO2 fall steadily; new confusion (C) from 180 s.

``hypoxia`` (acute desaturation, then oxygen is started)
    0-3 s: HR 78, RR 16, SpO2 97 %, BP 128/78, 37.0 degC - NEWS2 0.
    3-15 s: SpO2 falls to 86 %, RR to 27, HR to 112 (BP 134/82).
    15-120 s: SpO2 86, RR 28, HR 116 - NEWS2 >= 7 (typically 8).
    120 s: oxygen on; by 180 s SpO2 92 % on oxygen, RR 24, HR 104 -
    NEWS2 >= 6 (typically 7) thereafter (10 just after 120 s: oxygen scores 2
    before SpO2 has risen). NEWS2 >= 5 from 15 s onwards.

``bradycardia``
    HR 37 (reads 34-40), RR 15, SpO2 97 %, BP 120/74, 36.8 degC, alert, air.
    NEWS2 3 (a single-parameter 3: "low-medium"), at most 4.

``probe_off``
    ``stable`` vitals. The SpO2 probe falls off at 10 s and is put back at 70 s,
    then falls off again from 240 s to 330 s. While off, SpO2 is sent as
    ``spo2=-!p`` and a ``probe_off`` status is sent (on change and every 10 s);
    ``ok`` when it is back. NEWS2 incomplete (SpO2 missing) while off.

``silent``
    ``stable`` vitals; the monitor sends nothing at all after 15 s (port open,
    line quiet). NEWS2 0-1 until then, then stale.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, fields

import numpy as np

from simulators.physiology import Vitals


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    keyframes: tuple[tuple[float, Vitals], ...]  # (t_s, vitals), t ascending, first at 0
    probe_off: tuple[tuple[float, float | None], ...] = ()  # SpO2 probe off [start, end)
    silent_after_s: float | None = None

    def vitals(self, t: float) -> Vitals:
        """Designed vitals at ``t`` seconds (a ``physiology.Trajectory``)."""
        times = [k[0] for k in self.keyframes]
        i = bisect.bisect_right(times, t) - 1
        if i < 0:
            return self.keyframes[0][1]
        if i >= len(self.keyframes) - 1:
            return self.keyframes[-1][1]
        (t0, a), (t1, b) = self.keyframes[i], self.keyframes[i + 1]
        w = (t - t0) / (t1 - t0)
        values = {}
        for f in fields(Vitals):
            va, vb = getattr(a, f.name), getattr(b, f.name)
            values[f.name] = va if f.name in ("o2", "acvpu") else va + (vb - va) * w
        return Vitals(**values)

    def spo2_probe_off(self, t: float) -> bool:
        return any(start <= t and (end is None or t < end) for start, end in self.probe_off)

    def silent(self, t: float) -> bool:
        return self.silent_after_s is not None and t >= self.silent_after_s


_STABLE = Vitals(hr=76, rr=16, spo2=96.5, sbp=124, dbp=78, temp=37.0, etco2=38)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("stable", ((0.0, _STABLE),)),
        Scenario(
            "sepsis",
            (
                (0.0, Vitals(hr=96, rr=20, spo2=96, sbp=118, dbp=72, temp=38.2, etco2=36)),
                (30.0, Vitals(hr=124, rr=24, spo2=95.5, sbp=108, dbp=64, temp=38.7, etco2=34)),
                (120.0, Vitals(hr=128, rr=28, spo2=94.5, sbp=100, dbp=58, temp=39.4, etco2=32)),
                (180.0, Vitals(hr=134, rr=29, spo2=94, sbp=95, dbp=54, temp=39.5, etco2=31, acvpu=1)),
                (240.0, Vitals(hr=138, rr=30, spo2=93.5, sbp=90, dbp=50, temp=39.6, etco2=30, acvpu=1)),
            ),
        ),
        Scenario(
            "hypoxia",
            (
                (0.0, Vitals(hr=78, rr=16, spo2=97, sbp=128, dbp=78, temp=37.0, etco2=38)),
                (3.0, Vitals(hr=78, rr=16, spo2=97, sbp=128, dbp=78, temp=37.0, etco2=38)),
                (15.0, Vitals(hr=112, rr=27, spo2=86, sbp=134, dbp=82, temp=37.0, etco2=33)),
                (20.0, Vitals(hr=116, rr=28, spo2=86, sbp=134, dbp=82, temp=37.0, etco2=33)),
                (120.0, Vitals(hr=116, rr=28, spo2=86, sbp=134, dbp=82, temp=37.0, etco2=33, o2=1)),
                (180.0, Vitals(hr=104, rr=24, spo2=92, sbp=130, dbp=80, temp=37.0, etco2=35, o2=1)),
            ),
        ),
        Scenario("bradycardia", ((0.0, Vitals(hr=37, rr=15, spo2=97, sbp=120, dbp=74, temp=36.8, etco2=38)),)),
        Scenario("probe_off", ((0.0, _STABLE),), probe_off=((10.0, 70.0), (240.0, 330.0))),
        Scenario("silent", ((0.0, _STABLE),), silent_after_s=15.0),
    )
}

#: share of each scenario in the demo ward
DEMO_MIX: dict[str, float] = {
    "stable": 0.60,
    "sepsis": 0.10,
    "hypoxia": 0.10,
    "bradycardia": 0.06,
    "probe_off": 0.08,
    "silent": 0.06,
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def _mix_counts(n_beds: int) -> dict[str, int]:
    """Largest-remainder split of ``n_beds`` by ``DEMO_MIX``; every scenario once if n >= 6."""
    exact = {name: share * n_beds for name, share in DEMO_MIX.items()}
    counts = {name: int(x) for name, x in exact.items()}
    by_remainder = sorted(DEMO_MIX, key=lambda name: (-(exact[name] - counts[name]), -DEMO_MIX[name]))
    for name in by_remainder[: n_beds - sum(counts.values())]:
        counts[name] += 1
    if n_beds >= len(DEMO_MIX):
        for name in DEMO_MIX:
            while counts[name] == 0:
                donor = max(counts, key=lambda k: counts[k])
                counts[donor] -= 1
                counts[name] += 1
    return counts


def assign_scenarios(n_beds: int, seed: int) -> list[str]:
    """A deterministic, shuffled demo mix of scenario names, one per bed.

    About 60 % stable, 10 % sepsis, 10 % hypoxia, 6 % bradycardia, 8 % probe_off,
    6 % silent; for ``n_beds >= 6`` every scenario appears at least once.
    """
    if n_beds < 0:
        raise ValueError("n_beds must be >= 0")
    names = [name for name, count in _mix_counts(n_beds).items() for _ in range(count)]
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5CE9])).permutation(len(names))
    return [names[i] for i in order]
