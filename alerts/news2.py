"""NEWS2 for every bed at once (RCP 2017, Chart 1, as in ``shared/clinical/scores.md``).

Inputs are parallel 1-D float arrays, one element per bed, with NaN for a
missing value. Each input is rounded half up to the chart's precision, banded,
and the seven sub-scores are summed. A missing input gives a missing sub-score
and an *incomplete* total: the total is then NaN and only the partial sum of
the known sub-scores is reported, together with the names of what is missing.

The band tables, the category scores and the totals where medium and high risk
start are the caller's ``tables=`` (``alerts.score_tables``; the defaults are
``config/scores.yaml``, loaded by the command line, never at import).

The clinical-risk band of a complete total is low (below medium), low-medium
(below medium with some single sub-score of 3), medium (5-6 by default) or high
(7+). For an incomplete total the band is the lowest band the known sub-scores
already prove, or unknown when they prove nothing beyond low.

On SpO2 scale 2 the sub-score depends on air or oxygen; when ``o2`` is missing
it is still known wherever the air and oxygen tables agree (below 93 on the
RCP chart), and missing elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from alerts.lookup import round_inputs
from alerts.score_result import ScoreResult, sum_known
from alerts.score_tables import PRECISION, News2Tables

COMPONENTS: tuple[str, ...] = ("rr", "spo2", "o2", "sbp", "hr", "acvpu", "temp")
BAND_LABELS: dict[int, str] = {-1: "unknown", 0: "low", 1: "low-medium", 2: "medium", 3: "high"}

#: a single sub-score of this (the chart's highest) makes the risk at least low-medium
SINGLE_PARAMETER = 3

_BAND_UNKNOWN, _BAND_LOW, _BAND_LOW_MEDIUM, _BAND_MEDIUM, _BAND_HIGH = -1, 0, 1, 2, 3


@dataclass(frozen=True)
class News2Result(ScoreResult):
    """Sub-scores (7 columns), totals and bands for ``n`` beds; row ``i`` is bed ``i`` of the inputs."""

    COMPONENTS: ClassVar[tuple[str, ...]] = COMPONENTS
    any_three: npt.NDArray[np.bool_]  # (n,) some single available sub-score is 3
    band: npt.NDArray[np.int8]  # (n,) codes of BAND_LABELS

    def row(self, i: int) -> dict[str, Any]:
        return super().row(i) | {"band": BAND_LABELS[int(self.band[i])], "any_three": bool(self.any_three[i])}


def news2(
    *,
    rr: npt.ArrayLike,
    spo2: npt.ArrayLike,
    o2: npt.ArrayLike,
    sbp: npt.ArrayLike,
    hr: npt.ArrayLike,
    acvpu: npt.ArrayLike,
    temp: npt.ArrayLike,
    scale2: npt.ArrayLike,
    tables: News2Tables,
) -> News2Result:
    """Score NEWS2 for all beds. Each argument is a 1-D array of the same length.

    ``o2`` holds ``O2`` codes (0 air, 1 oxygen), ``acvpu`` holds ``ACVPU`` codes
    (0..4 = A, C, V, P, U), both NaN when missing; ``scale2`` is a bool array,
    True where a clinician has chosen SpO2 scale 2 for that bed. ``tables``
    are the NEWS2 tables to score with.
    Raises ``ValueError`` for mismatched shapes or an invalid category code.
    """
    given = {"rr": rr, "spo2": spo2, "o2": o2, "sbp": sbp, "hr": hr, "acvpu": acvpu, "temp": temp}
    inputs = {name: _column(name, value) for name, value in given.items()}
    n = len(inputs["rr"])
    for name, column in inputs.items():
        if len(column) != n:
            raise ValueError(f"news2: {name} has {len(column)} values but rr has {n}")
    on_scale2 = _flags("scale2", scale2, n)
    o2_index = tables.o2.index(inputs["o2"])  # validates the codes
    acvpu_index = tables.acvpu.index(inputs["acvpu"])
    units = round_inputs({name: inputs[name] for name in PRECISION}, PRECISION)
    return news2_rounded(units, o2_index, acvpu_index, on_scale2, tables)


def news2_rounded(
    units: Mapping[str, npt.NDArray[np.float64]],
    o2_index: npt.NDArray[np.intp],
    acvpu_index: npt.NDArray[np.intp],
    scale2: npt.NDArray[np.bool_],
    tables: News2Tables,
) -> News2Result:
    """NEWS2 from inputs already rounded once (``alerts.lookup.round_inputs``, whole units of ``PRECISION``)
    and category codes already indexed (``CategoryTable.index``): one take per component."""
    grids, lookups = tables.grids, tables.lookups
    spo2 = grids["spo2"].index(units["spo2"])
    spo2 += tables.spo2_state(scale2, o2_index) * (grids["spo2"].missing + 1)
    # One row per component, so that the sums over components run along contiguous memory.
    by_component = np.empty((len(COMPONENTS), len(scale2)))
    for row, (lookup, index) in enumerate((
        (lookups["rr"], grids["rr"].index(units["rr"])),
        (lookups["spo2"], spo2),
        (tables.o2.lookup, o2_index),
        (lookups["sbp"], grids["sbp"].index(units["sbp"])),
        (lookups["hr"], grids["hr"].index(units["hr"])),
        (tables.acvpu.lookup, acvpu_index),
        (lookups["temp"], grids["temp"].index(units["temp"])),
    )):  # fmt: skip
        lookup.take(index, out=by_component[row], mode="clip")  # indexes are in range by construction
    return _summarise(by_component, tables)


def _column(name: str, value: npt.ArrayLike) -> npt.NDArray[np.float64]:
    column = np.asarray(value, dtype=np.float64)
    if column.ndim != 1:
        raise ValueError(f"news2: {name} must be a 1-D array, got shape {column.shape}")
    return column


def _flags(name: str, value: npt.ArrayLike, n: int) -> npt.NDArray[np.bool_]:
    """A bool array of length ``n``; 0/1 numbers are accepted, NaN or other numbers are not."""
    given = np.asarray(value)
    if given.shape != (n,):
        raise ValueError(f"news2: {name} has shape {given.shape}, expected ({n},)")
    if given.dtype == np.bool_:
        return given
    if given.dtype.kind not in "iuf" or not np.isin(given, (0, 1)).all():
        raise ValueError(f"news2: {name} must hold True/False (or 0/1) for every bed, with no NaN")
    return given.astype(np.bool_)


def _summarise(by_component: npt.NDArray[np.float64], t: News2Tables) -> News2Result:
    """Totals and bands from the sub-scores, given as a (components, beds) array."""
    partial, total, incomplete = sum_known(by_component)
    any_three = (by_component == SINGLE_PARAMETER).any(axis=0)
    return News2Result(
        subscores=by_component.T,
        partial=partial,
        total=total,
        incomplete=incomplete,
        any_three=any_three,
        band=risk_band(partial, incomplete, any_three, t),
    )


def risk_band(
    partial: npt.NDArray[np.int64], incomplete: npt.NDArray[np.bool_], any_three: npt.NDArray[np.bool_], t: News2Tables
) -> npt.NDArray[np.int8]:
    """The clinical-risk band (``BAND_LABELS`` codes) of each partial sum; ``alerts.score_plan`` tabulates it."""
    # The same rule serves both cases: a complete total proves its own band; a
    # partial sum proves at least the band it reaches, and nothing below "low-medium".
    band = np.where(incomplete, _BAND_UNKNOWN, _BAND_LOW).astype(np.int8)
    band[any_three] = _BAND_LOW_MEDIUM
    band[partial >= t.medium] = _BAND_MEDIUM
    band[partial >= t.high] = _BAND_HIGH
    return band
