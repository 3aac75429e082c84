"""Live ICU occupancy end to end: hub, EHR, facility registry and records bridge as processes.

Admissions and discharges at the hub reach the registry's figures within the
bridge's census interval (measured); the figures stay fresh on the bridge's
heartbeat while nothing changes; when the bridge is killed they age into
"stale" — free beds no longer given, and the facility no longer found by a
free-bed search — never into "free".
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from support import PASSWORD, HubProcess, free_port, get_json, post_json, teleicu, token, wait_until
from test_records_exactly_once import Service
from websockets.sync.client import connect

from teleicu.demo_facilities import demo_registry
from wire.codec import decode_hub, encode_edge
from wire.messages import Ack, Hello, ObsFrame, Observation

pytestmark = pytest.mark.integration

BEDS = ("A-01", "A-02", "A-03")
STALE_AFTER_S = 8
CENSUS_EVERY_S = 1


def monitor(hub: HubProcess) -> None:
    t = time.time_ns() // 1_000_000
    with connect(hub.edge_url, additional_headers=hub.agent_auth("edge-A", "A", BEDS)) as ws:
        ws.send(encode_edge(Hello("edge-A", 1, "A", BEDS)).decode())
        decode_hub(ws.recv(timeout=10))
        ws.send(encode_edge(ObsFrame(1, tuple(Observation(b, "hr", 80, t, t, "s5") for b in BEDS))).decode())
        while not isinstance(decode_hub(ws.recv(timeout=10)), Ack):
            pass


def test_admissions_and_discharges_move_the_registry_and_a_stopped_bridge_leaves_it_stale_not_free(hub: HubProcess, tmp_path: Path) -> None:
    ports = {"ehr": free_port(), "facility": free_port()}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    secret = tmp_path / "ehr-bridge.secret"
    made = teleicu("ehr", "clients", "add", "bridge", "--role", "writer", "--db", str(tmp_path / "ehr.sqlite3"), "--secret-file", str(secret))
    assert made.returncode == 0, made.stdout + made.stderr
    services = [
        Service("ehr", ["ehr", "serve", "--db", str(tmp_path / "ehr.sqlite3"), "--port", str(ports["ehr"])], tmp_path),
        Service("facility", ["facility", "serve", "--db", str(tmp_path / "facility.sqlite3"), "--port", str(ports["facility"]),
                             "--hub", hub.base, "--stale-after-s", str(STALE_AFTER_S)], tmp_path),
    ]  # fmt: skip
    (tmp_path / "bridge.password").write_text(PASSWORD + "\n")
    wards, hospitals = demo_registry({"A": len(BEDS)})
    fid, body = hospitals[0]
    config = {"hub": {"url": hub.base, "user": "records-bridge", "password_file": "bridge.password"},
              "ehr": {"url": f"{urls['ehr']}/fhir", "secret_file": secret.name},
              "hospital": {"mrn_system": "https://hospital.example/mrn", "facility_name": body["name"], "facility_id": fid},
              "facility": {"url": urls["facility"], "wards": wards, "census_every_s": CENSUS_EVERY_S, "heartbeat_s": 5},
              "state": "bridge-state.sqlite3"}  # fmt: skip
    (tmp_path / "bridge.yaml").write_text(yaml.safe_dump(config))
    bridge = Service("bridge", ["bridge", "--config", str(tmp_path / "bridge.yaml"), "--log-level", "info"], tmp_path)
    registry = f"{urls['facility']}/api/facilities/{fid}"

    def reader() -> dict[str, str]:
        return {"Authorization": f"Bearer {token(hub.base, 'viewer')}"}

    def facility() -> dict:
        return get_json(registry, as_=None, headers=reader())

    def occupied_is(n: int) -> bool:
        occ = facility()["occupancy"]
        return occ is not None and occ["occupied"] == n and occ["free"] == len(BEDS) - n

    try:
        for s in services:
            s.start()
        for name in urls:
            wait_until(lambda n=name: get_json(f"{urls[n]}/healthz", as_=None), f"the {name} service", timeout=30)
        admin = {"Authorization": f"Bearer {token(hub.base, 'admin')}"}
        status, answer = post_json(registry, body, method="PUT", as_=None, headers=admin)
        assert status == 201, answer
        assert facility()["stale"] is True and facility()["occupancy"] is None  # nothing heard yet: stale, not free
        monitor(hub)
        bridge.start()
        wait_until(lambda: occupied_is(0), "the registry to show the ICU's 3 beds, all free", timeout=30)

        lags = []
        encounters = []
        for i, bed in enumerate(BEDS[:2]):
            status, answer = post_json(f"{hub.base}/api/admissions", {"patient": {"mrn": f"MRN-{i}", "name": f"Patient {i}"}, "bed": bed},
                                       as_="nurse-a")  # fmt: skip
            assert status == 201, answer
            encounters.append(answer["encounter"]["encounter_id"])
            t0 = time.monotonic()
            wait_until(lambda n=i + 1: occupied_is(n), f"{i + 1} occupied in the registry", timeout=15)
            lags.append(time.monotonic() - t0)
        status, answer = post_json(f"{hub.base}/api/encounters/{encounters[0]}/discharge", {"outcome": "discharged"})
        assert status == 200, answer
        t0 = time.monotonic()
        wait_until(lambda: occupied_is(1), "the discharge in the registry", timeout=15)
        lags.append(time.monotonic() - t0)
        assert max(lags) < CENSUS_EVERY_S + 4, lags  # within the census interval, plus a request's worth

        # nothing changes for longer than the stale age: the heartbeat keeps the figures fresh
        first_as_of = facility()["occupancy"]["as_of"]
        wait_until(lambda: facility()["occupancy"]["as_of"] != first_as_of, "a heartbeat", timeout=15)
        assert facility()["stale"] is False

        bridge.kill()
        killed = time.monotonic()
        assert facility()["occupancy"]["free"] == 2  # the last count, still fresh
        stale = wait_until(lambda: (f := facility())["stale"] and f, "the figures to go stale", timeout=STALE_AFTER_S + 10)
        assert time.monotonic() - killed <= STALE_AFTER_S + 6
        assert stale["occupancy"]["free"] is None and stale["occupancy"]["occupied"] == 1 and stale["stale_since"]
        found = get_json(f"{urls['facility']}/api/facilities.geojson?min_free_icu=0", as_=None, headers=reader())
        assert found["features"] == []  # a stale facility matches no free-bed search, not even for 0 beds
        near = get_json(f"{urls['facility']}/api/facilities.geojson?near={body['lat']},{body['lon']}&radius_km=5", as_=None, headers=reader())
        assert [(f["id"], f["properties"]["occupancy"]["free"]) for f in near["features"]] == [(fid, None)]
    finally:
        bridge.stop()
        for s in services:
            s.stop()


def test_a_facility_url_that_is_not_the_facility_service_waits_rather_than_parking_events(hub: HubProcess) -> None:
    import asyncio

    from records_bridge.bridge.facility_sink import FacilitySink
    from records_bridge.bridge.hub_client import HubClient
    from records_bridge.bridge.outcomes import Retry
    from records_bridge.bridge.service_client import ServiceClient

    async def check() -> str:
        records = HubClient(hub.base, "records-bridge", PASSWORD)
        wrong = ServiceClient("facility registry", hub.base, records)  # the hub answers /healthz, but takes no KPI events
        try:
            await FacilitySink(wrong, {"A": "IN0800000001"}, "test-hub").ready()
        except Retry as exc:
            return str(exc)
        finally:
            await wrong.close()
            await records.close()
        return "ready"

    assert "does not take KPI events" in asyncio.run(check())
