"""What every score result shares: per-bed sub-scores with NaN for missing, a partial sum and a total
that is NaN when incomplete, and the JSON-ready view of one bed. NEWS2, MEWS and qSOFA build on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


def missing_components(components: Sequence[str], subscores_row: npt.NDArray[np.float64]) -> list[str]:
    """Names of the components with no sub-score (NaN), in ``components`` order."""
    return [name for name, value in zip(components, subscores_row, strict=True) if np.isnan(value)]


def score_row(
    components: Sequence[str], subscores_row: npt.NDArray[np.float64], partial: int, total: float, incomplete: bool
) -> dict[str, Any]:
    """One bed as plain JSON values; ``total`` is None when incomplete, never the partial sum."""
    return {
        "total": None if np.isnan(total) else int(total),
        "partial": int(partial),
        "subscores": {name: None if np.isnan(v) else int(v) for name, v in zip(components, subscores_row, strict=True)},
        "incomplete": bool(incomplete),
        "missing": missing_components(components, subscores_row),
    }
