"""The pleth follows the ECG's beats; labelled episodes are deterministic and carry what they say."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.episodes import ARTEFACT_KINDS, EVENT_KINDS, KINDS, SIGNAL_OF, evaluation_set, generate_episode
from simulators.physiology import ECG_RATE_HZ, PLETH_RATE_HZ, PLETH_SCALE, PTT_RANGE_S, Physiology
from simulators.scenarios import get_scenario


def test_monitor_pleth_pulses_follow_the_r_waves() -> None:
    p = Physiology(11, get_scenario("sepsis").vitals)
    ecg, pleth = [], []
    for k in range(150):  # 30 s in 200 ms ticks, as the monitor draws them
        if k % 5 == 0:
            p.step()
        ecg.append(p.ecg(50))
        pleth.append(p.pleth(25))
    e, pl = np.concatenate(ecg).astype(float), np.concatenate(pleth).astype(float) * PLETH_SCALE
    r = np.flatnonzero((e[1:-1] > 120) & (e[1:-1] >= e[:-2]) & (e[1:-1] > e[2:])) + 1
    r = r[np.r_[True, np.diff(r) > 50]] / ECG_RATE_HZ
    # the foot of each pulse: where the pleth first rises past 10 % of the pulse height after its R wave
    delays = []
    for t in r[1:-1]:
        i0 = int(t * PLETH_RATE_HZ)
        seg = pl[i0 : i0 + int(0.45 * PLETH_RATE_HZ)]
        base = seg[:5].mean()
        rise = np.flatnonzero(seg - base > 0.1 * (seg.max() - base))
        delays.append(rise[0] / PLETH_RATE_HZ)
    delays = np.array(delays)
    assert len(delays) > 30
    assert PTT_RANGE_S[0] - 0.01 <= delays.min() and delays.max() <= PTT_RANGE_S[1] + 0.05  # foot + 10 % rise
    assert delays.std() < 0.03  # one patient: a steady transit time
    assert 0.02 < np.percentile(pl, 99) - np.percentile(pl, 1) < 0.05  # perfusion index 3 %


def test_pleth_may_not_run_ahead_of_the_ecg() -> None:
    p = Physiology(1, get_scenario("stable").vitals)
    with pytest.raises(ValueError, match="ahead of the ECG"):
        p.pleth(50)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_labelled_and_deterministic(kind: str) -> None:
    a, b, c = generate_episode(kind, 7), generate_episode(kind, 7), generate_episode(kind, 8)
    assert np.array_equal(a.ecg, b.ecg) and np.array_equal(a.pleth, b.pleth) and a.labels == b.labels
    assert all(np.array_equal(a.numerics[k], b.numerics[k], equal_nan=True) for k in a.numerics)
    assert not np.array_equal(a.ecg, c.ecg)
    assert len(a.ecg) == 120 * a.ecg_fs and len(a.pleth) == 120 * a.pleth_fs and len(a.numerics["hr"]) == 120
    if kind == "normal":
        assert a.labels == ()
        return
    (label,) = a.labels
    assert label.kind == kind and label.signal == SIGNAL_OF[kind] and label.true_event == (kind in EVENT_KINDS)
    assert a.t0_ms + 30_000 < label.start_ms < label.end_ms <= a.t0_ms + 105_000


def test_feet_follow_beats_in_episodes() -> None:
    e = generate_episode("normal", 3)
    d = np.array([f - e.r_peaks_s[e.r_peaks_s < f].max() for f in e.pulse_feet_s if (e.r_peaks_s < f).any()])
    assert PTT_RANGE_S[0] <= d.min() and d.max() <= PTT_RANGE_S[1]


def window(e, label, key):  # the monitor's values during a label (and 5 s after)
    s0, s1 = (label.start_ms - e.t0_ms) // 1000, (label.end_ms - e.t0_ms) // 1000 + 5
    return e.numerics[key][s0:s1]


def test_artefacts_mislead_the_naive_monitor_and_events_are_real() -> None:
    tachy_false = sum(np.nanmax(window(e, e.labels[0], "hr")) > 120 for e in (generate_episode("ecg_motion", s) for s in range(10)))
    assert tachy_false >= 5  # motion makes the monitor's HR alarm falsely, in most episodes
    for s in range(5):
        e = generate_episode("pleth_motion", s)
        assert np.nanmin(window(e, e.labels[0], "spo2")) < 90 <= np.nanmin(e.numerics["true_spo2"])  # falsely low
        e = generate_episode("asystole", s)
        assert np.nanmin(window(e, e.labels[0], "hr")) == 0 and np.nanmin(window(e, e.labels[0], "true_hr")) == 0
        e = generate_episode("bradycardia", s)
        assert np.nanmin(window(e, e.labels[0], "true_hr")) < 45
        e = generate_episode("desaturation", s)
        assert np.nanmin(window(e, e.labels[0], "true_spo2")) < 88
        e = generate_episode("vtach", s)
        assert np.nanmax(window(e, e.labels[0], "true_hr")) >= 145


def test_evaluation_set_covers_every_kind() -> None:
    pairs = evaluation_set(240)
    assert len(pairs) == 240 and {k for k, _ in pairs} == set(KINDS)
    assert min(sum(k == kind for k, _ in pairs) for kind in KINDS) == 240 // len(KINDS)
    assert set(ARTEFACT_KINDS) | set(EVENT_KINDS) | {"normal"} == set(KINDS)
