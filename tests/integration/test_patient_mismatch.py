"""Patient mismatch end to end: an HL7 PCD-01 gateway names a patient (PID-3) through a real edge agent process to a
real hub; when the name differs from the patient admitted to the bed the hub raises ``technical:patient_mismatch``
(high), audited, and clears it once the gateway names the admitted patient again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from state_db_support import state_connection
from support import HubProcess, free_port, get_json, post_json, teleicu, wait_alarm, wait_alarm_cleared, wait_until

from simulators.hl7_sim import Row, encode_oru, mllp

pytestmark = pytest.mark.integration

LOCATION = "ICU-M^^BED01"


async def send(port: int, control_id: str, patient_id: str) -> bytes:
    """One ORU^R01 for bed M-01 naming ``patient_id``; the gateway's ACK."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        t = time.time_ns() // 1_000_000
        writer.write(mllp(encode_oru(control_id=control_id, t_ms=t, gateway="GW-M", eui64="00155DFFFE0000C1",
                                     patient_id=patient_id, location=LOCATION, rows=[Row("hr", 84), Row("spo2", 96)])))  # fmt: skip
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.readuntil(b"\x1c\r")
    finally:
        writer.close()
        await writer.wait_closed()


def test_a_gateway_naming_another_patient_raises_the_alarm_through_the_edge(hub_each_state: HubProcess, tmp_path: Path) -> None:
    hub = hub_each_state
    port = free_port()
    device = {"id": "gw-M", "driver": "hl7_pcd01", "listen": f"127.0.0.1:{port}", "beds": {LOCATION: "M-01"},
              "options": {"patient_events": True}}  # fmt: skip
    cfg = tmp_path / "edge-M.yaml"
    cfg.write_text(yaml.safe_dump({"agent": {"id": "edge-M", "ward": "M"}, "hub": {"url": hub.edge_url, "secret_file": "edge-M.secret"},
                                   "devices": [device]}))  # fmt: skip
    r = teleicu("agents", "add", "edge-M", "--beds-from", str(cfg), "--secret-file", str(tmp_path / "edge-M.secret"), "--db", str(hub.db),
                *(("--state", hub.state_url) if hub.state_url else ()))
    assert r.returncode == 0, r.stdout + r.stderr
    with (tmp_path / "edge.log").open("wb") as log:
        edge = subprocess.Popen([sys.executable, "-m", "teleicu", "edge", "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip
    try:
        ack = wait_until(lambda: asyncio.run(send(port, "M-1", "MRN-4001")), "the edge agent's HL7 listener", timeout=30, interval=0.2)
        assert b"MSA|AA|M-1" in ack
        wait_until(lambda: "hr" in get_json(f"{hub.base}/api/beds/M-01")["vitals"], "bed M-01 on the census")
        status, body = post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": "MRN-4001", "name": "Kamla Meena"}, "bed": "M-01"})
        assert status == 201, body
        assert not get_json(f"{hub.base}/api/alerts?kind=technical:patient_mismatch")["alerts"]  # the same patient: nothing

        assert b"MSA|AA|M-2" in asyncio.run(send(port, "M-2", "MRN-4999"))  # another patient's data arrives in her bed
        [alarm] = wait_alarm(hub.base, "technical:patient_mismatch", "the patient mismatch alarm")
        assert alarm["bed"] == "M-01" and alarm["priority"] == "high", alarm
        assert "MRN-4999" in alarm["detail"] and "MRN-4001" in alarm["detail"], alarm

        assert b"MSA|AA|M-3" in asyncio.run(send(port, "M-3", "MRN-4001"))  # put right at the monitor
        wait_alarm_cleared(hub.base, "technical:patient_mismatch", "the mismatch to clear")  # naming her again: no alarm
    finally:
        edge.terminate()
        edge.wait(15)
    with state_connection(hub.state) as conn:
        audited = [a for (a,) in conn.execute("SELECT action FROM audit_log WHERE target = 'bed:M-01' AND action LIKE 'patient.mismatch%'")]
    assert audited == ["patient.mismatch", "patient.mismatch_cleared"], audited
