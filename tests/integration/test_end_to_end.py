"""End to end with real processes on real sockets: simulator (ptys) -> edge agent -> hub -> store, scores, alerts.

Nothing is mocked: ``teleicu sim`` owns real pty pairs and speaks TSP/1 on them,
``teleicu edge`` reads them as serial ports and streams to a ``teleicu hub`` over
a WebSocket on loopback. The test reads what a clinician and an auditor would:
the REST API and the SQLite store.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support import HubProcess, get_json, post_json, wait_until

pytestmark = pytest.mark.integration

BEDS = 12


def spawn(tmp: Path, name: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "teleicu", *args],
        stdout=(tmp / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{proc.args[3]} did not stop within 15 s of SIGTERM") from None
    return proc.returncode


@pytest.fixture
def ward(hub: HubProcess, tmp_path: Path) -> Iterator[tuple[HubProcess, dict[str, str], Path]]:
    cfg = tmp_path / "edge-A.yaml"
    sim = spawn(tmp_path, "sim", "sim", "--ward", "A", "--beds", str(BEDS), "--seed", "11", "--edge-config", str(cfg),
                "--hub", hub.edge_url, "--waveforms", "3", "--nibp-interval", "30")  # fmt: skip
    edge = None
    try:
        wait_until(lambda: sim.poll() is not None or cfg.exists(), "the simulator to write the edge config")
        assert sim.poll() is None, (tmp_path / "sim.log").read_text()
        scenarios = {d["bed"]: d["scenario"] for d in yaml.safe_load(cfg.read_text())["devices"]}
        hub.agent_auth("edge-A", "A", list(scenarios))  # its secret, in edge-A.secret beside the config
        stats = tmp_path / "edge.stats.json"
        edge = spawn(tmp_path, "edge", "edge", "--config", str(cfg), "--stats-file", str(stats))
        yield hub, scenarios, tmp_path
        assert stop(edge) == 0, (tmp_path / "edge.log").read_text()
        edge_stats = json.loads(stats.read_text())
        assert edge_stats["uplink"]["frames_sent"] > 0
        assert edge_stats["spool"]["dropped_frames"] == 0
        assert stop(sim) == 0, (tmp_path / "sim.log").read_text()
    finally:
        for p in (edge, sim):
            if p is not None and p.poll() is None:
                p.kill()


def test_vitals_arrive_are_stored_scored_and_raise_alerts(ward) -> None:
    hub, scenarios, tmp = ward
    assert sorted(scenarios) == [f"A-{i:02d}" for i in range(1, BEDS + 1)]
    assert {"stable", "sepsis", "hypoxia", "bradycardia", "probe_off", "silent"} <= set(scenarios.values())

    # vitals arrive for every bed and keep changing
    first = wait_until(
        lambda: (b := get_json(hub.base + "/api/beds")["beds"]) and len(b) == BEDS and all("hr" in x["vitals"] for x in b) and b,
        "every bed to report a heart rate",
    )
    t_first = {b["bed"]: b["vitals"]["hr"]["t"] for b in first}
    wait_until(
        lambda: sum(b["vitals"]["hr"]["t"] > t_first[b["bed"]] for b in get_json(hub.base + "/api/beds")["beds"]) >= BEDS - 2,
        "heart rates to update",
    )

    # sepsis and hypoxia raise NEWS2 alerts at medium or high; stable beds never alert
    def alerted() -> dict[str, str] | None:
        alerts = get_json(hub.base + "/api/alerts")["alerts"]
        by_bed = {a["bed"]: a["priority"] for a in alerts}
        deteriorating = [b for b, s in scenarios.items() if s in ("sepsis", "hypoxia")]
        if all(by_bed.get(b) in ("medium", "high") for b in deteriorating):
            return by_bed
        return None

    by_bed = wait_until(alerted, "NEWS2 alerts on the sepsis and hypoxia beds", timeout=60, interval=0.5)
    assert not [b for b, s in scenarios.items() if s == "stable" and b in by_bed]

    # scores are computed: a stable bed with every input fresh has a complete, low NEWS2
    beds = {b["bed"]: b for b in get_json(hub.base + "/api/beds")["beds"]}
    stable = [beds[b] for b, s in scenarios.items() if s == "stable"]
    assert any(b["news2"]["total"] is not None and b["news2"]["total"] <= 4 for b in stable)
    assert [b["news2"] for b in stable if b["news2"]["band"] not in ("low", "unknown")] == []
    # the probe-off bed shows the flag, not a number, and its score is incomplete
    probe = next(beds[b] for b, s in scenarios.items() if s == "probe_off")
    wait_until(lambda: get_json(f"{hub.base}/api/beds/{probe['bed']}")["vitals"]["spo2"]["flags"] == ["probe_off"],
               "the probe-off bed to report its probe off", timeout=30)  # fmt: skip
    assert get_json(f"{hub.base}/api/beds/{probe['bed']}")["news2"]["incomplete"] is True

    # acknowledging an alert records who did it
    alert = get_json(hub.base + "/api/alerts?state=active")["alerts"][0]
    status, body = post_json(f"{hub.base}/api/alerts/{alert['id']}/ack", None, as_="teleicu-nurse")
    assert status == 200 and body["state"] == "acknowledged" and body["acked_by"] == "Test teleicu-nurse"

    # everything the API showed is in the store, one row per bed, parameter and device time; heart rates go on
    # being stored (at least ten a bed: the alarms above can come within the first ten seconds)
    def hr_rows() -> dict[str, int]:
        with sqlite3.connect(hub.db) as db:
            return dict(db.execute("SELECT bed, count(*) FROM numerics WHERE param='hr' GROUP BY bed"))

    wait_until(lambda: all(n >= 10 for b, n in hr_rows().items() if scenarios[b] != "silent"), "ten heart rates a bed stored")
    with sqlite3.connect(hub.db) as db:
        per_bed = dict(db.execute("SELECT bed, count(*) FROM numerics WHERE param='hr' GROUP BY bed"))
        dupes = db.execute("SELECT count(*) FROM (SELECT bed, param, t FROM numerics GROUP BY 1,2,3 HAVING count(*) > 1)").fetchone()[0]
        waves = db.execute("SELECT lead, count(DISTINCT bed), min(rate), max(rate) FROM waves GROUP BY lead ORDER BY lead").fetchall()
    assert set(per_bed) == set(scenarios)
    assert {b: n for b, n in per_bed.items() if scenarios[b] != "silent" and n < 10} == {}
    assert dupes == 0
    assert waves == [("ecg_ii", 3, 250, 250), ("pleth", 3, 125, 125)]
    trend = get_json(f"{hub.base}/api/beds/A-01/trend?param=hr")
    assert len(trend["points"]) >= per_bed["A-01"]  # queried later, so it can only have grown
