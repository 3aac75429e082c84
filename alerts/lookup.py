"""Band tables compiled into lookup arrays: banding a tick is one index per input and one take per table.

An input is rounded once (``alerts.rounding``) and turned into an index on its
``Grid``, which every table reading that input shares. On a dense grid the
index is the rounded value itself, clipped to the whole units from the lowest
bound of those tables to one above the highest (a value beyond falls in the
first or last band of every table, as the clipped value does). Where bounds are
too far apart for a dense array the index is the cell between consecutive
bounds instead (``np.searchsorted``). Either way a last slot stands for a
missing value (NaN).

A table's lookup array holds its score at every index, computed once at load by
the table itself (``BandTable.score_units`` at a value of that index), so a
looked-up score is by construction the score the table gives. Category inputs
(ACVPU, air/oxygen) are indexed by ``CategoryTable.index`` in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.bands import BandTable
from alerts.rounding import round_half_up_scaled

#: a grid spanning more whole units than this indexes cells between bounds instead
DENSE_LIMIT = 4096


@dataclass(frozen=True, eq=False)
class Grid:
    """Indexes for one input's rounded values, shared by every table that bands that input."""

    precision: int
    edges: npt.NDArray[np.float64]  # every bound of those tables, in whole units, sorted, each once
    points: npt.NDArray[np.float64]  # a rounded value standing for each index but the missing slot
    dense: bool  # points are consecutive whole units: the index is the clipped value

    @classmethod
    def over(cls, tables: Sequence[BandTable]) -> Grid:
        """The grid for ``tables``, which must all band the same input (one precision)."""
        precisions = {table.precision for table in tables}
        if len(precisions) != 1:
            raise ValueError(f"tables {[t.name for t in tables]} of one input need one precision, not {sorted(precisions)}")
        edges = np.unique(np.concatenate([table.scaled_bounds for table in tables]))
        if not edges.size:  # open-ended tables only: one band
            return cls(precisions.pop(), edges, np.zeros(1), dense=True)
        if edges[-1] - edges[0] < DENSE_LIMIT:
            return cls(precisions.pop(), edges, np.arange(edges[0], edges[-1] + 2.0), dense=True)
        # cell i holds the values above edges[i-1] and up to edges[i]; the last, those above every edge
        return cls(precisions.pop(), edges, np.append(edges, edges[-1] + 1.0), dense=False)

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
            lowest = self.points[0]
            at = np.clip(units, lowest, self.points[-1])  # NaN stays NaN
            at -= lowest
        else:
            at = np.searchsorted(self.edges, units, side="left").astype(np.float64)
        np.copyto(at, float(self.missing), where=missing)
        return at.astype(np.intp)


def round_inputs(values: Mapping[str, npt.NDArray[np.float64]], precision: Mapping[str, int]) -> dict[str, npt.NDArray[np.float64]]:
    """Each of ``values`` rounded once, in whole units of its ``precision``: inputs of one precision in one call."""
    out: dict[str, npt.NDArray[np.float64]] = {}
    for decimals in sorted({precision[name] for name in values}):
        names = [name for name in values if precision[name] == decimals]
        units = round_half_up_scaled(np.stack([values[name] for name in names]), decimals)
        out.update(zip(names, units, strict=True))
    return out
