"""Every KPI of the hand-worked scenario (``kpi_support.scenario``), on SQLite and on PostgreSQL, worked out by hand
below: the window is 2 May 2024 in IST (24 h: 1 May 18:30Z to 2 May 18:30Z), the clock stands at 5 May 12:00 IST.

Facility F1 (4 staffed beds), stays inside the window:
  E1 00:00-08:00 = 8 h (admitted 1 May 20:00: a discharge without an admission in the window)
  E3 10:00-14:00 = 4 h;  E7 12:00-18:00 = 6 h;  E5 22:00-24:00 = 2 h (open, runs over midnight)
  E6 (cancelled) 0 h; E2, E4 begin on 4 May: 0 h
  occupied = 8 + 4 + 6 + 2 = 20 bed-hours; staffed = 4 x 24 = 96 -> occupancy 20 / 96 = 20.8333 %
Flow: admitted in the window E3, E7, E5 (E6 cancelled, E1 before) = 3 -> 3 per day;
  ended: E1, E3, E7 = 3 -> 3 per day; transfers: E3 at 12:00 = 1 -> 1 per day;
  length of stay (12 h + 4 h + 6 h) / 3 = 22 h / 3 = 0.916667 d / 3 = 0.305556 d;
  live discharges E1, E3 = 2; E1's MRN M1 back 47 h later (E2), E3's M2 only after 49 h -> readmission 1 / 2 = 50 %;
  mortality: E7 died -> 1 / 3 = 33.3333 %.
Alarms raised in the window (a6 before it, a5 of the cancelled E6, a11 of the unmapped ward, a12 of an encounter
never seen count nowhere): physiological a1 a9 a10 a7 a3 = 5, technical a2 a4 a8 = 3;
  monitored bed-days = 20 / 24 = 0.833333 -> 5 / 0.833333 = 6.0 and 3 / 0.833333 = 3.6 per bed-day;
  monitor gaps: a2 (no_data), a8 (device_disconnected) = 2 (a4 probe_off is not a gap).
Time to acknowledge (min), sorted: a1 2, a3 4, a2 10, a8 20, a9 45, a7 70, a10 90 (a4 never) -> 7 of 8 raised;
  median = the 4th = 20; p90: rank (7 - 1) x 0.9 = 5.4 -> 70 + 0.4 x (90 - 70) = 78.
NEWS2 >= 5 episodes from 2 May: E1 03:00 (medium after low; the "unknown" at 03:30 neither ends nor starts one,
  04:00 is the same episode) answered by a9 at 03:45 (45 <= 60); E1 06:00 answered only at 07:30 (90 > 60): late;
  E3 10:25 (medium; high at 10:30 is the same >= 5 episode) a7 at 11:40 = 75 min: late; E7 12:30 never;
  E5 22:20 a3 at 22:34 = 14 min: in time -> 2 / 5 = 40 %.
NEWS2 >= 7 episodes: E3 10:30 a7 at 11:40 = 70 > 30: late; E7 12:30 never; E5 22:20 14 <= 30: in time -> 1 / 3 = 33.3333 %.
Data completeness (hr, spo2, rr; 3,600 per parameter per bed-hour), each hour's count capped, weighted by its share in
the window (IST midnight cuts the UTC hour 18:00Z in half):
  E1 hr: 18Z 3600 x 0.5 + 19Z..23Z 5 x 3600 (20Z's 4000 capped) + 00Z, 01Z 2 x 3600 + 02Z 1800 = 28,800; spo2 the same;
     rr: 1800 + 5 x 1800 + 2 x 1800 + 900 = 15,300
  E3 each: 1800 + 3 x 3600 + 1800 = 14,400;  E5 each: 16Z 1800 + 17Z 3600 + 18Z 3600 x 0.5 = 7,200;  E7: none
  received = 2 x (28,800 + 14,400 + 7,200) + (15,300 + 14,400 + 7,200) = 137,700
  expected = 3,600 x 3 x 20 = 216,000 -> 63.75 %
Facility F2 (2 staffed beds): E8 open all day, no data: occupancy 24 / 48 = 50 %; completeness 0 / 259,200 = 0 %;
  no discharges: length of stay, mortality, readmission have no value; 0 alarms over 1 bed-day = 0.
Rajasthan (F1 + F2): occupied 44 h of 6 x 24 = 144 -> 30.5556 %; bed-days 44 / 24 = 1.833333 -> physiological
  5 / 1.833333 = 2.727273, technical 3 / 1.833333 = 1.636364; completeness 137,700 / (3,600 x 3 x 44 = 475,200) = 28.9773 %;
  the rest as F1.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from kpi_support import HUB, REFS, Clock, ist, scenario
from records_db_support import KINDS, records_database
from sqlalchemy import Engine

from records_bridge.services.db import make_engine
from records_bridge.services.facility.kpi import report, store
from records_bridge.services.facility.kpi.settings import KpiSettings
from records_bridge.services.facility.kpi.store import Item

CFG = KpiSettings()
F1 = {
    "occupancy": (20 / 96 * 100, 20, 96),
    "admissions_per_day": (3, 3, 1),
    "discharges_per_day": (3, 3, 1),
    "transfers_per_day": (1, 1, 1),
    "length_of_stay": (22 / 24 / 3, 22 / 24, 3),
    "readmission_48h": (50, 1, 2),
    "mortality": (100 / 3, 1, 3),
    "alarms_physiological": (6.0, 5, 20 / 24),
    "alarms_technical": (3.6, 3, 20 / 24),
    "ack_median": (20, 7, 8),
    "ack_p90": (78, 7, 8),
    "news2_urgent": (40, 2, 5),
    "news2_emergency": (100 / 3, 1, 3),
    "data_completeness": (63.75, 137_700, 216_000),
    "monitor_gaps": (2, 2, 20 / 24),
}
F2 = {
    "occupancy": (50, 24, 48),
    "admissions_per_day": (0, 0, 1),
    "discharges_per_day": (0, 0, 1),
    "transfers_per_day": (0, 0, 1),
    "length_of_stay": (None, 0, 0),
    "readmission_48h": (None, 0, 0),
    "mortality": (None, 0, 0),
    "alarms_physiological": (0, 0, 1),
    "alarms_technical": (0, 0, 1),
    "ack_median": (None, 0, 0),
    "ack_p90": (None, 0, 0),
    "news2_urgent": (None, 0, 0),
    "news2_emergency": (None, 0, 0),
    "data_completeness": (0, 0, 259_200),
    "monitor_gaps": (0, 0, 1),
}
STATE = F1 | {
    "occupancy": (44 / 144 * 100, 44, 144),
    "alarms_physiological": (5 / (44 / 24), 5, 44 / 24),
    "alarms_technical": (3 / (44 / 24), 3, 44 / 24),
    "data_completeness": (137_700 / 475_200 * 100, 137_700, 475_200),
    "monitor_gaps": (2, 2, 44 / 24),
}


def assert_kpis(rows: list[dict], expected: dict[str, tuple]) -> None:
    got = {r["key"]: (r["value"], r["numerator"], r["denominator"]) for r in rows}
    assert set(got) == set(expected)
    for key, want in expected.items():
        for part, g, w in zip(("value", "numerator", "denominator"), got[key], want, strict=True):
            assert (g is None) == (w is None) and (w is None or g == pytest.approx(w, rel=1e-9, abs=1e-9)), (key, part, g, w)
    for r in rows:
        assert r["definition"] and r["unit"] and r["label"]


@pytest.fixture(params=KINDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with records_database(request.param, tmp_path, prefix="kpi_test") as url:
        e = make_engine(url)
        store.migrate(e)
        yield e
        e.dispose()


def fed(engine: Engine) -> int:
    return store.take(engine, HUB, [Item.model_validate(i) for i in scenario()], ist(5, 12))


def test_every_kpi_of_the_scenario_matches_the_hand_worked_figures(engine: Engine) -> None:
    assert fed(engine) == len(scenario())
    now = Clock().now
    w = report.window(date(2024, 5, 2), date(2024, 5, 2), now, CFG)
    assert (w.start_ms, w.end_ms, w.hours) == (ist(2), ist(3), 24)
    with engine.connect() as conn:
        f1 = report.facility_report(conn, REFS[0], w, now, CFG)
        f2 = report.facility_report(conn, REFS[1], w, now, CFG)
        state = report.state_report(conn, "Rajasthan", REFS[:2], w, now, CFG)
    assert_kpis(f1["kpis"], F1)
    assert_kpis(f2["kpis"], F2)
    assert_kpis(state["total"]["kpis"], STATE)
    assert [f["facility"]["facility_id"] for f in state["facilities"]] == ["F1", "F2"]
    assert_kpis(state["facilities"][0]["kpis"], F1)


def test_a_window_that_ends_now_counts_open_stays_until_now_and_days_as_elapsed(engine: Engine) -> None:
    """At 2 May 12:00 IST: E1 00:00-08:00 = 8 h, E3 10:00-12:00 = 2 h (its discharge at 14:00 is not yet), E7 starts at
    12:00 = 0 h -> 10 h of 4 x 12 = 48 -> 20.8333 %; admissions in [00:00, 12:00): E3 = 1 over 0.5 day = 2 per day."""
    fed(engine)
    now = ist(2, 12)
    w = report.window(None, None, now, CFG)  # default: the 7 days to today
    assert (w.first, w.last, w.end_ms) == (date(2024, 4, 26), date(2024, 5, 2), now)
    w = report.window(date(2024, 5, 2), date(2024, 5, 2), now, CFG)
    with engine.connect() as conn:
        rows = {r["key"]: r for r in report.facility_report(conn, REFS[0], w, now, CFG)["kpis"]}
    assert (rows["occupancy"]["numerator"], rows["occupancy"]["denominator"]) == (pytest.approx(10), pytest.approx(48))
    assert rows["occupancy"]["value"] == pytest.approx(1000 / 48)
    assert (rows["admissions_per_day"]["value"], rows["admissions_per_day"]["numerator"]) == (pytest.approx(2), 1)


def test_an_episode_still_inside_its_response_time_is_not_counted_until_it_is_decided(engine: Engine) -> None:
    """E5 enters band high at 22:20 and is acknowledged at 22:34. At 22:25 its 30 minutes are not over and nobody has
    acknowledged: it is left out (F1's emergency episodes: E3, E7 only -> 0 / 2). At 22:40 it counts, answered: 1 / 3."""
    items = [Item.model_validate(i) for i in scenario()]
    store.take(engine, HUB, [i for i in items if i.event.at <= ist(2, 22, 25)], 0)  # what the hub had written by 22:25
    w = report.window(date(2024, 5, 2), date(2024, 5, 2), ist(2, 22, 25), CFG)
    with engine.connect() as conn:
        early = {r["key"]: r for r in report.facility_report(conn, REFS[0], w, ist(2, 22, 25), CFG)["kpis"]}
    store.take(engine, HUB, items, 0)
    w = report.window(date(2024, 5, 2), date(2024, 5, 2), ist(2, 22, 40), CFG)
    with engine.connect() as conn:
        later = {r["key"]: r for r in report.facility_report(conn, REFS[0], w, ist(2, 22, 40), CFG)["kpis"]}
    assert (early["news2_emergency"]["numerator"], early["news2_emergency"]["denominator"]) == (0, 2)
    assert (later["news2_emergency"]["numerator"], later["news2_emergency"]["denominator"]) == (1, 3)


def test_response_times_are_configurable(engine: Engine) -> None:
    """With 90 minutes for NEWS2 >= 5 and 75 for >= 7: E1 06:00 (90 min) and E3 10:25 (75) are in time -> 4 / 5;
    E3 10:30 (70) is in time -> 2 / 3."""
    fed(engine)
    cfg = KpiSettings(news2_urgent_min=90, news2_emergency_min=75)
    now = Clock().now
    w = report.window(date(2024, 5, 2), date(2024, 5, 2), now, cfg)
    with engine.connect() as conn:
        rows = {r["key"]: r for r in report.facility_report(conn, REFS[0], w, now, cfg)["kpis"]}
    assert (rows["news2_urgent"]["numerator"], rows["news2_urgent"]["denominator"]) == (4, 5)
    assert (rows["news2_emergency"]["numerator"], rows["news2_emergency"]["denominator"]) == (2, 3)
    assert "90 minutes" in rows["news2_urgent"]["definition"]


def test_the_same_events_twice_change_nothing_and_an_older_event_never_overwrites_a_newer_one(engine: Engine) -> None:
    items = [Item.model_validate(i) for i in scenario()]
    assert store.take(engine, HUB, items, 0) == len(items)
    assert store.take(engine, HUB, items, 0) == 0
    assert store.take(engine, "hub-2", items[:1], 0) == 1  # another hub's event 1 is another event
    with engine.connect() as conn:
        e1 = conn.exec_driver_sql("SELECT end_ms, outcome, last_event FROM kpi_encounters WHERE hub = 'hub-1' AND encounter_id = 'E1'").one()
    discharged = next(i for i in items if i.event.data.type == "patient.discharged" and i.event.data.encounter.encounter_id == "E1")
    assert e1 == (ist(2, 8), "discharged", discharged.event.id)
    admitted = next(i for i in items if i.event.data.type == "patient.admitted" and i.event.data.encounter.encounter_id == "E1")

    def renumbered(item: Item, n: int) -> Item:
        return Item.model_validate(item.model_dump() | {"event": item.event.model_dump() | {"id": n}})

    # at another hub the discharge (event 20) arrives before the admission (event 10): the row stays discharged
    assert store.take(engine, "hub-3", [renumbered(discharged, 20)], 0) == 1
    assert store.take(engine, "hub-3", [renumbered(admitted, 10)], 0) == 1
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT end_ms, outcome, last_event FROM kpi_encounters WHERE hub = 'hub-3' AND encounter_id = 'E1'").one()
    assert row == (ist(2, 8), "discharged", 20)


def test_the_percentile_method_is_linear_between_the_nearest_ranks() -> None:
    assert report.percentile([], 0.5) is None
    assert report.percentile([7.0], 0.9) == 7.0
    assert report.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert report.percentile([2, 4, 10, 20, 45, 70, 90], 0.9) == pytest.approx(78)


def test_window_checks() -> None:
    now = ist(2, 12)
    with pytest.raises(report.WindowError, match="after"):
        report.window(date(2024, 5, 3), date(2024, 5, 2), now, CFG)
    with pytest.raises(report.WindowError, match="not begun"):
        report.window(date(2024, 5, 3), date(2024, 5, 3), now, CFG)
    with pytest.raises(report.WindowError, match="longer"):
        report.window(date(2023, 1, 1), date(2024, 5, 2), now, CFG)


def test_a_discharge_whose_admission_never_arrived_still_makes_the_stay(engine: Engine) -> None:
    """Only E10's discharge reaches the store (the bridge began after its admission): admitted 1 May 20:00, discharged
    2 May 06:00 in ward B (F2). In the window: 6 occupied hours of 48 -> 12.5 %; 1 discharge; stay 10 h = 0.416667 d."""
    from kpi_support import Stream

    s = Stream()
    s.admit("E10", "P10", "M10", "B-02", ist(1, 20))
    s.discharge("E10", ist(2, 6))
    store.take(engine, HUB, [Item.model_validate(i) for i in s.sorted_items()[1:]], 0)
    now = Clock().now
    w = report.window(date(2024, 5, 2), date(2024, 5, 2), now, CFG)
    with engine.connect() as conn:
        rows = {r["key"]: r for r in report.facility_report(conn, REFS[1], w, now, CFG)["kpis"]}
    assert rows["occupancy"]["value"] == pytest.approx(12.5)
    assert (rows["discharges_per_day"]["numerator"], rows["admissions_per_day"]["numerator"]) == (1, 0)
    assert rows["length_of_stay"]["value"] == pytest.approx(10 / 24)
