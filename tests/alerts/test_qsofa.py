"""Tests for alerts.qsofa against Sepsis-3 qSOFA as in shared/clinical/scores.md.

RR >= 22, SBP <= 100 and any ACVPU level other than A score a point each;
2 or more is positive. Inputs are rounded half up to whole numbers first.
Expected values are worked by hand.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.qsofa import COMPONENTS, QsofaResult, qsofa
from config_support import score_tables

NAN = math.nan
A, C, V, P, U = 0.0, 1.0, 2.0, 3.0, 4.0

#: a bed scoring no qSOFA point
NORMAL: dict[str, float] = {"rr": 16.0, "sbp": 120.0, "acvpu": A}

TABLES = score_tables().qsofa  # the published qSOFA (config/scores.yaml)


def score_beds(beds: list[dict[str, float]]) -> QsofaResult:
    return qsofa(**{key: np.array([bed[key] for bed in beds], dtype=np.float64) for key in NORMAL}, tables=TABLES)


def score_one(**changes: float) -> QsofaResult:
    return score_beds([NORMAL | changes])


def assert_only(result: QsofaResult, component: str, expected: int) -> None:
    for name, value in zip(COMPONENTS, result.subscores[0], strict=True):
        assert value == (expected if name == component else 0), f"{name}: got {value}"
    assert not result.incomplete[0]
    assert result.total[0] == expected
    assert not result.positive[0]  # one point alone is never positive


# --- edges, both sides, and rounding at the edges ----------------------------------------------

RR_CASES = [
    (0, 0), (21, 0), (22, 1), (60, 1),
    # rounded half up first: 21.5 is charted as 22
    (21.49, 0), (21.49999, 0), (21.5, 1),
]  # fmt: skip


@pytest.mark.parametrize(("rr", "expected"), RR_CASES)
def test_rr(rr: float, expected: int) -> None:
    assert_only(score_one(rr=rr), "rr", expected)


SBP_CASES = [
    (40, 1), (100, 1), (101, 0), (250, 0),
    # rounded half up first: 100.5 is charted as 101
    (100.49, 1), (100.5, 0),
]  # fmt: skip


@pytest.mark.parametrize(("sbp", "expected"), SBP_CASES)
def test_sbp(sbp: float, expected: int) -> None:
    assert_only(score_one(sbp=sbp), "sbp", expected)


@pytest.mark.parametrize(("acvpu", "expected"), [(A, 0), (C, 1), (V, 1), (P, 1), (U, 1)])
def test_mentation(acvpu: float, expected: int) -> None:
    assert_only(score_one(acvpu=acvpu), "mentation", expected)


# --- totals and positive -----------------------------------------------------------------------

TOTAL_CASES: list[tuple[dict[str, float], list[int], int, bool]] = [
    ({}, [0, 0, 0], 0, False),
    ({"rr": 22}, [1, 0, 0], 1, False),
    ({"rr": 22, "sbp": 100}, [1, 1, 0], 2, True),
    ({"rr": 22, "acvpu": V}, [1, 0, 1], 2, True),
    ({"sbp": 100, "acvpu": C}, [0, 1, 1], 2, True),
    ({"rr": 30, "sbp": 80, "acvpu": U}, [1, 1, 1], 3, True),
    ({"rr": 21, "sbp": 101, "acvpu": A}, [0, 0, 0], 0, False),
    ({"rr": 21.5, "sbp": 100.5}, [1, 0, 0], 1, False),
    ({"rr": 21.5, "sbp": 100.49}, [1, 1, 0], 2, True),
]


@pytest.mark.parametrize(("changes", "subscores", "total", "positive"), TOTAL_CASES)
def test_totals(changes: dict[str, float], subscores: list[int], total: int, positive: bool) -> None:
    result = score_one(**changes)
    np.testing.assert_array_equal(result.subscores[0], subscores)
    assert result.total[0] == total
    assert result.partial[0] == total
    assert result.positive[0] == positive
    assert not result.incomplete[0]


def test_totals_in_one_call() -> None:
    result = score_beds([NORMAL | changes for changes, *_ in TOTAL_CASES])
    np.testing.assert_array_equal(result.total, [case[2] for case in TOTAL_CASES])
    np.testing.assert_array_equal(result.positive, [case[3] for case in TOTAL_CASES])


# --- the incomplete rule, for each input -------------------------------------------------------


@pytest.mark.parametrize(
    ("bed", "component", "partial", "positive"),
    [
        # the two known criteria already make it positive
        ({"rr": NAN, "sbp": 100, "acvpu": V}, "rr", 2, True),
        ({"rr": 22, "sbp": NAN, "acvpu": P}, "sbp", 2, True),
        ({"rr": 22, "sbp": 95, "acvpu": NAN}, "mentation", 2, True),
        # one known point: the missing criterion could make it positive, so it is not shown as positive
        ({"rr": NAN, "sbp": 100, "acvpu": A}, "rr", 1, False),
        ({"rr": 16, "sbp": NAN, "acvpu": U}, "sbp", 1, False),
        ({"rr": 22, "sbp": 120, "acvpu": NAN}, "mentation", 1, False),
        ({"rr": NAN, "sbp": 120, "acvpu": A}, "rr", 0, False),
    ],
)
def test_missing_each_input(bed: dict[str, float], component: str, partial: int, positive: bool) -> None:
    result = score_beds([bed])
    assert result.incomplete[0]
    assert math.isnan(result.total[0])
    assert result.partial[0] == partial
    assert result.positive[0] == positive
    assert result.missing(0) == [component]
    row = result.row(0)
    assert row["total"] is None
    assert row["subscores"][component] is None
    assert row["positive"] is positive


def test_two_missing() -> None:
    result = score_one(rr=NAN, acvpu=NAN, sbp=90)
    assert result.partial[0] == 1
    assert not result.positive[0]
    assert result.missing(0) == ["rr", "mentation"]


def test_everything_missing() -> None:
    result = score_beds([{key: NAN for key in NORMAL}])
    assert result.partial[0] == 0
    assert math.isnan(result.total[0])
    assert not result.positive[0]
    assert result.missing(0) == ["rr", "sbp", "mentation"]


# --- result shape and JSON rows ----------------------------------------------------------------


def test_result_types() -> None:
    result = score_beds([NORMAL, NORMAL | {"rr": NAN}])
    assert result.subscores.shape == (2, 3) and result.subscores.dtype == np.float64
    assert result.partial.dtype == np.int64
    assert result.total.dtype == np.float64
    assert result.incomplete.dtype == np.bool_
    assert result.positive.dtype == np.bool_


def test_row_is_json_ready() -> None:
    result = score_beds([{"rr": 24, "sbp": 95, "acvpu": A}, {"rr": 24, "sbp": NAN, "acvpu": C}])
    assert result.row(0) == {
        "total": 2,
        "partial": 2,
        "subscores": {"rr": 1, "sbp": 1, "mentation": 0},
        "incomplete": False,
        "missing": [],
        "positive": True,
    }
    assert result.row(1) == {
        "total": None,
        "partial": 2,
        "subscores": {"rr": 1, "sbp": None, "mentation": 1},
        "incomplete": True,
        "missing": ["sbp"],
        "positive": True,
    }
    for i in range(2):
        row = result.row(i)
        assert json.loads(json.dumps(row)) == row


def test_no_beds() -> None:
    empty = np.array([], dtype=np.float64)
    result = qsofa(rr=empty, sbp=empty, acvpu=empty, tables=TABLES)
    assert result.subscores.shape == (0, 3)
    for array in (result.partial, result.total, result.incomplete, result.positive):
        assert array.shape == (0,)


# --- bad inputs --------------------------------------------------------------------------------


def columns(n: int) -> dict[str, Any]:
    return {key: np.full(n, value) for key, value in NORMAL.items()}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sbp": np.full(3, 120.0)}, "qsofa: sbp has 3 values but rr has 2"),
        ({"rr": np.full((2, 2), 16.0)}, "qsofa: rr must be a 1-D array"),
        ({"acvpu": np.array([0.0, 7.0])}, r"qsofa.altered_mentation: acvpu code 7.0 is not one of \[0, 1, 2, 3, 4\]"),
        ({"acvpu": np.array([np.inf, 0.0])}, "acvpu code inf"),
    ],
)
def test_bad_inputs_raise(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        qsofa(**(columns(2) | changes), tables=TABLES)


# --- property: vectorised == one bed at a time -------------------------------------------------


def reading(lo: int, hi: int) -> st.SearchStrategy[float]:
    return st.one_of(st.just(NAN), st.integers(lo * 10, hi * 10).map(lambda v: v / 10))


BED = st.fixed_dictionaries(
    {"rr": reading(0, 60), "sbp": reading(40, 260), "acvpu": st.sampled_from([NAN, A, C, V, P, U])}
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
        assert together.positive[i] == alone.positive[0]
        assert together.row(i) == alone.row(0)
    assert ((together.partial >= 0) & (together.partial <= 3)).all()
    assert np.isnan(together.total[together.incomplete]).all()
    np.testing.assert_array_equal(together.positive, together.partial >= 2)
