"""The queue's HTTP API on a real socket (uvicorn), staff signed in through a real hub (``start_hub``), the clock frozen:
roles, the counter's day, reminders by SMS once, bookings replayed, kiosk and scan-and-share, board keys, metrics, and
fifty clients issuing tokens at once against PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from opd_queue_support import Served, ist_ms, lay_out, problem, serve_queue
from records_db_support import KINDS, records_database
from support import HubProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hub(module_hub: HubProcess) -> HubProcess:
    return module_hub  # one hub for the module (tests/conftest.py)


@pytest.fixture(params=KINDS)
def queue(request: pytest.FixtureRequest, hub: HubProcess, tmp_path: Path) -> Iterator[Served]:
    with records_database(request.param, tmp_path, prefix="queue_test") as url, serve_queue(url, hub.base, tmp_path) as s:
        lay_out(s, hub.base)
        yield s


def as_(s: Served, hub: HubProcess, user: str) -> dict[str, str]:
    return s.staff(hub.base, user)


def test_sign_in_and_roles(queue: Served, hub: HubProcess) -> None:
    problem(queue.http.put("/api/facilities/x", json={"name": "X"}), 401, "sign_in")
    problem(queue.http.put("/api/facilities/x", json={"name": "X"}, headers={"Authorization": "Bearer not-a-token"}), 401, "sign_in")
    problem(queue.http.put("/api/facilities/x", json={"name": "X"}, headers=as_(queue, hub, "nurse-a")), 403, "role")
    problem(queue.http.post("/api/queues/med/tokens", json={}, headers=as_(queue, hub, "viewer")), 403, "role")
    problem(queue.http.post("/api/queues/med/tokens", json={}, headers=as_(queue, hub, "records-bridge")), 403, "role")
    problem(queue.http.post("/api/queues/med/tokens", json={"name": "Ram"}, headers=as_(queue, hub, "nurse-a")), 422, "unknown_field")
    problem(queue.http.post("/api/queues/med/tokens", content=b"[1]", headers=as_(queue, hub, "nurse-a") | {"Content-Type": "application/json"}),
            400, "not_object")  # fmt: skip
    problem(queue.http.post("/api/queues/med/tokens", json={"mobile": "12345"}, headers=as_(queue, hub, "nurse-a")), 422, "bad_mobile")
    facility = queue.http.get("/api/facilities/phc-jaipur", headers=as_(queue, hub, "viewer")).json()
    assert [c["id"] for c in facility["counters"]] == ["room-1", "room-2"]
    assert queue.http.get("/api/nowhere").json()["status"] == 404


def test_a_morning_at_the_counter(queue: Served, hub: HubProcess) -> None:
    nurse = as_(queue, hub, "nurse-a")
    issued = []
    for i in range(5):
        r = queue.http.post("/api/queues/med/tokens", json={"mobile": f"98290000{i:02d}"}, headers=nurse)
        assert r.status_code == 201, r.text
        issued.append(r.json())
    again = queue.http.post("/api/queues/med/tokens", json={"mobile": "9829000000"}, headers=nurse)
    assert again.status_code == 200 and again.json()["id"] == issued[0]["id"] and not again.json()["created"]
    assert [t["display"] for t in issued] == ["MED-001", "MED-002", "MED-003", "MED-004", "MED-005"]
    assert issued[2]["estimate_at_issue_s"] == 900 and issued[2]["position"] == 3

    problem(queue.http.post("/api/queues/ort/next", json={"counter_id": "room-2"}, headers=nurse), 409, "empty_queue")
    for _ in range(2):
        queue.clock.advance(180)
        called = queue.http.post("/api/queues/med/next", json={"counter_id": "room-1"}, headers=nurse).json()
        assert queue.http.post(f"/api/tokens/{called['id']}/complete", json={}, headers=nurse).json()["status"] == "completed"
    # remind_ahead 2: after the first call MED-002..004 were due, after the second MED-005; each texted once
    texts = queue.sms.sent()
    assert sorted(t["to"] for t in texts) == [f"+9198290000{i:02d}" for i in (1, 2, 3, 4)]
    assert all("MED-0" in t["text"] for t in texts)
    token = queue.http.get(f"/api/tokens/{issued[4]['id']}", headers=as_(queue, hub, "viewer")).json()
    assert token["position"] == 3 and token["estimate_now_s"] == 540  # 3 × the 180 s between the two calls

    metrics = queue.http.get("/api/facilities/phc-jaipur/metrics", headers=as_(queue, hub, "viewer")).json()
    med = metrics["queues"]["med"]
    assert (med["issued"], med["served"], med["waiting"], med["no_shows"]) == (5, 2, 3, 0)
    assert med["mean_wait_s"] == 270 and med["estimate_mae_s"] == 180  # |300-180| and |600-360|, averaged
    assert metrics["day"] == "2024-05-01"


def test_refusals_change_nothing(queue: Served, hub: HubProcess) -> None:
    nurse = as_(queue, hub, "nurse-a")
    queue.clock.now = ist_ms(2024, 5, 1, 23, 50)
    t = queue.http.post("/api/queues/med/tokens", json={}, headers=nurse).json()
    before = queue.http.get("/api/queues/med/waiting", headers=nurse).json()
    queue.clock.now = ist_ms(2024, 5, 2, 8, 0)
    body = problem(queue.http.post("/api/queues/med/next", json={"counter_id": "room-1"}, headers=nurse), 409, "empty_queue")
    assert "nothing was changed" in body["detail"]
    body = problem(queue.http.post(f"/api/tokens/{t['id']}/transfer", json={"queue_id": "ort"}, headers=nurse), 409, "other_day")
    assert "2024-05-01" in body["detail"] and "2024-05-02" in body["detail"]
    problem(queue.http.post(f"/api/tokens/{t['id']}/no_show", json={}, headers=nurse), 409, "other_day")
    queue.clock.now = ist_ms(2024, 5, 1, 23, 55)
    assert queue.http.get("/api/queues/med/waiting", headers=nurse).json() == before
    assert queue.http.get(f"/api/tokens/{t['id']}", headers=nurse).json()["status"] == "waiting"


def test_a_booking_by_the_records_role_is_issued_exactly_once(queue: Served, hub: HubProcess) -> None:
    records = as_(queue, hub, "records-bridge")
    body = {"booking_id": "icu-stay-881/follow-up-1", "queue_id": "med", "day": "2024-05-08", "slot": "10:30",
            "patient": {"abha": "91-1234-5678-9012", "mobile": "9829012345", "ref": "Patient/881"}}
    first = queue.http.post("/api/bookings", json=body, headers=records)
    assert first.status_code == 201, first.text
    assert first.json()["category"] == "booked" and first.json()["day"] == "2024-05-08" and first.json()["slot"] == "10:30"

    def replay(_: int) -> httpx.Response:
        with httpx.Client(base_url=queue.base, timeout=10) as c:
            return c.post("/api/bookings", json=body, headers=records)

    with ThreadPoolExecutor(10) as pool:
        replays = list(pool.map(replay, range(10)))
    assert {r.status_code for r in replays} == {200} and {r.json()["id"] for r in replays} == {first.json()["id"]}
    problem(queue.http.post("/api/bookings", json=body | {"slot": "11:00"}, headers=records), 409, "booking_id_reused")
    problem(queue.http.post("/api/bookings", json=body | {"booking_id": "x2", "day": "2024-04-01"}, headers=records), 422, "bad_day")
    problem(queue.http.post("/api/bookings", json={k: v for k, v in body.items() if k != "patient"}, headers=records), 422, "missing_field")
    waiting = queue.http.get("/api/queues/med/waiting", headers=as_(queue, hub, "viewer")).json()
    assert waiting["waiting"] == []  # the booking is for the 8th, not today


def test_kiosk_scan_and_board_keys(queue: Served, hub: HubProcess) -> None:
    admin = as_(queue, hub, "admin")
    kiosk = queue.http.post("/api/facilities/phc-jaipur/credentials", json={"kind": "kiosk", "name": "gate"}, headers=admin).json()["secret"]
    board = queue.http.post("/api/facilities/phc-jaipur/credentials", json={"kind": "board", "name": "hall"}, headers=admin).json()
    problem(queue.http.post("/api/kiosk/tokens", json={"queue_id": "med"}), 401, "kiosk")
    problem(queue.http.post("/api/kiosk/tokens", json={"queue_id": "med"}, headers={"Authorization": f"Bearer {board['secret']}"}), 401, "kiosk")
    r = queue.http.post("/api/kiosk/tokens", json={"queue_id": "med", "mobile": "9829011111"}, headers={"Authorization": f"Bearer {kiosk}"})
    assert r.status_code == 201 and r.json()["source"] == "kiosk" and r.json()["category"] == "walk_in"

    problem(queue.http.post("/api/scan/phc-jaipur/tokens", json={"queue_id": "med"}), 422, "missing_field")
    scanned = queue.http.post("/api/scan/phc-jaipur/tokens", json={"queue_id": "med", "abha": "12-3456-7890-1234"})
    assert scanned.status_code == 201 and scanned.json()["number"] == 2
    assert not {"booking_id", "slot", "has_mobile", "transferred_from"} & set(scanned.json())  # anyone may ask: number and place only
    same = queue.http.post("/api/scan/phc-jaipur/tokens", json={"queue_id": "med", "abha": "12345678901234"})
    assert same.status_code == 200 and same.json()["id"] == scanned.json()["id"]
    problem(queue.http.post("/api/scan/other/tokens", json={"queue_id": "med", "mobile": "9829022222"}), 404, "unknown_queue")
    statuses = [queue.http.post("/api/scan/phc-jaipur/tokens", json={"queue_id": "med", "mobile": f"98290333{i:02d}"}).status_code
                for i in range(6)]  # fmt: skip
    assert statuses.count(429) >= 4  # a burst of 5 per address, and 4 went already
    limited = queue.http.post("/api/scan/phc-jaipur/tokens", json={"queue_id": "med", "mobile": "9829044444"})
    assert problem(limited, 429, "rate_limited") and int(limited.headers["retry-after"]) >= 1

    problem(queue.http.get("/board/phc-jaipur"), 404, "board_key")
    problem(queue.http.get("/board/phc-jaipur", params={"key": kiosk}), 404, "board_key")
    page = queue.http.get(board["board_path"])
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    state = queue.http.get("/board/phc-jaipur/state", params={"key": board["secret"]}).json()
    assert state["counters"][0] == {"id": "room-1", "name": "Room 1", "number": None}
    assert "9829" not in json.dumps(state) and "abha" not in json.dumps(state)


def test_the_board_stream_sends_each_call(queue: Served, hub: HubProcess) -> None:
    admin, nurse = as_(queue, hub, "admin"), as_(queue, hub, "nurse-a")
    key = queue.http.post("/api/facilities/phc-jaipur/credentials", json={"kind": "board", "name": "tv"}, headers=admin).json()["secret"]
    queue.http.post("/api/queues/med/tokens", json={}, headers=nurse)
    got: list[dict] = []
    first = threading.Event()
    done = threading.Event()

    def listen() -> None:
        with httpx.Client(base_url=queue.base, timeout=10) as c, c.stream("GET", "/board/phc-jaipur/events", params={"key": key}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    first.set()
                    if len(got) == 2:
                        done.set()
                        return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert first.wait(10)
    queue.http.post("/api/queues/med/next", json={"counter_id": "room-2"}, headers=nurse)
    assert done.wait(10)
    t.join(10)
    assert got[0]["calls"] == [] and got[1]["calls"][0]["number"] == "MED-001" and got[1]["calls"][0]["counter"] == "Room 2"


def test_fifty_clients_at_once_over_http_on_postgresql(hub: HubProcess, tmp_path: Path) -> None:
    with records_database("postgresql", tmp_path, prefix="queue_test") as url, serve_queue(url, hub.base, tmp_path) as s:
        lay_out(s, hub.base)
        kiosk = s.http.post("/api/facilities/phc-jaipur/credentials", json={"kind": "kiosk", "name": "gate"},
                            headers=as_(s, hub, "admin")).json()["secret"]  # fmt: skip
        mobiles = [f"97{i:08d}" for i in range(40)] + [f"97{i:08d}" for i in range(10)]
        barrier = threading.Barrier(50)

        def client(m: str) -> dict:
            with httpx.Client(base_url=s.base, timeout=30) as c:
                barrier.wait()
                r = c.post("/api/kiosk/tokens", json={"queue_id": "med", "mobile": m}, headers={"Authorization": f"Bearer {kiosk}"})
                assert r.status_code in (200, 201), r.text
                return r.json() | {"mobile": m}

        with ThreadPoolExecutor(50) as pool:
            got = list(pool.map(client, mobiles))
        store = s.app.state.store
        rows = store.count_tokens("med", "2024-05-01")
        assert [n for n, _k, _st in rows] == list(range(1, 41))  # gapless, unique
        assert len({k for _n, k, _st in rows}) == 40  # no patient twice
        ids: dict[str, set[int]] = {}
        for g in got:
            ids.setdefault(g["mobile"], set()).add(g["id"])
        assert all(len(v) == 1 for v in ids.values())
        assert sum(g["created"] for g in got) == 40
