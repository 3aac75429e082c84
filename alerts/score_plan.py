"""NEWS2, MEWS and qSOFA compiled together for the hub's pass (``alerts.scoring``), once per set of tables.

What lets one index per input serve every score:

- **one grid per numeric input** over every band table of every score that
  reads it (``GridRows``), so each input is rounded and indexed once per tick,
  and each table's lookup array on that shared grid;
- **one index per category input** (air/oxygen, ACVPU), checked with NEWS2's
  tables, which every score's category table shares;
- **one packed lookup per input**: what its value adds to every score's partial
  sum and counts (``alerts.packed_sums``), so all three scores are summed with
  one add per input;
- **each score's result fields by key** (partial sum, total, incomplete, and
  its band or trigger), tabulated from the score's own rules (``risk_band``,
  ``triggered``, ``positive``, ``total_of``).

The pass is equal to each score computed alone (``alerts.news2.news2`` and the
others, which index their own grids); ``tests/alerts/test_score_plan.py`` checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.lookup import Grid, GridRows
from alerts.mews import MewsResult, triggered
from alerts.news2 import SINGLE_PARAMETER, News2Result, risk_band
from alerts.packed_sums import Fields
from alerts.qsofa import QsofaResult, positive
from alerts.score_result import ScoreResult, total_of
from alerts.score_tables import PRECISION, CategoryTable, ScoreTables

#: the numeric inputs, each banded on one shared grid, in index-row order
NUMERIC: tuple[str, ...] = tuple(PRECISION)
#: the category inputs, after the numeric ones
CATEGORIES: tuple[str, ...] = ("o2", "acvpu")
#: every input a score reads: the rows of a tick's ``(inputs, beds)`` index array
INPUTS: tuple[str, ...] = NUMERIC + CATEGORIES
ROW: dict[str, int] = {name: i for i, name in enumerate(INPUTS)}


@dataclass(frozen=True, eq=False)
class ScoreLayout:
    """One score in the pass: the index row and lookup of each component, its bits of the packed sum, and
    its result's other fields for every key of those bits."""

    result: type[ScoreResult]
    rows: tuple[int, ...]  # per component (the result's COMPONENTS order), the index row it reads
    lookups: tuple[npt.NDArray[np.float64], ...]  # per component, its sub-score at every index of that row
    fields: Fields
    by_key: Mapping[str, npt.NDArray[np.generic]]  # result field -> its value for every key of ``fields``


@dataclass(frozen=True, eq=False)
class ScorePlan:
    """Everything the pass needs beyond the bed-state matrix, built once from a ``ScoreTables``."""

    grids: GridRows  # the NUMERIC inputs' shared grids
    categories: tuple[CategoryTable, ...]  # per CATEGORIES input, the table that checks and indexes its codes
    spo2_offsets: npt.NDArray[np.intp]  # by O2 index, added to a scale-2 bed's SpO2 index (NEWS2's blocks)
    packed: tuple[npt.NDArray[np.intp], ...]  # per index row, what each index adds to every score's fields
    news2: ScoreLayout
    mews: ScoreLayout
    qsofa: ScoreLayout


def compile_plan(tables: ScoreTables) -> ScorePlan:
    """The pass for ``tables`` (``ScoreTables.plan`` keeps it)."""
    t2, tm, tq = tables.news2, tables.mews, tables.qsofa
    readers: dict[str, list] = {name: [] for name in NUMERIC}
    for section in (t2, tm, tq):
        for key, name in section.BANDS.items():
            readers[name].append(getattr(section, key))
    grids = {name: Grid.over(readers[name]) for name in NUMERIC}

    def on(table_key: str, section: object) -> npt.NDArray[np.float64]:
        return grids[type(section).BANDS[table_key]].lookup(getattr(section, table_key))

    components = {
        News2Result: (("rr", on("rr", t2)), ("spo2", t2.spo2_lookup(grids["spo2"])), ("o2", t2.o2.lookup),
                      ("sbp", on("sbp", t2)), ("hr", on("hr", t2)), ("acvpu", t2.acvpu.lookup), ("temp", on("temp", t2))),
        MewsResult: (("sbp", on("sbp", tm)), ("hr", on("hr", tm)), ("rr", on("rr", tm)), ("temp", on("temp", tm)),
                     ("acvpu", tm.avpu.lookup)),
        QsofaResult: (("rr", on("rr", tq)), ("sbp", on("sbp", tq)), ("acvpu", tq.mentation.lookup)),
    }  # fmt: skip
    layouts: list[ScoreLayout] = []
    shift = 0
    for result, parts in components.items():
        if len(parts) != len(result.COMPONENTS):
            raise AssertionError(f"{result.__name__}: {len(parts)} lookups for {result.COMPONENTS}")
        lookups = tuple(lookup for _, lookup in parts)
        highest = sum(int(np.nanmax(lookup)) for lookup in lookups)
        fields = Fields.sized(shift, highest, len(parts), SINGLE_PARAMETER if result is News2Result else None)
        layouts.append(ScoreLayout(result, tuple(ROW[name] for name, _ in parts), lookups, fields, _by_key(result, fields, tables)))
        shift = fields.end
    packed = [np.zeros(0, dtype=np.intp) for _ in INPUTS]
    for layout in layouts:
        for row, lookup in zip(layout.rows, layout.lookups, strict=True):
            packed[row] = layout.fields.encode(lookup) + (packed[row] if packed[row].size else 0)
    spo2_block = grids["spo2"].missing + 1
    o2_codes = np.arange(len(t2.o2.scores) + 1)  # each O2 index, the missing slot last
    if t2.spo2_state(np.zeros(len(o2_codes), dtype=bool), o2_codes).any():
        raise AssertionError("NEWS2 SpO2 scale 1 reads the first block whatever the O2 (the pass adds no offset)")
    return ScorePlan(
        grids=GridRows(tuple(grids[name] for name in NUMERIC)),
        categories=(t2.o2, t2.acvpu),
        spo2_offsets=(t2.spo2_state(np.ones(len(o2_codes), dtype=bool), o2_codes) * spo2_block).astype(np.intp),
        packed=tuple(packed),
        news2=layouts[0],
        mews=layouts[1],
        qsofa=layouts[2],
    )


def _by_key(result: type[ScoreResult], fields: Fields, tables: ScoreTables) -> dict[str, npt.NDArray[np.generic]]:
    """``result``'s fields besides the sub-scores for every key of ``fields``, by the score's own rules."""
    partial, missing, tops = fields.counters()
    incomplete = missing > 0
    out: dict[str, npt.NDArray[np.generic]] = {"partial": partial, "total": total_of(partial, incomplete), "incomplete": incomplete}
    if result is News2Result:
        any_three = tops > 0
        out |= {"any_three": any_three, "band": risk_band(partial, incomplete, any_three, tables.news2)}
    elif result is MewsResult:
        out["triggered"] = triggered(partial, tables.mews)
    else:
        out["positive"] = positive(partial, tables.qsofa)
    return out
