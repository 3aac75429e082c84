"""The registry's store on SQLite and PostgreSQL: radius and district queries on the synthetic set with answers known
by hand, nearest first; out-of-order occupancy; capacity time stamps; the stale rule in the answers."""

from __future__ import annotations

import pytest
from facility_support import CENTRE, DISTANCE_KM, T0, FrozenClock, occupancy_body, synthetic_bodies

from records_bridge.services.facility import fields, geojson
from records_bridge.services.facility.problems import Problem
from records_bridge.services.facility.store import Query, Store

STALE_MS = 300_000


def load(store: Store) -> None:
    for fid, body in synthetic_bodies():
        assert store.put_facility(fid, fields.facility(body), "admin") is True


def ids(rows: list[dict]) -> list[str]:
    return [r["facility_id"] for r in rows]


def q(**kw) -> Query:  # type: ignore[no-untyped-def]
    return Query(fresh_since_ms=T0 - STALE_MS, limit=kw.pop("limit", 100), **kw)


def test_radius_queries_answer_the_hand_worked_distances_nearest_first(store: Store) -> None:
    load(store)
    rows, truncated = store.search(q(near=CENTRE, radius_km=50))
    assert ids(rows) == ["IN0810000001", "IN0810000002", "IN0810000003", "IN0810000004"] and not truncated
    for r in rows:
        assert r["distance_km"] == pytest.approx(DISTANCE_KM[r["facility_id"]], abs=0.01)
    # 55.598 km is just outside 55.5 and inside 55.7: the bounding box lets it through, the exact distance decides
    assert ids(store.search(q(near=CENTRE, radius_km=55.5))[0])[-1] == "IN0810000004"
    assert ids(store.search(q(near=CENTRE, radius_km=55.7))[0])[-1] == "IN0810000005"
    # from the far north end the order reverses
    rows, _ = store.search(q(near=(27.9, 75.8), radius_km=120))
    assert ids(rows)[:3] == ["IN0810000006", "IN0810000005", "IN0810000003"]
    assert rows[1]["distance_km"] == pytest.approx(55.598, abs=0.01)
    assert store.search(q(near=(20.0, 85.0), radius_km=100))[0] == []


def test_nearest_without_a_radius_widens_until_it_has_enough(store: Store) -> None:
    load(store)
    rows, truncated = store.search(q(near=(24.0, 75.8), limit=2))  # 100 km from Kota's point, far from the rest
    assert ids(rows) == ["IN0810000007", "IN0810000001"] and truncated
    assert rows[1]["distance_km"] == pytest.approx(2.9 * 111.1951, abs=0.02)
    rows, truncated = store.search(q(near=(24.0, 75.8), limit=100))
    assert len(rows) == 7 and not truncated and [r["distance_km"] for r in rows] == sorted(r["distance_km"] for r in rows)


def test_district_type_and_service_filters(store: Store) -> None:
    load(store)
    assert ids(store.search(q(district="110"))[0]) == ["IN0810000001", "IN0810000002", "IN0810000003"]  # by LGD code, named in order
    assert ids(store.search(q(district="sikar"))[0]) == ["IN0810000005", "IN0810000006"]
    assert ids(store.search(q(district=" Sikar "))[0]) == ids(store.search(q(district="112"))[0])
    assert store.search(q(district="999"))[0] == [] and store.search(q(district="Nowhere"))[0] == []
    assert ids(store.search(q(type="medical_college"))[0]) == ["IN0810000001", "IN0810000007"]
    assert ids(store.search(q(service="tele_icu", district="Jaipur"))[0]) == ["IN0810000001", "IN0810000003"]
    assert ids(store.search(q(service="mri"))[0]) == ["IN0810000007"]
    rows, truncated = store.search(q(limit=3))
    assert len(rows) == 3 and truncated


def test_free_bed_filter_takes_fresh_figures_only(store: Store, clock: FrozenClock) -> None:
    load(store)
    store.put_occupancy("IN0810000001", fields.occupancy(occupancy_body(T0 - 10_000, free=0), T0, 0), "records-bridge")
    store.put_occupancy("IN0810000002", fields.occupancy(occupancy_body(T0 - 10_000, free=2), T0, 0), "records-bridge")
    store.put_occupancy("IN0810000003", fields.occupancy(occupancy_body(T0 - STALE_MS - 1, free=8), T0, 0), "records-bridge")
    store.put_occupancy("IN0810000005", fields.occupancy(occupancy_body(T0 - STALE_MS, free=1), T0, 0), "records-bridge")  # just fresh
    assert ids(store.search(q(min_free_icu=1))[0]) == ["IN0810000002", "IN0810000005"]
    assert ids(store.search(q(min_free_icu=2, near=CENTRE))[0]) == ["IN0810000002"]  # 003 has 8 "free" but stale
    assert ids(store.search(q(min_free_icu=0, near=CENTRE))[0]) == ["IN0810000001", "IN0810000002", "IN0810000005"]


def test_occupancy_keeps_the_newest_census(store: Store) -> None:
    load(store)
    assert store.put_occupancy("IN0810000001", fields.occupancy(occupancy_body(T0, free=3), T0, 0), "records-bridge") is True
    assert store.put_occupancy("IN0810000001", fields.occupancy(occupancy_body(T0 - 5000, free=9), T0, 0), "records-bridge") is False
    row = store.get("IN0810000001")
    assert row["free"] == 3 and row["as_of_ms"] == T0 and row["received_by"] == "records-bridge"
    with pytest.raises(Problem) as info:
        store.put_occupancy("IN0899999999", fields.occupancy(occupancy_body(T0), T0, 0), "records-bridge")
    assert info.value.status == 404


def test_capacity_figures_keep_who_changed_them_and_when(store: Store, clock: FrozenClock) -> None:
    load(store)
    clock.advance(60)
    store.put_capacity("IN0810000001", {"icu": {"licensed": 20, "staffed": 12}, "ventilator": {"licensed": 8, "staffed": 6}}, "admin-2")
    cap = store.get("IN0810000001")["capacity"]
    assert cap["icu"]["updated_ms"] == T0 and cap["icu"]["updated_by"] == "admin"  # unchanged figures keep their stamp
    assert cap["ventilator"] == {"licensed": 8, "staffed": 6, "updated_ms": T0 + 60_000, "updated_by": "admin-2"}


def test_the_stale_rule_in_the_answer(store: Store) -> None:
    load(store)
    store.put_occupancy("IN0810000001", fields.occupancy(occupancy_body(T0 - 299_000, free=4), T0, 0), "records-bridge")
    store.put_occupancy("IN0810000002", fields.occupancy(occupancy_body(T0 - 301_000, free=4), T0, 0), "records-bridge")
    rows = {r["facility_id"]: geojson.properties(r, T0, STALE_MS) for r in store.search(q())[0]}
    fresh, old, none = rows["IN0810000001"], rows["IN0810000002"], rows["IN0810000003"]
    assert fresh["stale"] is False and fresh["occupancy"]["free"] == 4 and fresh["stale_since"] is None
    assert old["stale"] is True and old["occupancy"]["free"] is None and old["occupancy"]["occupied"] == 6
    assert old["stale_since"] == "2024-05-01T07:59:59Z"  # as_of + 300 s
    assert none["stale"] is True and none["occupancy"] is None
