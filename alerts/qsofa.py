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

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from alerts.score_result import ScoreResult
from alerts.score_tables import QsofaTables

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
    by_component = np.stack(
        [tables.rr.score(inputs["rr"]), tables.sbp.score(inputs["sbp"]), tables.mentation.score(inputs["acvpu"])]
    ).reshape(len(COMPONENTS), n)  # one row per component: sums run along contiguous memory
    missing = np.isnan(by_component)
    partial = np.where(missing, 0.0, by_component).sum(axis=0).astype(np.int64)
    incomplete = missing.any(axis=0)
    return QsofaResult(
        subscores=by_component.T,
        partial=partial,
        total=np.where(incomplete, np.nan, partial.astype(np.float64)),
        incomplete=incomplete,
        positive=partial >= tables.trigger,
    )
