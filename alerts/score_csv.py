"""Core of `teleicu score`: add NEWS2 columns to a CSV of observations, for audit.

The input is a CSV with a header row. Column names are case-sensitive; any
column the tool does not use (e.g. `bed`, `time`, other vocabulary keys)
passes through unchanged. The columns NEWS2 reads:

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
| `scale` | SpO2 scale chosen by a clinician | `1` or `2`; blank means 1 |

Any of these may be absent from the header; the matching input is then
missing on every row. A blank cell is a missing input. A cell that cannot be
read (not a number, out of the parameter's range, unknown code) is also
missing for that row and is explained in `news2_error`; the row is still
written and nothing is dropped. A bad `scale` leaves the SpO2 sub-score
missing, since the scale to use is unknown. On scale 2 an SpO2 of 93 or more
scores only when `o2` is known. Values are rounded half up to the
chart's precision before scoring (see `shared/clinical/scores.md`).

The output is every input column in input order, followed by:

| Output column | Content |
|---|---|
| `news2_rr`, `news2_spo2`, `news2_o2`, `news2_sbp`, `news2_hr`, `news2_acvpu`, `news2_temp` | sub-score 0-3, blank when that input is missing |
| `news2_partial` | sum of the available sub-scores |
| `news2_total` | NEWS2 total 0-20; blank when any input is missing |
| `news2_band` | `low`, `low-medium`, `medium`, `high`, or `unknown` (incomplete and not yet proving a band) |
| `news2_incomplete` | `true` when any input is missing, else `false` |
| `news2_missing` | missing components, separated by `;` (e.g. `spo2;temp`) |
| `news2_error` | blank, or why cells could not be read, separated by `; ` (e.g. `spo2: 'abc' is not a number`) |

For an incomplete row the band is the lowest band the known sub-scores already
prove (partial 7+ high, 5+ medium, a single 3 low-medium), otherwise unknown.

Limits: at most 1,000,000 data rows and 65,536 characters per line. A file
over a limit, a file without a header row naming at least one known column,
a header naming a column twice or already holding `news2_` output columns,
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

from alerts.news2 import BAND_LABELS, COMPONENTS, News2Result, news2
from wire.vocabulary import ACVPU, BY_KEY, O2

MAX_ROWS = 1_000_000
MAX_LINE_CHARS = 64 * 1024

SCALE_COLUMN = "scale"
NUMERIC_COLUMNS: tuple[str, ...] = ("rr", "spo2", "nibp_sys", "abp_sys", "hr", "pr", "temp")
OUTPUT_COLUMNS: tuple[str, ...] = (
    *(f"news2_{name}" for name in COMPONENTS),
    "news2_partial",
    "news2_total",
    "news2_band",
    "news2_incomplete",
    "news2_missing",
    "news2_error",
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
    incomplete: int  # rows with some input missing
    rows_with_errors: int  # rows with a non-blank news2_error


class _RowErrors:
    """Error messages for the few rows that have any, by row index."""

    def __init__(self) -> None:
        self.by_row: dict[int, list[str]] = {}

    def add(self, row: int, message: str) -> None:
        self.by_row.setdefault(row, []).append(message)

    def text(self, row: int) -> str:
        return "; ".join(self.by_row.get(row, ()))


def score_csv(src: TextIO, dst: TextIO) -> ScoreCsvReport:
    """Read observations from ``src``, write them with NEWS2 columns to ``dst``.

    Everything is read and checked before anything is written, so a
    ``ScoreCsvError`` leaves ``dst`` untouched.
    """
    header, rows, errors = _read(src)
    position = {name.strip(): i for i, name in enumerate(header)}
    result = _score(rows, position, errors)
    _write(dst, header, rows, result, errors)
    incomplete = int(result.incomplete.sum())
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


def _score(rows: list[list[str]], position: dict[str, int], errors: _RowErrors) -> News2Result:
    def cells(name: str) -> list[str] | None:
        column = position.get(name)
        return None if column is None else [row[column] for row in rows]

    n = len(rows)
    numbers = {name: _parse_numbers(name, cells(name), n, errors) for name in NUMERIC_COLUMNS}
    o2 = _parse_codes("o2", cells("o2"), n, errors, _O2_WORDS, "is not air, oxygen, 0 or 1")
    acvpu = _parse_codes("acvpu", cells("acvpu"), n, errors, _ACVPU_LETTERS, "is not one of A, C, V, P, U")
    scale2, scale_known = _parse_scale(cells(SCALE_COLUMN), n, errors)
    spo2 = np.where(scale_known, numbers["spo2"], np.nan)
    return news2(
        rr=numbers["rr"],
        spo2=spo2,
        o2=o2,
        sbp=_first_present(numbers["nibp_sys"], numbers["abp_sys"]),
        hr=_first_present(numbers["hr"], numbers["pr"]),
        acvpu=acvpu,
        temp=numbers["temp"],
        scale2=scale2,
    )


def _first_present(primary: npt.NDArray[np.float64], fallback: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(np.isnan(primary), fallback, primary)


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


def _write(dst: TextIO, header: list[str], rows: list[list[str]], result: News2Result, errors: _RowErrors) -> None:
    columns = _output_columns(result)
    writer = csv.writer(dst, lineterminator="\n")
    writer.writerow([*header, *OUTPUT_COLUMNS])
    for i, (row, extra) in enumerate(zip(rows, zip(*columns, strict=True), strict=True)):
        writer.writerow([*row, *extra, errors.text(i)])


def _output_columns(result: News2Result) -> list[list[str]]:
    """Every output column but ``news2_error``, as text, one list per column."""
    gaps = np.isnan(result.subscores)
    indices = np.where(gaps, len(_SUBSCORE_TEXT) - 1, np.nan_to_num(result.subscores)).astype(np.intp)
    subscores = [_SUBSCORE_TEXT[indices[:, j]].tolist() for j in range(len(COMPONENTS))]
    partial = [str(p) for p in result.partial.tolist()]
    total = ["" if math.isnan(t) else str(int(t)) for t in result.total.tolist()]
    band = [BAND_LABELS[code] for code in result.band.tolist()]
    incomplete = np.where(result.incomplete, "true", "false").tolist()
    pattern = (gaps * (1 << np.arange(len(COMPONENTS)))).sum(axis=1)
    names = np.array(
        [";".join(c for j, c in enumerate(COMPONENTS) if bits >> j & 1) for bits in range(1 << len(COMPONENTS))],
        dtype=object,
    )
    missing = names[pattern].tolist()
    return [*subscores, partial, total, band, incomplete, missing]
