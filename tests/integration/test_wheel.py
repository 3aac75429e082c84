"""teleicu as a user installs it: a wheel, installed (not editable) into a fresh virtual environment.

The wheel is built from a copy of the source tree, installed with its
``all`` extra into a new virtual environment outside the source tree, and
run from there with no path back to the checkout: ``teleicu score`` on a
sample chart and a 20-second ``teleicu demo``. It catches what an editable
install hides: a file that is not shipped (the default YAML), a module that
reads the source tree. Anything missing fails the test; nothing is skipped.
pip uses its cache and the package index as configured (PyPI).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
NOT_SHIPPED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "var", "tests",
    "bench", "docs", "scripts", ".ci",
)  # fmt: skip
TOP_LEVEL = {"wire", "alerts", "edge_agent", "simulators", "console", "ingest", "records_bridge", "teleicu"}
CHART = (
    "bed,time,rr,spo2,o2,nibp_sys,hr,temp,acvpu,scale\n"
    "A-01,08:00,16,98,air,120,80,37.0,A,\n"
    "A-02,08:00,18,90,oxygen,100,100,36.5,V,1\n"
    "A-03,08:00,,97,air,120,80,37.0,A,\n"
)


def run(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the fresh environment's bin directory, a working directory outside the source tree)."""
    root = tmp_path_factory.mktemp("wheel")
    source, wheels, env, work = root / "src", root / "wheels", root / "venv", root / "work"
    shutil.copytree(REPO, source, ignore=NOT_SHIPPED)
    work.mkdir()
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", wheels, source, cwd=root)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = wheels.glob("teleicu-*.whl")
    venv.EnvBuilder(with_pip=True).create(env)
    bin_dir = env / "bin"
    done = run(bin_dir / "python", "-m", "pip", "install", "--quiet", f"{wheel}[all]", cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield bin_dir, work


def test_the_wheel_ships_the_packages_and_the_default_configuration(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    probe = (
        "import json, sys, importlib.resources as r, alerts, teleicu\n"
        "d = r.files('teleicu.defaults')\n"
        "print(json.dumps({'alerts': alerts.__file__, 'teleicu': teleicu.__file__,"
        " 'files': sorted(p.name for p in d.iterdir()),"
        " 'grafana': (d / 'grafana' / 'teleicu.json').is_file(), 'path': sys.path}))\n"
    )
    r = run(bin_dir / "python", "-c", probe, cwd=work)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    site = (bin_dir.parent / "lib").resolve()
    assert Path(found["alerts"]).resolve().is_relative_to(site) and Path(found["teleicu"]).resolve().is_relative_to(site)
    assert not any(str(REPO) in p for p in found["path"]), found["path"]  # nothing leads back to the checkout
    assert {"hub.yaml", "alarms.yaml", "scores.yaml", "grafana"} <= set(found["files"]) and found["grafana"]
    top = run(bin_dir / "python", "-c", "import importlib.metadata as m; print(m.distribution('teleicu').read_text('top_level.txt'))",
              cwd=work)  # fmt: skip
    assert set(top.stdout.split()) == TOP_LEVEL, top.stdout  # the import names the wheel claims; no top-level "config"


def test_score_runs_from_the_wheel(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    (work / "chart.csv").write_text(CHART)
    r = run(bin_dir / "teleicu", "score", "chart.csv", "-o", "scored.csv", cwd=work)
    assert r.returncode == 0, r.stderr
    assert "3 rows, 2 complete, 1 incomplete, 0 with input errors" in r.stderr
    rows = list(csv.DictReader(io.StringIO((work / "scored.csv").read_text())))
    assert [row["news2_total"] for row in rows] == ["0", "11", ""]
    assert [row["news2_band"] for row in rows] == ["low", "high", "unknown"]
    assert rows[2]["news2_missing"] == "rr" and rows[1]["mews_total"] != ""


def test_a_twenty_second_demo_runs_from_the_wheel(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    r = run(bin_dir / "teleicu", "demo", "--beds", "6", "--duration", "20", "--port", "0", "--json",
            "--data-dir", work / "demo", cwd=work, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads(r.stdout[r.stdout.index("{") :])
    assert summary["failed_processes"] == [] and summary["frames_rejected"] == 0
    assert summary["frames_ingested"] > 50 and summary["observations_stored"] > 6 * 20
