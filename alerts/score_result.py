"""What every score result shares: per-bed sub-scores with NaN for missing, a partial sum and a total
that is NaN when incomplete, and the JSON-ready view of one bed. NEWS2, MEWS and qSOFA build on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt


def missing_components(components: Sequence[str], subscores_row: npt.NDArray[np.float64]) -> list[str]:
    """Names of the components with no sub-score (NaN), in ``components`` order."""
    return [name for name, value in zip(components, subscores_row.tolist(), strict=True) if value != value]


def score_row(
    components: Sequence[str], subscores_row: npt.NDArray[np.float64], partial: int, total: float, incomplete: bool
) -> dict[str, Any]:
    """One bed as plain JSON values; ``total`` is None when incomplete, never the partial sum.

    Built from Python floats (one ``tolist``), not NumPy scalars one at a time: the console push builds
    three of these per changed bed, and at 2,000 beds element-wise NumPy was most of the push's cost."""
    values = subscores_row.tolist()  # NaN (missing) is the one value not equal to itself
    total = float(total)
    return {
        "total": None if total != total else int(total),
        "partial": int(partial),
        "subscores": {name: None if v != v else int(v) for name, v in zip(components, values, strict=True)},
        "incomplete": bool(incomplete),
        "missing": [name for name, v in zip(components, values, strict=True) if v != v],
    }


def sum_known(
    by_component: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """From sub-scores as a (components, beds) array with NaN for missing: the partial sum of the known
    sub-scores, the total (NaN when incomplete, never the partial sum) and whether each bed is incomplete."""
    missing = np.isnan(by_component)
    incomplete = missing.any(axis=0)
    partial = np.where(missing, 0.0, by_component).sum(axis=0).astype(np.int64)  # np.where: no masked assignments
    return partial, total_of(partial, incomplete), incomplete


def total_of(partial: npt.NDArray[np.int64], incomplete: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """The total: the partial sum where every sub-score is known, else NaN (never a total from missing inputs)."""
    return np.where(incomplete, np.nan, partial)


@dataclass(frozen=True)
class ScoreResult:
    """The arrays every score has for ``n`` beds (row ``i`` is bed ``i``); subclasses name their
    ``COMPONENTS`` and add their own verdict (band, trigger) to ``row``."""

    COMPONENTS: ClassVar[tuple[str, ...]]
    subscores: npt.NDArray[np.float64]  # (n, components), columns in COMPONENTS order, NaN = missing
    partial: npt.NDArray[np.int64]  # (n,) sum of the available sub-scores
    total: npt.NDArray[np.float64]  # (n,) the total, NaN when incomplete (never a partial sum)
    incomplete: npt.NDArray[np.bool_]  # (n,) some sub-score is missing

    def missing(self, i: int) -> list[str]:
        return missing_components(self.COMPONENTS, self.subscores[i])

    def row(self, i: int) -> dict[str, Any]:
        """Bed ``i`` as plain JSON-ready values; ``total`` is None when incomplete."""
        return score_row(self.COMPONENTS, self.subscores[i], self.partial[i], self.total[i], self.incomplete[i])
