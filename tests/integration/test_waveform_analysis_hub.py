"""The hub judges the ECG and pleth it receives: a real hub, an edge connection sending 12 s of each lead. A clean
patient's beds show the rates the waveforms give (``hr_ecg``, ``pr_pleth``); a bed whose ECG is all motion artefact
shows its rate flagged ``artefact``, and the alarm engine has both beds' verdicts."""

from __future__ import annotations

import time

import numpy as np
import pytest
from support import HubProcess, get_json, post_json, wait_until
from websockets.sync.client import connect

from simulators.episodes import generate_episode
from wire.codec import decode_hub, encode_edge
from wire.messages import Ack, Hello, WaveChunk

pytestmark = pytest.mark.integration

SCALE = 0.001


def lead_chunks(bed: str, lead: str, x: np.ndarray, fs: int, t0: int, first_seq: int) -> list[WaveChunk]:
    counts = np.round(x / SCALE).astype(int)
    per = fs // 5  # one chunk per 200 ms, as the edge sends them
    return [WaveChunk(first_seq + k, bed, lead, t0 + round(i * 1000 / fs), fs, SCALE, tuple(int(c) for c in counts[i : i + per]))
            for k, i in enumerate(range(0, len(x), per))]  # fmt: skip


def test_the_hub_judges_each_lead_and_shows_the_rate_it_gives(hub: HubProcess) -> None:
    clean = generate_episode("normal", 11, duration_s=60)
    noisy = generate_episode("ecg_motion", 12, duration_s=90)
    motion = next(lb for lb in noisy.labels if lb.signal == "ecg")
    noisy_end = int((motion.end_ms - noisy.t0_ms) / 1000 * noisy.ecg_fs)
    t0 = time.time_ns() // 1_000_000 - 12_000  # 12 s of signal ending now
    frames = lead_chunks("A-01", "ecg_ii", clean.ecg[: 12 * clean.ecg_fs], clean.ecg_fs, t0, 1)
    frames += lead_chunks("A-01", "pleth", clean.pleth[: 12 * clean.pleth_fs], clean.pleth_fs, t0, len(frames) + 1)
    frames += lead_chunks("A-02", "ecg_ii", noisy.ecg[noisy_end - 12 * noisy.ecg_fs : noisy_end], noisy.ecg_fs, t0, len(frames) + 1)
    with connect(hub.edge_url, additional_headers=hub.agent_auth("edge-A", "A", ("A-01", "A-02"))) as edge:
        edge.send(encode_edge(Hello("edge-A", 1, "A", ("A-01", "A-02"))).decode())
        decode_hub(edge.recv(timeout=10))
        for f in frames:
            edge.send(encode_edge(f))
        while not (isinstance(m := decode_hub(edge.recv(timeout=10)), Ack) and m.seq >= len(frames)):
            pass
    true_hr = float(np.nanmedian(clean.numerics["true_hr"][2:12]))
    beds = wait_until(lambda: (b := {x["bed"]: x["vitals"] for x in get_json(f"{hub.base}/api/beds")["beds"]})
                      and {"hr_ecg", "pr_pleth"} <= b["A-01"].keys() and "hr_ecg" in b["A-02"] and b,
                      "the rates the waveforms give", timeout=15)  # fmt: skip
    for param in ("hr_ecg", "pr_pleth"):
        assert abs(beds["A-01"][param]["value"] - true_hr) <= 3 and beds["A-01"][param]["flags"] == [], (param, beds["A-01"][param], true_hr)
    assert beds["A-02"]["hr_ecg"]["flags"] == ["artefact"]
    # a discharge summary carries what devices measured and nurses charted, not the rates the hub derived
    status, body = post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": "MRN-1", "name": "Test Patient"}, "bed": "A-01"})
    assert status == 201, body
    status, body = post_json(f"{hub.base}/api/encounters/{body['encounter']['encounter_id']}/discharge", {"outcome": "discharged"})
    assert status == 200, body
    events = get_json(f"{hub.base}/api/events?after=0", as_="records-bridge")["events"]
    [summary] = [e["data"]["summary"] for e in events if e["data"]["type"] == "patient.discharged"]
    assert not {v["param"] for v in summary["last_vitals"]} & {"hr_ecg", "pr_pleth"}
    stats = get_json(f"{hub.base}/api/stats", as_="admin")
    assert stats["waveform_analysis"]["windows"] >= 3 and stats["waveform_analysis"].get("windows_refused", 0) == 0
    assert stats["artefact"]["leads_reported"] >= 3
