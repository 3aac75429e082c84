"""The lookup-table score pass (``alerts.scoring.score_beds``) equals the previous vectorised pass exactly.

The previous pass is ``score_reference`` (rounding per table, comparisons per
bound). Inputs are drawn around every band edge (ties, float noise on ties, just
inside and outside), far beyond every table, missing (NaN) and infinite, on both
SpO2 scales with air, oxygen or O2 missing; with the packaged tables and with
tables whose bounds are too far apart for a dense lookup array.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import score_reference
from alerts.lookup import DENSE_LIMIT, Grid
from alerts.score_tables import ScoreTables, parse_score_tables
from alerts.scoring import score_beds
from config_support import default_raw, score_tables
from wire.vocabulary import COLUMN, PARAMETERS

NAN = float("nan")
BAND_INPUTS = {"rr": 0, "spo2": 0, "nibp_sys": 0, "abp_sys": 0, "hr": 0, "pr": 0, "temp": 1}


def wide_tables() -> ScoreTables:
    """The packaged tables with MEWS SBP bounds so far apart that its input's grid indexes cells."""
    raw = copy.deepcopy(default_raw("scores.yaml"))
    raw["mews"]["sbp"][-2] = {"min": 101, "max": 101 + 2 * DENSE_LIMIT, "score": 0}
    raw["mews"]["sbp"][-1] = {"min": 102 + 2 * DENSE_LIMIT, "score": 2}
    return parse_score_tables(raw, "wide")


TABLES = {"packaged": score_tables(), "wide": wide_tables()}


def edges_near(tables: ScoreTables, decimals: int) -> list[float]:
    """Every bound of every table at this precision, and values on and around the rounding ties next to it."""
    step = 10.0**-decimals
    out: list[float] = []
    for section in (tables.news2, tables.mews, tables.qsofa):
        for grid in section.grids.values():
            if grid.precision != decimals:
                continue
            for units in grid.edges:
                b = units * step
                out += [b, b + step / 2, b - step / 2, b + step / 2 - 1e-9, b + step / 2 - 4e-7 * step, b + 0.49 * step,
                        b - 0.51 * step, b + step, b - step]  # fmt: skip
    return out


def value(key: str, tables: ScoreTables) -> st.SearchStrategy[float]:
    decimals = BAND_INPUTS[key]
    return st.one_of(
        st.sampled_from(edges_near(tables, decimals)),
        st.floats(-50, 400, allow_nan=False).map(lambda v: round(v, decimals + 2)),
        st.floats(allow_nan=True, allow_infinity=True),
        st.just(NAN),
    )


@st.composite
def wards(draw: st.DrawFn, tables: ScoreTables) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    n = draw(st.integers(1, 40))
    m = np.full((n, len(PARAMETERS)), NAN)
    for key in BAND_INPUTS:
        m[:, COLUMN[key]] = draw(st.lists(value(key, tables), min_size=n, max_size=n))
    m[:, COLUMN["o2"]] = draw(st.lists(st.sampled_from([0.0, 1.0, NAN]), min_size=n, max_size=n))
    m[:, COLUMN["acvpu"]] = draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0, NAN]), min_size=n, max_size=n))
    scale2 = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return m, scale2


def assert_identical(got: object, expected: object) -> None:
    for field in (f.name for f in dataclasses.fields(got)):  # type: ignore[arg-type]
        a, b = getattr(got, field), getattr(expected, field)
        assert a.dtype == b.dtype and a.shape == b.shape, field
        np.testing.assert_array_equal(a, b, err_msg=field)  # NaN equals NaN here


def check(m: npt.NDArray[np.float64], scale2: npt.NDArray[np.bool_], tables: ScoreTables) -> None:
    fast = score_beds(m, scale2, tables)
    news2, mews, qsofa = score_reference.score_beds(m, scale2, tables)
    assert_identical(fast.news2, news2)
    assert_identical(fast.mews, mews)
    assert_identical(fast.qsofa, qsofa)
    assert np.isnan(fast.news2.total[fast.news2.incomplete]).all()  # never a total from missing inputs


@pytest.mark.parametrize("name", TABLES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_lookup_pass_equals_the_previous_pass(name: str, data: st.DataObject) -> None:
    tables = TABLES[name]
    m, scale2 = data.draw(wards(tables))
    check(m, scale2, tables)


@pytest.mark.parametrize("name", TABLES)
def test_every_edge_on_both_scales(name: str) -> None:
    """Every edge value of every precision-0 input in every input column at once, on both scales and every O2."""
    tables = TABLES[name]
    values = sorted(set(edges_near(tables, 0)) | {v / 10 for v in edges_near(tables, 0)} | set(edges_near(tables, 1)))
    rows = []
    for o2 in (0.0, 1.0, NAN):
        for scale2 in (False, True):
            for v in values:
                row = np.full(len(PARAMETERS), NAN)
                for key in BAND_INPUTS:
                    row[COLUMN[key]] = v
                row[COLUMN["o2"]], row[COLUMN["acvpu"]] = o2, float(len(rows) % 5)
                rows.append((row, scale2))
    m = np.array([r for r, _ in rows])
    check(m, np.array([s for _, s in rows]), tables)


def test_the_wide_table_uses_cells_and_the_packaged_ones_dense_grids() -> None:
    assert not TABLES["wide"].mews.grids["sbp"].dense
    assert all(g.dense for section in (TABLES["packaged"].news2, TABLES["packaged"].mews) for g in section.grids.values())


def test_invalid_codes_raise_as_before() -> None:
    tables = score_tables()
    m = np.full((2, len(PARAMETERS)), NAN)
    for bad, column in ((2.0, "o2"), (0.5, "o2"), (5.0, "acvpu"), (-1.0, "acvpu"), (np.inf, "acvpu")):
        m[:, :] = NAN
        m[1, COLUMN[column]] = bad
        with pytest.raises(ValueError) as fast:
            score_beds(m, np.zeros(2, dtype=bool), tables)
        with pytest.raises(ValueError) as ref:
            score_reference.score_beds(m, np.zeros(2, dtype=bool), tables)
        assert str(fast.value) == str(ref.value)


def test_a_grid_refuses_tables_of_two_precisions() -> None:
    t = score_tables()
    with pytest.raises(ValueError, match="one precision"):
        Grid.over([t.news2.hr, t.news2.temp])
