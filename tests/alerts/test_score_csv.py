"""Tests for alerts.score_csv, the core of ``teleicu score``. Expected scores are worked by hand."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml

from alerts import score_csv as score_csv_module
from alerts.score_csv import OUTPUT_COLUMNS, ScoreCsvError, ScoreCsvReport, score_csv
from alerts.score_tables import load_score_tables
from config_support import default_raw, score_tables


def run(text: str) -> tuple[list[dict[str, str]], ScoreCsvReport]:
    dst = io.StringIO()
    report = score_csv(io.StringIO(text, newline=""), dst, tables=score_tables())
    return list(csv.DictReader(io.StringIO(dst.getvalue(), newline=""))), report


def news2_of(row: dict[str, str]) -> dict[str, str]:
    return {key[len("news2_") :]: value for key, value in row.items() if key.startswith("news2_")}


def mews_of(row: dict[str, str]) -> dict[str, str]:
    return {key[len("mews_") :]: value for key, value in row.items() if key.startswith("mews_")}


def qsofa_of(row: dict[str, str]) -> dict[str, str]:
    return {key[len("qsofa_") :]: value for key, value in row.items() if key.startswith("qsofa_")}


def test_round_trip() -> None:
    src = (
        "bed,time,rr,spo2,o2,nibp_sys,hr,temp,acvpu,scale,note\n"
        '1,08:00,16,98,air,120,80,37.0,A,,"quiet, settled"\n'
        "2,08:05,18,90,oxygen,100,100,36.5,V,1,\n"
        "3,08:10,7,abc,Oxygen,85,140,34.5,u,2,\n"
        "4,08:15,22,97,OXYGEN,120,80,37.0,A,2,scale 2 on oxygen\n"
    )
    # MEWS by hand (sbp, hr, rr, temp, avpu): row 1: rr 16 -> 1; row 2: sbp 100 -> 1, rr 18 -> 1, V -> 1;
    # row 3: sbp 85 -> 1, hr 140 -> 3, rr 7 -> 2, temp 34.5 -> 2, U -> 3 (spo2 is not a MEWS input); row 4: rr 22 -> 2.
    # qSOFA (rr >= 22, sbp <= 100, not A): row 2: sbp, V; row 3: sbp, U; row 4: rr.
    expected = (
        "bed,time,rr,spo2,o2,nibp_sys,hr,temp,acvpu,scale,note,"
        "news2_rr,news2_spo2,news2_o2,news2_sbp,news2_hr,news2_acvpu,news2_temp,"
        "news2_partial,news2_total,news2_band,news2_incomplete,news2_missing,news2_error,"
        "mews_sbp,mews_hr,mews_rr,mews_temp,mews_avpu,mews_partial,mews_total,mews_triggered,mews_incomplete,"
        "mews_missing,qsofa_rr,qsofa_sbp,qsofa_mentation,qsofa_partial,qsofa_total,qsofa_positive,"
        "qsofa_incomplete,qsofa_missing\n"
        '1,08:00,16,98,air,120,80,37.0,A,,"quiet, settled",0,0,0,0,0,0,0,0,0,low,false,,,'
        "0,0,1,0,0,1,1,false,false,,0,0,0,0,0,false,false,\n"
        "2,08:05,18,90,oxygen,100,100,36.5,V,1,,0,3,2,2,1,3,0,11,11,high,false,,,"
        "1,0,1,0,1,3,3,false,false,,0,1,1,2,2,true,false,\n"
        "3,08:10,7,abc,Oxygen,85,140,34.5,u,2,,3,,2,3,3,3,3,17,,high,true,spo2,spo2: 'abc' is not a number,"
        "1,3,2,2,3,11,11,true,false,,0,1,1,2,2,true,false,\n"
        "4,08:15,22,97,OXYGEN,120,80,37.0,A,2,scale 2 on oxygen,2,3,2,0,0,0,0,7,7,high,false,,,"
        "0,0,2,0,0,2,2,false,false,,1,0,0,1,1,false,false,\n"
    )
    dst = io.StringIO()
    report = score_csv(io.StringIO(src, newline=""), dst, tables=score_tables())
    assert dst.getvalue() == expected
    assert report == ScoreCsvReport(rows=4, scored_complete=3, incomplete=1, rows_with_errors=1)


def test_output_columns() -> None:
    assert OUTPUT_COLUMNS == (
        "news2_rr", "news2_spo2", "news2_o2", "news2_sbp", "news2_hr", "news2_acvpu", "news2_temp",
        "news2_partial", "news2_total", "news2_band", "news2_incomplete", "news2_missing", "news2_error",
        "mews_sbp", "mews_hr", "mews_rr", "mews_temp", "mews_avpu",
        "mews_partial", "mews_total", "mews_triggered", "mews_incomplete", "mews_missing",
        "qsofa_rr", "qsofa_sbp", "qsofa_mentation",
        "qsofa_partial", "qsofa_total", "qsofa_positive", "qsofa_incomplete", "qsofa_missing",
    )  # fmt: skip


def test_crlf_input_and_rounding() -> None:
    rows, _ = run("rr,spo2,o2,nibp_sys,hr,temp,acvpu\r\n8.5,95.5,air,90.5,90.5,35.05,A\r\n")
    # 8.5 -> 9 -> 1; 95.5 -> 96 -> 0; 90.5 -> 91 -> 2; 90.5 -> 91 -> 1; 35.05 -> 35.1 -> 1
    assert news2_of(rows[0]) | {"error": ""} == {
        "rr": "1", "spo2": "0", "o2": "0", "sbp": "2", "hr": "1", "acvpu": "0", "temp": "1",
        "partial": "5", "total": "5", "band": "medium", "incomplete": "false", "missing": "", "error": "",
    }  # fmt: skip


def test_fallback_columns() -> None:
    rows, report = run(
        "rr,spo2,o2,nibp_sys,abp_sys,hr,pr,temp,acvpu\n"
        "16,98,air,,95,,45,37.0,A\n"  # sbp from abp_sys 95 -> 2; hr from pr 45 -> 1
        "16,98,air,120,95,80,45,37.0,A\n"  # primary columns win: 0, 0
        "16,98,air,x,95,,,37.0,A\n"  # unreadable nibp_sys: abp_sys used, error kept; hr missing
    )
    assert [(r["news2_sbp"], r["news2_hr"], r["news2_total"]) for r in rows] == [
        ("2", "1", "3"),
        ("0", "0", "0"),
        ("2", "", ""),
    ]
    assert rows[2]["news2_error"] == "nibp_sys: 'x' is not a number"
    assert rows[2]["news2_missing"] == "hr"
    assert report == ScoreCsvReport(rows=3, scored_complete=2, incomplete=1, rows_with_errors=1)


def test_missing_header_columns_are_missing_inputs() -> None:
    rows, report = run("bed,rr,hr\nA1,25,131\nA2,16,80\n")
    assert news2_of(rows[0]) == {
        "rr": "3", "spo2": "", "o2": "", "sbp": "", "hr": "3", "acvpu": "", "temp": "",
        "partial": "6", "total": "", "band": "medium", "incomplete": "true",
        "missing": "spo2;o2;sbp;acvpu;temp", "error": "",
    }  # fmt: skip
    assert rows[1]["news2_band"] == "unknown"
    assert rows[1]["news2_partial"] == "0"
    assert report == ScoreCsvReport(rows=2, scored_complete=0, incomplete=2, rows_with_errors=0)


@pytest.mark.parametrize(
    ("cell", "o2_score", "error"),
    [
        ("air", "0", ""),
        ("AIR", "0", ""),
        (" Oxygen ", "2", ""),
        ("0", "0", ""),
        ("1", "2", ""),
        ("", "", ""),
        ("O2", "", "o2: 'O2' is not air, oxygen, 0 or 1"),
        ("2", "", "o2: '2' is not air, oxygen, 0 or 1"),
    ],
)
def test_o2_cell(cell: str, o2_score: str, error: str) -> None:
    rows, _ = run(f"rr,o2\n16,{cell}\n")
    assert rows[0]["news2_o2"] == o2_score
    assert rows[0]["news2_error"] == error


@pytest.mark.parametrize(
    ("cell", "acvpu_score", "error"),
    [
        ("A", "0", ""),
        ("a", "0", ""),
        ("C", "3", ""),
        ("v", "3", ""),
        ("P", "3", ""),
        ("u", "3", ""),
        ("", "", ""),
        ("X", "", "acvpu: 'X' is not one of A, C, V, P, U"),
        ("alert", "", "acvpu: 'alert' is not one of A, C, V, P, U"),
    ],
)
def test_acvpu_cell(cell: str, acvpu_score: str, error: str) -> None:
    rows, _ = run(f"rr,acvpu\n16,{cell}\n")
    assert rows[0]["news2_acvpu"] == acvpu_score
    assert rows[0]["news2_error"] == error


@pytest.mark.parametrize(
    ("scale", "o2", "spo2_score", "error"),
    [
        ("", "oxygen", "1", ""),  # blank scale is scale 1: 95 -> 1
        ("1", "oxygen", "1", ""),
        ("2", "oxygen", "2", ""),  # scale 2, 95 on oxygen -> 2
        ("2", "air", "0", ""),
        ("2", "", "", ""),  # scale 2 at 95 needs air/oxygen
        ("3", "air", "", "scale: '3' is not 1 or 2, so spo2 is not scored"),
        ("two", "air", "", "scale: 'two' is not 1 or 2, so spo2 is not scored"),
    ],
)
def test_scale_cell(scale: str, o2: str, spo2_score: str, error: str) -> None:
    rows, _ = run(f"spo2,o2,scale\n95,{o2},{scale}\n")
    assert rows[0]["news2_spo2"] == spo2_score
    assert rows[0]["news2_error"] == error


@pytest.mark.parametrize(
    ("header", "cell", "error"),
    [
        ("spo2", "150", "spo2: 150 is outside 0 to 100 %"),
        ("rr", "-1", "rr: -1 is outside 0 to 150 /min"),
        ("temp", "98.6", "temp: 98.6 is outside 15 to 46 Cel"),
        ("rr", "nan", "rr: 'nan' is not a finite number"),
        ("hr", "inf", "hr: 'inf' is not a finite number"),
        ("temp", "37,5", None),  # quoted below, so one cell
        ("rr", "sixteen", "rr: 'sixteen' is not a number"),
    ],
)
def test_bad_numbers(header: str, cell: str, error: str | None) -> None:
    rows, report = run(f'bed,{header}\n1,"{cell}"\n')
    assert rows[0][f"news2_{header}"] == ""
    assert rows[0]["news2_error"] == (error or f"{header}: '{cell}' is not a number")
    assert rows[0][header] == cell  # the input cell passes through unchanged
    assert report.rows_with_errors == 1


def test_several_errors_in_one_row() -> None:
    rows, _ = run("rr,spo2,acvpu\nfast,low,Z\n")
    assert rows[0]["news2_error"] == (
        "rr: 'fast' is not a number; spo2: 'low' is not a number; acvpu: 'Z' is not one of A, C, V, P, U"
    )
    assert rows[0]["news2_missing"] == "rr;spo2;o2;sbp;hr;acvpu;temp"


def test_whitespace_around_numbers() -> None:
    rows, _ = run("rr,hr\n 25 ,\t131\n")
    assert (rows[0]["news2_rr"], rows[0]["news2_hr"]) == ("3", "3")


def test_header_only() -> None:
    dst = io.StringIO()
    report = score_csv(io.StringIO("bed,rr\n"), dst, tables=score_tables())
    assert dst.getvalue() == "bed,rr," + ",".join(OUTPUT_COLUMNS) + "\n"
    assert report == ScoreCsvReport(rows=0, scored_complete=0, incomplete=0, rows_with_errors=0)


def test_byte_order_mark_is_dropped() -> None:
    rows, _ = run("\ufeffrr,hr\n25,131\n")
    assert rows[0]["rr"] == "25"
    assert rows[0]["news2_rr"] == "3"


def test_blank_lines_are_skipped() -> None:
    rows, report = run("\nrr\n\n16\n\n25\n")
    assert [r["news2_rr"] for r in rows] == ["0", "3"]
    assert report.rows == 2


def test_short_row_is_padded_and_noted() -> None:
    rows, report = run("bed,rr,hr\n1,25\n")
    assert rows[0]["hr"] == ""
    assert rows[0]["news2_rr"] == "3"
    assert rows[0]["news2_error"] == "row has 2 of 3 cells; the rest are taken as blank"
    assert report.rows_with_errors == 1


def test_trailing_blank_cells_are_trimmed() -> None:
    dst = io.StringIO()
    score_csv(io.StringIO("bed,rr\n1,25,,\n"), dst, tables=score_tables())
    assert dst.getvalue().splitlines()[1].startswith("1,25,3,")


def test_line_at_the_limit_is_accepted() -> None:
    note = "x" * (score_csv_module.MAX_LINE_CHARS - len("16,"))
    rows, _ = run(f"rr,note\n16,{note}\n")
    assert rows[0]["note"] == note


# --- errors for the whole file -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("16,98,air\n25,90,oxygen\n", "no known column"),
        ("Bed,RR,HR\n1,16,80\n", "no known column"),  # names are case-sensitive
        ("bed,time\n1,08:00\n", "no known column"),
        ("rr,hr,rr\n16,80,17\n", "names column 'rr' twice"),
        ("rr,news2_total\n16,0\n", "already has output columns"),
        ("bed,rr\n1,16\n2,25,oops\n", "line 3: 3 cells, but the header names only 2 columns"),
        ("rr\n" + "x" * (64 * 1024 + 1) + "\n", "line 2 is longer than 65536 characters"),
        ("x" * (64 * 1024 + 1), "line 1 is longer than 65536 characters"),
        ('rr,note\n16,"' + ("y" * 60000 + "\n") * 3 + '"\n', "not valid CSV"),
    ],
)
def test_file_errors(text: str, message: str) -> None:
    dst = io.StringIO()
    with pytest.raises(ScoreCsvError, match=message):
        score_csv(io.StringIO(text, newline=""), dst, tables=score_tables())
    assert dst.getvalue() == ""  # nothing is written before the whole file is checked


def test_row_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert score_csv_module.MAX_ROWS == 1_000_000
    monkeypatch.setattr(score_csv_module, "MAX_ROWS", 3)
    _, report = run("rr\n1\n2\n3\n")
    assert report.rows == 3
    dst = io.StringIO()
    with pytest.raises(ScoreCsvError, match="more than 3 data rows"):
        score_csv(io.StringIO("rr\n1\n2\n3\n4\n"), dst, tables=score_tables())
    assert dst.getvalue() == ""


def test_error_is_a_value_error() -> None:
    assert issubclass(ScoreCsvError, ValueError)


# --- MEWS and qSOFA columns ------------------------------------------------------------------


def test_mews_and_qsofa_rounding_at_edges() -> None:
    rows, _ = run(
        "rr,nibp_sys,hr,temp,acvpu\n"
        "21.5,100.5,129.5,38.45,C\n"  # rr 22, sbp 101, hr 130, temp 38.5
        "21.49,100.49,129.49,38.44,A\n"  # rr 21, sbp 100, hr 129, temp 38.4
    )
    # MEWS: sbp 101 -> 0, hr 130 -> 3, rr 22 -> 2, temp 38.5 -> 2, C -> 1
    assert mews_of(rows[0]) == {
        "sbp": "0", "hr": "3", "rr": "2", "temp": "2", "avpu": "1",
        "partial": "8", "total": "8", "triggered": "true", "incomplete": "false", "missing": "",
    }  # fmt: skip
    # qSOFA: rr 22 -> 1, sbp 101 -> 0, C -> 1
    assert qsofa_of(rows[0]) == {
        "rr": "1", "sbp": "0", "mentation": "1",
        "partial": "2", "total": "2", "positive": "true", "incomplete": "false", "missing": "",
    }  # fmt: skip
    # MEWS: sbp 100 -> 1, hr 129 -> 2, rr 21 -> 2, temp 38.4 -> 0, A -> 0
    assert mews_of(rows[1]) == {
        "sbp": "1", "hr": "2", "rr": "2", "temp": "0", "avpu": "0",
        "partial": "5", "total": "5", "triggered": "true", "incomplete": "false", "missing": "",
    }  # fmt: skip
    # qSOFA: rr 21 -> 0, sbp 100 -> 1, A -> 0
    assert qsofa_of(rows[1]) == {
        "rr": "0", "sbp": "1", "mentation": "0",
        "partial": "1", "total": "1", "positive": "false", "incomplete": "false", "missing": "",
    }  # fmt: skip


def test_mews_and_qsofa_incomplete() -> None:
    rows, report = run(
        "rr,abp_sys,pr,temp,acvpu\n"
        "30,75,,39.0,\n"  # MEWS sbp 2 (from abp_sys), rr 3, temp 2: 7 known; qSOFA rr 1, sbp 1
        "16,120,80,,A\n"  # MEWS rr 1 known, sbp 0, hr 0 (from pr), avpu 0; qSOFA 0 known
    )
    assert mews_of(rows[0]) == {
        "sbp": "2", "hr": "", "rr": "3", "temp": "2", "avpu": "",
        "partial": "7", "total": "", "triggered": "true", "incomplete": "true", "missing": "hr;avpu",
    }  # fmt: skip
    assert qsofa_of(rows[0]) == {
        "rr": "1", "sbp": "1", "mentation": "",
        "partial": "2", "total": "", "positive": "true", "incomplete": "true", "missing": "mentation",
    }  # fmt: skip
    assert mews_of(rows[1]) == {
        "sbp": "0", "hr": "0", "rr": "1", "temp": "", "avpu": "0",
        "partial": "1", "total": "", "triggered": "false", "incomplete": "true", "missing": "temp",
    }  # fmt: skip
    assert qsofa_of(rows[1]) == {
        "rr": "0", "sbp": "0", "mentation": "0",
        "partial": "0", "total": "0", "positive": "false", "incomplete": "false", "missing": "",
    }  # fmt: skip
    assert report == ScoreCsvReport(rows=2, scored_complete=0, incomplete=2, rows_with_errors=0)


def test_unreadable_cell_is_missing_for_every_score() -> None:
    rows, _ = run("rr,nibp_sys,acvpu\nfast,95,V\n")
    assert rows[0]["news2_rr"] == rows[0]["mews_rr"] == rows[0]["qsofa_rr"] == ""
    assert rows[0]["qsofa_partial"] == "2"  # sbp 95 and V already make qSOFA positive
    assert rows[0]["qsofa_positive"] == "true"
    assert rows[0]["news2_error"] == "rr: 'fast' is not a number"


def test_mews_columns_in_the_header_are_refused() -> None:
    dst = io.StringIO()
    with pytest.raises(ScoreCsvError, match=r"already has output columns \['mews_total'\]"):
        score_csv(io.StringIO("rr,mews_total\n16,1\n", newline=""), dst, tables=score_tables())
    assert dst.getvalue() == ""


def test_local_tables(tmp_path: Path) -> None:
    raw = default_raw("scores.yaml")
    raw["mews"]["trigger"] = 3
    raw["qsofa"]["rr_at_least"] = 20
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    text = "rr,nibp_sys,hr,temp,acvpu\n20,120,105,38.5,A\n"  # MEWS rr 1, hr 1, temp 2: 4
    published, _ = run(text)
    dst = io.StringIO()
    score_csv(io.StringIO(text, newline=""), dst, tables=load_score_tables(path))
    local = list(csv.DictReader(io.StringIO(dst.getvalue(), newline="")))
    assert (published[0]["mews_total"], published[0]["mews_triggered"], published[0]["qsofa_rr"]) == ("4", "false", "0")
    assert (local[0]["mews_total"], local[0]["mews_triggered"], local[0]["qsofa_rr"]) == ("4", "true", "1")
