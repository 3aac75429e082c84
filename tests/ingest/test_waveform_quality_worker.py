"""The hub's waveform analysis without sockets: chunks in, a verdict per lead every round, the lead's rate as a derived
value (flagged when poor), and no window joined across a gap."""

from __future__ import annotations

import asyncio

import numpy as np

from alerts.lead_quality import LeadQuality
from ingest.waveform_quality import WaveformQuality
from simulators.episodes import generate_episode
from wire.messages import Observation, WaveChunk
from wire.vocabulary import Flag

SCALE = 0.001  # mV (or AC/DC ratio) per count


def chunks(bed: str, lead: str, x: np.ndarray, fs: int, t0: int, per_chunk: int) -> list[WaveChunk]:
    counts = np.round(x / SCALE).astype(int)
    return [WaveChunk(i // per_chunk, bed, lead, t0 + round(i * 1000 / fs), fs, SCALE, tuple(int(c) for c in counts[i : i + per_chunk]))
            for i in range(0, len(x), per_chunk)]  # fmt: skip


def judged(wq_chunks: list[WaveChunk]) -> list[tuple[str, LeadQuality, Observation]]:
    got: list[tuple[str, LeadQuality, Observation]] = []
    wq = WaveformQuality(lambda bed, q, obs: got.append((bed, q, obs)))
    for c in wq_chunks:
        wq.add(c)
    asyncio.run(wq.round())
    return got


def test_a_clean_window_is_judged_good_and_its_rates_enter_as_derived_parameters() -> None:
    ep = generate_episode("normal", 3, duration_s=60)
    t0 = ep.t0_ms
    got = judged(chunks("A-01", "ecg_ii", ep.ecg[: 12 * ep.ecg_fs], ep.ecg_fs, t0, 50)
                 + chunks("A-01", "pleth", ep.pleth[: 12 * ep.pleth_fs], ep.pleth_fs, t0, 25))  # fmt: skip
    by_signal = {q.signal: (q, obs) for _, q, obs in got}
    assert set(by_signal) == {"ecg", "pleth"}
    true_hr = float(np.nanmedian(ep.numerics["true_hr"][2:12]))
    for signal, param in (("ecg", "hr_ecg"), ("pleth", "pr_pleth")):
        q, obs = by_signal[signal]
        assert q.good and obs.param == param and obs.flags == 0 and obs.t_dev == t0 + 12_000
        assert abs(obs.value - true_hr) <= 3, (signal, obs.value, true_hr)


def test_a_noisy_ecg_is_judged_poor_with_its_reason_and_its_rate_flagged() -> None:
    ep = generate_episode("ecg_motion", 5, duration_s=90)
    label = next(lb for lb in ep.labels if lb.signal == "ecg")
    end_s = (label.end_ms - ep.t0_ms) / 1000
    n = int(end_s * ep.ecg_fs)
    [(bed, q, obs)] = judged(chunks("A-02", "ecg_ii", ep.ecg[:n], ep.ecg_fs, ep.t0_ms, 50))
    assert bed == "A-02" and not q.good and q.reason and obs.flags == int(Flag.ARTEFACT)


def test_nothing_is_judged_without_a_full_window_or_across_a_gap_and_each_window_once() -> None:
    ep = generate_episode("normal", 4, duration_s=60)
    fs = ep.ecg_fs
    got: list[tuple[str, LeadQuality, Observation]] = []
    wq = WaveformQuality(lambda bed, q, obs: got.append((bed, q, obs)))
    for c in chunks("A-03", "ecg_ii", ep.ecg[: 6 * fs], fs, ep.t0_ms, 50):
        wq.add(c)
    for c in chunks("A-03", "ecg_ii", ep.ecg[6 * fs : 12 * fs], fs, ep.t0_ms + 7_000, 50):  # a 1 s gap after 6 s
        wq.add(c)
    asyncio.run(wq.round())
    assert got == [] and wq.counters["restarted"] == 1  # 6 s on each side of the gap: no 10 s window
    for c in chunks("A-03", "ecg_ii", ep.ecg[12 * fs : 17 * fs], fs, ep.t0_ms + 13_000, 50):
        wq.add(c)
    asyncio.run(wq.round())
    asyncio.run(wq.round())  # nothing new since: not judged again
    assert len(got) == 1 and got[0][2].t_dev == ep.t0_ms + 18_000
    assert wq.counters["windows"] == 1
