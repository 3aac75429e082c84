"""Every score for every bed: one vectorised pass each of NEWS2, MEWS and qSOFA over the ``[bed x parameter]`` matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.mews import MewsResult, mews
from alerts.news2 import News2Result, news2
from alerts.qsofa import QsofaResult, qsofa
from alerts.score_inputs import score_inputs
from alerts.score_tables import ScoreTables
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
    return Scores(
        inputs=matrix,
        news2=news2(rr=x["rr"], spo2=x["spo2"], o2=x["o2"], sbp=x["sbp"], hr=x["hr"], acvpu=x["acvpu"], temp=x["temp"],
                    scale2=scale2, tables=tables.news2),  # fmt: skip
        mews=mews(sbp=x["sbp"], hr=x["hr"], rr=x["rr"], temp=x["temp"], acvpu=x["acvpu"], tables=tables.mews),
        qsofa=qsofa(rr=x["rr"], sbp=x["sbp"], acvpu=x["acvpu"], tables=tables.qsofa),
    )
