"""The ``teleicu`` command line as a user runs it: a headless demo and the CSV audit tool."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path

import pytest
import yaml
from config_support import default_raw
from support import get_json, start_hub, teleicu, wait_until
from websockets.sync.client import connect

from wire.codec import decode_hub, encode_edge
from wire.messages import Hello, ObsFrame, Observation

pytestmark = pytest.mark.integration


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
    # every bed's patient admitted, one discharged, and the bridge carried every event into the EHR
    rec = s["records"]
    assert rec["admitted"] == 10 and rec["discharged"] == 1 and rec["events_parked"] == 0, rec
    with sqlite3.connect(tmp_path / "store.sqlite3") as hub_db:
        assert rec["events_written"] == hub_db.execute("SELECT max(id) FROM outbox").fetchone()[0]
        later = {t for (t,) in hub_db.execute("SELECT DISTINCT type FROM outbox WHERE id > ?", (rec["events_handled"],))}
    assert later <= {"alarm.raised", "alarm.resolved"}, later  # only what unplugging the monitors at shutdown raised
    with sqlite3.connect(tmp_path / "ehr.sqlite3") as ehr_db:
        held = dict(ehr_db.execute("SELECT type, count(*) FROM ehr_resources GROUP BY type").fetchall())
    assert held == rec["ehr_resources"]
    assert held["Patient"] == held["Encounter"] == 10 and held["Bundle"] == held["DocumentReference"] == 1, held
    # the ward's hospital (and the two without tele-ICU) on the map; its ICU figures came from the hub, and the KPI
    # store holds the events the bridge handled, each once, except the demographics and charted values it does not need
    assert rec["facility"]["hospitals"] == 3 and rec["facility"]["with_occupancy"] == 1, rec["facility"]
    with sqlite3.connect(tmp_path / "store.sqlite3") as hub_db:
        for_kpis = hub_db.execute("SELECT count(*) FROM outbox WHERE id <= ? AND type NOT IN ('patient.updated', 'observation.charted')",
                                  (rec["facility"]["kpi_cursor"],)).fetchone()[0]  # fmt: skip  (that sink's own cursor)
    assert rec["facility"]["kpi_events"] == for_kpis, (rec["facility"], for_kpis)


def test_human_summary_names_every_figure(tmp_path: Path) -> None:
    r = teleicu("demo", "--beds", "6", "--duration", "5", "--port", "0", "--data-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    for words in ("console at http://127.0.0.1:", "frames ingested", "frames rejected", "alerts raised", "p50", "p99",
                  "6 admitted, 1 discharged", "EHR resources", "/map", "/kpi", "facility registry   3 hospitals"):
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


def bad_copy(tmp_path: Path, name: str, change) -> Path:  # noqa: ANN001 - a callable changing the parsed file
    raw = default_raw(name)
    change(raw)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_config_file_that_cannot_be_used_stops_each_command_naming_file_key_and_problem(tmp_path: Path) -> None:
    alarms = bad_copy(tmp_path, "alarms.yaml", lambda r: r["defaults"].update(silence_max_s=1800))
    hub_cfg = bad_copy(tmp_path, "hub.yaml", lambda r: r.update(min_tick_ms="25"))
    scores = bad_copy(tmp_path, "scores.yaml", lambda r: r["mews"]["hr"][1].update(min=42))
    edge = tmp_path / "edge.yaml"
    edge.write_text("agent: {id: e, ward: A}\nhub: {url: 'ws://127.0.0.1:9/ws/edge', secret_file: edge.secret}\n"
                    "devices:\n  - {id: m, driver: tsp, bed: A-01, port: /dev/null, baud: '9600'}\n")  # fmt: skip
    (tmp_path / "chart.csv").write_text("bed,rr\nA-01,16\n")
    cases = [
        (("hub", "--port", "0", "--alarms", str(alarms)), f"{alarms}: defaults.silence_max_s: a silence may last at most 15 minutes (900 s)"),
        (("hub", "--port", "0", "--config", str(hub_cfg)), f"{hub_cfg}: min_tick_ms: must be a whole number, not '25'"),
        (("hub", "--port", "0", "--scores", str(scores)), f"{scores}: mews.hr: row 2: gap between previous max 40.0 and min 42.0"),
        (("demo", "--duration", "1", "--port", "0", "--scores", str(scores)), f"{scores}: mews.hr: row 2: gap"),
        (("score", str(tmp_path / "chart.csv"), "--scores", str(scores)), f"{scores}: mews.hr: row 2: gap"),
        (("edge", "--config", str(edge)), f"{edge}: devices[0].baud: must be a whole number, not '9600'"),
    ]
    for args, problem in cases:
        r = teleicu(*args, timeout=60)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert f"teleicu {args[0]}: {problem}" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_the_hub_scores_with_the_tables_it_is_given(tmp_path: Path) -> None:
    local = bad_copy(tmp_path, "scores.yaml", lambda r: r["qsofa"].update(rr_at_least=16))  # a (made-up) local qSOFA
    hub = start_hub(tmp_path, extra=("--scores", str(local)))
    try:
        with connect(hub.edge_url, additional_headers=hub.agent_auth("edge-T", "T", ("T-01",))) as ws:
            ws.send(encode_edge(Hello(agent="edge-T", epoch=1, ward="T", beds=("T-01",))).decode())
            decode_hub(ws.recv(timeout=5))
            t = time.time_ns() // 1_000_000
            ws.send(encode_edge(ObsFrame(1, (Observation("T-01", "rr", 18, t, t, "m"),))).decode())
            bed = wait_until(lambda: (b := get_json(f"{hub.base}/api/beds/T-01"))["vitals"] and b, "the bed's vitals")
        # RR 18 scores a qSOFA point only with the local threshold (the published one is 22)
        assert bed["qsofa"]["subscores"]["rr"] == 1
    finally:
        hub.stop()


@pytest.mark.parametrize("when", ["starting", "live"])
def test_a_signal_stops_the_demo_and_every_child_process(tmp_path: Path, when: str) -> None:
    import signal
    import subprocess
    import sys

    data = tmp_path / "demo"
    printed = tmp_path / "demo.out"
    with printed.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "teleicu", "demo", "--beds", "4", "--port", "0", "--data-dir", str(data)],
                                stdout=out, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        if when == "starting":
            wait_until(lambda: (data / "hub.log").exists(), "the demo to start its hub")
        else:
            wait_until(lambda: "Ctrl-C to stop" in printed.read_text(), "the demo to go live", timeout=60)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    said = printed.read_text()
    assert proc.returncode == (130 if when == "starting" else 0), (proc.returncode, said[-3000:])
    assert ("teleicu demo: stopped" in said) == (when == "starting") and ("teleicu demo summary" in said) == (when == "live"), said
    left = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes left running: {left}"
