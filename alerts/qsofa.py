"""qSOFA for every bed at once (Singer et al., JAMA 2016, Sepsis-3; ``shared/clinical/scores.md``).

One point each for respiration rate >= 22/min, systolic BP <= 100 mmHg and
altered mentation (any ACVPU level other than Alert); a total of 2 or more is
positive. The thresholds, the levels counted as altered and the trigger are the
caller's tables (``alerts.score_tables``; the defaults are ``config/scores.yaml``).

Inputs are rounded like every other score's (scores.md: "Input precision"
applies to every score): RR and SBP are rounded half up to whole numbers
before the comparison, so RR 21.5 counts as 22 (a point) and SBP 100.5 as 101
(no point), exactly as a nurse charting whole numbers would score them.

Inputs are parallel 1-D float arrays, one element per bed, NaN when missing.
A missing input makes the total *incomplete*: the total is NaN, the partial
sum counts the known points, and the result is positive only when the known
points already reach the trigger (a missing criterion can only add a point).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from alerts.lookup import round_inputs
from alerts.score_result import ScoreResult, sum_known
from alerts.score_tables import PRECISION, QsofaTables

COMPONENTS: tuple[str, ...] = ("rr", "sbp", "mentation")


@dataclass(frozen=True)
class QsofaResult(ScoreResult):
    """Points (3 criteria, 0 or 1 each) and totals for ``n`` beds; row ``i`` is bed ``i`` of the inputs."""

    COMPONENTS: ClassVar[tuple[str, ...]] = COMPONENTS
    positive: npt.NDArray[np.bool_]  # (n,) the total (or already the known points) reaches the trigger

    def row(self, i: int) -> dict[str, Any]:
        return super().row(i) | {"positive": bool(self.positive[i])}


def qsofa(
    *,
    rr: npt.ArrayLike,
    sbp: npt.ArrayLike,
    acvpu: npt.ArrayLike,
    tables: QsofaTables,
) -> QsofaResult:
    """Score qSOFA for all beds. Each argument is a 1-D array of the same length.

    ``acvpu`` holds ``ACVPU`` codes (0..4 = A, C, V, P, U). ``tables`` are the
    qSOFA tables to score with.
    Raises ``ValueError`` for mismatched shapes or an ACVPU code outside 0..4.
    """
    given = {"rr": rr, "sbp": sbp, "acvpu": acvpu}
    inputs = {name: np.asarray(value, dtype=np.float64) for name, value in given.items()}
    n = len(inputs["rr"]) if inputs["rr"].ndim == 1 else -1
    for name, column in inputs.items():
        if column.ndim != 1:
            raise ValueError(f"qsofa: {name} must be a 1-D array, got shape {column.shape}")
        if len(column) != n:
            raise ValueError(f"qsofa: {name} has {len(column)} values but rr has {n}")
    acvpu_index = tables.mentation.index(inputs["acvpu"])
    units = round_inputs({name: inputs[name] for name in ("rr", "sbp")}, PRECISION)
    return qsofa_rounded(units, acvpu_index, tables)


def qsofa_rounded(units: Mapping[str, npt.NDArray[np.float64]], acvpu_index: npt.NDArray[np.intp], tables: QsofaTables) -> QsofaResult:
    """qSOFA from inputs already rounded once (``alerts.lookup.round_inputs``, whole units of ``PRECISION``)
    and ACVPU codes already indexed (``CategoryTable.index``): one take per criterion."""
    by_component = np.empty((len(COMPONENTS), len(acvpu_index)))  # one row per component: sums run along contiguous memory
    for row, key in enumerate(("rr", "sbp")):
        tables.lookups[key].take(tables.grids[key].index(units[key]), out=by_component[row], mode="clip")
    tables.mentation.lookup.take(acvpu_index, out=by_component[2], mode="clip")  # indexes are in range by construction
    partial, total, incomplete = sum_known(by_component)
    return QsofaResult(
        subscores=by_component.T,
        partial=partial,
        total=total,
        incomplete=incomplete,
        positive=positive(partial, tables),
    )


def positive(partial: npt.NDArray[np.int64], tables: QsofaTables) -> npt.NDArray[np.bool_]:
    """Whether each partial sum is positive: a missing criterion can only add a point."""
    return partial >= tables.trigger
