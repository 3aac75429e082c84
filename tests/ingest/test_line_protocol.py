"""Line protocol encoding: escaping, typed fields, refusals, and a hypothesis round trip through a tiny parser."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import influx_schema as schema
from ingest.line_protocol import (
    INT64_MAX,
    INT64_MIN,
    LineProtocolError,
    bool_field,
    encode_line,
    escape_key,
    escape_measurement,
    escape_tag_value,
    float_field,
    int_field,
    quote_tag_value,
    string_field,
    unquote_tag_value,
)
from wire.messages import Observation, WaveChunk

# --- a tiny parser, written from the line protocol description, for the round trip ------------------


def _split(text: str, seps: str, start: int = 0, quotes: bool = True) -> tuple[str, int]:
    """Read up to the first unescaped char in ``seps`` (outside quotes if ``quotes``); returns (raw token, index of sep or len)."""
    i = start
    in_quotes = False
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            i += 2
            continue
        if c == '"' and quotes:
            in_quotes = not in_quotes
        elif not in_quotes and c in seps:
            return text[start:i], i
        i += 1
    return text[start:], i


def _unescape(raw: str, specials: str) -> str:
    out = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in specials:
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _field_value(raw: str) -> object:
    if raw.startswith('"'):
        assert raw.endswith('"') and len(raw) >= 2, raw
        return _unescape(raw[1:-1], '"\\')
    if raw in ("true", "false"):
        return raw == "true"
    if raw.endswith("i"):
        return int(raw[:-1])
    return float(raw)


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, object], int]:
    assert "\n" not in line.replace('\\"', "").split('"', 1)[0], "newline outside a string field"
    key_part, i = _split(line, " ", quotes=False)
    field_part, j = _split(line, " ", i + 1)
    ts = int(line[j + 1 :])
    name_raw, k = _split(key_part, ",", quotes=False)
    tags: dict[str, str] = {}
    while k < len(key_part):
        tag_raw, k2 = _split(key_part, ",", k + 1, quotes=False)
        kk, eq = _split(tag_raw, "=", quotes=False)
        tags[_unescape(kk, ",= ")] = _unescape(tag_raw[eq + 1 :], ",= ")
        k = k2
    fields: dict[str, object] = {}
    pos = 0
    while pos <= len(field_part):
        item, nxt = _split(field_part, ",", pos)
        fk, eq = _split(item, "=")
        fields[_unescape(fk, ",= ")] = _field_value(item[eq + 1 :])
        pos = nxt + 1
    return _unescape(name_raw, ", "), tags, fields, ts


# --- known answers ---------------------------------------------------------------------------


def test_escaping_of_spaces_commas_equals_and_quotes() -> None:
    assert escape_measurement("my vitals,x") == "my\\ vitals\\,x"
    assert escape_measurement("a=b") == "a=b"  # '=' needs no escape in a measurement
    assert escape_key("bed id,=") == "bed\\ id\\,\\="
    assert escape_tag_value("ICU 1,east=new") == "ICU\\ 1\\,east\\=new"
    assert string_field('he said "hi" \\o/') == '"he said \\"hi\\" \\\\o/"'
    assert string_field("a,b=c d") == '"a,b=c d"'  # no escaping of , = space inside quotes


def test_a_whole_line() -> None:
    line = encode_line(
        "vitals",
        {"ward": "ICU A", "bed": "A-01", "device": "", "param": "hr"},
        {"value": float_field(82), "flags": int_field(0), "note": string_field('x "y"'), "ok": bool_field(True)},
        1732600000000,
    )
    assert line == 'vitals,bed=A-01,param=hr,ward=ICU\\ A value=82.0,flags=0i,note="x \\"y\\"",ok=true 1732600000000'


def test_tag_values_with_backslash_or_newline_are_percent_quoted_one_to_one() -> None:
    assert quote_tag_value("A\\01") == "A%5C01"
    assert quote_tag_value("50%") == "50%25"
    assert quote_tag_value("a\nb") == "a%0Ab"
    assert unquote_tag_value(quote_tag_value("x%5C\\y\n")) == "x%5C\\y\n"
    assert quote_tag_value("A%5C01") != quote_tag_value("A\\01")


def test_float_and_int_fields() -> None:
    assert float_field(82) == "82.0"  # an int value still writes a float field: no type conflicts
    assert float_field(1e-5) == "1e-05"
    assert float_field(-0.0) == "-0.0"
    assert int_field(INT64_MAX) == f"{INT64_MAX}i"
    assert bool_field(False) == "false"


@pytest.mark.parametrize(
    "bad",
    [
        lambda: float_field(math.nan),
        lambda: float_field(math.inf),
        lambda: int_field(INT64_MAX + 1),
        lambda: int_field(True),
        lambda: int_field(1.5),  # type: ignore[arg-type]
        lambda: escape_measurement(""),
        lambda: escape_measurement("#comment"),
        lambda: escape_key("a\\b"),
        lambda: escape_key("time"),
        lambda: escape_key("a\nb"),
        lambda: escape_key('a"b'),
        lambda: escape_tag_value(""),
        lambda: encode_line("m", {}, {}, 0),
        lambda: encode_line("m", {}, {"f": "1i"}, 10**20),
        lambda: string_field("x" * (64 * 1024 + 1)),
    ],
)
def test_unwritable_values_raise_a_clear_error(bad) -> None:
    with pytest.raises(LineProtocolError):
        bad()


def test_tags_are_sorted_and_empty_ones_left_out() -> None:
    line = encode_line("m", {"z": "1", "a": "2", "m": ""}, {"f": int_field(1)}, 5)
    assert line == "m,a=2,z=1 f=1i 5"


# --- the schema's encoders ---------------------------------------------------------------------


def test_vitals_line_and_value_less_observation() -> None:
    head = schema.vitals_series(schema.Place("H 1", "A"), "A-01", "mon-1", "spo2")
    o = Observation("A-01", "spo2", 97, 1000, 1200, "mon-1", 0)
    assert schema.vitals_line(head, o) == "vitals,bed=A-01,device=mon-1,hospital=H\\ 1,param=spo2,ward=A value=97.0,flags=0i,t_rx=1200i 1000"
    off = Observation("A-01", "spo2", None, 2000, 2100, "mon-1", 1)
    m, tags, fields, ts = parse_line(schema.vitals_line(head, off))
    assert (m, ts, fields) == ("vitals", 2000, {"flags": 1, "t_rx": 2100})
    assert tags == {"bed": "A-01", "device": "mon-1", "hospital": "H 1", "param": "spo2", "ward": "A"}


def test_waveform_line_carries_samples_as_base64_int16() -> None:
    samples = (0, 1, -1, 32767, -32768, 1234)
    line = schema.waveform_line(schema.Place(), WaveChunk(3, "A-01", "ecg_ii", 5000, 250, 0.005, samples))
    m, tags, fields, ts = parse_line(line)
    assert (m, tags, ts) == ("waveform", {"bed": "A-01", "lead": "ecg_ii"}, 5000)
    assert fields["rate"] == 250 and fields["n"] == 6 and fields["scale"] == 0.005
    assert schema.unpack_samples(fields["samples"]) == samples  # type: ignore[arg-type]


def test_news2_line_never_writes_a_partial_as_total() -> None:
    incomplete = {
        "total": None,
        "partial": 4,
        "subscores": {"rr": 2, "spo2": None, "o2": 0, "sbp": 0, "hr": 2, "acvpu": 0, "temp": None},
        "band": "unknown",
        "incomplete": True,
        "missing": ["spo2", "temp"],
        "any_three": False,
    }
    _, tags, fields, ts = parse_line(schema.news2_line(schema.Place(ward="A"), "A-01", 7000, incomplete, scale=2))
    assert "total" not in fields and "spo2" not in fields and "temp" not in fields
    assert fields["partial"] == 4 and fields["missing"] == "spo2;temp" and fields["incomplete"] is True and fields["scale"] == 2
    assert tags == {"bed": "A-01", "ward": "A"} and ts == 7000
    complete = dict(incomplete, total=6, incomplete=False, missing=[], subscores={k: 1 for k in schema.NEWS2_COMPONENTS})
    _, _, fields, _ = parse_line(schema.news2_line(schema.Place(), "A-01", 7000, complete))
    assert fields["total"] == 6 and all(fields[k] == 1 for k in schema.NEWS2_COMPONENTS)


def test_alarm_event_line() -> None:
    alert = {"id": "01a22779-41cc-7000-8c85-278f4dca60fd", "bed": "A-01", "ward": "A", "kind": "news2", "priority": "high", "state": "active", "title": "NEWS2 7", "detail": 'RR 25, "SpO2" 90'}
    _, tags, fields, ts = parse_line(schema.alarm_event_line(schema.Place("H1"), alert, "raised", None, 9000))
    assert tags == {"hospital": "H1", "ward": "A", "bed": "A-01", "kind": "news2", "event": "raised"}
    assert fields == {"id": "01a22779-41cc-7000-8c85-278f4dca60fd", "priority": "high", "state": "active", "title": "NEWS2 7", "detail": 'RR 25, "SpO2" 90', "by": ""}
    assert ts == 9000


def test_influxql_literals_escape_quotes_and_match_stored_tags() -> None:
    assert schema.ql_string("it's") == "'it\\'s'"
    assert schema.ql_ident('a"b') == '"a\\"b"'
    assert schema.ql_tag_equals("bed", "A\\1") == "\"bed\" = 'A%5C1'"


# --- round trip ------------------------------------------------------------------------------

_name_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters='\\"\x7f' + "".join(map(chr, range(32))))
names = st.text(_name_chars, min_size=1, max_size=12).filter(lambda s: not s.startswith("#"))
keys = st.text(_name_chars, min_size=1, max_size=12).filter(lambda s: s != "time")
tag_values = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=16)
field_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(INT64_MIN, INT64_MAX),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
)


def _encode_field(v: object) -> str:
    if isinstance(v, bool):
        return bool_field(v)
    if isinstance(v, int):
        return int_field(v)
    if isinstance(v, float):
        return float_field(v)
    assert isinstance(v, str)
    return string_field(v)


@settings(max_examples=300, deadline=None)
@given(
    measurement=names,
    tags=st.dictionaries(keys, tag_values, max_size=5),
    fields=st.dictionaries(keys, field_values, min_size=1, max_size=5),
    ts=st.integers(-9_000_000_000_000, 9_000_000_000_000),
)
def test_round_trip_through_a_parser(measurement: str, tags: dict[str, str], fields: dict[str, object], ts: int) -> None:
    line = encode_line(measurement, tags, {k: _encode_field(v) for k, v in fields.items()}, ts)
    m, got_tags, got_fields, got_ts = parse_line(line)
    assert m == measurement and got_ts == ts
    assert {k: unquote_tag_value(v) for k, v in got_tags.items()} == tags
    assert list(got_tags) == sorted(got_tags)
    assert got_fields == fields
    assert all(type(got_fields[k]) is type(v) for k, v in fields.items())


@settings(max_examples=200, deadline=None)
@given(value=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30))
def test_tag_quoting_is_invertible(value: str) -> None:
    stored = quote_tag_value(value)
    assert "\\" not in stored and "\n" not in stored
    assert unquote_tag_value(stored) == value
