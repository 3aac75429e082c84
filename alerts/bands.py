"""Score tables with cumulative inclusive upper bounds, applied to whole arrays.

A ``BandTable`` maps a value to the score of its band. Bands are given by
their inclusive upper bounds in increasing order; the last band is open-ended.
Values are first rounded half up to the table's precision (see
``alerts.rounding``) and then compared with the bounds in scaled whole units
(temperature in tenths, rates in whole numbers), so no value can fall between
two bands and edges are exact.

Tables can be written as rows, e.g. in YAML configuration::

    - {max: 8, score: 3}
    - {min: 9, max: 11, score: 1}
    - {score: 0}

Every row but the last needs ``max``; the last row must not have one. ``min``
is optional and, when given, must be exactly one step (``10**-precision``)
above the previous row's ``max``: anything else is a gap or an overlap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.rounding import round_half_up_scaled

#: the finest precision a table may use (decimal places)
MAX_PRECISION = 6

#: the largest magnitude of a bound, in whole units of the precision: far beyond any chart, and small
#: enough that a value clipped just past a bound rounds exactly (``alerts.rounding.SNAP_EXACT``)
MAX_BOUND_UNITS = 10**9

_ROW_KEYS = frozenset({"min", "max", "score"})

# Every problem with a table, including a value of the wrong type, raises
# ValueError, so that a configuration loader has one exception to report.


@dataclass(frozen=True)
class BandTable:
    """Scores for bands bounded above by ``bounds`` (inclusive), last band open-ended.

    ``scores[i]`` applies to values ``<= bounds[i]`` (and above ``bounds[i-1]``);
    ``scores[-1]`` applies to values above ``bounds[-1]``.
    """

    name: str
    precision: int
    bounds: tuple[float, ...]
    scores: tuple[int, ...]
    _scaled_bounds: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)
    _score_values: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_precision(self.name, self.precision)
        bounds = tuple(_as_real(self.name, "bound", b) for b in self.bounds)
        scores = tuple(_as_int(self.name, s) for s in self.scores)
        if len(scores) != len(bounds) + 1:
            raise ValueError(
                f"{self.name}: {len(bounds)} bounds need {len(bounds) + 1} scores "
                f"(the last band is open-ended), got {len(scores)}"
            )
        scaled = np.array([_grid_units(self.name, "bound", b, self.precision) for b in bounds])
        for i in range(1, len(bounds)):
            if not bounds[i] > bounds[i - 1]:
                raise ValueError(
                    f"{self.name}: bounds must be strictly increasing, but {bounds[i]} follows {bounds[i - 1]}"
                )
        object.__setattr__(self, "bounds", bounds)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "_scaled_bounds", scaled)
        object.__setattr__(self, "_score_values", np.array(scores, dtype=np.float64))

    @classmethod
    def from_rows(cls, name: str, precision: int, rows: Sequence[Mapping[str, Any]]) -> BandTable:
        """Build a table from ``{max, score}`` rows ending in an open ``{score}`` row.

        Raises ``ValueError`` naming the table and row for a missing or extra
        ``max``, unknown keys, non-increasing edges, and gaps or overlaps
        between a row's ``min`` and the previous row's ``max``.
        """
        if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or not rows:
            raise ValueError(f"{name}: rows must be a non-empty list")
        _check_precision(name, precision)
        bounds: list[float] = []
        scores: list[int] = []
        last = len(rows) - 1
        for i, row in enumerate(rows):
            where = f"{name}: row {i + 1}"
            if not isinstance(row, Mapping):
                raise ValueError(f"{where}: must be a mapping with 'max' and 'score', not {row!r}")  # noqa: TRY004
            unknown = set(row) - _ROW_KEYS
            if unknown:
                raise ValueError(f"{where}: unknown keys {sorted(map(str, unknown))}; use min, max, score")
            if "score" not in row:
                raise ValueError(f"{where}: has no 'score'")
            scores.append(_as_int(where, row["score"]))
            if i < last:
                if "max" not in row:
                    raise ValueError(f"{where}: has no 'max'; only the last row is open-ended")
                upper = _as_real(where, "max", row["max"])
                _grid_units(where, "max", upper, precision)
                if bounds and not upper > bounds[-1]:
                    raise ValueError(f"{where}: max {upper} is not above the previous max {bounds[-1]}")
                bounds.append(upper)
            elif "max" in row:
                raise ValueError(f"{where}: the last row is open-ended and must not have 'max'")
            if "min" in row:
                if i == 0:
                    raise ValueError(f"{where}: the first row is open below and must not have 'min'")
                lower = _as_real(where, "min", row["min"])
                lower_units = _grid_units(where, "min", lower, precision)
                prev_units = _grid_units(where, "previous max", bounds[i - 1], precision)
                if lower_units > prev_units + 1:
                    raise ValueError(f"{where}: gap between previous max {bounds[i - 1]} and min {lower}")
                if lower_units < prev_units + 1:
                    raise ValueError(f"{where}: min {lower} overlaps the previous row (max {bounds[i - 1]})")
        return cls(name=name, precision=precision, bounds=tuple(bounds), scores=tuple(scores))

    @property
    def scaled_bounds(self) -> npt.NDArray[np.float64]:
        """The bounds in whole units of the precision (e.g. temperature in tenths)."""
        return self._scaled_bounds

    def score(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Score every value: float array of the same shape, NaN where the value is NaN."""
        return self.score_units(round_half_up_scaled(values, self.precision))

    def score_units(self, units: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Score values already rounded to whole units of the precision (``round_half_up_scaled``);
        ``alerts.lookup`` tabulates a table with this once, at load."""
        # Count the bounds each value exceeds: with a handful of bounds, a few vectorised
        # comparisons are several times cheaper than np.searchsorted. NaN exceeds none.
        index = np.zeros(units.shape, dtype=np.intp)
        for bound in self._scaled_bounds:
            index += units > bound
        out = self._score_values[index]  # fancy indexing: a new float64 array
        out[np.isnan(units)] = np.nan
        return out


def _check_precision(name: str, precision: object) -> None:
    if isinstance(precision, bool) or not isinstance(precision, int):
        raise ValueError(f"{name}: precision must be an int, not {precision!r}")  # noqa: TRY004
    if not 0 <= precision <= MAX_PRECISION:
        raise ValueError(f"{name}: precision must be 0..{MAX_PRECISION}, not {precision}")


def _as_real(where: str, what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(float(value)):
        raise ValueError(f"{where}: {what} must be a finite number, not {value!r}")
    return float(value)


def _grid_units(where: str, what: str, value: float, precision: int) -> float:
    """``value`` in whole units of ``10**-precision``; refuses a value between grid points."""
    units = float(round_half_up_scaled(value, precision))
    if abs(value * 10.0**precision - units) > 1e-6:
        raise ValueError(f"{where}: {what} {value} is finer than the precision ({precision} decimals)")
    if abs(units) > MAX_BOUND_UNITS:
        raise ValueError(f"{where}: {what} {value} is beyond ±{MAX_BOUND_UNITS:.0e} units of the precision ({precision} decimals)")
    return units


def _as_int(where: str, value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{where}: score must be a whole number, not {value!r}")  # noqa: TRY004
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real) and float(value).is_integer():
        return int(float(value))
    raise ValueError(f"{where}: score must be a whole number, not {value!r}")
