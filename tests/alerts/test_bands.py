"""Tests for alerts.bands: BandTable construction, validation and vectorised scoring."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from alerts.bands import BandTable

# MEWS temperature as in scores.md: <=34.9 -> 2, 35.0-38.4 -> 0, >=38.5 -> 2
MEWS_TEMP_ROWS: list[dict[str, Any]] = [
    {"max": 34.9, "score": 2},
    {"min": 35.0, "max": 38.4, "score": 0},
    {"min": 38.5, "score": 2},
]


def make_rr() -> BandTable:
    return BandTable("rr", 0, (8, 11, 20, 24), (3, 1, 0, 2, 3))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 3), (8, 3), (8.49, 3), (8.5, 1), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)],
)
def test_score_edges(value: float, expected: int) -> None:
    assert make_rr().score(np.array([value]))[0] == expected


def test_score_vectorised_with_nan() -> None:
    out = make_rr().score(np.array([np.nan, 8.0, 25.0, np.nan, np.inf, -np.inf]))
    np.testing.assert_array_equal(out, [np.nan, 3.0, 3.0, np.nan, 3.0, 3.0])
    assert out.dtype == np.float64


def test_score_empty_and_2d() -> None:
    table = make_rr()
    assert table.score(np.array([])).shape == (0,)
    np.testing.assert_array_equal(table.score(np.array([[8, 9], [20, 21]])), [[3, 1], [0, 2]])


@pytest.mark.parametrize(
    ("value", "expected"),
    [(34.9, 2), (34.94, 2), (34.95, 0), (35.0, 0), (38.4, 0), (38.44, 0), (38.45, 2), (38.5, 2)],
)
def test_one_decimal_edges_are_exact(value: float, expected: int) -> None:
    table = BandTable.from_rows("MEWS temperature", 1, MEWS_TEMP_ROWS)
    assert table.score(np.array([value]))[0] == expected


def test_from_rows_equals_direct_construction() -> None:
    table = BandTable.from_rows("t", 1, MEWS_TEMP_ROWS)
    assert table == BandTable("t", 1, (34.9, 38.4), (2, 0, 2))
    assert table.bounds == (34.9, 38.4)
    assert table.scores == (2, 0, 2)


def test_from_rows_without_min() -> None:
    rows = [{"max": 8, "score": 3}, {"max": 11, "score": 1}, {"score": 0}]
    assert BandTable.from_rows("x", 0, rows) == BandTable("x", 0, (8, 11), (3, 1, 0))


def test_single_open_band() -> None:
    table = BandTable.from_rows("flat", 0, [{"score": 1}])
    np.testing.assert_array_equal(table.score(np.array([-5.0, 0.0, 1e9, np.nan])), [1, 1, 1, np.nan])


def test_frozen_and_hashable() -> None:
    table = make_rr()
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.precision = 1  # type: ignore[misc]
    assert hash(table) == hash(make_rr())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bounds": (8, 8, 20), "scores": (3, 1, 0, 2)}, "strictly increasing"),
        ({"bounds": (20, 8), "scores": (3, 1, 0)}, "strictly increasing"),
        ({"bounds": (8, 11), "scores": (3, 1)}, "need 3 scores"),
        ({"bounds": (8, 11), "scores": (3, 1, 0, 2)}, "need 3 scores"),
        ({"bounds": (8.5,), "scores": (1, 0)}, "finer than"),
        ({"bounds": (float("nan"),), "scores": (1, 0)}, "finite"),
        ({"bounds": (8,), "scores": (1.5, 0)}, "whole number"),
        ({"bounds": (8,), "scores": (True, 0)}, "whole number"),
        ({"bounds": ("8",), "scores": (1, 0)}, "must be a finite number"),
        ({"precision": -1}, "precision"),
        ({"precision": 7}, "precision"),
        ({"precision": 1.0}, "precision"),
    ],
)
def test_construction_is_validated(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name": "bad", "precision": 0, "bounds": (8,), "scores": (1, 0)} | kwargs
    with pytest.raises(ValueError, match=message):
        BandTable(**args)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "non-empty list"),
        ("max: 8", "non-empty list"),
        ([{"max": 34.9, "score": 2}, {"min": 35.1, "max": 38.4, "score": 0}, {"score": 2}], "gap"),
        ([{"max": 34.9, "score": 2}, {"min": 34.9, "max": 38.4, "score": 0}, {"score": 2}], "overlaps"),
        ([{"max": 34.9, "score": 2}, {"max": 38.4, "score": 0}, {"min": 38.6, "score": 2}], "gap"),
        ([{"max": 38.4, "score": 2}, {"max": 34.9, "score": 0}, {"score": 2}], "not above"),
        ([{"max": 34.9, "score": 2}, {"max": 34.9, "score": 0}, {"score": 2}], "not above"),
        ([{"max": 34.9, "score": 2}, {"score": 0}, {"score": 2}], "has no 'max'"),
        ([{"max": 34.9, "score": 2}, {"max": 38.4, "score": 0}], "must not have 'max'"),
        ([{"max": 34.9}, {"score": 0}], "has no 'score'"),
        ([{"max": 34.9, "score": 2, "colour": "red"}, {"score": 0}], "unknown keys"),
        ([{"min": 30.0, "max": 34.9, "score": 2}, {"score": 0}], "first row"),
        ([{"max": 34.95, "score": 2}, {"score": 0}], "finer than"),
        ([{"max": 34.9, "score": 2}, {"min": 34.95, "score": 0}], "finer than"),
        ([{"max": "34.9", "score": 2}, {"score": 0}], "finite number"),
        ([{"max": 34.9, "score": "2"}, {"score": 0}], "whole number"),
        ([[34.9, 2], {"score": 0}], "mapping"),
    ],
)
def test_from_rows_is_validated(rows: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BandTable.from_rows("MEWS temperature", 1, rows)


def test_from_rows_error_names_table_and_row() -> None:
    rows: list[dict[str, float]] = [{"max": 34.9, "score": 2}, {"min": 35.1, "max": 38.4, "score": 0}, {"score": 2}]
    with pytest.raises(ValueError, match=r"^MEWS temperature: row 2: gap between previous max 34.9 and min 35.1$"):
        BandTable.from_rows("MEWS temperature", 1, rows)
