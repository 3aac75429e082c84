"""Every score for every bed: NEWS2, MEWS and qSOFA over the ``[bed x parameter]`` matrix in one pass.

Each input is rounded once per tick and each category input checked once, for all three scores; then
every sub-score of every bed is one take from its table's lookup array (``alerts.lookup``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.lookup import round_inputs
from alerts.mews import MewsResult, mews_rounded
from alerts.news2 import News2Result, _flags, news2_rounded
from alerts.qsofa import QsofaResult, qsofa_rounded
from alerts.score_inputs import score_inputs
from alerts.score_tables import PRECISION, ScoreTables
from wire.vocabulary import COLUMN


@dataclass(frozen=True, slots=True)
class Scores:
    inputs: np.ndarray  # the bed-state matrix with stale, flagged and missing values as NaN
    news2: News2Result
    mews: MewsResult
    qsofa: QsofaResult


def score_beds(matrix: npt.NDArray[np.float64], scale2: npt.NDArray[np.bool_], tables: ScoreTables) -> Scores:
    """Score every bed (row) of ``matrix`` (columns in ``wire.vocabulary.COLUMN`` order, NaN for missing);
    ``scale2`` is True where a clinician chose NEWS2 SpO2 scale 2 for the bed."""
    x = score_inputs({p: matrix[:, i] for p, i in COLUMN.items()})
    units = round_inputs({name: x[name] for name in PRECISION}, PRECISION)  # each input once, for every score
    on_scale2 = _flags("scale2", scale2, len(matrix))
    o2_index = tables.news2.o2.index(x["o2"])  # each category input checked once, for every score
    acvpu_index = tables.news2.acvpu.index(x["acvpu"])
    return Scores(
        inputs=matrix,
        news2=news2_rounded(units, o2_index, acvpu_index, on_scale2, tables.news2),
        mews=mews_rounded(units, acvpu_index, tables.mews),
        qsofa=qsofa_rounded(units, acvpu_index, tables.qsofa),
    )
