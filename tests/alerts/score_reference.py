"""The previous vectorised scoring, kept as the reference the lookup-table pass must equal exactly.

This is the code ``alerts.scoring.score_beds`` ran before it rounded each input
once and banded through lookup arrays: every band table rounded its own input
(the rounding as it was then) and compared it with each bound; every category
table checked its codes on every call; NEWS2, MEWS and qSOFA each summed their
own sub-scores. ``tests/alerts/test_score_fast_path.py`` checks that both give
identical results, and ``bench/scores_vectorised.py`` times both side by side.
Not product code: nothing outside tests and bench imports it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from alerts.bands import BandTable
from alerts.mews import MewsResult
from alerts.news2 import News2Result
from alerts.qsofa import QsofaResult
from alerts.score_inputs import score_inputs
from alerts.score_tables import CategoryTable, MewsTables, News2Tables, QsofaTables, ScoreTables
from wire.vocabulary import COLUMN, O2

_EXACT_INTEGERS = 2.0**52


def round_half_up_scaled(x: npt.ArrayLike, decimals: int) -> npt.NDArray[np.float64]:
    values = np.asarray(x, dtype=np.float64)
    scaled = values * float(10**decimals) if decimals >= 0 else values / float(10**-decimals)
    with np.errstate(over="ignore", invalid="ignore"):
        snapped = np.round(scaled, 6)
        rounded = np.copysign(np.floor(np.abs(snapped) + 0.5), snapped)
        rounded = np.where(np.abs(scaled) >= _EXACT_INTEGERS, scaled, rounded)
    return rounded + 0.0


def band(table: BandTable, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    units = round_half_up_scaled(values, table.precision)
    index = np.zeros(units.shape, dtype=np.intp)
    for bound in table.scaled_bounds:
        index += units > bound
    out = np.array(table.scores, dtype=np.float64)[index]
    out[np.isnan(units)] = np.nan
    return out


def category(table: CategoryTable, codes: npt.ArrayLike) -> npt.NDArray[np.float64]:
    column = np.array(codes, dtype=np.float64, copy=None, order="C")
    last = len(table.scores)
    missing = np.isnan(column)
    with np.errstate(invalid="ignore"):
        valid = missing | ((column >= 0.0) & (column < last) & (np.floor(column) == column))
    if not valid.all():
        bad = float(column[~valid].flat[0])
        known = ", ".join(f"{code} {label}" for code, label in enumerate(table.labels))
        raise ValueError(f"{table.name}: {table.input} code {bad} is not one of {list(range(last))} ({known})")
    values = np.array([*table.scores, np.nan], dtype=np.float64)
    return values[np.where(missing, float(last), column).astype(np.intp)]


def _sums(by_component: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    missing = np.isnan(by_component)
    partial = np.where(missing, 0.0, by_component).sum(axis=0).astype(np.int64)
    incomplete = missing.any(axis=0)
    return partial, np.where(incomplete, np.nan, partial.astype(np.float64)), incomplete


def news2(x: dict[str, npt.NDArray[np.float64]], scale2: npt.NDArray[np.bool_], t: News2Tables) -> News2Result:
    n = len(scale2)
    o2_score = category(t.o2, x["o2"])
    acvpu_score = category(t.acvpu, x["acvpu"])
    spo2, o2 = x["spo2"], x["o2"]
    spo2_score = band(t.spo2_scale1, spo2)
    beds = np.flatnonzero(scale2)
    if beds.size:
        value, on = spo2[beds], o2[beds]
        on_air = band(t.spo2_scale2_air, value)
        on_oxygen = band(t.spo2_scale2_oxygen, value)
        either = np.where(on_air == on_oxygen, on_air, np.nan)
        spo2_score[beds] = np.where(on == O2.OXYGEN, on_oxygen, np.where(on == O2.AIR, on_air, either))
    by_component = np.stack([band(t.rr, x["rr"]), spo2_score, o2_score, band(t.sbp, x["sbp"]), band(t.hr, x["hr"]),
                             acvpu_score, band(t.temp, x["temp"])]).reshape(7, n)  # fmt: skip
    partial, total, incomplete = _sums(by_component)
    any_three = (by_component == 3).any(axis=0)
    level = np.where(incomplete, -1, 0).astype(np.int8)
    level[any_three] = 1
    level[partial >= t.medium] = 2
    level[partial >= t.high] = 3
    return News2Result(subscores=by_component.T, partial=partial, total=total, incomplete=incomplete,
                       any_three=any_three, band=level)  # fmt: skip


def mews(x: dict[str, npt.NDArray[np.float64]], t: MewsTables) -> MewsResult:
    n = len(x["sbp"])
    by_component = np.stack([band(t.sbp, x["sbp"]), band(t.hr, x["hr"]), band(t.rr, x["rr"]), band(t.temp, x["temp"]),
                             category(t.avpu, x["acvpu"])]).reshape(5, n)  # fmt: skip
    partial, total, incomplete = _sums(by_component)
    return MewsResult(subscores=by_component.T, partial=partial, total=total, incomplete=incomplete,
                      triggered=partial >= t.trigger)  # fmt: skip


def qsofa(x: dict[str, npt.NDArray[np.float64]], t: QsofaTables) -> QsofaResult:
    n = len(x["rr"])
    by_component = np.stack([band(t.rr, x["rr"]), band(t.sbp, x["sbp"]), category(t.mentation, x["acvpu"])]).reshape(3, n)
    partial, total, incomplete = _sums(by_component)
    return QsofaResult(subscores=by_component.T, partial=partial, total=total, incomplete=incomplete,
                       positive=partial >= t.trigger)  # fmt: skip


def score_beds(
    matrix: npt.NDArray[np.float64], scale2: npt.NDArray[np.bool_], tables: ScoreTables
) -> tuple[News2Result, MewsResult, QsofaResult]:
    """The previous ``alerts.scoring.score_beds``: NEWS2, MEWS and qSOFA for every row of ``matrix``."""
    x = score_inputs({p: matrix[:, i] for p, i in COLUMN.items()})
    return news2(x, scale2, tables.news2), mews(x, tables.mews), qsofa(x, tables.qsofa)
