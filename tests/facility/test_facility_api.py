"""The registry's HTTP API on a real socket (uvicorn), staff signed in through a real hub (``start_hub``), the clock
frozen: who may do what, the GeoJSON answer against a GeoJSON schema, the stale rule, the CSV import endpoint,
verification, and the map page's sign-in cookie."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from facility_support import CENTRE, DISTANCE_KM, T0, Served, geojson_schema, load_synthetic, occupancy_body, problem, serve_facility
from records_db_support import KINDS, records_database
from support import PASSWORD, HubProcess
from test_facility_csv import district_file

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hub(module_hub: HubProcess) -> HubProcess:
    return module_hub  # one hub for the module (tests/conftest.py)


@pytest.fixture(params=KINDS)
def served(request: pytest.FixtureRequest, hub: HubProcess, tmp_path: Path) -> Iterator[Served]:
    with records_database(request.param, tmp_path, prefix="facility_api") as url, serve_facility(url, hub.base) as s:
        yield s


def test_who_may_do_what(served: Served) -> None:
    s = served
    load_synthetic(s)
    fid = "IN0810000001"
    occ = occupancy_body(T0 - 1000)
    # not signed in: 401 everywhere, problem JSON
    for method, path, body in (("GET", "/api/facilities.geojson", None), ("GET", f"/api/facilities/{fid}", None), ("GET", "/map/config.json", None),
                               ("PUT", f"/api/facilities/{fid}/occupancy", occ), ("PUT", f"/api/facilities/{fid}", {}), ("GET", "/api/me", None)):  # fmt: skip
        problem(s.http.request(method, path, json=body), 401, "sign_in")
    problem(s.http.get("/api/facilities.geojson", headers={"Authorization": "Bearer not-a-token"}), 401, "sign_in")
    # a nurse reads but cannot edit, verify, import or write occupancy
    nurse = s.auth("nurse-a")
    assert s.http.get("/api/facilities.geojson", headers=nurse).status_code == 200
    assert s.http.get(f"/api/facilities/{fid}", headers=nurse).json()["name"] == "Centre Hospital"
    problem(s.http.put(f"/api/facilities/{fid}", json={"name": "Renamed"}, headers=nurse), 403, "role")
    problem(s.http.post(f"/api/facilities/{fid}/verify", json={"verified": True}, headers=nurse), 403, "role")
    problem(s.http.put(f"/api/facilities/{fid}/capacity", json={"icu": {"licensed": 1, "staffed": 1}}, headers=nurse), 403, "role")
    problem(s.http.put(f"/api/facilities/{fid}/occupancy", json=occ, headers=nurse), 403, "role")
    problem(s.http.post("/api/import", content=district_file(), headers=nurse | {"Content-Type": "text/csv"}), 403, "role")
    # the records role writes occupancy, and nothing else (not even reads)
    records = s.auth("records-bridge")
    r = s.http.put(f"/api/facilities/{fid}/occupancy", json=occ, headers=records)
    assert r.status_code == 200 and r.json() == {"facility_id": fid, "stored": True, "as_of": T0 - 1000}, r.text
    problem(s.http.put(f"/api/facilities/{fid}", json={"name": "Renamed"}, headers=records), 403, "role")
    problem(s.http.get("/api/facilities.geojson", headers=records), 403, "role")
    problem(s.http.get(f"/api/facilities/{fid}", headers=records), 403, "role")
    # an admin may not write occupancy: it comes from the hubs' census only, never a form
    problem(s.http.put(f"/api/facilities/{fid}/occupancy", json=occ, headers=s.auth("admin")), 403, "role")
    # a cookie is taken for reads, never for a change
    cookie = {"Cookie": f"teleicu_facility_session={s.auth('admin')['Authorization'][7:]}"}
    assert s.http.get("/api/me", headers=cookie).json()["role"] == "admin"
    problem(s.http.post(f"/api/facilities/{fid}/verify", json={"verified": True}, headers=cookie), 401, "sign_in")
    assert s.http.get(f"/api/facilities/{fid}", headers=nurse).json()["name"] == "Centre Hospital"  # nothing changed


def test_admins_maintain_the_registry(served: Served) -> None:
    s = served
    admin = s.auth("admin")
    load_synthetic(s)
    fid = "IN0810000003"
    body = s.http.get(f"/api/facilities/{fid}", headers=admin).json()
    assert body["verified"] == {"verified": False, "by": None, "at": None}
    assert body["capacity"]["icu"] == {"licensed": 20, "staffed": 12, "updated_at": "2024-05-01T08:00:00Z", "updated_by": "admin"}
    s.clock.advance(3600)
    r = s.http.post(f"/api/facilities/{fid}/verify", json={"verified": True}, headers=admin)
    assert r.status_code == 200 and r.json()["verified"] == {"verified": True, "by": "admin", "at": "2024-05-01T09:00:00Z"}
    r = s.http.put(f"/api/facilities/{fid}/capacity", json={"icu": {"licensed": 20, "staffed": 16}}, headers=admin)
    assert r.json()["capacity"]["icu"] == {"licensed": 20, "staffed": 16, "updated_at": "2024-05-01T09:00:00Z", "updated_by": "admin"}
    assert r.json()["capacity"]["general"]["updated_at"] == "2024-05-01T08:00:00Z"
    # refusals name the field and change nothing
    p = problem(s.http.put(f"/api/facilities/{fid}/capacity", json={"icu": {"licensed": 20, "staffed": 21}}, headers=admin), 422, "invalid_field")
    assert p["field"] == "capacity.icu.staffed"
    p = problem(s.http.put("/api/facilities/IN0810000099", json={"name": "X"}, headers=admin), 422, "invalid_field")
    assert p["field"] == "type"
    problem(s.http.put("/api/facilities/IN08100000", json={}, headers=admin), 422, "invalid_field")
    problem(s.http.put(f"/api/facilities/{fid}", content=b"name=x", headers=admin | {"Content-Type": "application/x-www-form-urlencoded"}), 415, "media_type")
    problem(s.http.put(f"/api/facilities/{fid}", content=b"{" * 70_000, headers=admin | {"Content-Type": "application/json"}), 413, "too_large")
    problem(s.http.post(f"/api/facilities/{fid}/verify", json={"verified": "yes"}, headers=admin), 422, "invalid_field")
    problem(s.http.post("/api/facilities/IN0899999999/verify", json={"verified": True}, headers=admin), 404, "no_facility")
    assert s.http.get(f"/api/facilities/{fid}", headers=admin).json()["capacity"]["icu"]["staffed"] == 16


def test_the_csv_import_endpoint_is_all_or_nothing(served: Served) -> None:
    s = served
    admin = s.auth("admin") | {"Content-Type": "text/csv"}
    bad = district_file({1: {"name": "Renamed"}, 5: {"lat": "40.1"}})  # type: ignore[arg-type]
    p = problem(s.http.post("/api/import", content=bad, headers=admin), 422, "invalid_rows")
    assert p["errors"] == [{"line": 7, "field": "lat", "detail": p["errors"][0]["detail"]}] and "outside India" in p["errors"][0]["detail"]
    assert s.http.get("/api/facilities.geojson", headers=s.auth("admin")).json()["features"] == []
    r = s.http.post("/api/import", content=district_file(), headers=admin)
    assert r.status_code == 200 and r.json() == {"imported": 7, "created": 7, "updated": 0}, r.text
    assert len(s.http.get("/api/facilities.geojson", headers=s.auth("viewer")).json()["features"]) == 7


def test_geojson_answers_validate_and_are_sorted_by_distance(served: Served) -> None:
    s = served
    load_synthetic(s)
    viewer = s.auth("viewer")
    schema = geojson_schema()
    records = s.auth("records-bridge")
    assert s.http.put("/api/facilities/IN0810000003/occupancy", json=occupancy_body(T0 - 60_000, free=2), headers=records).status_code == 200
    for query in ("", "?district=110", "?district=Sikar", "?type=chc", "?service=tele_icu", f"?near={CENTRE[0]},{CENTRE[1]}&radius_km=50",
                  "?near=27.9,75.8&min_free_icu=1", "?limit=1"):  # fmt: skip
        r = s.http.get(f"/api/facilities.geojson{query}", headers=viewer)
        assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json", r.text
        jsonschema.validate(r.json(), schema)
    fc = s.http.get(f"/api/facilities.geojson?near={CENTRE[0]},{CENTRE[1]}&radius_km=50", headers=viewer).json()
    assert [f["id"] for f in fc["features"]] == ["IN0810000001", "IN0810000002", "IN0810000003", "IN0810000004"]
    for f in fc["features"]:
        assert f["properties"]["distance_km"] == pytest.approx(DISTANCE_KM[f["id"]], abs=0.01)
    assert fc["features"][2]["geometry"] == {"type": "Point", "coordinates": [75.8, 27.2]}  # [longitude, latitude]
    p = fc["features"][2]["properties"]
    assert p["occupancy"]["free"] == 2 and p["stale"] is False and p["capacity"]["icu"]["licensed"] == 20
    nearest = s.http.get("/api/facilities.geojson?near=27.9,75.8&min_free_icu=1", headers=viewer).json()["features"]
    assert [f["id"] for f in nearest] == ["IN0810000003"]
    assert s.http.get("/api/facilities.geojson?limit=1", headers=viewer).json()["truncated"] is True
    # the schema itself refuses a FeatureCollection with [lat, lon] swapped past 90
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                             "geometry": {"type": "Point", "coordinates": [26.9, 175.8]}}]}, schema)  # fmt: skip
    for bad in ("?near=26.9", "?near=a,b", "?radius_km=10", "?near=26.9,75.8&radius_km=0", "?type=hospital", "?service=x", "?limit=2001",
                "?min_free_icu=-1", "?limit=many"):  # fmt: skip
        problem(s.http.get(f"/api/facilities.geojson{bad}", headers=viewer), 422, "invalid_query")


def test_the_stale_rule_over_http(served: Served, hub: HubProcess) -> None:
    s = served
    load_synthetic(s)
    records, viewer = s.auth("records-bridge"), s.auth("viewer")
    fid = "IN0810000002"
    assert s.http.put(f"/api/facilities/{fid}/occupancy", json=occupancy_body(T0, free=3), headers=records).json()["stored"] is True

    def seen() -> dict:
        return s.http.get(f"/api/facilities/{fid}", headers=viewer).json()

    def free_ids() -> list[str]:
        return [f["id"] for f in s.http.get("/api/facilities.geojson?min_free_icu=1", headers=viewer).json()["features"]]

    assert seen()["occupancy"]["free"] == 3 and seen()["stale"] is False and free_ids() == [fid]
    s.clock.advance(300)  # exactly the stale age: still fresh
    assert seen()["stale"] is False
    s.clock.advance(1)
    body = seen()
    assert body["stale"] is True and body["occupancy"]["free"] is None and body["stale_since"] == "2024-05-01T08:05:00Z"
    assert free_ids() == []
    # an older census arriving late changes nothing; a newer one makes it fresh again
    assert s.http.put(f"/api/facilities/{fid}/occupancy", json=occupancy_body(T0 - 1000, free=5), headers=records).json()["stored"] is False
    r = s.http.put(f"/api/facilities/{fid}/occupancy", json=occupancy_body(s.clock.now, free=1), headers=records)
    assert r.json()["stored"] is True and seen()["occupancy"]["free"] == 1 and free_ids() == [fid]
    p = problem(s.http.put(f"/api/facilities/{fid}/occupancy", json=occupancy_body(s.clock.now) | {"free": 4}, headers=records), 422, "invalid_field")
    assert p["field"] == "free"
    problem(s.http.put("/api/facilities/IN0899999999/occupancy", json=occupancy_body(s.clock.now), headers=records), 404, "no_facility")
    # a facility with no figures at all is stale too
    assert s.http.get("/api/facilities/IN0810000004", headers=viewer).json()["stale"] is True


def test_a_shorter_stale_age(hub: HubProcess, tmp_path: Path) -> None:
    with records_database("sqlite", tmp_path) as url, serve_facility(url, hub.base, stale_after_s=30) as s:
        load_synthetic(s)
        s.http.put("/api/facilities/IN0810000001/occupancy", json=occupancy_body(T0 - 31_000), headers=s.auth("records-bridge"))
        assert s.http.get("/api/facilities/IN0810000001", headers=s.auth("viewer")).json()["stale"] is True
        assert s.http.get("/map/config.json", headers=s.auth("viewer")).json()["stale_after_s"] == 30


def test_the_map_page_signs_in_with_a_cookie(served: Served) -> None:
    s = served
    page = s.http.get("/map")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and "<script>" not in page.text
    problem(s.http.post("/api/session", json={"username": "intensivist", "password": "wrong"}), 401, "sign_in")
    problem(s.http.post("/api/session", json={"username": "records-bridge", "password": PASSWORD}), 403, "role")
    r = s.http.post("/api/session", json={"username": "intensivist", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["role"] == "intensivist", r.text
    set_cookie = r.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    assert s.http.get("/api/me").json()["username"] == "intensivist"  # the client keeps the cookie
    assert s.http.delete("/api/session").json() == {"signed_out": True}
    problem(s.http.get("/api/me"), 401, "sign_in")
    assert s.http.get("/static/facility/vendor/leaflet/leaflet.js").status_code == 200
    assert s.http.get("/static/facility/%2e%2e/app.py").status_code == 404
    assert s.http.get("/static/facility/vendor/../../app.py").status_code == 404
    problem(s.http.get("/static/facility/vendor/leaflet/LICENSE"), 404, "not_found")
    assert s.http.get("/map/outlines.geojson").json()["type"] == "FeatureCollection"
