"""Simulated ward: bed names, protocols, the edge config and scenario sidecar it writes, running, and the CLI's clean exit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import wait_until
import yaml

from edge_agent.config import parse_edge_config
from simulators.serial_sim import SerialDevices
from simulators.ward import (
    WardError,
    assign_protocols,
    bed_names,
    create_groups,
    edge_config_text,
    make_beds,
    make_monitors,
    run_ward,
    scenarios_path,
    ward_main,
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
    assert raw["agent"] == {"id": "edge-A", "ward": "A"} and raw["hub"] == {"url": "ws://127.0.0.1:8080/ws/edge", "secret_file": "edge-A.secret"}
    assert raw["devices"][0] == {
        "bed": "A-01", "id": "sim-A-01", "driver": "tsp", "port": "/dev/pts/40", "baud": 115200,
        "scenario": ms[0].scenario.name,
    }  # fmt: skip
    assert {d["scenario"] for d in raw["devices"]} == {"stable", "sepsis", "hypoxia", "bradycardia", "probe_off", "silent"}
    cfg = parse_edge_config(raw)
    assert [d.bed for d in cfg.devices] == [m.bed for m in ms] and cfg.agent_id == "edge-A"


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

    _ports, groups = asyncio.run(asyncio.wait_for(main(), 20))
    [group] = groups
    assert isinstance(group, SerialDevices) and group.protocol == "tsp"
    monitors = group.monitors
    assert [m.bed for m in monitors] == [f"C-0{i}" for i in range(1, 7)]
    assert all(m.frames_sent > 0 for m in monitors)
    assert all(m._master is None for m in monitors)  # closed on exit
    assert yaml.safe_load(cfg.read_text())["hub"]["url"] == "ws://h:1/ws/edge"
    sidecar = json.loads(scenarios_path(cfg).read_text())
    assert sidecar == {m.bed: m.scenario.name for m in monitors}


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
        wait_until(lambda: cfg.exists() or proc.poll() is not None, "the edge config to be written", timeout=20)
        assert proc.poll() is None, proc.communicate()[0]
        ports = [d["port"] for d in yaml.safe_load(cfg.read_text())["devices"]]
        assert len(ports) == 12  # the handlers are installed before the config is written: signal at once
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert b"Traceback" not in out, out


# -- several protocols ----------------------------------------------------------------


def test_protocols_round_robin_and_patients_do_not_depend_on_the_protocol() -> None:
    assert assign_protocols(5, ["tsp", "s5", "nonin"]) == ["tsp", "s5", "nonin", "tsp", "s5"]
    beds = make_beds("A", 6, 4)
    groups = create_groups("A", beds, ["s5", "tsp"])
    assert [g.protocol for g in groups] == ["s5", "tsp"]  # type: ignore[attr-defined]
    assert [m.bed for m in groups[0].monitors] == ["A-01", "A-03", "A-05"]  # type: ignore[attr-defined]
    assert [b.seed for b in beds] == [b.seed for b in make_beds("A", 6, 4)]
    assert [b.scenario for b in beds] == [m.scenario.name for m in make_monitors("A", 6, 4)]
    assert len({b.seed for b in beds}) == 6


def test_missing_or_bad_protocols_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    beds = make_beds("A", 2, 1)
    with pytest.raises(WardError, match=r"protocol 'nosuch' has no simulator: module simulators.nosuch_sim \(simulators/nosuch_sim.py\) is missing"):
        create_groups("A", beds, ["tsp", "nosuch"])
    with pytest.raises(WardError, match="listed twice"):
        create_groups("A", beds, ["tsp", "tsp"])
    with pytest.raises(WardError, match="not in the ward"):
        create_groups("A", beds, ["tsp"], protocol_options={"s5": {"dri_level": 7}})
    with pytest.raises(WardError, match="s5: .*unknown options"):
        create_groups("A", beds, ["s5"], protocol_options={"s5": {"colour": "red"}})
    cfg = tmp_path / "e.yaml"
    assert ward_main(["--beds", "2", "--protocols", "tsp,nosuch", "--edge-config", str(cfg), "--duration", "0.2"]) == 2
    assert "simulators/nosuch_sim.py" in capsys.readouterr().err and not cfg.exists()
    with pytest.raises(SystemExit):
        ward_main(["--protocols", ","])
    with pytest.raises(SystemExit):
        ward_main(["--noise", "2"])
    with pytest.raises(SystemExit):
        ward_main(["--sim-option", "dri_level=7"])


def test_serial_mix_writes_one_config_the_agent_accepts(tmp_path: Path) -> None:
    cfg = tmp_path / "edge-M.yaml"
    argv = ["--ward", "M", "--beds", "7", "--seed", "3", "--protocols", "tsp,s5,nonin", "--noise", "0.01",
            "--sim-option", "s5.dri_level=7", "--edge-config", str(cfg), "--duration", "0.4", "--log-level", "WARNING"]  # fmt: skip
    assert ward_main(argv) == 0
    raw = yaml.safe_load(cfg.read_text())
    assert [d["driver"] for d in raw["devices"]] == ["tsp", "tsp", "tsp", "s5", "s5", "nonin", "nonin"]
    assert [d["bed"] for d in raw["devices"]] == ["M-01", "M-04", "M-07", "M-02", "M-05", "M-03", "M-06"]
    assert {d["baud"] for d in raw["devices"] if d["driver"] == "s5"} == {19200}
    assert all(d["options"] == {"tx_interval_s": 1} for d in raw["devices"] if d["driver"] == "s5")
    cfg_obj = parse_edge_config(raw)
    assert sorted(b for d in cfg_obj.devices for b in d.served_beds) == bed_names("M-", 7)
    sidecar = json.loads(scenarios_path(cfg).read_text())
    assert sidecar == {d["bed"]: d["scenario"] for d in raw["devices"]}


def test_every_protocol_in_one_ward(tmp_path: Path) -> None:
    """HL7 gateways and MQTT devices (other simulator modules, same contract) join the same YAML."""
    cfg = tmp_path / "edge-X.yaml"

    async def main() -> None:
        task = asyncio.create_task(
            run_ward("X", 10, 2, edge_config_path=cfg, protocols=["tsp", "s5", "nonin", "hl7", "mqtt"], duration_s=1.0)
        )
        deadline = time.monotonic() + 20
        while not cfg.exists():
            assert time.monotonic() < deadline, "no edge config written"
            assert not task.done() or task.exception() is None, task.exception()
            await asyncio.sleep(0.02)
        await asyncio.wait_for(task, 20)

    asyncio.run(main())
    raw = yaml.safe_load(cfg.read_text())
    cfg_obj = parse_edge_config(raw)
    assert {d.driver for d in cfg_obj.devices} >= {"tsp", "s5", "nonin"}
    assert sorted(b for d in cfg_obj.devices for b in d.served_beds) == bed_names("X-", 10)
    multi = [d for d in raw["devices"] if "beds" in d]
    assert multi and all("bed" not in d for d in multi)
    assert set(json.loads(scenarios_path(cfg).read_text())) == set(bed_names("X-", 10))
