"""Benchmark: the vectorised score pass against a per-bed pure-Python loop and the previous vectorised pass.

One "pass" scores NEWS2, MEWS and qSOFA for every bed from the inputs the hub
holds: a [bed x parameter] float matrix in vocabulary column order
(``wire.vocabulary.COLUMN``), NaN where a value is missing or stale, plus the
per-bed SpO2 scale-2 flags. The vectorised pass is ``alerts.news2``,
``alerts.mews`` and ``alerts.qsofa`` on the matrix's columns, as the hub calls
them (each input rounded once, lookup arrays per table). The previous
vectorised pass (``tests/alerts/score_reference.py``: rounding per table,
comparisons per bound) is timed in the same run. The loop is a plain-Python scorer written here from the same tables: it
reads the matrix as rows of Python floats, rounds each input once (half up, as
``alerts.rounding`` does) and bands it with ``bisect``. Before timing, each size
checks that both give identical sub-scores, totals, bands and triggers.

Prints a Markdown table of the median time per pass (and per bed) and the
speed-ups. The aim is the vectorised pass at least 50x faster at 10,000 beds.

    .venv/bin/python bench/scores_vectorised.py [--beds 100 1000 10000] [--repeats 11] [--seed 1]
"""

from __future__ import annotations

import argparse
import bisect
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "alerts")]

import score_reference  # noqa: E402  the previous vectorised pass

from alerts.bands import BandTable
from alerts.mews import MewsResult
from alerts.news2 import News2Result
from alerts.qsofa import QsofaResult
from alerts.score_tables import CategoryTable, ScoreTables
from alerts.scoring import score_beds
from teleicu import config_files
from wire.vocabulary import COLUMN, O2, PARAMETERS

#: one bed's scores: NEWS2 (subscores, partial, total, band), MEWS (..., triggered), qSOFA (..., positive);
#: a missing sub-score or an incomplete total is None
BedScores = tuple[Any, ...]

AIM_BEDS, AIM_RATIO = 10_000, 50.0

Matrix = npt.NDArray[np.float64]
Pass = tuple[News2Result, MewsResult, QsofaResult]

# --- inputs like the hub's ---------------------------------------------------------------------


def make_inputs(n: int, rng: np.random.Generator) -> tuple[Matrix, npt.NDArray[np.bool_]]:
    """A bed-state matrix with realistic values, some off the charting grid, and missing (NaN) cells."""
    m = np.full((n, len(PARAMETERS)), np.nan)

    def fill(key: str, lo: float, hi: float, decimals: int = 0) -> None:
        values = np.round(rng.uniform(lo, hi, n), decimals)
        off_grid = rng.random(n) < 0.2  # averaged or device-precision readings, rounded by the scores
        values[off_grid] = rng.uniform(lo, hi, int(off_grid.sum()))
        m[:, COLUMN[key]] = values

    fill("hr", 30, 180)
    fill("pr", 30, 180)
    fill("spo2", 78, 100)
    fill("rr", 4, 40)
    fill("nibp_sys", 60, 230)
    fill("abp_sys", 60, 230)
    fill("temp", 33.5, 41.0, 1)
    m[:, COLUMN["o2"]] = rng.integers(0, 2, n)
    m[:, COLUMN["acvpu"]] = rng.choice(5, n, p=[0.8, 0.05, 0.05, 0.05, 0.05])
    for key in ("nibp_dia", "nibp_mean", "abp_dia", "abp_mean", "etco2", "o2_flow", "fio2"):
        fill(key, BY_RANGE[key][0], BY_RANGE[key][1])
    # missing or stale: every input sometimes; often no arterial line, sometimes no ECG
    m[rng.random(m.shape) < 0.05] = np.nan
    m[rng.random(n) < 0.7, COLUMN["abp_sys"]] = np.nan
    m[rng.random(n) < 0.3, COLUMN["nibp_sys"]] = np.nan
    m[rng.random(n) < 0.2, COLUMN["hr"]] = np.nan
    scale2 = rng.random(n) < 0.1
    return m, scale2


BY_RANGE: dict[str, tuple[float, float]] = {p.key: (p.lo, p.hi) for p in PARAMETERS}

# --- the vectorised pass -----------------------------------------------------------------------


def vectorised_pass(m: Matrix, scale2: npt.NDArray[np.bool_], tables: ScoreTables) -> Pass:
    sc = score_beds(m, scale2, tables)  # the hub's own pass (alerts.scoring): inputs and fallbacks as the hub has them
    return sc.news2, sc.mews, sc.qsofa


def vectorised_rows(result: Pass) -> list[BedScores]:
    """The vectorised results as one tuple per bed, in the loop's layout (not timed)."""
    n2, mw, qs = result

    def subs(a: npt.NDArray[np.float64]) -> list[tuple[int | None, ...]]:
        return [tuple(None if math.isnan(v) else int(v) for v in row) for row in a.tolist()]

    def totals(a: npt.NDArray[np.float64]) -> list[int | None]:
        return [None if math.isnan(v) else int(v) for v in a.tolist()]

    return list(
        zip(
            subs(n2.subscores), n2.partial.tolist(), totals(n2.total), n2.band.tolist(),
            subs(mw.subscores), mw.partial.tolist(), totals(mw.total), mw.triggered.tolist(),
            subs(qs.subscores), qs.partial.tolist(), totals(qs.total), qs.positive.tolist(),
            strict=True,
        )
    )  # fmt: skip


# --- the per-bed pure-Python loop --------------------------------------------------------------


class _Band:
    """A band table for the loop: bounds in whole units of the chart precision, and scores."""

    __slots__ = ("bounds", "scores")

    def __init__(self, table: BandTable) -> None:
        factor = 10.0**table.precision
        self.bounds = [float(math.floor(b * factor + 0.5)) for b in table.bounds]
        self.scores = list(table.scores)


def _units(x: float, factor: float) -> float:
    """``x`` rounded half up to whole units of ``1/factor``, seeing through float noise like ``alerts.rounding``."""
    scaled = x * factor
    snapped = round(scaled * 1e6) / 1e6
    return math.copysign(math.floor(abs(snapped) + 0.5), snapped)


def _categories(table: CategoryTable) -> dict[float, int]:
    return {float(code): score for code, score in enumerate(table.scores)}


class LoopScorer:
    """NEWS2, MEWS and qSOFA for one bed at a time, in plain Python (no NumPy in the loop)."""

    def __init__(self, tables: ScoreTables) -> None:
        t2, tm, tq = tables.news2, tables.mews, tables.qsofa
        self.n2 = {key: _Band(getattr(t2, key)) for key in
                   ("rr", "spo2_scale1", "spo2_scale2_air", "spo2_scale2_oxygen", "sbp", "hr", "temp")}  # fmt: skip
        self.n2_o2 = _categories(t2.o2)
        self.n2_acvpu = _categories(t2.acvpu)
        self.n2_medium, self.n2_high = t2.medium, t2.high
        self.mw = {key: _Band(getattr(tm, key)) for key in ("sbp", "hr", "rr", "temp")}
        self.mw_avpu = _categories(tm.avpu)
        self.mw_trigger = tm.trigger
        self.q_rr, self.q_sbp = _Band(tq.rr), _Band(tq.sbp)
        self.q_mentation = _categories(tq.mentation)
        self.q_trigger = tq.trigger
        self.temp_factor = 10.0**t2.temp.precision
        assert tm.temp.precision == t2.temp.precision, "one rounding of temperature serves both scores"
        assert all(table.precision == 0 for table in (t2.rr, t2.sbp, t2.hr, t2.spo2_scale1, tm.sbp, tm.hr, tm.rr))

    def run(self, m: Matrix, scale2: npt.NDArray[np.bool_]) -> list[BedScores]:
        rows = m.tolist()  # the hub's matrix as Python floats: part of the loop's cost
        flags = scale2.tolist()
        c = COLUMN
        i_hr, i_pr, i_spo2, i_rr = c["hr"], c["pr"], c["spo2"], c["rr"]
        i_nibp, i_abp, i_temp, i_o2, i_acvpu = c["nibp_sys"], c["abp_sys"], c["temp"], c["o2"], c["acvpu"]
        bed, isnan = self.bed, math.isnan
        out = []
        for row, on_scale2 in zip(rows, flags, strict=True):
            sbp = row[i_nibp]
            if isnan(sbp):
                sbp = row[i_abp]
            hr = row[i_hr]
            if isnan(hr):
                hr = row[i_pr]
            out.append(bed(row[i_rr], row[i_spo2], row[i_o2], sbp, hr, row[i_acvpu], row[i_temp], on_scale2))
        return out

    def bed(
        self, rr: float, spo2: float, o2: float, sbp: float, hr: float, acvpu: float, temp: float, scale2: bool
    ) -> BedScores:
        find, isnan = bisect.bisect_left, math.isnan
        # round each input once; NaN is a missing value
        rr_u = None if isnan(rr) else _units(rr, 1.0)
        spo2_u = None if isnan(spo2) else _units(spo2, 1.0)
        sbp_u = None if isnan(sbp) else _units(sbp, 1.0)
        hr_u = None if isnan(hr) else _units(hr, 1.0)
        temp_u = None if isnan(temp) else _units(temp, self.temp_factor)
        known_acvpu = not isnan(acvpu)

        def band(table: _Band, units: float | None) -> int | None:
            return None if units is None else table.scores[find(table.bounds, units)]

        n2 = self.n2
        if spo2_u is None:
            spo2_score = None
        elif not scale2:
            spo2_score = band(n2["spo2_scale1"], spo2_u)
        elif o2 == O2.OXYGEN:
            spo2_score = band(n2["spo2_scale2_oxygen"], spo2_u)
        elif o2 == O2.AIR:
            spo2_score = band(n2["spo2_scale2_air"], spo2_u)
        else:  # air or oxygen unknown: known only where both tables agree
            on_air = band(n2["spo2_scale2_air"], spo2_u)
            spo2_score = on_air if on_air == band(n2["spo2_scale2_oxygen"], spo2_u) else None
        news = (
            band(n2["rr"], rr_u),
            spo2_score,
            None if isnan(o2) else self.n2_o2[o2],
            band(n2["sbp"], sbp_u),
            band(n2["hr"], hr_u),
            self.n2_acvpu[acvpu] if known_acvpu else None,
            band(n2["temp"], temp_u),
        )
        mw = self.mw
        mew = (
            band(mw["sbp"], sbp_u),
            band(mw["hr"], hr_u),
            band(mw["rr"], rr_u),
            band(mw["temp"], temp_u),
            self.mw_avpu[acvpu] if known_acvpu else None,
        )
        qs = (band(self.q_rr, rr_u), band(self.q_sbp, sbp_u), self.q_mentation[acvpu] if known_acvpu else None)

        n2_partial = sum(s for s in news if s is not None)
        n2_complete = None not in news
        if n2_partial >= self.n2_high:
            n2_band = 3
        elif n2_partial >= self.n2_medium:
            n2_band = 2
        elif 3 in news:
            n2_band = 1
        else:
            n2_band = 0 if n2_complete else -1
        mw_partial = sum(s for s in mew if s is not None)
        q_partial = sum(s for s in qs if s is not None)
        return (
            news, n2_partial, n2_partial if n2_complete else None, n2_band,
            mew, mw_partial, mw_partial if None not in mew else None, mw_partial >= self.mw_trigger,
            qs, q_partial, q_partial if None not in qs else None, q_partial >= self.q_trigger,
        )  # fmt: skip


# --- timing ------------------------------------------------------------------------------------


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up, with the garbage collector paused (as timeit does)."""
    run()
    times = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
    finally:
        if enabled:
            gc.enable()
    return statistics.median(times)


def check_identical(expected: Sequence[BedScores], got: Sequence[BedScores]) -> None:
    if len(expected) != len(got):
        raise SystemExit(f"loop scored {len(got)} beds, vectorised {len(expected)}")
    for i, (a, b) in enumerate(zip(expected, got, strict=True)):
        if a != b:
            raise SystemExit(f"bed {i}: vectorised {a} but loop {b}")


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:,.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beds", type=int, nargs="+", default=[100, 1_000, 10_000])
    ap.add_argument("--repeats", type=int, default=11, help="timed runs per size and method (median reported)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scores", type=Path, default=None, help="score tables YAML (default: the packaged config/scores.yaml)")
    args = ap.parse_args()
    tables = config_files.score_tables(args.scores)
    loop = LoopScorer(tables)
    rng = np.random.default_rng(args.seed)
    print(
        f"Python {platform.python_version()}, NumPy {np.__version__}, {os.cpu_count()} CPUs, "
        f"seed {args.seed}, median of {args.repeats} runs; one pass = NEWS2 + MEWS + qSOFA for every bed\n"
    )
    print("| beds | vectorised pass (ms) | previous vectorised (ms) | per-bed loop (ms) | vectorised µs/bed | loop µs/bed "
          "| speed-up vs loop | previous vs loop | vectorised vs previous |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios: dict[int, float] = {}
    for n in args.beds:
        m, scale2 = make_inputs(n, rng)
        looped = loop.run(m, scale2)
        check_identical(vectorised_rows(vectorised_pass(m, scale2, tables)), looped)
        check_identical(vectorised_rows(score_reference.score_beds(m, scale2, tables)), looped)
        # interleaved, so that a busy machine slows all three alike
        vec, old, py = [], [], []
        for _ in range(3):
            vec.append(median_seconds(lambda: vectorised_pass(m, scale2, tables), args.repeats))  # noqa: B023
            old.append(median_seconds(lambda: score_reference.score_beds(m, scale2, tables), args.repeats))  # noqa: B023
            py.append(median_seconds(lambda: loop.run(m, scale2), args.repeats))  # noqa: B023
        v, o, p = statistics.median(vec), statistics.median(old), statistics.median(py)
        ratios[n] = p / v
        print(
            f"| {n:,} | {fmt_ms(v)} | {fmt_ms(o)} | {fmt_ms(p)} | {v / n * 1e6:.2f} | {p / n * 1e6:.2f} "
            f"| {p / v:.0f}× | {p / o:.0f}× | {o / v:.1f}× |",
            flush=True,
        )
    print("\nAll three methods gave identical sub-scores, totals, bands and triggers for every bed at every size.")
    if AIM_BEDS in ratios:
        verdict = "met" if ratios[AIM_BEDS] >= AIM_RATIO else "NOT met"
        print(f"Aim (vectorised >= {AIM_RATIO:.0f}x faster at {AIM_BEDS:,} beds): {verdict} ({ratios[AIM_BEDS]:.0f}x).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
