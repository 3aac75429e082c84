"""Tests for alerts.score_tables: config/scores.yaml against scores.md, validation, local variants.

The expected tables are copied by hand from shared/clinical/scores.md, so these
tests check the shipped YAML, not only the loader.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from alerts.bands import BandTable
from alerts.mews import mews
from alerts.news2 import BAND_LABELS, news2
from alerts.qsofa import qsofa
from alerts.score_csv import score_csv
from alerts.score_tables import (
    CategoryTable,
    ScoreConfigError,
    ScoreTables,
    load_score_tables,
    parse_score_tables,
)
from config_support import default_text, score_tables
from teleicu.config_files import SCORES_FILE, default_file

REPO = Path(__file__).resolve().parents[2]

NAN = np.nan
A, C, V, P, U = 0.0, 1.0, 2.0, 3.0, 4.0


def default_raw() -> dict[str, Any]:
    raw = yaml.safe_load(default_text(SCORES_FILE))
    assert isinstance(raw, dict)
    return raw


def write(tmp_path: Path, raw: Any, name: str = "local.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


# --- the shipped file is the published tables ------------------------------------------------


def test_default_file_is_config_scores_yaml() -> None:
    packaged = default_file(SCORES_FILE)
    assert packaged.read_bytes() == (REPO / "config" / "scores.yaml").read_bytes()  # the package ships config/
    assert score_tables().source == str(packaged)


def test_default_file_names_its_sources() -> None:
    head = default_text(SCORES_FILE).split("\nnews2:")[0]
    for source in ("Royal College of Physicians", "National Early Warning Score (NEWS) 2", "2017",
                   "Subbe", "QJM 2001", "Sepsis-3", "JAMA 2016"):  # fmt: skip
        assert source in head


def test_news2_tables_match_scores_md() -> None:
    t = score_tables().news2
    assert t.rr == BandTable("news2.rr", 0, (8, 11, 20, 24), (3, 1, 0, 2, 3))
    assert t.spo2_scale1 == BandTable("news2.spo2_scale1", 0, (91, 93, 95), (3, 2, 1, 0))
    assert t.spo2_scale2_air == BandTable("news2.spo2_scale2_air", 0, (83, 85, 87), (3, 2, 1, 0))
    assert t.spo2_scale2_oxygen == BandTable(
        "news2.spo2_scale2_oxygen", 0, (83, 85, 87, 92, 94, 96), (3, 2, 1, 0, 1, 2, 3)
    )
    assert t.sbp == BandTable("news2.sbp", 0, (90, 100, 110, 219), (3, 2, 1, 0, 3))
    assert t.hr == BandTable("news2.hr", 0, (40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3))
    assert t.temp == BandTable("news2.temp", 1, (35.0, 36.0, 38.0, 39.0), (3, 1, 0, 1, 2))
    assert t.o2.labels == ("air", "oxygen") and t.o2.scores == (0, 2)
    assert t.acvpu.labels == ("A", "C", "V", "P", "U") and t.acvpu.scores == (0, 3, 3, 3, 3)
    assert (t.medium, t.high) == (5, 7)


def test_every_scorer_is_handed_its_tables() -> None:
    """No score has tables of its own (none are loaded at import): the caller always passes them."""
    for scorer in (news2, mews, qsofa, score_csv):
        assert inspect.signature(scorer).parameters["tables"].default is inspect.Parameter.empty, scorer


def test_mews_tables_match_scores_md() -> None:
    t = score_tables().mews
    assert t.sbp == BandTable("mews.sbp", 0, (70, 80, 100, 199), (3, 2, 1, 0, 2))
    assert t.hr == BandTable("mews.hr", 0, (40, 50, 100, 110, 129), (2, 1, 0, 1, 2, 3))
    assert t.rr == BandTable("mews.rr", 0, (8, 14, 20, 29), (2, 0, 1, 2, 3))
    assert t.temp == BandTable("mews.temp", 1, (34.9, 38.4), (2, 0, 2))
    assert t.avpu.labels == ("A", "C", "V", "P", "U") and t.avpu.scores == (0, 1, 1, 2, 3)
    assert t.trigger == 5


def test_qsofa_tables_match_scores_md() -> None:
    t = score_tables().qsofa
    assert (t.rr_at_least, t.sbp_at_most, t.trigger) == (22, 100, 2)
    assert t.rr == BandTable("qsofa.rr", 0, (21,), (0, 1))
    assert t.sbp == BandTable("qsofa.sbp", 0, (100,), (1, 0))
    assert t.mentation.scores == (0, 1, 1, 1, 1)


def test_loading_twice_gives_equal_tables() -> None:
    assert load_score_tables(default_file(SCORES_FILE)) == load_score_tables(default_file(SCORES_FILE))
    assert load_score_tables(str(REPO / "config" / "scores.yaml")).mews == score_tables().mews


# --- invalid tables are refused with a clear message -----------------------------------------


def mutated(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    raw = copy.deepcopy(default_raw())
    change(raw)
    return raw


INVALID: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    # gaps, overlaps and edges out of order, named by score, parameter and row
    ("gap", lambda r: r["mews"]["hr"][1].update(min=42), "mews.hr: row 2: gap between previous max 40.0 and min 42.0"),
    ("overlap", lambda r: r["mews"]["temp"][1].update(min=34.9),
     "mews.temp: row 2: min 34.9 overlaps the previous row (max 34.9)"),
    ("overlap news2", lambda r: r["news2"]["spo2_scale2_oxygen"][4].update(min=92),
     "news2.spo2_scale2_oxygen: row 5: min 92.0 overlaps the previous row (max 92.0)"),
    ("not increasing", lambda r: r["news2"]["hr"][2].update(max=45),
     "news2.hr: row 3: max 45.0 is not above the previous max 50.0"),
    ("equal edges", lambda r: r["mews"]["rr"][1].update(max=8),
     "mews.rr: row 2: max 8.0 is not above the previous max 8.0"),
    ("rows swapped, no min", lambda r: r["mews"].update(sbp=[
        {"max": 70, "score": 3}, {"max": 100, "score": 1}, {"max": 80, "score": 2}, {"max": 199, "score": 0},
        {"score": 2}]), "mews.sbp: row 3: max 80.0 is not above the previous max 100.0"),
    ("rows swapped", lambda r: r["mews"]["sbp"].insert(1, r["mews"]["sbp"].pop(2)),
     "mews.sbp: row 2: gap between previous max 70.0 and min 81.0"),
    ("edge finer than the chart", lambda r: r["mews"]["hr"][0].update(max=40.5),
     "mews.hr: row 1: max 40.5 is finer than the precision (0 decimals)"),
    ("open row in the middle", lambda r: r["mews"]["hr"][2].pop("max"),
     "mews.hr: row 3: has no 'max'; only the last row is open-ended"),
    ("closed last row", lambda r: r["mews"]["temp"][2].update(max=45.0),
     "mews.temp: row 3: the last row is open-ended and must not have 'max'"),
    # scores
    ("score too high", lambda r: r["mews"]["hr"][5].update(score=4), "mews.hr: row 6: score 4 is outside 0..3"),
    ("negative score", lambda r: r["news2"]["temp"][0].update(score=-1), "news2.temp: row 1: score -1 is outside 0..3"),
    ("score as text", lambda r: r["mews"]["rr"][0].update(score="2"), "mews.rr: row 1: score must be a whole number"),
    ("fractional score", lambda r: r["mews"]["rr"][0].update(score=1.5), "mews.rr: row 1: score must be a whole number"),
    ("category score too high", lambda r: r["mews"]["avpu"].update(U=4), "mews.avpu.U: score 4 is outside 0..3"),
    ("category score as text", lambda r: r["news2"]["o2"].update(oxygen="2"),
     "news2.o2.oxygen: must be a whole number, not '2'"),
    ("category score as bool", lambda r: r["mews"]["avpu"].update(A=False),
     "mews.avpu.A: must be a whole number, not False"),
    # unknown keys
    ("unknown row key", lambda r: r["mews"]["hr"][0].update(colour="red"),
     "mews.hr: row 1: unknown keys ['colour']; use min, max, score"),
    ("unknown parameter", lambda r: r["mews"].update(spo2=[{"score": 0}]),
     "mews: unknown keys ['spo2']; expected sbp, hr, rr, temp, avpu, trigger"),
    ("unknown score", lambda r: r.update(sofa={}), "unknown keys ['sofa']; expected news2, mews, qsofa"),
    ("unknown level", lambda r: r["mews"]["avpu"].update(X=1), "mews.avpu: unknown keys ['X']; expected A, C, V, P, U"),
    ("lower-case level", lambda r: r["mews"].update(avpu={"a": 0, "c": 1, "v": 1, "p": 2, "u": 3}),
     "mews.avpu: unknown keys ['a', 'c', 'v', 'p', 'u']"),
    ("unknown trigger key", lambda r: r["news2"]["trigger"].update(low=1),
     "news2.trigger: unknown keys ['low']; expected medium, high"),
    # missing parameters
    ("missing band table", lambda r: r["mews"].pop("temp"), "mews: missing temp"),
    ("missing news2 table", lambda r: r["news2"].pop("spo2_scale2_air"), "news2: missing spo2_scale2_air"),
    ("missing category", lambda r: r["news2"].pop("acvpu"), "news2: missing acvpu"),
    ("missing level", lambda r: r["mews"]["avpu"].pop("P"), "mews.avpu: missing P"),
    ("missing trigger", lambda r: r["qsofa"].pop("trigger"), "qsofa: missing trigger"),
    ("missing score", lambda r: r.pop("qsofa"), "missing qsofa"),
    ("missing row score", lambda r: r["mews"]["hr"][1].pop("score"), "mews.hr: row 2: has no 'score'"),
    # wrong types
    ("table not a list", lambda r: r["mews"].update(hr={"max": 40, "score": 2}), "mews.hr: rows must be a non-empty list"),
    ("empty table", lambda r: r["mews"].update(hr=[]), "mews.hr: rows must be a non-empty list"),
    ("row not a mapping", lambda r: r["mews"]["hr"].__setitem__(0, [40, 2]), "mews.hr: row 1: must be a mapping"),
    ("edge as text", lambda r: r["mews"]["hr"][0].update(max="40"), "mews.hr: row 1: max must be a finite number"),
    ("section not a mapping", lambda r: r.update(mews=[1, 2]), "mews: expected a mapping with keys sbp, hr"),
    ("categories not a mapping", lambda r: r["mews"].update(avpu=[0, 1, 1, 2, 3]), "mews.avpu: expected a mapping"),
    ("trigger as text", lambda r: r["mews"].update(trigger="5"), "mews.trigger: must be a whole number, not '5'"),
    ("trigger as bool", lambda r: r["qsofa"].update(trigger=True), "qsofa.trigger: must be a whole number, not True"),
    ("trigger unreachable", lambda r: r["mews"].update(trigger=15),
     "mews.trigger: 15 is outside 1..14, the totals these tables can reach"),
    ("trigger zero", lambda r: r["qsofa"].update(trigger=0), "qsofa.trigger: 0 is outside 1..3"),
    ("news2 bands out of order", lambda r: r["news2"]["trigger"].update(medium=7, high=5),
     "news2.trigger: medium (7) must be below high (5)"),
    ("news2 band unreachable", lambda r: r["news2"]["trigger"].update(high=21), "news2.trigger.high: 21 is outside 1..20"),
    ("qsofa threshold as text", lambda r: r["qsofa"].update(rr_at_least="22"),
     "qsofa.rr_at_least: must be a finite number, not '22'"),
    ("qsofa threshold finer than the chart", lambda r: r["qsofa"].update(sbp_at_most=100.5),
     "qsofa.sbp_at_most: 100.5 is finer than the input precision (0 decimals)"),
    ("alert as altered", lambda r: r["qsofa"].update(altered_mentation=["C", "A"]),
     "qsofa.altered_mentation: item 2: A (alert) cannot count as altered mentation"),
    ("unknown level in list", lambda r: r["qsofa"].update(altered_mentation=["C", "X"]),
     "qsofa.altered_mentation: item 2: 'X' is not one of A, C, V, P, U"),
    ("level twice", lambda r: r["qsofa"].update(altered_mentation=["V", "V"]),
     "qsofa.altered_mentation: item 2: V is listed twice"),
    ("no level", lambda r: r["qsofa"].update(altered_mentation=[]), "qsofa.altered_mentation: must list at least one"),
    ("levels as text", lambda r: r["qsofa"].update(altered_mentation="CVPU"),
     "qsofa.altered_mentation: expected a list of ACVPU levels"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_tables_are_refused(tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str) -> None:
    path = write(tmp_path, mutated(change))
    with pytest.raises(ScoreConfigError) as caught:
        load_score_tables(path)
    assert str(caught.value).startswith(f"{path}: {message}"), str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_gap_message_in_full(tmp_path: Path) -> None:
    path = write(tmp_path, mutated(lambda r: r["mews"]["hr"][1].update(min=42)))
    with pytest.raises(ScoreConfigError) as caught:
        load_score_tables(path)
    assert str(caught.value) == f"{path}: mews.hr: row 2: gap between previous max 40.0 and min 42.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a mapping with keys news2, mews, qsofa, not nothing"),
        ("- 1\n- 2\n", "expected a mapping with keys news2, mews, qsofa, not list"),
        (
            "mews: {trigger: 5}\nmews: {trigger: 6}\n",
            "not valid YAML: while reading a mapping: found key 'mews' twice at line 2, column 1$",
        ),
        (
            "news2: [\n",
            "not valid YAML: while parsing a flow node: expected the node content, but found '<stream end>' at line 2",
        ),
    ],
)
def test_invalid_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScoreConfigError, match="^" + re.escape(f"{path}: ") + message):
        load_score_tables(path)


def test_a_duplicate_key_deep_in_a_table_is_refused(tmp_path: Path) -> None:
    text = default_text(SCORES_FILE).replace("  trigger: 5 ", "  trigger: 5\n  trigger: 4 ", 1)
    assert text.count("trigger: 4") == 1
    path = tmp_path / "twice.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScoreConfigError, match="found key 'trigger' twice"):
        load_score_tables(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ScoreConfigError, match="^" + re.escape(f"{path}: cannot read score tables")):
        load_score_tables(path)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("# " + "x" * (1 << 20) + "\n", encoding="utf-8")
    with pytest.raises(ScoreConfigError, match="larger than 1048576 bytes"):
        load_score_tables(path)


def test_parse_names_its_source() -> None:
    with pytest.raises(ScoreConfigError, match="^hospital X: missing qsofa$"):
        parse_score_tables({k: v for k, v in default_raw().items() if k != "qsofa"}, "hospital X")


# --- a local MEWS variant is data, not code ----------------------------------------------------


def local_mews(raw: dict[str, Any]) -> None:
    """A made-up local variant: HR 111-119 scores 2, HR 120+ scores 3; fever from 38.0 scores 2; trigger 4."""
    raw["mews"]["hr"] = [
        {"max": 40, "score": 2},
        {"min": 41, "max": 50, "score": 1},
        {"min": 51, "max": 100, "score": 0},
        {"min": 101, "max": 110, "score": 1},
        {"min": 111, "max": 119, "score": 2},
        {"min": 120, "score": 3},
    ]
    raw["mews"]["temp"] = [{"max": 34.9, "score": 2}, {"min": 35.0, "max": 37.9, "score": 0}, {"min": 38.0, "score": 2}]
    raw["mews"]["trigger"] = 4


def test_local_mews_variant_changes_the_result(tmp_path: Path) -> None:
    local = load_score_tables(write(tmp_path, mutated(local_mews)))
    assert local.news2 == score_tables().news2  # the rest is untouched
    beds = {"sbp": np.array([120.0, 120.0]), "hr": np.array([125.0, 80.0]), "rr": np.array([16.0, 12.0]),
            "temp": np.array([38.2, 38.0]), "acvpu": np.array([A, A])}  # fmt: skip
    published = mews(**beds, tables=score_tables().mews)
    variant = mews(**beds, tables=local.mews)
    # published: hr 125 -> 2, rr 16 -> 1, temp 38.2 -> 0: 3, not triggered; hr 80, rr 12, temp 38.0: 0
    np.testing.assert_array_equal(published.subscores, [[0, 2, 1, 0, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(published.total, [3, 0])
    np.testing.assert_array_equal(published.triggered, [False, False])
    # local: hr 125 -> 3, temp 38.2 -> 2: 6, triggered; temp 38.0 -> 2 is below the local trigger 4
    np.testing.assert_array_equal(variant.subscores, [[0, 3, 1, 2, 0], [0, 0, 0, 2, 0]])
    np.testing.assert_array_equal(variant.total, [6, 2])
    np.testing.assert_array_equal(variant.triggered, [True, False])


def test_local_trigger_on_an_incomplete_score(tmp_path: Path) -> None:
    local = load_score_tables(write(tmp_path, mutated(local_mews))).mews
    beds = {"sbp": [95.0], "hr": [105.0], "rr": [16.0], "temp": [37.0], "acvpu": [NAN]}
    # sbp 1 + hr 1 + rr 1 = 3 known, avpu missing: the local trigger 4 is not proven, nor the published 5
    assert not mews(**beds, tables=local).triggered[0]
    beds["sbp"] = [75.0]  # sbp 2: 4 known, already the local trigger, still below the published one
    assert mews(**beds, tables=local).triggered[0]
    assert not mews(**beds, tables=score_tables().mews).triggered[0]


def test_local_news2_and_qsofa_variants(tmp_path: Path) -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["news2"]["trigger"] = {"medium": 4, "high": 6}
        raw["qsofa"]["rr_at_least"] = 20
        raw["qsofa"]["altered_mentation"] = ["V", "P", "U"]

    local = load_score_tables(write(tmp_path, mutated(change)))
    # NEWS2 4: rr 22 -> 2, hr 45 -> 1, temp 38.5 -> 1; published low, local medium
    bed = {"rr": [22.0], "spo2": [98.0], "o2": [0.0], "sbp": [120.0], "hr": [45.0], "acvpu": [A], "temp": [38.5],
           "scale2": [False]}  # fmt: skip
    assert BAND_LABELS[int(news2(**bed, tables=score_tables().news2).band[0])] == "low"
    assert BAND_LABELS[int(news2(**bed, tables=local.news2).band[0])] == "medium"
    # qSOFA: rr 20 scores locally; C is not altered locally
    published = qsofa(rr=[20.0, 16.0], sbp=[120.0, 120.0], acvpu=[A, C], tables=score_tables().qsofa)
    variant = qsofa(rr=[20.0, 16.0], sbp=[120.0, 120.0], acvpu=[A, C], tables=local.qsofa)
    np.testing.assert_array_equal(published.subscores, [[0, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(variant.subscores, [[1, 0, 0], [0, 0, 0]])


def test_score_tables_type() -> None:
    assert isinstance(score_tables(), ScoreTables)


# --- CategoryTable -----------------------------------------------------------------------------


def test_category_table_scores_codes() -> None:
    table = CategoryTable("t.avpu", "acvpu", ("A", "C", "V", "P", "U"), (0, 1, 1, 2, 3))
    out = table.score(np.array([0.0, 1.0, 2.0, 3.0, 4.0, NAN]))
    np.testing.assert_array_equal(out, [0, 1, 1, 2, 3, NAN])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(table.score(np.array([[4.0], [NAN]])), [[3], [NAN]])


@pytest.mark.parametrize("bad", [5.0, -1.0, 0.5, np.inf])
def test_category_table_refuses_unknown_codes(bad: float) -> None:
    table = CategoryTable("t.o2", "o2", ("air", "oxygen"), (0, 2))
    with pytest.raises(ValueError, match=re.escape(f"t.o2: o2 code {bad} is not one of [0, 1] (0 air, 1 oxygen)")):
        table.score(np.array([0.0, bad]))


def test_category_table_needs_a_score_per_label() -> None:
    with pytest.raises(ValueError, match="2 labels but 1 scores"):
        CategoryTable("t", "o2", ("air", "oxygen"), (0,))
