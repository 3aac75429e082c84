"""NEWS2 for every bed at once (RCP 2017, Chart 1, as in ``shared/clinical/scores.md``).

Inputs are parallel 1-D float arrays, one element per bed, with NaN for a
missing value. Each input is rounded half up to the chart's precision, banded,
and the seven sub-scores are summed. A missing input gives a missing sub-score
and an *incomplete* total: the total is then NaN and only the partial sum of
the known sub-scores is reported, together with the names of what is missing.

The clinical-risk band of a complete total is low (0-4), low-medium (0-4 with
some single sub-score of 3), medium (5-6) or high (7+). For an incomplete
total the band is the lowest band the known sub-scores already prove, or
unknown when they prove nothing beyond low.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts.bands import BandTable
from alerts.rounding import round_half_up
from wire.vocabulary import ACVPU, O2

COMPONENTS: tuple[str, ...] = ("rr", "spo2", "o2", "sbp", "hr", "acvpu", "temp")
BAND_LABELS: dict[int, str] = {-1: "unknown", 0: "low", 1: "low-medium", 2: "medium", 3: "high"}

RR = BandTable("NEWS2 respiration rate", 0, (8, 11, 20, 24), (3, 1, 0, 2, 3))
SPO2_SCALE1 = BandTable("NEWS2 SpO2 scale 1", 0, (91, 93, 95), (3, 2, 1, 0))
SPO2_SCALE2_AIR = BandTable("NEWS2 SpO2 scale 2 on air", 0, (83, 85, 87), (3, 2, 1, 0))
SPO2_SCALE2_OXYGEN = BandTable("NEWS2 SpO2 scale 2 on oxygen", 0, (83, 85, 87, 92, 94, 96), (3, 2, 1, 0, 1, 2, 3))
SBP = BandTable("NEWS2 systolic BP", 0, (90, 100, 110, 219), (3, 2, 1, 0, 3))
HR = BandTable("NEWS2 pulse", 0, (40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3))
TEMP = BandTable("NEWS2 temperature", 1, (35.0, 36.0, 38.0, 39.0), (3, 1, 0, 1, 2))

#: on scale 2, from this SpO2 (rounded) up, the sub-score depends on air/oxygen
_SCALE2_NEEDS_O2_FROM = 93

_OXYGEN_SCORE = 2
_NOT_ALERT_SCORE = 3

_BAND_UNKNOWN, _BAND_LOW, _BAND_LOW_MEDIUM, _BAND_MEDIUM, _BAND_HIGH = -1, 0, 1, 2, 3
_MEDIUM_FROM, _HIGH_FROM = 5, 7


@dataclass(frozen=True)
class News2Result:
    """Sub-scores, totals and bands for ``n`` beds; row ``i`` is bed ``i`` of the inputs."""

    subscores: npt.NDArray[np.float64]  # (n, 7), columns in COMPONENTS order, NaN = missing
    partial: npt.NDArray[np.int64]  # (n,) sum of the available sub-scores
    total: npt.NDArray[np.float64]  # (n,) the total, NaN when incomplete (never a partial sum)
    incomplete: npt.NDArray[np.bool_]  # (n,) some sub-score is missing
    any_three: npt.NDArray[np.bool_]  # (n,) some single available sub-score is 3
    band: npt.NDArray[np.int8]  # (n,) codes of BAND_LABELS

    def missing(self, i: int) -> list[str]:
        """Names of the components missing for bed ``i``, in ``COMPONENTS`` order."""
        gaps = np.isnan(self.subscores[i])
        return [name for name, gap in zip(COMPONENTS, gaps, strict=True) if gap]

    def row(self, i: int) -> dict[str, Any]:
        """Bed ``i`` as plain JSON-ready values; ``total`` is None when incomplete."""
        subscores = {
            name: None if np.isnan(value) else int(value)
            for name, value in zip(COMPONENTS, self.subscores[i], strict=True)
        }
        total = self.total[i]
        return {
            "total": None if np.isnan(total) else int(total),
            "partial": int(self.partial[i]),
            "subscores": subscores,
            "band": BAND_LABELS[int(self.band[i])],
            "incomplete": bool(self.incomplete[i]),
            "missing": self.missing(i),
            "any_three": bool(self.any_three[i]),
        }


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
) -> News2Result:
    """Score NEWS2 for all beds. Each argument is a 1-D array of the same length.

    ``o2`` holds ``O2`` codes (0 air, 1 oxygen), ``acvpu`` holds ``ACVPU`` codes
    (0..4 = A, C, V, P, U), both NaN when missing; ``scale2`` is a bool array,
    True where a clinician has chosen SpO2 scale 2 for that bed.
    Raises ``ValueError`` for mismatched shapes or an invalid category code.
    """
    given = {"rr": rr, "spo2": spo2, "o2": o2, "sbp": sbp, "hr": hr, "acvpu": acvpu, "temp": temp}
    inputs = {name: _column(name, value) for name, value in given.items()}
    n = len(inputs["rr"])
    for name, column in inputs.items():
        if len(column) != n:
            raise ValueError(f"news2: {name} has {len(column)} values but rr has {n}")
    on_scale2 = _flags("scale2", scale2, n)
    _check_codes("o2", inputs["o2"], tuple(O2))
    _check_codes("acvpu", inputs["acvpu"], tuple(ACVPU))

    subscores = np.column_stack(
        [
            RR.score(inputs["rr"]),
            _spo2_subscore(inputs["spo2"], inputs["o2"], on_scale2),
            _o2_subscore(inputs["o2"]),
            SBP.score(inputs["sbp"]),
            HR.score(inputs["hr"]),
            _acvpu_subscore(inputs["acvpu"]),
            TEMP.score(inputs["temp"]),
        ]
    ).reshape(n, len(COMPONENTS))
    return _summarise(subscores)


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


def _check_codes(name: str, column: npt.NDArray[np.float64], codes: tuple[int, ...]) -> None:
    known = np.isnan(column)
    for code in codes:
        known |= column == code
    if not known.all():
        bad = float(column[~known][0])
        raise ValueError(f"news2: {name} code {bad} is not one of {[int(c) for c in codes]}")


def _spo2_subscore(
    spo2: npt.NDArray[np.float64], o2: npt.NDArray[np.float64], scale2: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    on_air = SPO2_SCALE2_AIR.score(spo2)
    on_oxygen = SPO2_SCALE2_OXYGEN.score(spo2)
    # Below 93 both scale-2 tables agree, so air/oxygen only matters from 93 up.
    needs_o2 = round_half_up(spo2, 0) >= _SCALE2_NEEDS_O2_FROM
    scale2_score = np.where(
        o2 == O2.OXYGEN, on_oxygen, np.where(o2 == O2.AIR, on_air, np.where(needs_o2, np.nan, on_air))
    )
    return np.where(scale2, scale2_score, SPO2_SCALE1.score(spo2))


def _o2_subscore(o2: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(o2 == O2.OXYGEN, float(_OXYGEN_SCORE), np.where(o2 == O2.AIR, 0.0, np.nan))


def _acvpu_subscore(acvpu: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(acvpu == ACVPU.A, 0.0, np.where(np.isnan(acvpu), np.nan, float(_NOT_ALERT_SCORE)))


def _summarise(subscores: npt.NDArray[np.float64]) -> News2Result:
    available = ~np.isnan(subscores)
    partial = np.where(available, subscores, 0.0).sum(axis=1).astype(np.int64)
    incomplete = np.logical_not(available.all(axis=1))
    total = np.where(incomplete, np.nan, partial.astype(np.float64))
    any_three = (subscores == 3).any(axis=1)
    # The same rule serves both cases: a complete total proves its own band; a
    # partial sum proves at least the band it reaches, and nothing below "low-medium".
    band = np.select(
        [partial >= _HIGH_FROM, partial >= _MEDIUM_FROM, any_three],
        [_BAND_HIGH, _BAND_MEDIUM, _BAND_LOW_MEDIUM],
        default=np.where(incomplete, _BAND_UNKNOWN, _BAND_LOW),
    ).astype(np.int8)
    return News2Result(
        subscores=subscores,
        partial=partial,
        total=total,
        incomplete=incomplete,
        any_three=any_three,
        band=band,
    )
