"""Simulated ward: bed names, the edge config it writes, running, and the CLI's clean exit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edge_agent.config import parse_edge_config
from simulators.ward import (
    bed_names,
    edge_config_text,
    make_monitors,
    run_ward,
    ward_main,
    write_atomically,
)

ROOT = Path(__file__).resolve().parents[2]


def test_bed_names() -> None:
    assert bed_names("A-", 3) == ["A-01", "A-02", "A-03"]
    assert bed_names("ICU2-", 120)[:2] == ["ICU2-001", "ICU2-002"] and len(bed_names("X", 120)) == 120


def test_make_monitors() -> None:
    ms = make_monitors("B", 10, 5, waveforms=3, nibp_interval_s=30)
    assert [m.bed for m in ms][:2] == ["B-01", "B-02"] and ms[0].device_id == "sim-B-01"
    assert [m.waveforms for m in ms] == [True] * 3 + [False] * 7
    assert all(not m.waveforms for m in make_monitors("B", 4, 5, waveforms=False))
    assert all(m.waveforms for m in make_monitors("B", 4, 5, waveforms=True))
    assert [m.scenario.name for m in ms] == [m.scenario.name for m in make_monitors("B", 10, 5)]
    assert [m.bed for m in make_monitors("B", 2, 5, bed_prefix="icu-b")] == ["icu-b01", "icu-b02"]


def test_edge_config_is_the_documented_yaml_and_the_agent_accepts_it() -> None:
    ms = make_monitors("A", 6, 1)
    for i, m in enumerate(ms):
        m.port = f"/dev/pts/{40 + i}"
    text = edge_config_text("A", "ws://127.0.0.1:8080/ws/edge", ms)
    assert text.splitlines()[0] == 'agent: {id: "edge-A", ward: "A"}'
    raw = yaml.safe_load(text)
    assert raw["agent"] == {"id": "edge-A", "ward": "A"} and raw["hub"] == {"url": "ws://127.0.0.1:8080/ws/edge"}
    assert raw["devices"][0] == {
        "bed": "A-01", "id": "sim-A-01", "driver": "tsp", "port": "/dev/pts/40", "baud": 115200,
        "scenario": ms[0].scenario.name,
    }  # fmt: skip
    assert {d["scenario"] for d in raw["devices"]} == {"stable", "sepsis", "hypoxia", "bradycardia", "probe_off", "silent"}
    cfg = parse_edge_config(raw)
    assert [d.bed for d in cfg.devices] == [m.bed for m in ms] and cfg.agent_id == "edge-A"


def test_write_atomically(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "edge.yaml"
    write_atomically(target, "one\n")
    write_atomically(target, "two\n")
    assert target.read_text() == "two\n"
    assert os.listdir(target.parent) == ["edge.yaml"]  # no temp files left
    assert target.stat().st_mode & 0o444 == 0o444


def test_run_ward_writes_config_then_runs_and_closes(tmp_path: Path) -> None:
    cfg = tmp_path / "edge-C.yaml"

    async def main() -> list:
        task = asyncio.create_task(
            run_ward("C", 6, 3, edge_config_path=cfg, hub_url="ws://h:1/ws/edge", waveforms=2, nibp_interval_s=10, duration_s=1.0)
        )
        deadline = time.monotonic() + 10
        while not cfg.exists():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        ports = [d["port"] for d in yaml.safe_load(cfg.read_text())["devices"]]
        assert all(os.path.exists(p) for p in ports)
        monitors = await task
        return [ports, monitors]

    _ports, monitors = asyncio.run(asyncio.wait_for(main(), 20))
    assert [m.bed for m in monitors] == [f"C-0{i}" for i in range(1, 7)]
    assert all(m.frames_sent > 0 for m in monitors)
    assert all(m._master is None for m in monitors)  # closed on exit
    assert yaml.safe_load(cfg.read_text())["hub"]["url"] == "ws://h:1/ws/edge"


def test_ward_main_duration_and_bad_arguments(tmp_path: Path) -> None:
    assert ward_main(["--beds", "2", "--duration", "0.3", "--edge-config", str(tmp_path / "e.yaml"), "--log-level", "WARNING"]) == 0
    assert len(yaml.safe_load((tmp_path / "e.yaml").read_text())["devices"]) == 2
    assert ward_main(["--beds", "0"]) == 2
    assert ward_main(["--beds", "2", "--nibp-interval", "0"]) == 2
    with pytest.raises(SystemExit):
        ward_main(["--waveforms", "-1"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_exits_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    cfg = tmp_path / "edge-D.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.ward", "--ward", "D", "--beds", "12", "--edge-config", str(cfg), "--seed", "9"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while not cfg.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no edge config written"
            time.sleep(0.05)
        ports = [d["port"] for d in yaml.safe_load(cfg.read_text())["devices"]]
        assert len(ports) == 12
        time.sleep(0.5)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert b"Traceback" not in out, out
