"""The shared HL7 v2 core: MLLP framing, delimiters and escapes, the location key, times, MSH checks and ACKs."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wire.hl7v2 import (
    E_INTERNAL,
    E_TABLE,
    MAX_ERR_SEGMENTS,
    Block,
    Encoding,
    FramingError,
    MllpFramer,
    OversizedBlock,
    Problem,
    build_ack,
    first_segment,
    location_key,
    parse_hl7_time,
    parse_timezone,
    read_header,
    split_segments,
)

VT, END = b"\x0b", b"\x1c\r"
UTC = parse_timezone("UTC")
STD = Encoding("|", "^", "~", "\\", "&")
T_1200 = 1_735_732_800_000


def test_framer_splits_blocks_and_reports_what_it_drops_in_order() -> None:
    f = MllpFramer(64, head_bytes=8, garbage_report=4)
    out = f.feed(b"abcdefghij" + VT + b"one" + END + VT + b"cut" + VT + b"two" + END + VT + b"x" * 70 + END + VT + b"bad\x1cZ")
    assert out == [
        FramingError("framing", "bytes outside an MLLP block", 4),
        FramingError("framing", "bytes outside an MLLP block", 4),
        FramingError("framing", "bytes outside an MLLP block", 2),  # flushed as the block starts
        Block(b"one"),
        FramingError("framing", "MLLP block cut short by a new start byte 0x0B; 3 bytes discarded, no ACK (the sender re-sends)", 3),
        Block(b"two"),
        OversizedBlock(b"x" * 8, 70),
        FramingError("framing", "MLLP end byte 0x1C followed by 0x5A, not 0x0D; 4 bytes discarded, no ACK (the sender re-sends)", 4),
    ]
    assert f.feed(b"") == [] and f.buffered == 0
    assert f.eof() == [FramingError("framing", "bytes outside an MLLP block", 1)]  # the 'Z'
    f.feed(VT + b"half")
    assert f.buffered == 4
    assert f.eof() == [FramingError("framing", "connection closed inside an MLLP block; 4 bytes discarded, no ACK (the sender re-sends)", 4)]
    f.feed(VT + b"y" * 100)
    assert f.eof() == [FramingError("oversized", "connection closed inside an MLLP block; block over 64 bytes, no ACK", 100)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([VT, END, b"\x1c", b"\r", b"z" * 90])), max_size=40).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=10),
)
def test_fuzz_framer_chunking_never_changes_the_output_and_buffers_stay_bounded(data: bytes, cuts: list[int]) -> None:
    whole = MllpFramer(64, head_bytes=16, garbage_report=32)
    expected = whole.feed(data) + whole.eof()
    f = MllpFramer(64, head_bytes=16, garbage_report=32)
    got: list = []
    pos = 0
    for c in sorted(c for c in cuts if c <= len(data)):
        got += f.feed(data[pos:c])
        assert f.buffered <= 64
        pos = c
    got += f.feed(data[pos:]) + f.eof()
    assert got == expected
    # every byte is accounted for: in a block, counted as dropped, or the framing bytes of a complete block
    blocks = [x for x in got if isinstance(x, Block)]
    over = [x for x in got if isinstance(x, OversizedBlock)]
    dropped = sum(x.discarded for x in got if isinstance(x, FramingError))
    assert all(len(b.data) <= 64 for b in blocks) and all(len(o.head) <= 16 and o.size > 64 for o in over)
    assert sum(len(b.data) + 3 for b in blocks) + sum(o.size + 3 for o in over) + dropped + _starts_cut(got) == len(data)


def _starts_cut(items: list) -> int:
    """The 0x0B of each block cut short (not counted in its ``discarded``): every framing error but garbage."""
    return sum(1 for x in items if isinstance(x, FramingError) and x.detail != MllpFramer.GARBAGE_DETAIL)


def test_segments_and_delimiters() -> None:
    assert split_segments("MSH|x\r\nPID|1\n\rPV1|2\r") == ["MSH|x", "PID|1", "PV1|2"]
    assert first_segment("MSH|x\rPID") == "MSH|x" and first_segment("MSH|x") is None
    assert STD.unescape(r"a\F\b\S\c\T\d\R\e\E\f\X0D\\H\g\unterminated") == r"a|b^c&d~e\f\X0D\\H\g\unterminated"
    assert STD.components(r"a\S\b^c~d") == ["a^b", "c"]
    assert STD.repetitions("a^b~c") == ["a^b", "c"]
    assert STD.rep_components("a^b&c") == ["a", "b&c"]
    assert STD.subcomponents(r"x\T\y&z") == ["x&y", "z"]
    assert STD.component_text(r"x&y\F\z") == "x&y|z"


def test_location_key() -> None:
    assert location_key(STD, "ICU^^BED04^^^^HOSP~OTHER") == "ICU^^BED04"
    assert location_key(STD, "ICU^101^BED04^SMS") == "ICU^101^BED04"
    assert location_key(STD, "ICU") == "ICU" and location_key(STD, "") == "" and location_key(STD, "^^") == ""
    assert location_key(STD, r"I\S\CU^^1") == "I^CU^^1"  # unescaped, then joined


def test_reduced_precision_times_only_when_asked() -> None:
    assert parse_hl7_time("20250101", UTC) is None
    assert parse_hl7_time("20250101", UTC, reduced=True) == T_1200 - 12 * 3_600_000
    assert parse_hl7_time("2025010112", UTC, reduced=True) == T_1200
    assert parse_hl7_time("2025010117+0530", UTC, reduced=True) == T_1200 - 30 * 60_000
    assert parse_hl7_time("20250101", parse_timezone("Asia/Kolkata"), reduced=True) == T_1200 - (12 * 60 + 330) * 60_000
    assert parse_hl7_time("20250230", UTC, reduced=True) is None
    assert parse_hl7_time("2025010112+2400", UTC, reduced=True) is None
    assert parse_hl7_time("202501011200", UTC, reduced=True) == T_1200  # full forms still read the same


def header(msh: str, **kw):
    return read_header(msh, UTC, **{"message_type": "ADT", "triggers": ("A01", "A03"), "test_data_note": "not applied", **kw})


def test_read_header_takes_the_receivers_message_kind() -> None:
    h, problem = header("MSH|^~\\&|HIS|SMS|||20250101120000||ADT^A03^ADT_A03|C1|P|2.5")
    assert problem is None and h is not None and (h.trigger, h.control_id, h.version, h.msg_time) == ("A03", "C1", "2.5", T_1200)
    _, problem = header("MSH|^~\\&|HIS|SMS|||20250101120000||ADT^A08|C1|P|2.5")
    assert problem == Problem("unsupported", (201, "Unsupported event code"), "MSH^1^9", "trigger event 'A08' is not one of A01, A03")
    _, problem = header("MSH|^~\\&|HIS|SMS|||20250101120000||ADT^A01|C1|P|2.5", triggers=("A01",))
    assert problem is None
    _, problem = header("MSH|^~\\&|HIS|SMS|||20250101120000||ADT^A08|C1|P|2.5", triggers=("A01",))
    assert problem is not None and problem.text == "trigger event 'A08' is not A01"
    _, problem = header("MSH|^~\\&|HIS|SMS|||20250101120000||ADT^A01|C1|T|2.5")
    assert problem is not None and problem.text == "processing id 'T' is not P (production): not applied"


def test_build_ack_warnings_on_aa_and_a_bounded_err_list() -> None:
    h, _ = header("MSH|^~\\&|HIS|SMS|||20250101120000||ADT^A01|C1|P|2.5")
    warn = Problem("unknown_sex", E_TABLE, "PID^1^8", "PID-8 'X' ...", "W")
    aa = build_ack(h, "AA", [warn], facility="HUB", now_ms=T_1200, control_id="K1", default_trigger=None)
    assert aa == VT + b"MSH|^~\\&|TELEICU|HUB|HIS|SMS|20250101120000.000+0000||ACK^A01^ACK|K1|P|2.5\rMSA|AA|C1\r" \
        b"ERR||PID^1^8|103^Table value not found^HL70357|W||||PID-8 'X' ...\r" + END
    many = [Problem("x", E_INTERNAL, "", f"reason {i}|") for i in range(MAX_ERR_SEGMENTS + 3)]
    ae = build_ack(None, "AR", many, facility="H^1", now_ms=T_1200, control_id="K2", default_trigger=None)
    segments = ae[1:-3].decode().split("\r")
    assert segments[0] == "MSH|^~\\&|TELEICU|H\\S\\1|||20250101120000.000+0000||ACK|K2|P|2.6"  # no header: plain ACK
    assert segments[1] == "MSA|AR||reason 0\\F\\"
    assert len(segments) == 2 + MAX_ERR_SEGMENTS + 1 and segments[-1].endswith("|W||||3 more errors not listed")
    assert build_ack(None, "AR", [], facility="D", now_ms=T_1200, control_id="K3", default_trigger="R01").startswith(
        VT + b"MSH|^~\\&|TELEICU|D|||20250101120000.000+0000||ACK^R01^ACK|K3|"
    )
