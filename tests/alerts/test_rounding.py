"""Tests for alerts.rounding: decimal-style half-up rounding, never half-to-even."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.rounding import round_half_up, round_half_up_scaled

CASES: list[tuple[float, int, float]] = [
    # (value, decimals, expected) worked out by hand
    (35.05, 1, 35.1),  # 35.05 is stored as 35.0499999...; still a tie
    (0.5, 0, 1.0),
    (1.5, 0, 2.0),
    (2.5, 0, 3.0),  # half-to-even would give 2
    (90.5, 0, 91.0),
    (8.5, 0, 9.0),
    (36.04999, 1, 36.0),
    (0.49999, 0, 0.0),
    (38.04, 1, 38.0),
    (38.05, 1, 38.1),
    (36.05, 1, 36.1),
    (39.05, 1, 39.1),
    (1.005, 2, 1.01),  # stored as 1.00499999...
    (2.675, 2, 2.68),  # stored as 2.67499999...
    (0.285, 2, 0.29),
    (4.015, 2, 4.02),
    (0.0, 0, 0.0),
    (37.0, 1, 37.0),
    (219.4, 0, 219.0),
    (219.5, 0, 220.0),
    (125.0, -1, 130.0),
    (124.9, -1, 120.0),
    # negatives: half away from zero, symmetric with the positives
    (-0.5, 0, -1.0),
    (-2.5, 0, -3.0),
    (-35.05, 1, -35.1),
    (-36.04999, 1, -36.0),
    (-0.4, 0, 0.0),
    (1e20, 0, 1e20),
    (-1e300, 1, -1e300),
]


@pytest.mark.parametrize(("value", "decimals", "expected"), CASES)
def test_round_half_up_table(value: float, decimals: int, expected: float) -> None:
    assert round_half_up(np.array([value]), decimals)[0] == expected


def test_vectorised_and_nan_preserving() -> None:
    values = np.array([35.05, np.nan, 0.5, 90.5, np.inf, -np.inf])
    out = round_half_up(values, 0)
    np.testing.assert_array_equal(out, [35.0, np.nan, 1.0, 91.0, np.inf, -np.inf])
    assert out.dtype == np.float64


def test_shape_is_kept() -> None:
    values = np.array([[0.5, 1.5], [2.5, np.nan]])
    np.testing.assert_array_equal(round_half_up(values, 0), [[1.0, 2.0], [3.0, np.nan]])
    assert round_half_up(np.array([]), 1).shape == (0,)


def test_no_negative_zero() -> None:
    out = round_half_up(np.array([-0.4, -0.04]), 1)
    assert math.copysign(1.0, out[0]) == -1.0  # -0.4 stays -0.4
    assert math.copysign(1.0, out[1]) == 1.0  # -0.04 -> 0.0, not -0.0


def test_scaled_gives_whole_units() -> None:
    units = round_half_up_scaled(np.array([35.05, 36.04999, 38.05, np.nan]), 1)
    np.testing.assert_array_equal(units, [351.0, 360.0, 381.0, np.nan])


def test_scalar_input() -> None:
    assert float(round_half_up(2.5, 0)) == 3.0


@pytest.mark.parametrize("decimals", [1.0, True, "1"])
def test_decimals_must_be_int(decimals: object) -> None:
    with pytest.raises(TypeError):
        round_half_up(np.array([1.0]), decimals)  # type: ignore[arg-type]


@given(
    mantissa=st.integers(min_value=-(10**8), max_value=10**8),
    places=st.integers(min_value=0, max_value=4),
    decimals=st.integers(min_value=0, max_value=3),
)
def test_agrees_with_decimal_module(mantissa: int, places: int, decimals: int) -> None:
    """Any value written with few decimals rounds like Decimal ROUND_HALF_UP."""
    written = Decimal(mantissa).scaleb(-places)
    expected = float(written.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))
    assert round_half_up(np.array([float(written)]), decimals)[0] == expected
