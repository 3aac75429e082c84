"""Band tables compiled into lookup arrays: banding a tick is one index per input and one take per table.

An input is rounded once (``alerts.rounding``) and turned into an index on its
``Grid``, which every table reading that input shares. On a dense grid the
index is the rounded value itself, clipped to the whole units from the grid's
``low`` (0, or the lowest bound of those tables when that is negative or far
from 0) to ``high``, one above the highest bound (a value beyond falls in the
first or last band of every table, as the clipped value does). Where bounds are
too far apart for a dense array the index is the cell between consecutive
bounds instead (``np.searchsorted``). Either way a last slot stands for a
missing value (NaN).

``GridRows`` indexes several inputs at once, row by row of one ``(inputs, beds)``
array: it clips the raw values to each grid first, so that rounding them is
exact and cheap (no sign to keep when no grid reaches below 0), and every step
is one pass over the whole array rather than one per input.

A table's lookup array holds its score at every index, computed once at load by
the table itself (``BandTable.score_units`` at a value of that index), so a
looked-up score is by construction the score the table gives. Category inputs
(ACVPU, air/oxygen) are indexed by ``CategoryTable.index`` in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from alerts.bands import MAX_BOUND_UNITS, BandTable
from alerts.rounding import SNAP_EXACT, round_half_up_scaled, round_units_in_place

#: a grid spanning more whole units than this indexes cells between bounds instead
DENSE_LIMIT = 4096

# clip bounds (a bound plus one) round exactly, so clipping before rounding changes no band
assert MAX_BOUND_UNITS + 1 < SNAP_EXACT


@dataclass(frozen=True, eq=False)
class Grid:
    """Indexes for one input's rounded values, shared by every table that bands that input."""

    precision: int
    edges: npt.NDArray[np.float64]  # every bound of those tables, in whole units, sorted, each once
    points: npt.NDArray[np.float64]  # a rounded value standing for each index but the missing slot
    dense: bool  # points are consecutive whole units: the index is the clipped value less ``low``
    low: float  # whole units at or below every bound (0 when they allow): lower values band as this
    high: float  # one unit above every bound: higher values band as this

    @classmethod
    def over(cls, tables: Sequence[BandTable]) -> Grid:
        """The grid for ``tables``, which must all band the same input (one precision)."""
        precisions = {table.precision for table in tables}
        if len(precisions) != 1:
            raise ValueError(f"tables {[t.name for t in tables]} of one input need one precision, not {sorted(precisions)}")
        precision = precisions.pop()
        edges = np.unique(np.concatenate([table.scaled_bounds for table in tables]))
        if not edges.size:  # open-ended tables only: one band
            return cls(precision, edges, np.zeros(1), dense=True, low=0.0, high=0.0)
        high = float(edges[-1] + 1.0)
        if edges[-1] - edges[0] < DENSE_LIMIT:
            low = 0.0 if 0.0 <= edges[0] and high < DENSE_LIMIT else float(edges[0])
            return cls(precision, edges, np.arange(low, high + 1.0), dense=True, low=low, high=high)
        # cell i holds the values above edges[i-1] and up to edges[i]; the last, those above every edge
        return cls(precision, edges, np.append(edges, high), dense=False, low=min(0.0, float(edges[0])), high=high)

    @property
    def missing(self) -> int:
        """The index of a missing value."""
        return len(self.points)

    def lookup(self, table: BandTable) -> npt.NDArray[np.float64]:
        """``table``'s score at every index of this grid, NaN at the missing slot."""
        if table.precision != self.precision:
            raise ValueError(f"{table.name}: precision {table.precision}, but the grid's is {self.precision}")
        return np.append(table.score_units(self.points), np.nan)

    def index(self, units: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        """Indexes of rounded values (``round_half_up_scaled`` at this grid's precision)."""
        missing = np.isnan(units)
        if self.dense:
            at = np.clip(units, self.low, self.high)  # NaN stays NaN
            at -= self.low
        else:
            at = np.searchsorted(self.edges, units, side="left").astype(np.float64)
        np.copyto(at, float(self.missing), where=missing)
        return at.astype(np.intp)


def _column(values: Sequence[float]) -> npt.NDArray[np.float64]:
    return np.array(values, dtype=np.float64).reshape(-1, 1)


@dataclass(frozen=True, eq=False)
class GridRows:
    """Several inputs indexed together: row ``i`` of an ``(inputs, beds)`` array of raw values on ``grids[i]``.

    Equal, row by row, to ``grids[i].index`` of the values rounded by ``round_half_up_scaled``: a value
    below ``low`` or above ``high`` rounds to a value at or beyond it, in the same band of every table."""

    grids: tuple[Grid, ...]
    _factors: tuple[tuple[int, float], ...] = field(init=False, repr=False)  # rows not in whole units, and their scale
    _low: npt.NDArray[np.float64] = field(init=False, repr=False)  # (inputs, 1) clip bounds in whole units
    _high: npt.NDArray[np.float64] = field(init=False, repr=False)
    _shift: npt.NDArray[np.float64] | None = field(init=False, repr=False)  # subtracted to make indexes; None if 0
    _missing: npt.NDArray[np.float64] = field(init=False, repr=False)  # each row's missing slot
    _signed: bool = field(init=False, repr=False)  # some grid reaches below 0: rounding keeps the sign
    _cells: tuple[int, ...] = field(init=False, repr=False)  # rows whose grid is not dense

    def __post_init__(self) -> None:
        grids = self.grids
        set_ = object.__setattr__
        set_(self, "_factors", tuple((i, float(10**g.precision)) for i, g in enumerate(grids) if g.precision))
        set_(self, "_low", _column([g.low for g in grids]))
        set_(self, "_high", _column([g.high for g in grids]))
        shift = _column([g.low if g.dense else 0.0 for g in grids])
        set_(self, "_shift", shift if shift.any() else None)
        set_(self, "_missing", _column([g.missing for g in grids]))
        set_(self, "_signed", bool((self._low < 0).any()))
        set_(self, "_cells", tuple(i for i, g in enumerate(grids) if not g.dense))

    def index(self, values: npt.NDArray[np.float64], out: npt.NDArray[np.intp]) -> None:
        """Write the index of every raw value of ``values`` (``(inputs, beds)``, NaN for missing) into
        ``out`` (same shape). ``values`` is overwritten: it is the caller's scratch buffer."""
        if self._factors:
            with np.errstate(over="ignore"):  # a huge value becomes infinite, and clips to the end all the same
                for row, factor in self._factors:
                    values[row] *= factor  # as round_half_up_scaled scales
        np.clip(values, self._low, self._high, out=values)  # NaN stays NaN, infinities go to the ends
        missing = np.isnan(values)
        round_units_in_place(values, signed=self._signed)
        for row in self._cells:
            values[row] = np.searchsorted(self.grids[row].edges, values[row], side="left")
        if self._shift is not None:
            values -= self._shift
        np.copyto(values, self._missing, where=missing)
        np.copyto(out, values, casting="unsafe")  # whole numbers: exact


def round_inputs(values: Mapping[str, npt.NDArray[np.float64]], precision: Mapping[str, int]) -> dict[str, npt.NDArray[np.float64]]:
    """Each of ``values`` rounded once, in whole units of its ``precision``: inputs of one precision in one call."""
    out: dict[str, npt.NDArray[np.float64]] = {}
    for decimals in sorted({precision[name] for name in values}):
        names = [name for name in values if precision[name] == decimals]
        units = round_half_up_scaled(np.stack([values[name] for name in names]), decimals)
        out.update(zip(names, units, strict=True))
    return out
