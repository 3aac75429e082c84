"""The queue's store on SQLite and on PostgreSQL, with a frozen clock: numbering, duplicates, bookings, working the
queue, refusals that change nothing, transfer, day rollover, reminders, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from opd_queue_support import FrozenClock, ist_ms
from records_db_support import KINDS, records_database

from records_bridge.services.db import current_revision, make_engine
from records_bridge.services.problems import Problem
from records_bridge.services.queue.store import VERSION_TABLE, Booking, Patient, Store, booking_digest, migrate


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with records_database(request.param, tmp_path, prefix="queue_test") as url:
        engine = make_engine(url, pool_size=60)
        migrate(engine)
        migrate(engine)  # a second time: nothing to do
        assert current_revision(engine, VERSION_TABLE) == "0001"
        s = Store(engine, FrozenClock())
        s.put_facility("phc", "PHC Jaipur")
        s.put_department("opd", "phc", "OPD")
        s.put_counter("room-1", "phc", "Room 1", "opd")
        s.put_counter("room-2", "phc", "Room 2", "opd")
        s.put_queue("med", "opd", "Medicine", prefix="MED", remind_ahead=2, service_s=240)
        s.put_queue("ort", "opd", "Orthopaedics", prefix="ORT")
        try:
            yield s
        finally:
            engine.dispose()


def snapshot(s: Store) -> list:
    return [s.count_tokens(q, d) for q in ("med", "ort") for d in ("2024-05-01", "2024-05-02")] + [s.board("phc")]


def refused(fn, status: int, reason: str) -> Problem:  # type: ignore[no-untyped-def]
    with pytest.raises(Problem) as info:
        fn()
    assert info.value.status == status and info.value.reason == reason, info.value.detail
    return info.value


def test_numbers_are_gapless_and_a_patient_gets_one_token_per_queue(store: Store) -> None:
    a, created_a = store.issue("med", Patient.of(mobile="98765 43210"))
    b, created_b = store.issue("med", Patient.of(mobile="+91 9876543210"))  # the same mobile written another way
    assert created_a and not created_b and a["id"] == b["id"] and a["display"] == "MED-001"
    c, _ = store.issue("med", Patient.of(abha="12-3456-7890-1234"))
    d, _ = store.issue("med", Patient.of())  # anonymous walk-in: no duplicate check possible, a new number
    e, _ = store.issue("ort", Patient.of(mobile="9876543210"))  # another queue: a token of its own
    assert [c["number"], d["number"], e["number"]] == [2, 3, 1]
    assert [n for n, _k, _s in store.count_tokens("med", "2024-05-01")] == [1, 2, 3]
    assert a["estimate_at_issue_s"] == 240 and c["estimate_at_issue_s"] == 480  # position × the default service time


def test_concurrent_issues_are_gapless_and_never_duplicate_a_patient(store: Store) -> None:
    mobiles = [f"98{i:08d}" for i in range(40)] + [f"98{i:08d}" for i in range(10)]  # 10 patients ask twice, at once

    with ThreadPoolExecutor(50) as pool:
        got = list(pool.map(lambda m: store.issue("med", Patient.of(mobile=m)), mobiles))
    rows = store.count_tokens("med", "2024-05-01")
    assert [n for n, _k, _s in rows] == list(range(1, 41))
    assert len({k for _n, k, _s in rows}) == 40
    by_mobile: dict[str, set[int]] = {}
    for m, (tok, _created) in zip(mobiles, got, strict=True):
        by_mobile.setdefault(m, set()).add(tok["id"])
    assert all(len(ids) == 1 for ids in by_mobile.values())
    assert sum(created for _t, created in got) == 40


def test_calls_follow_the_category_order_and_bad_requests_change_nothing(store: Store) -> None:
    refused(lambda: store.call_next("med", "room-1"), 409, "empty_queue")
    walk, _ = store.issue("med", Patient.of(mobile="9000000001"))
    booked, _ = store.issue("med", Patient.of(mobile="9000000002"), category="booked")
    prio, _ = store.issue("med", Patient.of(mobile="9000000003"), category="priority")
    assert [t["id"] for t in store.waiting("med")] == [prio["id"], booked["id"], walk["id"]]
    store.clock.advance(60)
    first = store.call_next("med", "room-1")
    assert first["id"] == prio["id"] and first["status"] == "called" and first["wait_s"] == 60
    before = snapshot(store)
    refused(lambda: store.call_next("med", "room-1"), 409, "counter_busy")
    refused(lambda: store.act(walk["id"], "complete"), 409, "wrong_status")
    refused(lambda: store.act(first["id"], "dance"), 404, "bad_action")
    refused(lambda: store.call_next("nope", "room-1"), 404, "unknown_queue")
    assert snapshot(store) == before
    assert store.act(first["id"], "skip")["status"] == "skipped"
    second = store.call_next("med", "room-1")
    assert second["id"] == booked["id"]
    assert store.act(first["id"], "recall", "room-2")["status"] == "called"  # the skipped one is back, at room 2
    assert store.act(first["id"], "recall")["calls"] == 3  # announced again where it is
    assert store.act(first["id"], "complete")["status"] == "completed"
    assert store.act(second["id"], "no_show")["status"] == "no_show"
    third = store.call_next("med", "room-1")
    assert third["id"] == walk["id"]
    store.act(third["id"], "complete")
    before = snapshot(store)
    refused(lambda: store.call_next("med", "room-1"), 409, "empty_queue")
    assert snapshot(store) == before
    m = store.metrics("phc")["queues"]["med"]
    assert (m["issued"], m["served"], m["called"], m["no_shows"], m["waiting"]) == (3, 2, 3, 1, 0)


def test_day_rollover_restarts_numbers_and_old_tokens_cannot_be_worked(store: Store) -> None:
    store.clock.now = ist_ms(2024, 5, 1, 23, 58)
    late, _ = store.issue("med", Patient.of(mobile="9000000001"))
    store.issue("med", Patient.of(mobile="9000000002"))
    called = store.call_next("med", "room-1")
    assert called["id"] == late["id"]
    store.clock.now = ist_ms(2024, 5, 2, 0, 1)  # past midnight in Jaipur
    before = snapshot(store)
    refused(lambda: store.act(late["id"], "complete"), 409, "other_day")
    refused(lambda: store.transfer(late["id"], "ort"), 409, "other_day")
    refused(lambda: store.call_next("med", "room-1"), 409, "empty_queue")  # yesterday's waiting token is not today's
    assert snapshot(store) == before
    same_patient, created = store.issue("med", Patient.of(mobile="9000000001"))  # yesterday's token does not hold today's place
    assert created and same_patient["day"] == "2024-05-02" and same_patient["number"] == 1
    assert store.call_next("med", "room-1")["id"] == same_patient["id"]  # room 1's call of yesterday does not block today


def test_a_booking_is_issued_once_and_a_changed_replay_is_refused(store: Store) -> None:
    body = {"booking_id": "dis-42-fu1", "queue_id": "med", "day": "2024-05-03", "slot": "10:30", "patient": {"ref": "Patient/42"}}
    booking = Booking("dis-42-fu1", "2024-05-03", "10:30", booking_digest(body))
    first, created = store.issue("med", Patient.of(ref="Patient/42"), category="booked", source="booking", booking=booking)
    again, created_again = store.issue("med", Patient.of(ref="Patient/42"), category="booked", source="booking", booking=booking)
    assert created and not created_again and first["id"] == again["id"] and first["day"] == "2024-05-03"
    changed = Booking("dis-42-fu1", "2024-05-03", "11:00", booking_digest(body | {"slot": "11:00"}))
    refused(lambda: store.issue("med", Patient.of(ref="Patient/42"), category="booked", booking=changed), 409, "booking_id_reused")
    past = Booking("old", "2024-04-30", None, "x")
    refused(lambda: store.issue("med", Patient.of(ref="Patient/43"), category="booked", booking=past), 422, "bad_day")
    assert store.count_tokens("med", "2024-05-03") == [(1, "ref:Patient/42", "waiting")]
    assert store.count_tokens("med", "2024-05-01") == []
    store.clock.advance(4 * 86_400)  # the booked day is past: a replay (a client that was down) still gets its token
    late, created_late = store.issue("med", Patient.of(ref="Patient/42"), category="booked", source="booking", booking=booking)
    assert not created_late and late["id"] == first["id"]
    refused(lambda: store.issue("med", Patient.of(ref="Patient/42"), category="booked", booking=changed), 409, "booking_id_reused")


def test_a_booked_token_waits_from_its_slot_not_from_when_it_was_booked(store: Store) -> None:
    body = {"booking_id": "dis-7-fu1", "queue_id": "med", "day": "2024-05-03", "slot": "10:30", "patient": {"ref": "Patient/7"}}
    booking = Booking("dis-7-fu1", "2024-05-03", "10:30", booking_digest(body))
    store.issue("med", Patient.of(ref="Patient/7"), category="booked", source="booking", booking=booking)  # booked two days ahead
    store.clock.now = ist_ms(2024, 5, 3, 10, 42)
    assert store.call_next("med", "room-1")["wait_s"] == 12 * 60  # since the 10:30 slot, not the two days since booking


def test_transfer_keeps_the_place_and_refuses_a_duplicate(store: Store) -> None:
    early, _ = store.issue("med", Patient.of(mobile="9000000001"))
    store.clock.advance(30)
    store.issue("ort", Patient.of(mobile="9000000002"))
    store.clock.advance(30)
    store.issue("ort", Patient.of(mobile="9000000003"))
    moved = store.transfer(early["id"], "ort")
    assert moved["number"] == 3 and moved["transferred_from"] == early["id"] and moved["position"] == 1
    assert store.token(early["id"])["status"] == "transferred"
    back, _ = store.issue("med", Patient.of(mobile="9000000002"))
    refused(lambda: store.transfer(back["id"], "ort"), 409, "duplicate")
    assert store.metrics("phc")["queues"]["med"]["issued"] == 1  # the transferred-out token counts in ORT only


def test_reminders_are_claimed_once_per_token(store: Store) -> None:
    for i in range(5):
        store.issue("med", Patient.of(mobile=f"900000000{i}"))
    store.issue("med", Patient.of())  # no mobile: nobody to text
    first = store.claim_reminders("med")  # remind_ahead 2: positions 1 to 3
    assert [r["display"] for r in first] == ["MED-001", "MED-002", "MED-003"]
    assert store.claim_reminders("med") == []
    store.call_next("med", "room-1")
    assert [r["display"] for r in store.claim_reminders("med")] == ["MED-004"]
    assert store.claim_reminders("med") == []


def test_estimates_follow_the_call_rate_and_their_error_is_reported(store: Store) -> None:
    ids = [store.issue("med", Patient.of(mobile=f"900000000{i}"))[0]["id"] for i in range(4)]
    for _ in ids:  # one call every 120 s (the default says 240)
        store.clock.advance(120)
        t = store.call_next("med", "room-1")
        store.act(t["id"], "complete")
    late, _ = store.issue("med", Patient.of(mobile="9000000009"))
    assert late["estimate_at_issue_s"] == 120  # position 1 × the measured 120 s between calls
    m = store.metrics("phc")["queues"]["med"]
    assert m["mean_wait_s"] == 300 and m["p90_wait_s"] == 480
    assert m["estimate_mae_s"] == (abs(240 - 120) + abs(480 - 240) + abs(720 - 360) + abs(960 - 480)) / 4


def test_structure_and_credentials(store: Store) -> None:
    refused(lambda: store.put_facility("Bad Id", "x"), 422, "bad_id")
    refused(lambda: store.put_facility("x", "x", tz="Nowhere/Land"), 422, "bad_tz")
    refused(lambda: store.put_queue("q", "nope", "Q"), 404, "unknown_department")
    kiosk = store.add_credential("kiosk", "phc", "kiosk-gate")
    board = store.add_credential("board", "phc", "hall-tv")
    assert store.credential(kiosk, "kiosk") == "phc" and store.credential(kiosk, "board") is None
    assert store.credential(board, "board") == "phc" and store.credential(board + "x", "board") is None
    refused(lambda: store.add_credential("kiosk", "phc", "kiosk-gate"), 409, "exists")
    assert {q["id"] for q in store.structure("phc")["queues"]} == {"med", "ort"}
