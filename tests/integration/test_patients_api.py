"""Patients on a real hub: admit, chart, transfer, discharge through the API; the outbox read with a cursor, across a kill.

A monitor that never sends O2 or ACVPU leaves NEWS2 incomplete; a nurse charts
them and the total appears. Every change is an outbox event the records
bridge's account reads in order, with ids that continue across a SIGKILL of
the hub.
"""

from __future__ import annotations

import threading
import time

import pytest
from support import HubProcess, get_json, post_json, start_hub, wait_until
from websockets.sync.client import connect

from wire.codec import decode_hub, encode_edge
from wire.messages import Ack, Hello, ObsFrame, Observation

pytestmark = pytest.mark.integration

MONITORED = {"rr": 18, "spo2": 90, "nibp_sys": 100, "hr": 100, "temp": 36.5}  # what an S/5 or HL7 monitor sends
ASHA = {"mrn": "MRN-7001", "abha": "91-1234-5678-9012", "name": "Asha Devi", "sex": "female", "birth_date": "1956-03-02",
        "diagnosis": "community-acquired pneumonia", "attending": "Dr Rao"}  # fmt: skip


def monitor(hub: HubProcess, beds: tuple[str, ...], seq: int) -> None:
    t = time.time_ns() // 1_000_000
    with connect(hub.edge_url, additional_headers=hub.agent_auth("edge-A", "A", beds)) as ws:
        ws.send(encode_edge(Hello("edge-A", 1, "A", beds)).decode())
        decode_hub(ws.recv(timeout=10))
        obs = tuple(Observation(bed, k, v, t, t, "s5") for bed in beds for k, v in MONITORED.items())
        ws.send(encode_edge(ObsFrame(seq, obs)).decode())
        while not isinstance(decode_hub(ws.recv(timeout=10)), Ack):
            pass


def events(hub: HubProcess, after: int = 0, wait_s: float = 0) -> dict:
    return get_json(f"{hub.base}/api/events?after={after}&wait_s={wait_s}", timeout=30, as_="records-bridge")


def test_admit_chart_transfer_discharge_and_the_outbox_in_order(hub_each_state: HubProcess) -> None:
    hub = hub_each_state
    monitor(hub, ("A-01", "A-02"), 1)
    status, body = post_json(f"{hub.base}/api/admissions", {"patient": ASHA, "bed": "A-01"}, as_="nurse-a")
    assert status == 201, body
    enc = body["encounter"]["encounter_id"]
    assert body["patient"]["abha"] == "91123456789012"
    bed = get_json(f"{hub.base}/api/beds/A-01", as_="nurse-a")
    assert bed["patient"]["name"] == "Asha Devi" and bed["news2"]["total"] is None and set(bed["news2"]["missing"]) == {"o2", "acvpu"}
    assert post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": "MRN-7002", "name": "Ravi"}, "bed": "A-01"})[0] == 409
    assert post_json(f"{hub.base}/api/beds/A-01/chart", {"param": "o2", "value": "oxygen"}, as_="nurse-a")[0] == 201
    assert post_json(f"{hub.base}/api/beds/A-01/chart", {"param": "acvpu", "value": "V"}, as_="nurse-a")[0] == 201
    bed = wait_until(lambda: (b := get_json(f"{hub.base}/api/beds/A-01"))["news2"]["total"] == 11 and b, "NEWS2 completed by charting")
    assert bed["vitals"]["acvpu"]["charted_by"] == "nurse-a" and bed["news2"]["band"] == "high"
    assert post_json(f"{hub.base}/api/encounters/{enc}/transfer", {"bed": "A-02"}, as_="teleicu-nurse")[0] == 200
    assert get_json(f"{hub.base}/api/beds/A-01")["patient"] is None and get_json(f"{hub.base}/api/beds/A-02")["patient"]["mrn"] == "MRN-7001"
    # what the nurse charted is the patient's: it moved with her, and bed A-01 keeps only its monitor's values
    moved = wait_until(lambda: (b := get_json(f"{hub.base}/api/beds/A-02"))["news2"]["total"] == 11 and b, "NEWS2 complete in A-02")
    assert moved["vitals"]["o2"]["charted_by"] == "nurse-a" and "acvpu" not in get_json(f"{hub.base}/api/beds/A-01")["vitals"]
    first = events(hub)
    types = [e["data"]["type"] for e in first["events"]]
    ours = [t for t in types if t.startswith("patient.") or t == "observation.charted"]  # the rest come from the ticks
    assert ours == ["patient.admitted", "observation.charted", "observation.charted", "patient.transferred"], types
    assert "score.band_changed" in types and "alarm.raised" in types, types
    assert [e["id"] for e in first["events"]] == list(range(1, len(types) + 1)) == list(range(1, first["last_id"] + 1))

    # a long poll: the discharge arrives while the bridge waits
    def discharge_soon() -> None:
        time.sleep(0.5)
        post_json(f"{hub.base}/api/encounters/{enc}/discharge", {"outcome": "discharged", "follow_up": {"department": "MED", "after_days": 7}},
                  as_="intensivist")  # fmt: skip

    later = threading.Thread(target=discharge_soon)
    later.start()
    t0 = time.monotonic()
    waited = events(hub, first["last_id"], wait_s=10)
    later.join()
    assert time.monotonic() - t0 < 5 and waited["events"], waited
    discharged = next(e["data"] for e in events(hub, first["last_id"])["events"] if e["data"]["type"] == "patient.discharged")
    summary = discharged["summary"]
    assert summary["charted"] == 2 and [p["total"] for p in summary["news2"]][-1] == 11
    assert discharged["encounter"]["end"] is not None and discharged["encounter"]["outcome"] == "discharged"
    assert discharged["follow_up"] == {"department": "MED", "after_days": 7, "note": ""}  # the bridge books it
    # the stay's trend spans both beds
    trend = get_json(f"{hub.base}/api/encounters/{enc}/trend?param=acvpu")
    assert [p["value"] for p in trend["points"]] == [2.0]
    alarms = get_json(f"{hub.base}/api/encounters/{enc}/alerts")["alerts"]
    assert any(a["alert"]["kind"] == "news2" for a in alarms)
    # the records bridge reads events, and nothing else
    assert post_json(f"{hub.base}/api/beds", None, method="GET", as_="records-bridge")[0] == 403


def test_outbox_ids_continue_without_gaps_across_a_sigkill(tmp_path) -> None:
    hub = start_hub(tmp_path)
    try:
        monitor(hub, ("A-01", "A-02", "A-03"), 1)
        for i, bed in enumerate(("A-01", "A-02")):
            status, _ = post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": f"MRN-{i}", "name": f"Patient {i}"}, "bed": bed})
            assert status == 201
        before = events(hub)["last_id"]
        hub.proc.kill()  # no shutdown: what was answered 201 must already be in the outbox
        hub.proc.wait()
        hub = start_hub(tmp_path, db=hub.db)
        monitor(hub, ("A-01", "A-02", "A-03"), 2)
        assert post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": "MRN-2", "name": "Patient 2"}, "bed": "A-03"})[0] == 201
        after = events(hub)["events"]
        assert [e["id"] for e in after] == list(range(1, len(after) + 1)) and len(after) > before
        admitted = [e["data"]["patient"]["mrn"] for e in after if e["data"]["type"] == "patient.admitted"]
        assert admitted == ["MRN-0", "MRN-1", "MRN-2"]
        assert len({b for b in ("A-01", "A-02") if get_json(f"{hub.base}/api/beds/{b}")["patient"]}) == 2  # the census came back
    finally:
        hub.stop()
