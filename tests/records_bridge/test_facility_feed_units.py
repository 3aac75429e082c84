"""The bridge's facility feed without I/O: ward counts summed per facility, and events minimised before they leave."""

from __future__ import annotations

import pytest
from fhir_stay import admitted, alarm, discharged

from records_bridge.bridge.census_feed import facility_counts
from records_bridge.bridge.facility_sink import minimised
from records_bridge.bridge.outcomes import Retry


def ward(name: str, beds: int, occupied: int, high: int = 0, offline: int = 0) -> dict:
    return {"ward": name, "beds": beds, "occupied": occupied, "free": beds - occupied, "news2_high": high, "monitors_offline": offline}


def test_a_facility_is_the_sum_of_its_reported_wards_and_one_with_none_reported_is_not_sent() -> None:
    got = facility_counts([ward("A", 10, 7, 2, 1), ward("B", 6, 6, 1, 0), ward("C", 4, 1)],
                          {"A": "IN0810000001", "B": "IN0810000001", "C": "IN0810000002", "Z": "IN0810000003"})  # fmt: skip
    assert got == {"IN0810000001": {"beds": 16, "occupied": 13, "free": 3, "news2_high": 3, "monitors_offline": 1},
                   "IN0810000002": {"beds": 4, "occupied": 1, "free": 3, "news2_high": 0, "monitors_offline": 0}}  # fmt: skip


@pytest.mark.parametrize("bad", [None, -1, "3", True, 2.5])
def test_a_count_that_is_not_a_count_is_not_sent(bad: object) -> None:
    with pytest.raises(Retry, match="occupied"):
        facility_counts([ward("A", 10, 7) | {"occupied": bad}], {"A": "IN0810000001"})


def test_events_leave_with_no_more_about_the_patient_than_a_kpi_needs() -> None:
    adm = minimised(admitted()).data
    assert adm.patient.name == "" and adm.patient.birth_date is None and adm.patient.diagnosis == "" and adm.patient.mrn
    assert adm.encounter == admitted().data.encounter
    dis = minimised(discharged()).data
    assert dis.summary.news2 == [] and dis.summary.alarms == [] and dis.encounter == discharged().data.encounter
    assert dis.patient.name == ""
    assert minimised(alarm()) == alarm()  # names no patient beyond her id
