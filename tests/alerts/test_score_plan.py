"""The shared pass (``alerts.score_plan`` + ``alerts.scoring``) equals each score computed alone.

``score_beds`` indexes every input once on a grid shared by all three scores,
clips before rounding, checks category codes for all rows at once, and sums the
scores as packed integers. Each score computed alone (``news2``, ``mews``,
``qsofa``) rounds its inputs, indexes its own grids and sums NaN-masked
sub-scores. Both must give identical arrays, for random wards with missing,
infinite and far-off values, with the packaged tables and with tables that take
the other branches: a grid of cells (bounds far apart), a dense grid far from 0
(an offset index) and a grid reaching below 0 (rounding that keeps the sign).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.lookup import DENSE_LIMIT, Grid, GridRows
from alerts.mews import mews
from alerts.news2 import news2
from alerts.packed_sums import Fields
from alerts.qsofa import qsofa
from alerts.rounding import round_half_up_scaled
from alerts.score_inputs import score_inputs
from alerts.score_plan import ScorePlan
from alerts.score_tables import ScoreTables, index_categories, parse_score_tables
from alerts.scoring import score_beds
from config_support import default_raw, score_tables
from wire.vocabulary import COLUMN, PARAMETERS

NAN = float("nan")
NUMBERS = {"rr": 0, "spo2": 0, "nibp_sys": 0, "abp_sys": 0, "hr": 0, "pr": 0, "temp": 1}  # parameter -> decimals


def variant(change: str) -> ScoreTables:
    """The packaged tables with one change that sends an input down another branch of the shared pass."""
    raw = copy.deepcopy(default_raw("scores.yaml"))
    if change == "cells":  # MEWS SBP bounds so far apart that the shared SBP grid indexes cells
        raw["mews"]["sbp"][-2] = {"min": 101, "max": 101 + 2 * DENSE_LIMIT, "score": 0}
        raw["mews"]["sbp"][-1] = {"min": 102 + 2 * DENSE_LIMIT, "score": 2}
    elif change == "offset":  # every HR table far above 0: a dense grid whose index is the value less its low
        for section in ("news2", "mews"):
            for row in raw[section]["hr"]:
                row.update({key: row[key] + 2 * DENSE_LIMIT for key in ("min", "max") if key in row})
    elif change == "negative":  # a respiration-rate band below 0: rounding must keep the sign
        raw["news2"]["rr"][:1] = [{"max": -3, "score": 2}, {"min": -2, "max": 8, "score": 3}]
    return parse_score_tables(raw, change)


TABLES = {"packaged": score_tables(), "cells": variant("cells"), "offset": variant("offset"), "negative": variant("negative")}


def test_the_variants_take_the_branches_they_are_for() -> None:
    def grid(name: str, input_: str) -> Grid:
        plan: ScorePlan = TABLES[name].plan
        return plan.grids.grids[("rr", "spo2", "sbp", "hr", "temp").index(input_)]

    assert all(g.dense and g.low == 0.0 for g in TABLES["packaged"].plan.grids.grids)
    assert not grid("cells", "sbp").dense
    assert grid("offset", "hr").dense and grid("offset", "hr").low > DENSE_LIMIT
    assert grid("negative", "rr").low < 0


def value(decimals: int, edges: list[float]) -> st.SearchStrategy[float]:
    step = 10.0**-decimals
    near = [e * step + d * step for e in edges for d in (0.0, 0.5, -0.5, 0.5 - 4e-7, 0.49, -0.51, 1.0, -1.0)]
    return st.one_of(
        st.sampled_from(near),
        st.floats(-100, 12_000, allow_nan=False).map(lambda v: round(v, decimals + 2)),
        st.floats(allow_nan=True, allow_infinity=True),
        st.just(NAN),
    )


def edges_of(tables: ScoreTables, decimals: int) -> list[float]:
    return sorted({float(e) for g in tables.plan.grids.grids if g.precision == decimals for e in g.edges})


@st.composite
def wards(draw: st.DrawFn, tables: ScoreTables) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    n = draw(st.integers(1, 30))
    m = np.full((n, len(PARAMETERS)), NAN)
    for key, decimals in NUMBERS.items():
        m[:, COLUMN[key]] = draw(st.lists(value(decimals, edges_of(tables, decimals)), min_size=n, max_size=n))
    m[:, COLUMN["o2"]] = draw(st.lists(st.sampled_from([0.0, 1.0, NAN]), min_size=n, max_size=n))
    m[:, COLUMN["acvpu"]] = draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0, NAN]), min_size=n, max_size=n))
    return m, np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))


def assert_identical(got: object, expected: object) -> None:
    assert type(got) is type(expected)
    for field in (f.name for f in dataclasses.fields(got)):  # type: ignore[arg-type]
        a, b = getattr(got, field), getattr(expected, field)
        assert a.dtype == b.dtype and a.shape == b.shape, field
        np.testing.assert_array_equal(a, b, err_msg=field)  # NaN equals NaN here


def check_alone(m: npt.NDArray[np.float64], scale2: npt.NDArray[np.bool_], tables: ScoreTables) -> None:
    shared = score_beds(m, scale2, tables)
    x = score_inputs({p: m[:, i] for p, i in COLUMN.items()})
    assert_identical(shared.news2, news2(**{k: x[k] for k in ("rr", "spo2", "o2", "sbp", "hr", "acvpu", "temp")},
                                         scale2=scale2, tables=tables.news2))  # fmt: skip
    assert_identical(shared.mews, mews(**{k: x[k] for k in ("sbp", "hr", "rr", "temp", "acvpu")}, tables=tables.mews))
    assert_identical(shared.qsofa, qsofa(rr=x["rr"], sbp=x["sbp"], acvpu=x["acvpu"], tables=tables.qsofa))
    for result in (shared.news2, shared.mews, shared.qsofa):
        assert np.isnan(result.total[result.incomplete]).all()  # never a total from missing inputs


@pytest.mark.parametrize("name", TABLES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_each_score_in_the_shared_pass_equals_the_score_alone(name: str, data: st.DataObject) -> None:
    tables = TABLES[name]
    check_alone(*data.draw(wards(tables)), tables)


@pytest.mark.parametrize("name", TABLES)
def test_every_score_at_its_highest_and_every_input_missing(name: str) -> None:
    """The packed sums at their largest (every sub-score at its worst) and with every count full."""
    worst = {"rr": 3.0, "spo2": 70.0, "nibp_sys": 60.0, "abp_sys": 60.0, "hr": 200.0, "pr": 200.0, "temp": 33.0}
    m = np.full((4, len(PARAMETERS)), NAN)
    for key, v in worst.items():
        m[:2, COLUMN[key]] = v
    m[:2, COLUMN["o2"]] = 1.0
    m[:2, COLUMN["acvpu"]] = 4.0
    m[3, COLUMN["temp"]] = 41.0  # one input known, the rest missing
    check_alone(m, np.array([False, True, False, True]), tables=TABLES[name])


@pytest.mark.parametrize("name", TABLES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_grid_rows_index_as_each_grid_indexes_rounded_values(name: str, data: st.DataObject) -> None:
    grids = TABLES[name].plan.grids.grids
    raw = np.array([data.draw(st.lists(value(g.precision, list(g.edges)), min_size=5, max_size=5)) for g in grids])
    got = np.empty(raw.shape, dtype=np.intp)
    GridRows(grids).index(raw.copy(), got)
    for row, grid in enumerate(grids):
        np.testing.assert_array_equal(got[row], grid.index(round_half_up_scaled(raw[row], grid.precision)))


def test_category_rows_raise_the_first_tables_error() -> None:
    t = score_tables().news2
    codes = np.array([[0.0, NAN, 0.5], [4.0, 7.0, NAN]])
    out = np.empty(codes.shape, dtype=np.intp)
    with pytest.raises(ValueError, match=r"news2\.o2: o2 code 0\.5 is not one of \[0, 1\]"):
        index_categories((t.o2, t.acvpu), codes, out)
    codes[0, 2] = 1.0
    with pytest.raises(ValueError, match=r"news2\.acvpu: acvpu code 7\.0 is not one of \[0, 1, 2, 3, 4\]"):
        index_categories((t.o2, t.acvpu), codes, out)
    codes[1, 1] = -0.0
    index_categories((t.o2, t.acvpu), codes, out)
    np.testing.assert_array_equal(out, [t.o2.index(codes[0]), t.acvpu.index(codes[1])])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, NAN]), min_size=1, max_size=7), min_size=1, max_size=9),
       st.integers(0, 20))  # fmt: skip
def test_packed_fields_count_without_carrying(beds: list[list[float]], shift: int) -> None:
    components = max(len(b) for b in beds)
    fields = Fields.sized(shift, 3 * components, components, top=3)
    for bed in beds:
        packed = int(sum(fields.encode(np.array([v])).item() for v in bed))
        assert packed & ((1 << shift) - 1) == 0 and packed >> fields.end == 0
        partial, missing, tops = (c[fields.key(np.array([packed]))[0]] for c in fields.counters())
        known = [v for v in bed if not np.isnan(v)]
        assert (partial, missing, tops) == (sum(known), len(bed) - len(known), known.count(3.0))
