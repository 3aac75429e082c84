"""A registry CSV file (a whole district, say), checked row by row before anything is stored.

The header names the columns; ``facility_id`` and the facility's fields (``fields.FACILITY_FIELDS`` less
``capacity``) are columns of their own, ``specialities`` and ``services`` are codes separated by ``;``, and each bed
type's capacity is a pair of columns, ``<type>_licensed`` and ``<type>_staffed`` (both filled or both empty). Every
row is checked; any error refuses the whole file and each error names its line (the header is line 1) and field.
At most ``MAX_BYTES`` and ``MAX_ROWS``; UTF-8, a byte-order mark allowed.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from records_bridge.services.facility import fields
from records_bridge.services.facility.fields import FieldError
from records_bridge.services.facility.vocab import BED_TYPES

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
MAX_ERRORS = 1000
CAPACITY_COLUMNS = tuple(f"{t}_{k}" for t in BED_TYPES for k in ("licensed", "staffed"))
COLUMNS = ("facility_id", *(f for f in fields.FACILITY_FIELDS if f != "capacity"), *CAPACITY_COLUMNS)
LIST_COLUMNS = ("specialities", "services")
NUMBER_COLUMNS = ("lat", "lon")


class CsvRefused(ValueError):
    """The file as a whole, or some of its rows, are wrong: ``errors`` is ``[{"line", "field", "detail"}, ...]``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} error(s); first: line {errors[0]['line']}, {errors[0]['field']}: {errors[0]['detail']}")
        self.errors = errors


def parse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Every row as (facility_id, checked fields); ``CsvRefused`` naming every line and field that is wrong."""
    if len(data) > MAX_BYTES:
        raise CsvRefused([{"line": 0, "field": "", "detail": f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB: split it by district"}])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvRefused([{"line": line, "field": "", "detail": "not UTF-8 text: save the file as CSV UTF-8"}]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CsvRefused([{"line": 1, "field": "", "detail": "the file is empty: it needs a header line"}]) from None
    except csv.Error as exc:
        raise CsvRefused([{"line": 1, "field": "", "detail": f"not CSV: {exc}"}]) from None
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in ("facility_id", *fields.REQUIRED) if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        detail = (f"unknown column {unknown[0][:40]!r}" if unknown else f"missing column {missing[0]!r}" if missing else "a column is named twice")
        raise CsvRefused([{"line": 1, "field": unknown[0][:40] if unknown else missing[0] if missing else "", "detail": f"{detail}; columns: {', '.join(COLUMNS)}"}])
    rows, errors, seen = [], [], {}
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append({"line": reader.line_num, "field": "", "detail": f"not CSV: {exc}"})
            break
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(rows) + len(errors) >= MAX_ROWS:
            raise CsvRefused([{"line": line, "field": "", "detail": f"more than {MAX_ROWS} rows: split the file"}])
        if len(values) != len(header):
            errors.append({"line": line, "field": "", "detail": f"{len(values)} values for {len(header)} columns"})
            continue
        try:
            facility_id, checked = _row(dict(zip(header, (v.strip() for v in values), strict=True)))
        except FieldError as exc:
            errors.append({"line": line, "field": exc.field, "detail": exc.detail})
            continue
        if facility_id in seen:
            errors.append({"line": line, "field": "facility_id", "detail": f"{facility_id} is on line {seen[facility_id]} too"})
            continue
        seen[facility_id] = line
        rows.append((facility_id, checked))
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise CsvRefused(errors)
    if not rows:
        raise CsvRefused([{"line": 2, "field": "", "detail": "the file has a header but no facilities"}])
    return rows


def _row(raw: dict[str, str]) -> tuple[str, dict[str, Any]]:
    facility_id = fields.facility_id(raw.pop("facility_id"))
    cap: dict[str, dict[str, int]] = {}
    for bed_type in BED_TYPES:
        lic, staffed = raw.pop(f"{bed_type}_licensed", ""), raw.pop(f"{bed_type}_staffed", "")
        if not lic and not staffed:
            continue
        if not lic or not staffed:
            raise FieldError(f"{bed_type}_{'licensed' if not lic else 'staffed'}", "give licensed and staffed beds together")
        cap[bed_type] = {"licensed": _int(f"{bed_type}_licensed", lic), "staffed": _int(f"{bed_type}_staffed", staffed)}
    body: dict[str, Any] = {k: (v or None) for k, v in raw.items()}
    for col in LIST_COLUMNS:
        body[col] = [s.strip() for s in (raw.get(col) or "").split(";") if s.strip()]
    try:
        checked = fields.facility(body | {"capacity": cap})
    except FieldError as exc:
        if exc.field.startswith("capacity."):  # name the CSV's column: capacity.icu.staffed -> icu_staffed
            raise FieldError("_".join(exc.field.split(".")[1:]), exc.detail) from None
        raise
    return facility_id, checked


def _int(field: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 6:
        raise FieldError(field, "must be a whole number of beds")
    return int(value)
