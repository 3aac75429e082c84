"""Tests for alerts.news2 against the RCP NEWS2 chart as copied in shared/clinical/scores.md.

Every expected value here was read off the chart by hand; none is computed by
the code under test.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.news2 import BAND_LABELS, COMPONENTS, News2Result, news2
from config_support import score_tables

NAN = math.nan
AIR, OXYGEN = 0.0, 1.0
A, C, V, P, U = 0.0, 1.0, 2.0, 3.0, 4.0

#: a bed scoring 0 on every parameter, scale 1
NORMAL: dict[str, Any] = {
    "rr": 16.0,
    "spo2": 98.0,
    "o2": AIR,
    "sbp": 120.0,
    "hr": 80.0,
    "acvpu": A,
    "temp": 37.0,
    "scale2": False,
}


TABLES = score_tables().news2  # the published NEWS2 chart (config/scores.yaml)

def score_beds(beds: list[dict[str, Any]]) -> News2Result:
    columns = {key: np.array([bed[key] for bed in beds], dtype=np.float64) for key in NORMAL if key != "scale2"}
    return news2(**columns, scale2=np.array([bed["scale2"] for bed in beds], dtype=bool), tables=TABLES)


def score_one(**changes: Any) -> News2Result:
    return score_beds([NORMAL | changes])


def subscore(result: News2Result, component: str) -> float:
    return float(result.subscores[0, COMPONENTS.index(component)])


def assert_only(result: News2Result, component: str, expected: float) -> None:
    """``component`` scores ``expected``; every other sub-score is 0; total follows."""
    row = result.subscores[0]
    for name, value in zip(COMPONENTS, row, strict=True):
        if name == component:
            if math.isnan(expected):
                assert math.isnan(value), f"{name}: expected missing, got {value}"
            else:
                assert value == expected, f"{name}: expected {expected}, got {value}"
        else:
            assert value == 0, f"{name}: expected 0, got {value}"
    if math.isnan(expected):
        assert result.incomplete[0] and math.isnan(result.total[0])
    else:
        assert not result.incomplete[0]
        assert result.total[0] == expected


# --- every band edge, both sides --------------------------------------------------------------

RR_CASES = [
    (0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3),
    # fractional inputs are rounded half up first
    (8.49, 3), (8.5, 1), (11.49, 1), (11.5, 0), (20.49, 0), (20.5, 2), (24.49, 2), (24.5, 3),
]  # fmt: skip


@pytest.mark.parametrize(("rr", "expected"), RR_CASES)
def test_rr(rr: float, expected: int) -> None:
    assert_only(score_one(rr=rr), "rr", expected)


SPO2_SCALE1_CASES = [
    (50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0),
    (91.49, 3), (91.5, 2), (93.5, 1), (95.49, 1), (95.5, 0),
]  # fmt: skip


@pytest.mark.parametrize(("spo2", "expected"), SPO2_SCALE1_CASES)
def test_spo2_scale1_on_air(spo2: float, expected: int) -> None:
    assert_only(score_one(spo2=spo2), "spo2", expected)


@pytest.mark.parametrize(("spo2", "expected"), SPO2_SCALE1_CASES)
def test_spo2_scale1_on_oxygen_is_the_same(spo2: float, expected: int) -> None:
    result = score_one(spo2=spo2, o2=OXYGEN)
    assert subscore(result, "spo2") == expected
    assert subscore(result, "o2") == 2
    assert result.total[0] == expected + 2


def test_spo2_scale1_ignores_missing_o2() -> None:
    result = score_one(spo2=97, o2=NAN)
    assert subscore(result, "spo2") == 0
    assert result.missing(0) == ["o2"]


SCALE2_AIR_CASES = [
    (70, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0),
    (93, 0), (94, 0), (95, 0), (96, 0), (97, 0), (100, 0),
    (83.49, 3), (83.5, 2), (87.5, 0), (92.5, 0),
]  # fmt: skip


@pytest.mark.parametrize(("spo2", "expected"), SCALE2_AIR_CASES)
def test_spo2_scale2_on_air(spo2: float, expected: int) -> None:
    assert_only(score_one(spo2=spo2, o2=AIR, scale2=True), "spo2", expected)


SCALE2_OXYGEN_CASES = [
    (70, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0),
    (93, 1), (94, 1), (95, 2), (96, 2), (97, 3), (100, 3),
    (92.49, 0), (92.5, 1), (94.49, 1), (94.5, 2), (96.49, 2), (96.5, 3),
]  # fmt: skip


@pytest.mark.parametrize(("spo2", "expected"), SCALE2_OXYGEN_CASES)
def test_spo2_scale2_on_oxygen(spo2: float, expected: int) -> None:
    result = score_one(spo2=spo2, o2=OXYGEN, scale2=True)
    assert subscore(result, "spo2") == expected
    assert subscore(result, "o2") == 2  # the separate +2 for oxygen is always added
    assert result.total[0] == expected + 2


SCALE2_O2_UNKNOWN_CASES = [
    (70, 3), (83, 3), (84, 2), (87, 1), (88, 0), (92, 0), (92.49, 0),
    (92.5, NAN), (93, NAN), (94, NAN), (97, NAN), (100, NAN),
]  # fmt: skip


@pytest.mark.parametrize(("spo2", "expected"), SCALE2_O2_UNKNOWN_CASES)
def test_spo2_scale2_needs_o2_from_93(spo2: float, expected: float) -> None:
    result = score_one(spo2=spo2, o2=NAN, scale2=True)
    if math.isnan(expected):
        assert math.isnan(subscore(result, "spo2"))
        assert result.missing(0) == ["spo2", "o2"]
    else:
        assert subscore(result, "spo2") == expected
        assert result.missing(0) == ["o2"]
    assert result.incomplete[0]
    assert math.isnan(result.total[0])


@pytest.mark.parametrize(
    ("changes", "spo2_score", "total", "band"),
    [
        ({"spo2": 90, "o2": OXYGEN}, 0, 2, "low"),  # in target range on oxygen
        ({"spo2": 90, "o2": AIR}, 0, 0, "low"),
        ({"spo2": 95, "o2": AIR}, 0, 0, "low"),  # scale 1 would score 1
        ({"spo2": 95, "o2": OXYGEN}, 2, 4, "low"),
        ({"spo2": 97, "o2": OXYGEN}, 3, 5, "medium"),
        ({"spo2": 86, "o2": OXYGEN}, 1, 3, "low"),
        ({"spo2": 82, "o2": AIR}, 3, 3, "low-medium"),
    ],
)
def test_scale2_examples(changes: dict[str, Any], spo2_score: int, total: int, band: str) -> None:
    result = score_one(scale2=True, **changes)
    assert subscore(result, "spo2") == spo2_score
    assert result.total[0] == total
    assert BAND_LABELS[int(result.band[0])] == band


def test_scale2_accepts_zero_and_one() -> None:
    result = news2(**(columns(2) | {"spo2": np.array([95.0, 95.0]), "scale2": np.array([0, 1])}), tables=TABLES)
    np.testing.assert_array_equal(result.subscores[:, COMPONENTS.index("spo2")], [1, 0])


def test_scale_is_per_bed() -> None:
    result = score_beds([NORMAL | {"spo2": 95, "scale2": False}, NORMAL | {"spo2": 95, "scale2": True}])
    np.testing.assert_array_equal(result.subscores[:, COMPONENTS.index("spo2")], [1, 0])


@pytest.mark.parametrize(("o2", "expected"), [(AIR, 0), (OXYGEN, 2)])
def test_o2(o2: float, expected: int) -> None:
    assert_only(score_one(o2=o2), "o2", expected)


SBP_CASES = [
    (50, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3), (300, 3),
    (90.49, 3), (90.5, 2), (100.5, 1), (110.49, 1), (110.5, 0), (219.49, 0), (219.5, 3),
]  # fmt: skip


@pytest.mark.parametrize(("sbp", "expected"), SBP_CASES)
def test_sbp(sbp: float, expected: int) -> None:
    assert_only(score_one(sbp=sbp), "sbp", expected)


HR_CASES = [
    (20, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3), (200, 3),
    (40.49, 3), (40.5, 1), (50.5, 0), (90.49, 0), (90.5, 1), (110.5, 2), (130.49, 2), (130.5, 3),
]  # fmt: skip


@pytest.mark.parametrize(("hr", "expected"), HR_CASES)
def test_hr(hr: float, expected: int) -> None:
    assert_only(score_one(hr=hr), "hr", expected)


TEMP_CASES = [
    (30.0, 3), (34.5, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2),
    (42.0, 2),
    # rounded to one decimal, half up
    (35.04, 3), (35.05, 1), (36.04, 1), (36.05, 0), (38.04, 0), (38.05, 1), (39.04, 1), (39.05, 2),
    (36.04999, 1),
]  # fmt: skip


@pytest.mark.parametrize(("temp", "expected"), TEMP_CASES)
def test_temp(temp: float, expected: int) -> None:
    assert_only(score_one(temp=temp), "temp", expected)


@pytest.mark.parametrize(("acvpu", "expected"), [(A, 0), (C, 3), (V, 3), (P, 3), (U, 3)])
def test_acvpu(acvpu: float, expected: int) -> None:
    assert_only(score_one(acvpu=acvpu), "acvpu", expected)


# --- worked examples from scores.md ----------------------------------------------------------


@pytest.mark.parametrize(
    ("bed", "subscores", "total", "band"),
    [
        (
            {"rr": 16, "spo2": 98, "o2": AIR, "sbp": 120, "hr": 80, "temp": 37.0, "acvpu": A},
            [0, 0, 0, 0, 0, 0, 0],
            0,
            "low",
        ),
        (
            {"rr": 18, "spo2": 90, "o2": OXYGEN, "sbp": 100, "hr": 100, "temp": 36.5, "acvpu": V},
            [0, 3, 2, 2, 1, 3, 0],
            11,
            "high",
        ),
        (
            {"rr": 7, "spo2": 80, "o2": OXYGEN, "sbp": 85, "hr": 140, "temp": 34.5, "acvpu": U},
            [3, 3, 2, 3, 3, 3, 3],
            20,
            "high",
        ),
    ],
)
def test_worked_examples(bed: dict[str, Any], subscores: list[int], total: int, band: str) -> None:
    result = score_one(**bed)
    np.testing.assert_array_equal(result.subscores[0], subscores)
    assert result.total[0] == total
    assert result.partial[0] == total
    assert BAND_LABELS[int(result.band[0])] == band


def test_worked_examples_in_one_call() -> None:
    result = score_beds(
        [
            NORMAL | {"rr": 16, "spo2": 98, "o2": AIR, "sbp": 120, "hr": 80, "temp": 37.0, "acvpu": A},
            NORMAL | {"rr": 18, "spo2": 90, "o2": OXYGEN, "sbp": 100, "hr": 100, "temp": 36.5, "acvpu": V},
            NORMAL | {"rr": 7, "spo2": 80, "o2": OXYGEN, "sbp": 85, "hr": 140, "temp": 34.5, "acvpu": U},
        ]
    )
    np.testing.assert_array_equal(result.total, [0, 11, 20])
    np.testing.assert_array_equal(result.band, [0, 3, 3])


# --- the incomplete rule ---------------------------------------------------------------------

#: a bed with known sub-scores rr 2, spo2 1, o2 2, sbp 1, hr 1, acvpu 0, temp 1: total 8
SCORING: dict[str, Any] = {
    "rr": 22.0, "spo2": 95.0, "o2": OXYGEN, "sbp": 105.0, "hr": 45.0, "acvpu": A, "temp": 38.5, "scale2": False,
}  # fmt: skip


@pytest.mark.parametrize(
    ("component", "partial", "band"),
    [
        ("rr", 6, "medium"),
        ("spo2", 7, "high"),
        ("o2", 6, "medium"),
        ("sbp", 7, "high"),
        ("hr", 7, "high"),
        ("acvpu", 8, "high"),
        ("temp", 7, "high"),
    ],
)
def test_missing_each_component(component: str, partial: int, band: str) -> None:
    result = score_beds([SCORING | {component: NAN}])
    assert result.incomplete[0]
    assert math.isnan(result.total[0])
    assert result.partial[0] == partial
    assert result.missing(0) == [component]
    assert BAND_LABELS[int(result.band[0])] == band
    row = result.row(0)
    assert row["total"] is None
    assert row["partial"] == partial
    assert row["subscores"][component] is None
    assert row["missing"] == [component]


def test_complete_scoring_bed() -> None:
    result = score_beds([SCORING])
    assert not result.incomplete[0]
    assert result.total[0] == 8
    assert result.missing(0) == []


def test_everything_missing() -> None:
    result = score_beds([{key: NAN for key in NORMAL} | {"scale2": False}])
    assert result.partial[0] == 0
    assert math.isnan(result.total[0])
    assert result.missing(0) == list(COMPONENTS)
    assert BAND_LABELS[int(result.band[0])] == "unknown"
    assert not result.any_three[0]


# --- bands -----------------------------------------------------------------------------------

# sub-scores by hand: rr 22 -> 2, rr 6 -> 3, hr 100 -> 1, hr 45 -> 1, temp 38.5 -> 1,
# sbp 95 -> 2, o2 oxygen -> 2, acvpu V -> 3
BAND_CASES: list[tuple[dict[str, Any], int, int | None, bool, str]] = [
    ({}, 0, 0, False, "low"),
    ({"rr": 22, "hr": 100, "temp": 38.5}, 4, 4, False, "low"),
    ({"acvpu": V}, 3, 3, True, "low-medium"),
    ({"acvpu": V, "hr": 45}, 4, 4, True, "low-medium"),
    ({"rr": 22, "o2": OXYGEN, "hr": 45}, 5, 5, False, "medium"),
    ({"rr": 6, "sbp": 95}, 5, 5, True, "medium"),
    ({"rr": 22, "o2": OXYGEN, "sbp": 95}, 6, 6, False, "medium"),
    ({"rr": 22, "o2": OXYGEN, "sbp": 95, "hr": 45}, 7, 7, False, "high"),
    ({"rr": 6, "acvpu": V, "hr": 45}, 7, 7, True, "high"),
    # incomplete: the lowest band the known sub-scores already prove
    ({"temp": NAN}, 0, None, False, "unknown"),
    ({"rr": 22, "hr": 100, "temp": 38.5, "acvpu": NAN}, 4, None, False, "unknown"),
    ({"acvpu": V, "temp": NAN}, 3, None, True, "low-medium"),
    ({"rr": 22, "o2": OXYGEN, "hr": 45, "temp": NAN}, 5, None, False, "medium"),
    ({"rr": 22, "o2": OXYGEN, "sbp": 95, "temp": NAN}, 6, None, False, "medium"),
    ({"rr": 22, "o2": OXYGEN, "sbp": 95, "hr": 45, "temp": NAN}, 7, None, False, "high"),
]


@pytest.mark.parametrize(("changes", "partial", "total", "any_three", "band"), BAND_CASES)
def test_bands(changes: dict[str, Any], partial: int, total: int | None, any_three: bool, band: str) -> None:
    result = score_one(**changes)
    assert result.partial[0] == partial
    if total is None:
        assert math.isnan(result.total[0])
        assert result.incomplete[0]
    else:
        assert result.total[0] == total
        assert not result.incomplete[0]
    assert result.any_three[0] == any_three
    assert BAND_LABELS[int(result.band[0])] == band


def test_bands_in_one_call() -> None:
    result = score_beds([NORMAL | changes for changes, *_ in BAND_CASES])
    labels = [BAND_LABELS[int(code)] for code in result.band]
    assert labels == [case[-1] for case in BAND_CASES]


# --- result shape and JSON rows -------------------------------------------------------------


def test_result_types() -> None:
    result = score_beds([NORMAL, NORMAL | {"temp": NAN}])
    assert result.subscores.shape == (2, 7) and result.subscores.dtype == np.float64
    assert result.partial.dtype == np.int64
    assert result.total.dtype == np.float64
    assert result.incomplete.dtype == np.bool_
    assert result.any_three.dtype == np.bool_
    assert result.band.dtype == np.int8


def test_row_is_json_ready() -> None:
    result = score_beds([NORMAL | {"rr": 18, "spo2": 90, "o2": OXYGEN, "sbp": 100, "hr": 100, "temp": 36.5,
                                   "acvpu": V},
                         NORMAL | {"acvpu": V, "temp": NAN, "hr": NAN}])  # fmt: skip
    assert result.row(0) == {
        "total": 11,
        "partial": 11,
        "subscores": {"rr": 0, "spo2": 3, "o2": 2, "sbp": 2, "hr": 1, "acvpu": 3, "temp": 0},
        "band": "high",
        "incomplete": False,
        "missing": [],
        "any_three": True,
    }
    assert result.row(1) == {
        "total": None,
        "partial": 3,
        "subscores": {"rr": 0, "spo2": 0, "o2": 0, "sbp": 0, "hr": None, "acvpu": 3, "temp": None},
        "band": "low-medium",
        "incomplete": True,
        "missing": ["hr", "temp"],
        "any_three": True,
    }
    for i in range(2):
        row = result.row(i)
        assert json.loads(json.dumps(row)) == row
        assert all(type(v) is int or v is None for v in row["subscores"].values())


def test_no_beds() -> None:
    empty = np.array([], dtype=np.float64)
    result = news2(rr=empty, spo2=empty, o2=empty, sbp=empty, hr=empty, acvpu=empty, temp=empty,
                   scale2=np.array([], dtype=bool), tables=TABLES)  # fmt: skip
    assert result.subscores.shape == (0, 7)
    for array in (result.partial, result.total, result.incomplete, result.any_three, result.band):
        assert array.shape == (0,)


def test_ten_thousand_beds_quickly() -> None:
    n = 10_000
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    result = news2(
        rr=rng.uniform(4, 40, n),
        spo2=rng.uniform(75, 100, n),
        o2=rng.integers(0, 2, n).astype(float),
        sbp=rng.uniform(60, 240, n),
        hr=rng.uniform(30, 160, n),
        acvpu=rng.integers(0, 5, n).astype(float),
        temp=rng.uniform(33, 41, n),
        scale2=rng.random(n) < 0.1,
        tables=TABLES,
    )
    assert time.perf_counter() - started < 1.0
    assert result.total.shape == (n,)
    assert not result.incomplete.any()


# --- bad inputs ------------------------------------------------------------------------------


def columns(n: int) -> dict[str, Any]:
    return {key: np.full(n, NORMAL[key]) for key in NORMAL if key != "scale2"} | {"scale2": np.zeros(n, bool)}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hr": np.full(3, 80.0)}, "hr has 3 values but rr has 2"),
        ({"temp": np.full((2, 1), 37.0)}, "temp must be a 1-D array"),
        ({"scale2": np.zeros(3, bool)}, "scale2 has shape"),
        ({"scale2": np.array([0.0, NAN])}, "scale2 must hold True/False"),
        ({"scale2": np.array([0, 2])}, "scale2 must hold True/False"),
        ({"scale2": np.array(["1", "2"])}, "scale2 must hold True/False"),
        ({"o2": np.array([0.0, 2.0])}, "o2 code 2.0"),
        ({"o2": np.array([0.5, 0.0])}, "o2 code 0.5"),
        ({"acvpu": np.array([5.0, 0.0])}, "acvpu code 5.0"),
        ({"acvpu": np.array([0.0, 1.5])}, "acvpu code 1.5"),
    ],
)
def test_bad_inputs_raise(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        news2(**(columns(2) | changes), tables=TABLES)


# --- property: vectorised == one bed at a time ------------------------------------------------


def reading(lo: int, hi: int, tenths: bool = False) -> st.SearchStrategy[float]:
    scale = 100 if tenths else 10
    return st.one_of(st.just(NAN), st.integers(lo * scale, hi * scale).map(lambda v: v / scale))


BED = st.fixed_dictionaries(
    {
        "rr": reading(0, 60),
        "spo2": reading(60, 100),
        "o2": st.sampled_from([NAN, AIR, OXYGEN]),
        "sbp": reading(40, 260),
        "hr": reading(20, 200),
        "acvpu": st.sampled_from([NAN, A, C, V, P, U]),
        "temp": reading(30, 43, tenths=True),
        "scale2": st.booleans(),
    }
)


@settings(max_examples=200, deadline=None)
@given(st.lists(BED, min_size=1, max_size=40))
def test_vectorised_equals_one_at_a_time(beds: list[dict[str, Any]]) -> None:
    together = score_beds(beds)
    for i, bed in enumerate(beds):
        alone = score_beds([bed])
        np.testing.assert_array_equal(together.subscores[i], alone.subscores[0])
        np.testing.assert_array_equal(together.total[i], alone.total[0])
        assert together.partial[i] == alone.partial[0]
        assert together.incomplete[i] == alone.incomplete[0]
        assert together.any_three[i] == alone.any_three[0]
        assert together.band[i] == alone.band[0]
        assert together.row(i) == alone.row(0)
    complete = ~together.incomplete
    assert ((together.total[complete] >= 0) & (together.total[complete] <= 20)).all()
    assert np.isnan(together.total[together.incomplete]).all()
    assert ((together.partial >= 0) & (together.partial <= 20)).all()
    np.testing.assert_array_equal(together.total[complete], together.partial[complete])
