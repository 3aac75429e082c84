"""``teleicu demo`` on a real influxd: what the summary prints is what InfluxDB holds, scores and alarms included.

The demo runs HL7 and S/5 monitors, which re-send their last NIBP reading every
second with its original time; the summary must count each sample once (the
re-sends apart), and a direct InfluxQL count must agree with it. NEWS2, MEWS
and qSOFA results and the alarm lifecycle events must be in InfluxDB as
measurements, found by direct queries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from influx_support import start_influxd

pytestmark = pytest.mark.integration

BEDS = 12
DB = "teleicu_demo"


def test_demo_summary_matches_influxdb_and_scores_and_alarms_are_measurements(tmp_path: Path) -> None:
    influx = start_influxd(tmp_path / "influx")
    try:
        data = tmp_path / "demo"
        r = subprocess.run(
            [sys.executable, "-m", "teleicu", "demo", "--beds", str(BEDS), "--duration", "30", "--seed", "5", "--port", "0",
             "--protocols", "hl7,s5,tsp", "--nibp-interval", "10", "--json", "--data-dir", str(data),
             "--store", influx.store_url(DB)],
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        s = json.loads(r.stdout[r.stdout.index("{") :])
        assert (data / "teleicu-influx-state.sqlite3").exists()  # the state file lands in the hub's data directory

        def scalar(q: str) -> int:
            series = influx.query(q, DB)[0].get("series", [])
            return int(series[0]["values"][0][1]) if series else 0

        # every point carries flags (a value-less probe-off reading has no value field): one point per sample
        stored = scalar('SELECT count("flags") FROM "raw"."vitals"')
        assert s["observations_stored"] == stored, (s["observations_stored"], stored)
        assert s["observations_resent"] > 0  # HL7 and S/5 re-send NIBP: counted apart, not as stored samples
        assert s["wave_chunks_stored"] == scalar('SELECT count("n") FROM "raw"."waveform"') > 0

        measurements = {row[0] for row in influx.query("SHOW MEASUREMENTS", DB)[0]["series"][0]["values"]}
        assert {"vitals", "waveform", "news2", "mews", "qsofa", "alarm_event"} <= measurements, measurements
        for score in ("news2", "mews", "qsofa"):
            per_bed = influx.rows(f'SELECT count("partial") FROM "raw"."{score}" GROUP BY "bed"', DB)
            assert len(per_bed) == BEDS and all(row["count"] >= 1 for row in per_bed), (score, per_bed)
        # a total is never written for an incomplete score
        assert scalar('SELECT count("total") FROM "raw"."news2" WHERE "incomplete" = true') == 0
        assert scalar('SELECT count("partial") FROM "raw"."news2" WHERE "incomplete" = true') > 0

        raised = scalar('SELECT count("id") FROM "raw"."alarm_event" WHERE "event" = \'raised\'')
        assert s["alerts_raised"] > 0 and raised >= s["alerts_raised"], (raised, s["alerts_raised"])
        assert sum(s["alerts_by_kind"].values()) == s["alerts_raised"], s["alerts_by_kind"]
    finally:
        influx.stop()
