"""The ``teleicu`` command line as a user runs it: a headless demo and the CSV audit tool."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def teleicu(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "teleicu", *args], capture_output=True, text=True, timeout=timeout)


def test_headless_demo_exits_zero_with_a_summary(tmp_path: Path) -> None:
    r = teleicu("demo", "--beds", "10", "--duration", "25", "--seed", "3", "--port", "0", "--json", "--data-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads(r.stdout[r.stdout.index("{") :])
    assert s["frames_ingested"] > 100 and s["frames_rejected"] == 0
    assert s["observations_stored"] > 10 * 20 * 5
    assert s["failed_processes"] == []
    assert sum(s["alerts_by_kind"].values()) == s["alerts_raised"], s["alerts_by_kind"]  # the list adds up
    lat = s["sample_to_console_ms"]
    assert lat["n"] > 100 and 0 <= lat["p50"] <= lat["p99"]
    mix = s["alerts_by_scenario"]
    assert mix["stable"]["alerted"] == 0
    assert mix["hypoxia"]["medium_or_high"] == mix["hypoxia"]["beds"] >= 1
    assert (tmp_path / "store.sqlite3").exists()


def test_human_summary_names_every_figure(tmp_path: Path) -> None:
    r = teleicu("demo", "--beds", "6", "--duration", "5", "--port", "0", "--data-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    for words in ("console at http://127.0.0.1:", "frames ingested", "frames rejected", "alerts raised", "p50", "p99"):
        assert words in r.stdout


def test_score_csv_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "chart.csv"
    src.write_text(
        "bed,time,rr,spo2,o2,nibp_sys,hr,temp,acvpu,scale\n"
        "A-01,08:00,16,98,air,120,80,37.0,A,\n"
        "A-02,08:00,18,90,oxygen,100,100,36.5,V,1\n"
        "A-03,08:00,,97,air,120,80,37.0,A,\n"
        "A-04,08:00,16,abc,air,120,80,37.0,A,\n"
    )
    out = tmp_path / "scored.csv"
    r = teleicu("score", str(src), "-o", str(out))
    assert r.returncode == 1, r.stderr  # one row had an unreadable cell; every row is still written
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["bed"] for r in rows] == ["A-01", "A-02", "A-03", "A-04"]
    assert [r["news2_total"] for r in rows] == ["0", "11", "", ""]
    assert rows[1]["news2_band"] == "high"
    assert rows[2]["news2_incomplete"] == "true" and rows[2]["news2_missing"] == "rr"
    assert "spo2" in rows[3]["news2_error"]


def test_score_refuses_a_file_without_known_columns(tmp_path: Path) -> None:
    src = tmp_path / "junk.csv"
    src.write_text("a,b\n1,2\n")
    r = teleicu("score", str(src))
    assert r.returncode == 2 and "teleicu score:" in r.stderr
