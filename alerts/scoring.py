"""Every score for every bed: NEWS2, MEWS and qSOFA over the ``[bed x parameter]`` matrix in one pass.

The tables come compiled for it (``ScoreTables.plan``, ``alerts.score_plan``).
A tick takes the score inputs as rows of one array, turns each into an index
once for all three scores (numeric inputs on their shared grids, category codes
checked once), and then every sub-score of every bed is one take from its
table's lookup array. The sums of all three scores are one take and one add per
input, of packed integers; each score's totals, counts and verdicts are takes
from arrays indexed by its bits of that sum. No NaN mask is summed and no
total is produced from missing inputs: a missing sub-score is counted, and a
count above 0 makes the total NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.mews import MewsResult
from alerts.news2 import News2Result, _flags
from alerts.qsofa import QsofaResult
from alerts.score_inputs import input_rows
from alerts.score_plan import INPUTS, NUMERIC, ROW, ScoreLayout
from alerts.score_result import ScoreResult
from alerts.score_tables import ScoreTables, index_categories
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
    plan = tables.plan
    on_scale2 = _flags("scale2", scale2, len(matrix))
    values = input_rows(matrix, COLUMN, INPUTS)
    index = np.empty(values.shape, dtype=np.intp)
    k = len(NUMERIC)
    index_categories(plan.categories, values[k:], index[k:])  # the codes first: an invalid one raises
    plan.grids.index(values[:k], index[:k])
    del values  # scratch, freed before the results are made: they reuse its memory (fresh pages cost the most)
    spo2_offset = plan.spo2_offsets.take(index[ROW["o2"]])
    spo2_offset *= on_scale2  # scale 1 reads the first block
    index[ROW["spo2"]] += spo2_offset
    total = plan.packed[0].take(index[0], mode="clip")
    for row in range(1, len(INPUTS)):
        total += plan.packed[row].take(index[row], out=spo2_offset, mode="clip")
    del spo2_offset
    return Scores(
        inputs=matrix,
        news2=_result(plan.news2, index, total),  # type: ignore[arg-type]
        mews=_result(plan.mews, index, total),  # type: ignore[arg-type]
        qsofa=_result(plan.qsofa, index, total),  # type: ignore[arg-type]
    )


def _result(layout: ScoreLayout, index: npt.NDArray[np.intp], packed: npt.NDArray[np.intp]) -> ScoreResult:
    """One score's result: a take per component for the sub-scores, a take per field from its packed key."""
    by_component = np.empty((len(layout.rows), index.shape[1]))  # one row per component, as the scores lay it out
    for out, row, lookup in zip(by_component, layout.rows, layout.lookups, strict=True):
        lookup.take(index[row], out=out, mode="clip")  # indexes are in range by construction
    key = layout.fields.key(packed)
    fields = {name: values.take(key, mode="clip") for name, values in layout.by_key.items()}
    return layout.result(subscores=by_component.T, **fields)
