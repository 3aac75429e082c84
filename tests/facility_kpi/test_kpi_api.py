"""The KPI API on a real socket (uvicorn), staff signed in through a real hub (``start_hub``), the clock frozen: who may
post and read, the same batch twice, bad input refused whole as problem JSON, the figures and the CSV, sign-in through
the service, the pages and their policy."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from kpi_support import HUB, Served, scenario, serve_kpi
from records_db_support import KINDS, records_database
from support import HubProcess

from records_bridge.services.facility.kpi.settings import KpiSettings

pytestmark = pytest.mark.integration
DAY = {"from": "2024-05-02", "to": "2024-05-02"}


@pytest.fixture(scope="module")
def hub(module_hub: HubProcess) -> HubProcess:
    return module_hub  # one hub for the module (tests/conftest.py)


@pytest.fixture(params=KINDS)
def served(request: pytest.FixtureRequest, hub: HubProcess, tmp_path: Path) -> Iterator[Served]:
    with records_database(request.param, tmp_path, prefix="kpi_api") as url, serve_kpi(url, hub.base) as s:
        yield s


@pytest.fixture
def served_sqlite(hub: HubProcess, tmp_path: Path) -> Iterator[Served]:
    with records_database("sqlite", tmp_path) as url, serve_kpi(url, hub.base, settings=KpiSettings(max_batch=50, max_body=200_000)) as s:
        yield s


def problem(r, status: int, reason: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status and body["detail"] and body.get("reason") == reason, body
    return body


def stored(s: Served) -> int:
    with s.app.state.engine.connect() as conn:
        return sum(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar()
                   for t in ("kpi_events", "kpi_encounters", "kpi_alarms", "kpi_news2", "kpi_hourly"))  # fmt: skip


def test_only_the_records_bridge_posts_events_and_a_retried_batch_adds_nothing(served: Served, hub: HubProcess) -> None:
    items = scenario()
    body = {"hub": HUB, "events": items}
    problem(served.http.post("/api/kpi/events", json=body), 401, "sign_in")
    problem(served.http.post("/api/kpi/events", json=body, headers={"Authorization": "Bearer not-a-token"}), 401, "sign_in")
    for user in ("nurse-a", "intensivist", "admin", "viewer"):
        problem(served.http.post("/api/kpi/events", json=body, headers=served.staff(hub.base, user)), 403, "role")
    assert stored(served) == 0
    bridge = served.staff(hub.base, "records-bridge")
    r = served.http.post("/api/kpi/events", json=body, headers=bridge)
    assert r.status_code == 200, r.text
    assert r.json() == {"hub": HUB, "received": len(items), "new": len(items), "last_id": len(items)}
    before = stored(served)
    again = served.http.post("/api/kpi/events", json=body, headers=bridge)
    assert again.json()["new"] == 0 and stored(served) == before
    half = served.http.post("/api/kpi/events", json={"hub": HUB, "events": items[-5:]}, headers=bridge)
    assert half.json() == {"hub": HUB, "received": 5, "new": 0, "last_id": len(items)}
    # any signed-in member of staff reads the figures; the bridge does not
    r = served.http.get("/api/kpi", params={"facility": "F1", **DAY}, headers=served.staff(hub.base, "nurse-a"))
    assert r.status_code == 200, r.text
    kpis = {k["key"]: k for k in r.json()["kpis"]}
    assert kpis["occupancy"]["value"] == pytest.approx(20 / 96 * 100) and kpis["ack_p90"]["value"] == pytest.approx(78)
    assert kpis["news2_emergency"]["numerator"] == 1 and kpis["news2_emergency"]["denominator"] == 3
    problem(served.http.get("/api/kpi", params={"facility": "F1", **DAY}, headers=bridge), 403, "role")
    problem(served.http.get("/api/kpi", params={"facility": "F1", **DAY}), 401, "sign_in")


def test_bad_batches_are_refused_whole_with_a_reason(served_sqlite: Served, hub: HubProcess) -> None:
    s, bridge = served_sqlite, served_sqlite.staff(hub.base, "records-bridge")
    items = scenario()
    post = s.http.post
    problem(post("/api/kpi/events", content=b"{not json", headers=bridge | {"Content-Type": "application/json"}), 400, "not_json")
    problem(post("/api/kpi/events", content=b"hub=x", headers=bridge | {"Content-Type": "application/x-www-form-urlencoded"}), 415,
            "media_type")  # fmt: skip
    bad = [*items[:10], {"event": {"id": 11, "at": 1, "data": {"type": "patient.exploded"}}, "facility_id": None}]
    body = problem(post("/api/kpi/events", json={"hub": HUB, "events": bad}, headers=bridge), 422, "invalid")
    assert "nothing was stored" in body["detail"] and "events.10" in body["detail"]
    problem(post("/api/kpi/events", json={"hub": "", "events": items[:3]}, headers=bridge), 422, "invalid")
    problem(post("/api/kpi/events", json={"hub": HUB, "events": items[:3], "extra": 1}, headers=bridge), 422, "invalid")
    problem(post("/api/kpi/events", json={"hub": HUB, "events": items[:51]}, headers=bridge), 413, "too_many")
    fat = [{**items[0], "event": {**items[0]["event"], "data": {**items[0]["event"]["data"], "by": "x" * 250_000}}}]
    problem(post("/api/kpi/events", json={"hub": HUB, "events": fat}, headers=bridge), 413, "too_large")
    assert stored(s) == 0
    assert post("/api/kpi/events", json={"hub": HUB, "events": items[:50]}, headers=bridge).json()["new"] == 50


def test_figures_and_csv_for_a_state_and_the_query_checks(served_sqlite: Served, hub: HubProcess) -> None:
    s = served_sqlite
    bridge, nurse = s.staff(hub.base, "records-bridge"), s.staff(hub.base, "nurse-b")
    items = scenario()
    for i in range(0, len(items), 50):
        assert s.http.post("/api/kpi/events", json={"hub": HUB, "events": items[i:i + 50]}, headers=bridge).status_code == 200
    d = s.http.get("/api/kpi", params={"state": "Rajasthan", **DAY}, headers=nurse).json()
    assert [f["facility"]["facility_id"] for f in d["facilities"]] == ["F2", "F1"]  # by district, then name
    total = {k["key"]: k for k in d["total"]["kpis"]}
    assert total["occupancy"]["value"] == pytest.approx(44 / 144 * 100)
    assert total["data_completeness"]["value"] == pytest.approx(137_700 / 475_200 * 100)
    assert d["window"]["hours"] == 24 and d["window"]["complete"] is True and d["window"]["tz"] == "Asia/Kolkata"
    r = s.http.get("/api/kpi.csv", params={"state": "Rajasthan", **DAY}, headers=nurse)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="kpi_Rajasthan_2024-05-02_2024-05-02.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 3 * 15  # F1, F2 and the state's total, every KPI
    by = {(row["facility_id"], row["kpi"]): row for row in rows}
    assert by[("F1", "ack_p90")]["value"] == "78" and by[("F1", "ack_p90")]["numerator"] == "7"
    assert by[("(state total)", "occupancy")]["numerator"] == "44" and by[("(state total)", "occupancy")]["denominator"] == "144"
    assert by[("F2", "mortality")]["value"] == "" and by[("F1", "mortality")]["value"] == "33.333333"
    assert all(row["definition"] for row in rows)
    f = s.http.get("/api/kpi.csv", params={"facility": "F2", **DAY}, headers=nurse)
    assert len(list(csv.DictReader(io.StringIO(f.text)))) == 15
    problem(s.http.get("/api/kpi", params={**DAY}, headers=nurse), 422, "scope")
    problem(s.http.get("/api/kpi", params={"facility": "F1", "state": "Rajasthan"}, headers=nurse), 422, "scope")
    problem(s.http.get("/api/kpi", params={"facility": "nowhere"}, headers=nurse), 404, "no_facility")
    problem(s.http.get("/api/kpi", params={"state": "Atlantis"}, headers=nurse), 404, "no_state")
    problem(s.http.get("/api/kpi", params={"facility": "F1", "from": "2 May"}, headers=nurse), 422, "bad_date")
    problem(s.http.get("/api/kpi", params={"facility": "F1", "from": "2024-05-03", "to": "2024-05-02"}, headers=nurse), 422, "bad_window")
    states = s.http.get("/api/kpi/states", headers=nurse).json()
    assert [x["state"] for x in states["states"]] == ["Gujarat", "Rajasthan"] and states["today"] == "2024-05-05"


def test_the_page_signs_in_through_the_service_and_is_served_under_the_hubs_policy(served_sqlite: Served, hub: HubProcess) -> None:
    s = served_sqlite
    page = s.http.get("/kpi")
    assert page.status_code == 200 and "ICU programme KPIs" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert s.http.get("/kpi/facility/F1").status_code == 200
    assert s.http.get("/static/kpi/kpi.js").headers["content-type"].startswith("text/javascript")
    problem(s.http.get("/static/kpi/secrets.txt"), 404, "not_found")
    r = s.http.post("/api/kpi/signin", json={"username": "viewer", "password": "correct horse battery staple"})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "viewer"
    assert s.http.get("/api/kpi/states", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).status_code == 200
    problem(s.http.post("/api/kpi/signin", json={"username": "viewer", "password": "wrong"}), 401, "sign_in")
    problem(s.http.post("/api/kpi/signin", json={"username": "records-bridge", "password": "correct horse battery staple"}), 403, "role")
    problem(s.http.post("/api/kpi/signin", json={"username": "viewer"}), 422, "invalid")
