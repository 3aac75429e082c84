"""Tests for alerts.mews against the MEWS table in shared/clinical/scores.md (Subbe 2001, our edges).

Every expected value was read off the table by hand; none is computed by the
code under test.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.mews import COMPONENTS, MewsResult, mews
from config_support import score_tables

NAN = math.nan
A, C, V, P, U = 0.0, 1.0, 2.0, 3.0, 4.0

#: a bed scoring 0 on every MEWS parameter
NORMAL: dict[str, float] = {"sbp": 120.0, "hr": 80.0, "rr": 12.0, "temp": 37.0, "acvpu": A}

TABLES = score_tables().mews  # the published MEWS (config/scores.yaml)


def score_beds(beds: list[dict[str, float]]) -> MewsResult:
    return mews(**{key: np.array([bed[key] for bed in beds], dtype=np.float64) for key in NORMAL}, tables=TABLES)


def score_one(**changes: float) -> MewsResult:
    return score_beds([NORMAL | changes])


def assert_only(result: MewsResult, component: str, expected: int) -> None:
    """``component`` scores ``expected``, every other sub-score 0, and the total follows."""
    for name, value in zip(COMPONENTS, result.subscores[0], strict=True):
        assert value == (expected if name == component else 0), f"{name}: got {value}"
    assert not result.incomplete[0]
    assert result.total[0] == expected
    assert result.partial[0] == expected


# --- every band edge, both sides, and rounding at the edges ------------------------------------

SBP_CASES = [
    (40, 3), (70, 3), (71, 2), (80, 2), (81, 1), (100, 1), (101, 0), (199, 0), (200, 2), (300, 2),
    # rounded half up to whole mmHg first
    (70.49, 3), (70.5, 2), (80.49, 2), (80.5, 1), (100.49, 1), (100.5, 0), (199.49, 0), (199.5, 2),
]  # fmt: skip


@pytest.mark.parametrize(("sbp", "expected"), SBP_CASES)
def test_sbp(sbp: float, expected: int) -> None:
    assert_only(score_one(sbp=sbp), "sbp", expected)


HR_CASES = [
    (20, 2), (40, 2), (41, 1), (50, 1), (51, 0), (100, 0), (101, 1), (110, 1), (111, 2), (129, 2), (130, 3),
    (200, 3),
    (40.49, 2), (40.5, 1), (50.49, 1), (50.5, 0), (100.49, 0), (100.5, 1), (110.49, 1), (110.5, 2),
    (129.49, 2), (129.5, 3),
]  # fmt: skip


@pytest.mark.parametrize(("hr", "expected"), HR_CASES)
def test_hr(hr: float, expected: int) -> None:
    assert_only(score_one(hr=hr), "hr", expected)


RR_CASES = [
    (0, 2), (8, 2), (9, 0), (14, 0), (15, 1), (20, 1), (21, 2), (29, 2), (30, 3), (60, 3),
    (8.49, 2), (8.5, 0), (14.49, 0), (14.5, 1), (20.49, 1), (20.5, 2), (29.49, 2), (29.5, 3),
]  # fmt: skip


@pytest.mark.parametrize(("rr", "expected"), RR_CASES)
def test_rr(rr: float, expected: int) -> None:
    assert_only(score_one(rr=rr), "rr", expected)


TEMP_CASES = [
    (30.0, 2), (34.9, 2), (35.0, 0), (38.4, 0), (38.5, 2), (42.0, 2),
    # rounded half up to 0.1 °C first: 34.95 is 35.0, 38.45 is 38.5
    (34.94, 2), (34.95, 0), (34.94999, 2), (38.44, 0), (38.44999, 0), (38.45, 2),
]  # fmt: skip


@pytest.mark.parametrize(("temp", "expected"), TEMP_CASES)
def test_temp(temp: float, expected: int) -> None:
    assert_only(score_one(temp=temp), "temp", expected)


@pytest.mark.parametrize(("acvpu", "expected"), [(A, 0), (C, 1), (V, 1), (P, 2), (U, 3)])
def test_avpu_with_c_scoring_like_v(acvpu: float, expected: int) -> None:
    assert_only(score_one(acvpu=acvpu), "avpu", expected)


# --- whole beds and the trigger ----------------------------------------------------------------

# sub-scores by hand, in COMPONENTS order (sbp, hr, rr, temp, avpu)
BED_CASES: list[tuple[dict[str, float], list[int], int, bool]] = [
    ({}, [0, 0, 0, 0, 0], 0, False),
    ({"rr": 16}, [0, 0, 1, 0, 0], 1, False),
    ({"sbp": 85, "hr": 120, "rr": 24, "temp": 38.6, "acvpu": V}, [1, 2, 2, 2, 1], 8, True),
    ({"sbp": 200, "hr": 40, "rr": 8, "temp": 34.9, "acvpu": U}, [2, 2, 2, 2, 3], 11, True),
    ({"sbp": 70, "hr": 130, "rr": 30, "temp": 34.9, "acvpu": U}, [3, 3, 3, 2, 3], 14, True),
    ({"sbp": 95, "hr": 105, "rr": 16, "acvpu": V}, [1, 1, 1, 0, 1], 4, False),  # one below the trigger
    ({"sbp": 95, "hr": 105, "rr": 16, "acvpu": P}, [1, 1, 1, 0, 2], 5, True),  # at the trigger
    ({"sbp": 75, "hr": 120}, [2, 2, 0, 0, 0], 4, False),
    ({"sbp": 75, "hr": 120, "temp": 34.5}, [2, 2, 0, 2, 0], 6, True),
]


@pytest.mark.parametrize(("changes", "subscores", "total", "triggered"), BED_CASES)
def test_whole_beds(changes: dict[str, float], subscores: list[int], total: int, triggered: bool) -> None:
    result = score_one(**changes)
    np.testing.assert_array_equal(result.subscores[0], subscores)
    assert result.total[0] == total
    assert result.partial[0] == total
    assert result.triggered[0] == triggered
    assert not result.incomplete[0]


def test_whole_beds_in_one_call() -> None:
    result = score_beds([NORMAL | changes for changes, *_ in BED_CASES])
    np.testing.assert_array_equal(result.total, [case[2] for case in BED_CASES])
    np.testing.assert_array_equal(result.triggered, [case[3] for case in BED_CASES])


# --- the incomplete rule, for each input -------------------------------------------------------

#: sub-scores sbp 1 (95), hr 1 (105), rr 1 (16), temp 2 (34.0), avpu 0 (A): total 5, just triggered
AT_TRIGGER: dict[str, float] = {"sbp": 95.0, "hr": 105.0, "rr": 16.0, "temp": 34.0, "acvpu": A}
#: sub-scores sbp 2 (75), hr 1 (105), rr 2 (25), temp 2 (39.0), avpu 1 (V): total 8
WELL_ABOVE: dict[str, float] = {"sbp": 75.0, "hr": 105.0, "rr": 25.0, "temp": 39.0, "acvpu": V}


@pytest.mark.parametrize(
    ("bed", "missing", "component", "partial", "triggered"),
    [
        # without the missing input the known part no longer proves the trigger
        (AT_TRIGGER, "sbp", "sbp", 4, False),
        (AT_TRIGGER, "hr", "hr", 4, False),
        (AT_TRIGGER, "rr", "rr", 4, False),
        (AT_TRIGGER, "temp", "temp", 3, False),
        # ...unless the missing input scored 0 anyway: the known part already reaches 5
        (AT_TRIGGER, "acvpu", "avpu", 5, True),
        # well above the trigger, whatever is missing
        (WELL_ABOVE, "sbp", "sbp", 6, True),
        (WELL_ABOVE, "hr", "hr", 7, True),
        (WELL_ABOVE, "rr", "rr", 6, True),
        (WELL_ABOVE, "temp", "temp", 6, True),
        (WELL_ABOVE, "acvpu", "avpu", 7, True),
    ],
)
def test_missing_each_input(bed: dict[str, float], missing: str, component: str, partial: int, triggered: bool) -> None:
    result = score_beds([bed | {missing: NAN}])
    assert result.incomplete[0]
    assert math.isnan(result.total[0])
    assert result.partial[0] == partial
    assert result.triggered[0] == triggered
    assert result.missing(0) == [component]
    row = result.row(0)
    assert row["total"] is None
    assert row["partial"] == partial
    assert row["subscores"][component] is None
    assert row["missing"] == [component]
    assert row["triggered"] is triggered


def test_complete_beds_of_the_incomplete_table() -> None:
    result = score_beds([AT_TRIGGER, WELL_ABOVE])
    np.testing.assert_array_equal(result.total, [5, 8])
    np.testing.assert_array_equal(result.triggered, [True, True])
    assert not result.incomplete.any()


def test_everything_missing() -> None:
    result = score_beds([{key: NAN for key in NORMAL}])
    assert result.partial[0] == 0
    assert math.isnan(result.total[0])
    assert not result.triggered[0]
    assert result.missing(0) == list(COMPONENTS)


# --- result shape and JSON rows ----------------------------------------------------------------


def test_result_types() -> None:
    result = score_beds([NORMAL, NORMAL | {"temp": NAN}])
    assert result.subscores.shape == (2, 5) and result.subscores.dtype == np.float64
    assert result.partial.dtype == np.int64
    assert result.total.dtype == np.float64
    assert result.incomplete.dtype == np.bool_
    assert result.triggered.dtype == np.bool_


def test_row_is_json_ready() -> None:
    result = score_beds(
        [
            NORMAL | {"sbp": 85, "hr": 120, "rr": 24, "temp": 38.6, "acvpu": V},
            NORMAL | {"sbp": 75, "hr": NAN, "temp": NAN},
        ]
    )
    assert result.row(0) == {
        "total": 8,
        "partial": 8,
        "subscores": {"sbp": 1, "hr": 2, "rr": 2, "temp": 2, "avpu": 1},
        "incomplete": False,
        "missing": [],
        "triggered": True,
    }
    assert result.row(1) == {
        "total": None,
        "partial": 2,
        "subscores": {"sbp": 2, "hr": None, "rr": 0, "temp": None, "avpu": 0},
        "incomplete": True,
        "missing": ["hr", "temp"],
        "triggered": False,
    }
    for i in range(2):
        row = result.row(i)
        assert json.loads(json.dumps(row)) == row
        assert all(type(v) is int or v is None for v in row["subscores"].values())


def test_no_beds() -> None:
    empty = np.array([], dtype=np.float64)
    result = mews(sbp=empty, hr=empty, rr=empty, temp=empty, acvpu=empty, tables=TABLES)
    assert result.subscores.shape == (0, 5)
    for array in (result.partial, result.total, result.incomplete, result.triggered):
        assert array.shape == (0,)


# --- bad inputs --------------------------------------------------------------------------------


def columns(n: int) -> dict[str, Any]:
    return {key: np.full(n, value) for key, value in NORMAL.items()}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hr": np.full(3, 80.0)}, "mews: hr has 3 values but sbp has 2"),
        ({"sbp": np.full(3, 120.0)}, "mews: hr has 2 values but sbp has 3"),
        ({"temp": np.full((2, 1), 37.0)}, r"mews: temp must be a 1-D array, got shape \(2, 1\)"),
        ({"sbp": np.float64(120.0)}, "mews: sbp must be a 1-D array"),
        ({"acvpu": np.array([5.0, 0.0])}, r"mews.avpu: acvpu code 5.0 is not one of \[0, 1, 2, 3, 4\]"),
        ({"acvpu": np.array([0.0, 1.5])}, "acvpu code 1.5"),
        ({"acvpu": np.array([0.0, -1.0])}, "acvpu code -1.0"),
    ],
)
def test_bad_inputs_raise(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mews(**(columns(2) | changes), tables=TABLES)


# --- property: vectorised == one bed at a time -------------------------------------------------


def reading(lo: int, hi: int, tenths: bool = False) -> st.SearchStrategy[float]:
    scale = 100 if tenths else 10
    return st.one_of(st.just(NAN), st.integers(lo * scale, hi * scale).map(lambda v: v / scale))


BED = st.fixed_dictionaries(
    {
        "sbp": reading(40, 260),
        "hr": reading(20, 200),
        "rr": reading(0, 60),
        "temp": reading(30, 43, tenths=True),
        "acvpu": st.sampled_from([NAN, A, C, V, P, U]),
    }
)


@settings(max_examples=150, deadline=None)
@given(st.lists(BED, min_size=1, max_size=40))
def test_vectorised_equals_one_at_a_time(beds: list[dict[str, float]]) -> None:
    together = score_beds(beds)
    for i, bed in enumerate(beds):
        alone = score_beds([bed])
        np.testing.assert_array_equal(together.subscores[i], alone.subscores[0])
        np.testing.assert_array_equal(together.total[i], alone.total[0])
        assert together.partial[i] == alone.partial[0]
        assert together.incomplete[i] == alone.incomplete[0]
        assert together.triggered[i] == alone.triggered[0]
        assert together.row(i) == alone.row(0)
    complete = ~together.incomplete
    assert ((together.partial >= 0) & (together.partial <= 14)).all()
    assert np.isnan(together.total[together.incomplete]).all()
    np.testing.assert_array_equal(together.total[complete], together.partial[complete])
    np.testing.assert_array_equal(together.triggered, together.partial >= 5)
