"""The EHR's search parameters without a database: parsing, date ranges, index extraction (sans-I/O)."""

from __future__ import annotations

import pytest
from ehr_resources import observation
from hypothesis import given
from hypothesis import strategies as st

from records_bridge.services.ehr.search import (
    MAX_COUNT,
    DateRange,
    IndexEntry,
    SearchError,
    Token,
    date_range,
    index_entries,
    parse_search,
    reference_key,
    split_alternatives,
)

H = 3_600_000_000  # an hour in µs
MAY_1 = 1_714_521_600_000_000  # 2024-05-01T00:00:00Z


def test_a_full_query() -> None:
    q = parse_search("Observation", [("patient", "p1"), ("code", "http://loinc.org|8867-4,9279-1"), ("date", "ge2024-05-01"),
                                     ("date", "lt2024-05-01T12:00Z"), ("_count", "20"), ("_cursor", "99")])  # fmt: skip
    assert [c.param for c in q.clauses] == ["patient", "code", "date", "date"]
    assert q.clauses[0].alternatives == (Token("Patient/p1"),)
    assert q.clauses[1].alternatives == (Token("8867-4", "http://loinc.org"), Token("9279-1"))
    assert q.clauses[2].alternatives == (DateRange("ge", MAY_1, MAY_1 + 24 * H),)
    assert q.clauses[3].alternatives == (DateRange("lt", MAY_1 + 12 * H, MAY_1 + 12 * H + 60_000_000),)
    assert (q.count, q.after) == (20, 99)


def test_defaults_and_limits() -> None:
    assert parse_search("Observation", []).count == 50
    assert parse_search("Observation", [("_count", "100000")]).count == MAX_COUNT
    assert parse_search("Observation", [("_format", "json")]).clauses == ()


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("2024", 366 * 24 * H),
        ("2024-02", 29 * 24 * H),
        ("2024-12", 31 * 24 * H),
        ("2024-05-01", 24 * H),
        ("2024-05-01T10:00", 60_000_000),
        ("2024-05-01T10:00:00Z", 1_000_000),
        ("2024-05-01T10:00:00.5Z", 100_000),
        ("2024-05-01T10:00:00.123456789Z", 1),
    ],
)
def test_a_date_stands_for_the_range_of_its_precision(text: str, span: int) -> None:
    lo, hi = date_range(text)  # type: ignore[misc]
    assert hi - lo == span


def test_zones() -> None:
    assert date_range("2024-05-01T15:30:00+05:30") == date_range("2024-05-01T10:00:00Z") == date_range("2024-05-01T10:00:00")
    assert date_range("2024-05-01T10:00:00-14:00") is not None
    for bad in ("2024-05-01T10:00:00+15:00", "2024-13", "2024-02-30", "2024-05-01T24:00", "24-05-01", "2024-5-1", ""):
        assert date_range(bad) is None, bad


def test_references_and_tokens() -> None:
    assert reference_key("Patient/p1") == reference_key("https://ehr.example/fhir/Patient/p1") == "Patient/p1"
    assert reference_key("Patient/p1/_history/3") == "Patient/p1"
    assert reference_key("urn:uuid:0000") == "urn:uuid:0000"
    assert reference_key("#contained") is None
    assert split_alternatives(r"a,b\,c") == ["a", "b,c"]
    q = parse_search("Observation", [("code", r"urn:x\|y|z"), ("code", "|c"), ("code", "s|")])
    assert [c.alternatives[0] for c in q.clauses] == [Token("z", "urn:x|y"), Token("c", ""), Token(None, "s")]


@pytest.mark.parametrize(
    ("kind", "name", "value", "words"),
    [
        ("Observation", "colour", "blue", "unknown search parameter"),
        ("Patient", "patient", "p1", "unknown search parameter"),
        ("Observation", "code:text", "pulse", "modifier"),
        ("Observation", "date", "sa2024", "prefix"),
        ("Observation", "date", "yesterday", "prefix"),
        ("Observation", "date", "ge20x4", "not a date"),
        ("Observation", "patient", "Encounter/e1", "Patient id"),
        ("Observation", "patient", "a b", "Patient id"),
        ("Observation", "code", "a,,b", "empty value"),
        ("Observation", "_count", "-5", "non-negative"),
        ("Observation", "_cursor", "x", "non-negative"),
        ("Observation", "_format", "xml", "JSON only"),
        ("Observation", "code", "x" * 2000, "longer than"),
    ],
)
def test_bad_parameters_say_what_is_wrong(kind: str, name: str, value: str, words: str) -> None:
    with pytest.raises(SearchError, match=words):
        parse_search(kind, [(name, value)])


@given(st.sampled_from(["Observation", "Encounter", "Flag", "Patient", "Composition", "DocumentReference"]),
       st.lists(st.tuples(st.one_of(st.sampled_from(["patient", "encounter", "code", "date", "identifier", "_count", "_cursor",
                                                     "_format", "code:text"]), st.text(max_size=12)),
                          st.one_of(st.text(max_size=40), st.from_regex(r"(eq|ge|gt|le|lt|ne)?\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2})?)?)?)?",
                                                                         fullmatch=True))),
                max_size=6))  # fmt: skip
def test_the_parser_never_fails_but_with_a_search_error(kind: str, items: list[tuple[str, str]]) -> None:
    try:
        q = parse_search(kind, items)
    except SearchError as exc:
        assert str(exc)
        return
    assert 0 <= q.count <= MAX_COUNT and q.after >= 0
    for clause in q.clauses:
        for alt in clause.alternatives:
            if isinstance(alt, DateRange):
                assert alt.lo < alt.hi


def test_an_observation_is_indexed_by_patient_encounter_code_date() -> None:
    entries = index_entries(observation("o1", when="2024-05-01T10:00:00Z"))
    assert entries == [
        IndexEntry("patient", "Patient/p1"),
        IndexEntry("encounter", "Encounter/e1"),
        IndexEntry("code", "8867-4", "http://loinc.org"),
        IndexEntry("date", lo=MAY_1 + 10 * H, hi=MAY_1 + 10 * H + 1_000_000),
    ]


def test_other_types_are_indexed_by_their_own_elements() -> None:
    doc = {"resourceType": "DocumentReference", "subject": {"reference": "Patient/p1"}, "date": "2024-05-01T10:00:00Z",
           "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
           "context": {"encounter": [{"reference": "Encounter/e1"}]}, "identifier": [{"system": "urn:x", "value": "d1"}]}  # fmt: skip
    assert {e.param for e in index_entries(doc)} == {"patient", "encounter", "code", "date", "identifier"}
    enc = {"resourceType": "Encounter", "subject": {"reference": "Patient/p1"}, "period": {"start": "2024-05-01"}}
    assert [e.param for e in index_entries(enc)] == ["patient", "date"]
    pat = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "1"}, {"value": "2"}], "subject": {"reference": "X/y"}}
    assert index_entries(pat) == [IndexEntry("identifier", "1", "urn:mrn"), IndexEntry("identifier", "2")]
    assert index_entries({"resourceType": "Observation", "effectiveDateTime": "not a date", "subject": "bad"}) == []


def test_searches_are_bounded_in_parameters_values_and_document_pages() -> None:
    from records_bridge.services.ehr.search import MAX_ALTERNATIVES, MAX_CLAUSES, MAX_DOCUMENT_COUNT

    assert len(parse_search("Observation", [("code", "x")] * MAX_CLAUSES).clauses) == MAX_CLAUSES
    with pytest.raises(SearchError, match="more than 20 search parameters"):
        parse_search("Observation", [("code", "x")] * (MAX_CLAUSES + 1))
    with pytest.raises(SearchError, match="comma-separated"):
        parse_search("Observation", [("code", ",".join(["x"] * (MAX_ALTERNATIVES + 1)))])
    assert parse_search("DocumentReference", [("_count", "500")]).count == MAX_DOCUMENT_COUNT
    assert parse_search("Observation", [("_count", "500")]).count == 500
