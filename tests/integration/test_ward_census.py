"""The wards' bed counts on a real hub (``GET /api/census``): occupancy follows admissions and discharges, NEWS2 >= 7
and silent monitors are counted, and no patient is named."""

from __future__ import annotations

import time

import pytest
from support import HubProcess, get_json, post_json, wait_until
from websockets.sync.client import connect

from wire.codec import decode_hub, encode_edge
from wire.messages import Ack, Hello, ObsFrame, Observation

pytestmark = pytest.mark.integration

SICK = {"rr": 26, "spo2": 90, "nibp_sys": 95, "hr": 125, "temp": 38.6}  # NEWS2 3+3+2+2+1: 11 before O2 and ACVPU


def census(hub: HubProcess, as_: str = "records-bridge") -> dict[str, dict]:
    return {w["ward"]: w for w in get_json(f"{hub.base}/api/census", as_=as_)["wards"]}


def test_counts_follow_admissions_scores_and_monitors(hub: HubProcess) -> None:
    beds = ("A-01", "A-02", "A-03")
    t = time.time_ns() // 1_000_000
    with connect(hub.edge_url, additional_headers=hub.agent_auth("edge-A", "A", beds)) as ws:
        ws.send(encode_edge(Hello("edge-A", 1, "A", beds)).decode())
        decode_hub(ws.recv(timeout=10))
        ws.send(encode_edge(ObsFrame(1, tuple(Observation(b, k, v, t, t, "s5") for b in beds[:2] for k, v in SICK.items()))).decode())
        while not isinstance(decode_hub(ws.recv(timeout=10)), Ack):
            pass
        # the monitors' values alone already make 9 (charted O2 and ACVPU can only add): band high, though incomplete
        assert census(hub)["A"] == {"ward": "A", "beds": 3, "occupied": 0, "free": 3, "news2_high": 2, "monitors_offline": 0}
        enc = {}
        for bed, mrn in (("A-01", "MRN-1"), ("A-03", "MRN-3")):
            status, body = post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": mrn, "name": "Test " + mrn}, "bed": bed}, as_="nurse-a")
            assert status == 201, body
            enc[bed] = body["encounter"]["encounter_id"]
        for param, value in (("o2", "oxygen"), ("acvpu", "A")):
            assert post_json(f"{hub.base}/api/beds/A-01/chart", {"param": param, "value": value}, as_="nurse-a")[0] == 201
        # A-03's monitor never sent: an occupied bed with a silent monitor; A-02 is monitored but nobody is admitted
        want = {"ward": "A", "beds": 3, "occupied": 2, "free": 1, "news2_high": 2, "monitors_offline": 1}
        wait_until(lambda: census(hub)["A"] == want, f"census {want}", timeout=15)
        row = get_json(f"{hub.base}/api/census", as_="nurse-a")
        assert [w["ward"] for w in row["wards"]] == ["A"]  # a ward nurse counts her own wards only
        assert "MRN" not in str(row) and "Test" not in str(row)
    # the gateway went away: the admitted patient it monitored now has a silent monitor too
    wait_until(lambda: census(hub)["A"]["monitors_offline"] == 2, "the gateway's beds counted silent", timeout=15)
    assert post_json(f"{hub.base}/api/encounters/{enc['A-03']}/discharge", {"outcome": "discharged"}, as_="intensivist")[0] == 200
    assert census(hub)["A"] | {"news2_high": None} == {"ward": "A", "beds": 3, "occupied": 1, "free": 2, "news2_high": None,
                                                       "monitors_offline": 1}  # fmt: skip
    assert get_json(f"{hub.base}/api/census", as_="viewer")["wards"]
