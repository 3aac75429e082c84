"""Alarm scenarios on the real pipeline: simulated patients -> pty -> edge agent -> hub -> alarm engine.

One ward of simulated patients runs for about two and a half minutes against a
hub whose escalation time-outs are shortened (5 s) so the test can watch them.
Along the way the hub process is SIGKILLed and restarted on the same store:
alarms, acknowledgements and the audit trail must come back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from config_support import default_raw
from support import HubProcess, get_json, post_json, start_hub, wait_until

pytestmark = pytest.mark.integration
BEDS = 8


def alerts(hub: HubProcess, **query: str) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return get_json(f"{hub.base}/api/alerts?{qs}")["alerts"]


def one(hub: HubProcess, bed: str, kind: str, **query: str) -> dict | None:
    return next((a for a in alerts(hub, bed=bed, kind=kind, **query)), None)


def test_alarm_scenarios_end_to_end(tmp_path: Path) -> None:
    policy = default_raw("alarms.yaml")
    policy["defaults"]["escalation"]["after_s"] = {"high": 5, "medium": 5}
    policy_file = tmp_path / "alarms.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    hub = start_hub(tmp_path, extra=("--alarms", str(policy_file)))
    cfg = tmp_path / "edge.yaml"
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    def spawn(name: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "teleicu", *args], stdout=(tmp_path / f"{name}.log").open("wb"),
                                stderr=subprocess.STDOUT, env=env)  # fmt: skip

    sim = spawn("sim", "sim", "--ward", "A", "--beds", str(BEDS), "--seed", "5", "--edge-config", str(cfg),
                "--hub", hub.edge_url, "--waveforms", "0", "--nibp-interval", "20")  # fmt: skip
    edge = None
    try:
        wait_until(cfg.exists, "the simulator's edge config")
        scen = {d["bed"]: d["scenario"] for d in yaml.safe_load(cfg.read_text())["devices"]}
        bed_of = {s: b for b, s in sorted(scen.items(), reverse=True)}
        sepsis, hypoxia, probe, silent = bed_of["sepsis"], bed_of["hypoxia"], bed_of["probe_off"], bed_of["silent"]
        hub.agent_auth("edge-A", "A", list(scen))  # its secret, in edge-A.secret beside the config
        edge = spawn("edge", "edge", "--config", str(cfg))
        t0 = time.monotonic()

        # the sepsis patient raises a NEWS2 medium alarm; a nurse acknowledges it at once
        sep = wait_until(lambda: (a := one(hub, sepsis, "news2")) and a["priority"] in ("medium", "high") and a, "sepsis NEWS2 medium", 60, 0.3)
        status, acked = post_json(f"{hub.base}/api/alerts/{sep['id']}/ack", None, as_="nurse-a")
        assert status == 200 and acked["state"] == "acknowledged"
        # ...and the NEWS2 trend alarm fires
        wait_until(lambda: one(hub, sepsis, "trend:news2_rise"), "the NEWS2 rise trend alarm on the sepsis bed", 60, 0.3)

        # an unacknowledged alarm escalates after its time-out; the acknowledged one does not
        hyp = wait_until(lambda: one(hub, hypoxia, "news2", state="active"), "a hypoxia NEWS2 alarm", 60, 0.3)
        esc = wait_until(lambda: (a := one(hub, hypoxia, "news2")) and a["tier"] >= 1 and a, "escalation of the unacknowledged alarm", 30, 0.3)
        assert esc["id"] == hyp["id"] and esc["tier_role"] == ("bedside_nurse", "teleicu_nurse", "intensivist")[esc["tier"]]
        hist = wait_until(lambda: [e for e in get_json(f"{hub.base}/api/alerts/{hyp['id']}/history")["events"] if e["event"] == "escalated"],
                          "the escalation in the audit trail", timeout=10)  # fmt: skip
        assert "now with teleicu_nurse" in hist[0]["note"]
        still = one(hub, sepsis, "news2")
        if still["state"] == "acknowledged":  # (a rise to high re-activates it, which is right)
            assert still["tier"] == 0 and still["acked_by"] == "Test nurse-a"

        # silence needs a reason and returns the alarm when it expires with the condition still present
        status, body = post_json(f"{hub.base}/api/alerts/{hyp['id']}/silence", {"reason": "", "seconds": 3}, as_="nurse-a")
        assert status == 422
        status, body = post_json(f"{hub.base}/api/alerts/{hyp['id']}/silence", {"reason": "repositioning", "seconds": 3}, as_="nurse-a")
        assert status == 200 and body["silenced_until"] is not None and body["silence_reason"] == "repositioning"
        back = wait_until(lambda: (a := one(hub, hypoxia, "news2")) and a["silenced_until"] is None and a, "the silence to end", 20, 0.3)
        assert back["state"] == "active"
        def silence_audited() -> list[dict] | None:  # the audit is persisted a moment after the event
            events = get_json(f"{hub.base}/api/alerts/{hyp['id']}/history")["events"]
            return events if "unsilenced" in [e["event"] for e in events] else None

        history = wait_until(silence_audited, "the silence in the audit trail", timeout=10)
        assert [e["event"] for e in history if e["event"] in ("silenced", "unsilenced")] == ["silenced", "unsilenced"]
        assert next(e for e in history if e["event"] == "silenced")["by"] == "Test nurse-a"

        # the probe-off patient raises a technical alarm and no physiological one; the silent monitor raises "no data"
        wait_until(lambda: one(hub, probe, "technical:probe_off"), "the probe-off technical alarm", 60, 0.3)
        wait_until(lambda: one(hub, silent, "technical:no_data"), "the no-data technical alarm", 90, 0.3)
        assert alerts(hub, bed=probe, category="physiological") == []
        assert alerts(hub, bed=probe, category="physiological", state="all") == []

        # state survives killing and restarting the hub process
        before = {a["id"]: a for a in alerts(hub)}
        hub.proc.send_signal(signal.SIGKILL)
        hub.proc.wait(10)
        hub = start_hub(tmp_path, port=hub.port, db=hub.db, extra=("--alarms", str(policy_file)))
        after = {a["id"]: a for a in alerts(hub)}
        assert set(before) <= set(after) | {a["id"] for a in alerts(hub, state="resolved")}
        if sep["id"] in after and before[sep["id"]]["state"] == "acknowledged":
            assert after[sep["id"]]["acked_by"] == "Nurse Meena"
        # the edge agent reconnects by itself and data flows again
        t_restart = time.time() * 1000
        wait_until(lambda: (get_json(f"{hub.base}/api/beds/{sepsis}")["last_rx"] or 0) > t_restart, "data after the restart", 60, 0.5)

        # the sepsis patient reaches a NEWS2 high alarm
        wait_until(lambda: (a := one(hub, sepsis, "news2")) and a["priority"] == "high", "sepsis NEWS2 high", max(5, 200 - (time.monotonic() - t0)), 0.5)
        events = wait_until(lambda: (ev := [e["event"] for e in get_json(f"{hub.base}/api/alerts/{sep['id']}/history")["events"]])
                            and "priority_raised" in ev and ev, "the rise to high in the audit trail", timeout=10)  # fmt: skip
        assert events[:2] == ["raised", "acknowledged"]

        stats = get_json(f"{hub.base}/api/alarm-stats")
        assert stats["alarms"] >= 5 and stats["acknowledged"] >= 1 and stats["time_to_ack_s"]["median"] >= 0
        assert stats["time_silenced_s"] >= 2.5
        assert stats["by_kind_per_bed_per_day"]["news2"] > 0
    finally:
        for p in (edge, sim):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        hub.stop()
