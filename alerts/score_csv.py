"""Core of `teleicu score`: add NEWS2, MEWS and qSOFA columns to a CSV of observations, for audit.

The input is a CSV with a header row. Column names are case-sensitive; any
column the tool does not use (e.g. `bed`, `time`, other vocabulary keys)
passes through unchanged. The columns the scores read:

| Input column | Meaning | Accepted values |
|---|---|---|
| `rr` | respiration rate, /min | number, 0 to 150 |
| `spo2` | oxygen saturation, % | number, 0 to 100 |
| `nibp_sys` | systolic BP (non-invasive), mmHg | number, 0 to 350 |
| `abp_sys` | systolic BP (arterial), mmHg; used when `nibp_sys` is blank or unusable | number, -50 to 400 |
| `hr` | heart rate, /min | number, 0 to 350 |
| `pr` | pulse rate, /min; used when `hr` is blank or unusable | number, 0 to 350 |
| `temp` | body temperature, °C | number, 15 to 46 |
| `o2` | air or supplemental oxygen | `air`, `oxygen`, `0` or `1` (any case) |
| `acvpu` | consciousness | `A`, `C`, `V`, `P` or `U` (any case) |
| `scale` | NEWS2 SpO2 scale chosen by a clinician | `1` or `2`; blank means 1 |

NEWS2 uses all of them; MEWS uses `nibp_sys`/`abp_sys`, `hr`/`pr`, `rr`,
`temp` and `acvpu` (scoring AVPU; `C` scores like `V`); qSOFA uses `rr`,
`nibp_sys`/`abp_sys` and `acvpu`.

Any of these may be absent from the header; the matching input is then
missing on every row. A blank cell is a missing input. A cell that cannot be
read (not a number, out of the parameter's range, unknown code) is also
missing for that row, for every score that uses it, and is explained in
`news2_error`; the row is still written and nothing is dropped. A bad `scale`
leaves the NEWS2 SpO2 sub-score missing, since the scale to use is unknown.
On scale 2 an SpO2 of 93 or more scores only when `o2` is known. For every
score, values are rounded half up to the chart's precision before scoring
(see `shared/clinical/scores.md`). The band tables and triggers are the
tables passed in (`teleicu score` passes `config/scores.yaml`, or the file of
`--scores`); the ranges and triggers below are those of the default tables.

The output is every input column in input order, followed by:

| Output column | Content |
|---|---|
| `news2_rr`, `news2_spo2`, `news2_o2`, `news2_sbp`, `news2_hr`, `news2_acvpu`, `news2_temp` | sub-score 0-3, blank when that input is missing |
| `news2_partial` | sum of the available sub-scores |
| `news2_total` | NEWS2 total 0-20; blank when any input is missing |
| `news2_band` | `low`, `low-medium`, `medium`, `high`, or `unknown` (incomplete and not yet proving a band) |
| `news2_incomplete` | `true` when any input is missing, else `false` |
| `news2_missing` | missing components, separated by `;` (e.g. `spo2;temp`) |
| `news2_error` | blank, or why cells could not be read, separated by `; ` (e.g. `spo2: 'abc' is not a number`); covers the inputs of every score |
| `mews_sbp`, `mews_hr`, `mews_rr`, `mews_temp`, `mews_avpu` | MEWS sub-score 0-3, blank when that input is missing |
| `mews_partial` | sum of the available MEWS sub-scores |
| `mews_total` | MEWS total 0-14; blank when any input is missing |
| `mews_triggered` | `true` when the total is 5 or more (the configured trigger), or an incomplete row's partial sum already is; else `false` |
| `mews_incomplete` | `true` when any MEWS input is missing, else `false` |
| `mews_missing` | missing MEWS components, separated by `;` (e.g. `temp;avpu`) |
| `qsofa_rr`, `qsofa_sbp`, `qsofa_mentation` | qSOFA point 0 or 1 (RR ≥ 22, SBP ≤ 100, ACVPU other than A), blank when missing |
| `qsofa_partial` | sum of the available qSOFA points |
| `qsofa_total` | qSOFA total 0-3; blank when any input is missing |
| `qsofa_positive` | `true` when the total is 2 or more, or an incomplete row's partial sum already is; else `false` |
| `qsofa_incomplete` | `true` when any qSOFA input is missing, else `false` |
| `qsofa_missing` | missing qSOFA criteria, separated by `;` (e.g. `rr;mentation`) |

For an incomplete row the band is the lowest band the known sub-scores already
prove (partial 7+ high, 5+ medium, a single 3 low-medium), otherwise unknown.
Likewise an incomplete row counts as MEWS-triggered or qSOFA-positive only when
the known sub-scores already reach the trigger: a `false` with `incomplete`
`true` means "not shown", not "negative".

Limits: at most 1,000,000 data rows and 65,536 characters per line. A file
over a limit, a file without a header row naming at least one known column,
a header naming a column twice or already holding output columns,
or a row with more (non-blank) cells than the header raises `ScoreCsvError`
before anything is written. Blank lines are skipped; a row with fewer cells
than the header is padded with blanks and the shortfall noted in
`news2_error`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import numpy.typing as npt

from alerts import mews as mews_module
from alerts import news2 as news2_module
from alerts import qsofa as qsofa_module
from alerts.mews import MewsResult, mews
from alerts.news2 import BAND_LABELS, News2Result, news2
from alerts.qsofa import QsofaResult, qsofa
from alerts.score_inputs import score_inputs
from alerts.score_tables import ScoreTables
from wire.vocabulary import ACVPU, BY_KEY, O2

MAX_ROWS = 1_000_000
MAX_LINE_CHARS = 64 * 1024

SCALE_COLUMN = "scale"
NUMERIC_COLUMNS: tuple[str, ...] = ("rr", "spo2", "nibp_sys", "abp_sys", "hr", "pr", "temp")
OUTPUT_COLUMNS: tuple[str, ...] = (
    *(f"news2_{name}" for name in news2_module.COMPONENTS),
    "news2_partial",
    "news2_total",
    "news2_band",
    "news2_incomplete",
    "news2_missing",
    "news2_error",
    *(f"mews_{name}" for name in mews_module.COMPONENTS),
    "mews_partial",
    "mews_total",
    "mews_triggered",
    "mews_incomplete",
    "mews_missing",
    *(f"qsofa_{name}" for name in qsofa_module.COMPONENTS),
    "qsofa_partial",
    "qsofa_total",
    "qsofa_positive",
    "qsofa_incomplete",
    "qsofa_missing",
)

_O2_WORDS: dict[str, int] = {"air": O2.AIR, "0": O2.AIR, "oxygen": O2.OXYGEN, "1": O2.OXYGEN}
_ACVPU_LETTERS: dict[str, int] = {level.name.lower(): level.value for level in ACVPU}
_SCALES: dict[str, bool] = {"": False, "1": False, "2": True}
_SUBSCORE_TEXT = np.array(["0", "1", "2", "3", ""], dtype=object)


class ScoreCsvError(ValueError):
    """The CSV as a whole cannot be scored (no header, too big, malformed)."""


@dataclass(frozen=True)
class ScoreCsvReport:
    rows: int  # data rows written
    scored_complete: int  # rows with a complete NEWS2 total
    incomplete: int  # rows with some NEWS2 input missing
    rows_with_errors: int  # rows with a non-blank news2_error


@dataclass(frozen=True)
class _Scores:
    news2: News2Result
    mews: MewsResult
    qsofa: QsofaResult


class _RowErrors:
    """Error messages for the few rows that have any, by row index."""

    def __init__(self) -> None:
        self.by_row: dict[int, list[str]] = {}

    def add(self, row: int, message: str) -> None:
        self.by_row.setdefault(row, []).append(message)

    def text(self, row: int) -> str:
        return "; ".join(self.by_row.get(row, ()))


def score_csv(src: TextIO, dst: TextIO, *, tables: ScoreTables) -> ScoreCsvReport:
    """Read observations from ``src``, write them with NEWS2, MEWS and qSOFA columns to ``dst``.

    ``tables`` are the score tables to use (``teleicu score`` loads ``config/scores.yaml``
    unless given ``--scores``). Everything is read and
    checked before anything is written, so a ``ScoreCsvError`` leaves ``dst``
    untouched.
    """
    header, rows, errors = _read(src)
    position = {name.strip(): i for i, name in enumerate(header)}
    scores = _score(rows, position, errors, tables)
    _write(dst, header, rows, scores, errors)
    incomplete = int(scores.news2.incomplete.sum())
    return ScoreCsvReport(
        rows=len(rows),
        scored_complete=len(rows) - incomplete,
        incomplete=incomplete,
        rows_with_errors=len(errors.by_row),
    )


def _lines(src: TextIO) -> Iterator[str]:
    """Physical lines of ``src``, refusing one longer than the limit without reading it whole."""
    number = 0
    while line := src.readline(MAX_LINE_CHARS + 2):
        number += 1
        if len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
            raise ScoreCsvError(f"line {number} is longer than {MAX_LINE_CHARS} characters")
        yield line


def _read(src: TextIO) -> tuple[list[str], list[list[str]], _RowErrors]:
    reader = csv.reader(_lines(src))
    errors = _RowErrors()
    try:
        header = next((row for row in reader if row), None)
        if header is None:
            raise ScoreCsvError("the CSV is empty: expected a header row naming columns such as rr, spo2, hr")
        header[0] = header[0].removeprefix("\ufeff")
        _check_header(header)
        width = len(header)
        rows: list[list[str]] = []
        for row in reader:
            if not row:
                continue
            if len(rows) == MAX_ROWS:
                raise ScoreCsvError(f"more than {MAX_ROWS} data rows; split the file")
            if len(row) > width:
                if any(cell.strip() for cell in row[width:]):
                    raise ScoreCsvError(
                        f"line {reader.line_num}: {len(row)} cells, but the header names only {width} columns"
                    )
                row = row[:width]
            elif len(row) < width:
                errors.add(len(rows), f"row has {len(row)} of {width} cells; the rest are taken as blank")
                row.extend([""] * (width - len(row)))
            rows.append(row)
    except csv.Error as exc:
        raise ScoreCsvError(f"line {reader.line_num}: not valid CSV: {exc}") from exc
    return header, rows, errors


def _check_header(header: list[str]) -> None:
    names = [name.strip() for name in header]
    known = set(BY_KEY) | {SCALE_COLUMN}
    if not known.intersection(names):
        raise ScoreCsvError(
            f"no known column in the header {header[:8]!r}: the first row must name columns "
            f"such as rr, spo2, nibp_sys, hr, temp, o2, acvpu"
        )
    seen: set[str] = set()
    for name in names:
        if name in known and name in seen:
            raise ScoreCsvError(f"the header names column {name!r} twice")
        seen.add(name)
    clash = [name for name in names if name in OUTPUT_COLUMNS]
    if clash:
        raise ScoreCsvError(f"the input already has output columns {clash}; score the original file instead")


def _score(rows: list[list[str]], position: dict[str, int], errors: _RowErrors, tables: ScoreTables) -> _Scores:
    def cells(name: str) -> list[str] | None:
        column = position.get(name)
        return None if column is None else [row[column] for row in rows]

    n = len(rows)
    numbers = {name: _parse_numbers(name, cells(name), n, errors) for name in NUMERIC_COLUMNS}
    o2 = _parse_codes("o2", cells("o2"), n, errors, _O2_WORDS, "is not air, oxygen, 0 or 1")
    acvpu = _parse_codes("acvpu", cells("acvpu"), n, errors, _ACVPU_LETTERS, "is not one of A, C, V, P, U")
    scale2, scale_known = _parse_scale(cells(SCALE_COLUMN), n, errors)
    numbers["spo2"] = np.where(scale_known, numbers["spo2"], np.nan)
    x = score_inputs(numbers | {"o2": o2, "acvpu": acvpu})  # HR from pulse rate, SBP from ABP, as the hub does
    return _Scores(
        news2=news2(rr=x["rr"], spo2=x["spo2"], o2=x["o2"], sbp=x["sbp"], hr=x["hr"], acvpu=x["acvpu"], temp=x["temp"],
                    scale2=scale2, tables=tables.news2),  # fmt: skip
        mews=mews(sbp=x["sbp"], hr=x["hr"], rr=x["rr"], temp=x["temp"], acvpu=x["acvpu"], tables=tables.mews),
        qsofa=qsofa(rr=x["rr"], sbp=x["sbp"], acvpu=x["acvpu"], tables=tables.qsofa),
    )


def _parse_numbers(name: str, cells: list[str] | None, n: int, errors: _RowErrors) -> npt.NDArray[np.float64]:
    values = np.full(n, np.nan)
    if cells is None:
        return values
    for i, cell in enumerate(cells):
        text = cell.strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            errors.add(i, f"{name}: {cell!r} is not a number")
            continue
        if not math.isfinite(value):
            errors.add(i, f"{name}: {cell!r} is not a finite number")
            continue
        values[i] = value
    parameter = BY_KEY[name]
    outside = (values < parameter.lo) | (values > parameter.hi)
    for row in np.flatnonzero(outside).tolist():
        errors.add(
            row, f"{name}: {cells[row].strip()} is outside {parameter.lo:g} to {parameter.hi:g} {parameter.ucum}"
        )
    values[outside] = np.nan
    return values


def _parse_codes(
    name: str, cells: list[str] | None, n: int, errors: _RowErrors, codes: dict[str, int], complaint: str
) -> npt.NDArray[np.float64]:
    values = np.full(n, np.nan)
    if cells is None:
        return values
    for i, cell in enumerate(cells):
        text = cell.strip().lower()
        if not text:
            continue
        code = codes.get(text)
        if code is None:
            errors.add(i, f"{name}: {cell!r} {complaint}")
        else:
            values[i] = code
    return values


def _parse_scale(
    cells: list[str] | None, n: int, errors: _RowErrors
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Whether each row is on scale 2, and whether its scale is known at all."""
    scale2 = np.zeros(n, dtype=np.bool_)
    known = np.ones(n, dtype=np.bool_)
    if cells is None:
        return scale2, known
    for i, cell in enumerate(cells):
        choice = _SCALES.get(cell.strip())
        if choice is None:
            errors.add(i, f"scale: {cell!r} is not 1 or 2, so spo2 is not scored")
            known[i] = False
        else:
            scale2[i] = choice
    return scale2, known


def _write(dst: TextIO, header: list[str], rows: list[list[str]], scores: _Scores, errors: _RowErrors) -> None:
    news2_columns = _news2_columns(scores.news2)
    score_columns = [*_mews_columns(scores.mews), *_qsofa_columns(scores.qsofa)]
    writer = csv.writer(dst, lineterminator="\n")
    writer.writerow([*header, *OUTPUT_COLUMNS])
    for i, (row, before, after) in enumerate(
        zip(rows, zip(*news2_columns, strict=True), zip(*score_columns, strict=True), strict=True)
    ):
        writer.writerow([*row, *before, errors.text(i), *after])


def _news2_columns(result: News2Result) -> list[list[str]]:
    """Every ``news2_`` output column but ``news2_error``, as text, one list per column."""
    band = [BAND_LABELS[code] for code in result.band.tolist()]
    return [
        *_subscore_columns(result.subscores),
        _integers(result.partial),
        _totals(result.total),
        band,
        _booleans(result.incomplete),
        _missing(result.subscores, news2_module.COMPONENTS),
    ]


def _mews_columns(result: MewsResult) -> list[list[str]]:
    return [
        *_subscore_columns(result.subscores),
        _integers(result.partial),
        _totals(result.total),
        _booleans(result.triggered),
        _booleans(result.incomplete),
        _missing(result.subscores, mews_module.COMPONENTS),
    ]


def _qsofa_columns(result: QsofaResult) -> list[list[str]]:
    return [
        *_subscore_columns(result.subscores),
        _integers(result.partial),
        _totals(result.total),
        _booleans(result.positive),
        _booleans(result.incomplete),
        _missing(result.subscores, qsofa_module.COMPONENTS),
    ]


def _subscore_columns(subscores: npt.NDArray[np.float64]) -> list[list[str]]:
    """One text column per sub-score column: ``0``..``3``, blank when missing."""
    gaps = np.isnan(subscores)
    indices = np.where(gaps, len(_SUBSCORE_TEXT) - 1, np.nan_to_num(subscores)).astype(np.intp)
    return [_SUBSCORE_TEXT[indices[:, j]].tolist() for j in range(subscores.shape[1])]


def _integers(values: npt.NDArray[np.int64]) -> list[str]:
    return [str(v) for v in values.tolist()]


def _totals(values: npt.NDArray[np.float64]) -> list[str]:
    return ["" if math.isnan(t) else str(int(t)) for t in values.tolist()]


def _booleans(values: npt.NDArray[np.bool_]) -> list[str]:
    return np.where(values, "true", "false").tolist()


def _missing(subscores: npt.NDArray[np.float64], components: tuple[str, ...]) -> list[str]:
    """Names of the missing components of each row, separated by ``;``."""
    gaps = np.isnan(subscores)
    pattern = (gaps * (1 << np.arange(len(components)))).sum(axis=1)
    names = np.array(
        [";".join(c for j, c in enumerate(components) if bits >> j & 1) for bits in range(1 << len(components))],
        dtype=object,
    )
    return names[pattern].tolist()
