"""MEWS for every bed at once (Subbe et al., QJM 2001, as in ``shared/clinical/scores.md``).

Inputs are parallel 1-D float arrays, one element per bed, with NaN for a
missing value: systolic BP, heart rate, respiration rate, temperature and the
ACVPU code (0..4 = A, C, V, P, U; MEWS scores AVPU, and "C", new confusion,
scores like Voice by default). Each number is rounded half up to the chart's
precision (temperature 0.1 °C, the rest whole numbers), then banded with the
caller's tables (``alerts.score_tables``; the defaults are ``config/scores.yaml``),
so a hospital's local MEWS variant is a change of data, not code.

A missing input gives a missing sub-score and an *incomplete* total: the total
is then NaN and only the partial sum of the known sub-scores is reported, with
the names of what is missing. MEWS triggers at a total of ``trigger`` (5 by
default); an incomplete score triggers only when its partial sum already
reaches the trigger, since the missing sub-scores can only add to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from alerts.lookup import round_inputs
from alerts.score_result import ScoreResult, sum_known
from alerts.score_tables import PRECISION, MewsTables

COMPONENTS: tuple[str, ...] = ("sbp", "hr", "rr", "temp", "avpu")


@dataclass(frozen=True)
class MewsResult(ScoreResult):
    """Sub-scores (5 columns) and totals for ``n`` beds; row ``i`` is bed ``i`` of the inputs."""

    COMPONENTS: ClassVar[tuple[str, ...]] = COMPONENTS
    triggered: npt.NDArray[np.bool_]  # (n,) the total (or already the partial sum) reaches the trigger

    def row(self, i: int) -> dict[str, Any]:
        return super().row(i) | {"triggered": bool(self.triggered[i])}


def mews(
    *,
    sbp: npt.ArrayLike,
    hr: npt.ArrayLike,
    rr: npt.ArrayLike,
    temp: npt.ArrayLike,
    acvpu: npt.ArrayLike,
    tables: MewsTables,
) -> MewsResult:
    """Score MEWS for all beds. Each argument is a 1-D array of the same length.

    ``tables`` are the MEWS tables to score with.
    Raises ``ValueError`` for mismatched shapes or an ACVPU code outside 0..4.
    """
    given = {"sbp": sbp, "hr": hr, "rr": rr, "temp": temp, "acvpu": acvpu}
    inputs = {name: np.asarray(value, dtype=np.float64) for name, value in given.items()}
    n = len(inputs["sbp"]) if inputs["sbp"].ndim == 1 else -1
    for name, column in inputs.items():
        if column.ndim != 1:
            raise ValueError(f"mews: {name} must be a 1-D array, got shape {column.shape}")
        if len(column) != n:
            raise ValueError(f"mews: {name} has {len(column)} values but sbp has {n}")
    acvpu_index = tables.avpu.index(inputs["acvpu"])
    units = round_inputs({name: inputs[name] for name in ("sbp", "hr", "rr", "temp")}, PRECISION)
    return mews_rounded(units, acvpu_index, tables)


def mews_rounded(units: Mapping[str, npt.NDArray[np.float64]], acvpu_index: npt.NDArray[np.intp], tables: MewsTables) -> MewsResult:
    """MEWS from inputs already rounded once (``alerts.lookup.round_inputs``, whole units of ``PRECISION``)
    and ACVPU codes already indexed (``CategoryTable.index``): one take per component."""
    by_component = np.empty((len(COMPONENTS), len(acvpu_index)))  # one row per component: sums run along contiguous memory
    for row, key in enumerate(("sbp", "hr", "rr", "temp")):
        tables.lookups[key].take(tables.grids[key].index(units[key]), out=by_component[row], mode="clip")
    tables.avpu.lookup.take(acvpu_index, out=by_component[4], mode="clip")  # indexes are in range by construction
    partial, total, incomplete = sum_known(by_component)
    return MewsResult(
        subscores=by_component.T,
        partial=partial,
        total=total,
        incomplete=incomplete,
        triggered=triggered(partial, tables),
    )


def triggered(partial: npt.NDArray[np.int64], tables: MewsTables) -> npt.NDArray[np.bool_]:
    """Whether each partial sum triggers: a missing sub-score can only add to it."""
    return partial >= tables.trigger
