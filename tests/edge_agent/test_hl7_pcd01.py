"""HL7 PCD-01 over MLLP parser: golden messages and ACKs, chunking independence, AE/AR, and fuzzing."""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import pytest
import yaml
from fuzz_support import MUTATION, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.config import parse_edge_config
from edge_agent.drivers import get_driver
from edge_agent.drivers.hl7_pcd01 import (
    GARBAGE_REPORT,
    HEAD_BYTES,
    MAX_PENDING_OUT,
    Pcd01Parser,
    format_hl7_time,
    parse_hl7_time,
    parse_timezone,
)
from edge_agent.events import ParseError
from simulators.hl7_sim import Row, encode_oru
from wire.codec import decode_edge, encode_edge
from wire.messages import Observation, ObsFrame, UnmappedObservation
from wire.screen import screen
from wire.vocabulary import Flag

T_RX = 1_735_732_801_000  # 2025-01-01 12:00:01 UTC
DEV = "gw-1"
BEDS = {"ICU^^BED04": "A-04", "ICU^^BED05": "A-05"}
VT, END = b"\x0b", b"\x1c\r"

T_1200 = 1_735_732_800_000  # 2025-01-01 12:00:00 UTC
T_1205 = T_1200 + 5 * 60_000
T_1210 = T_1200 + 10 * 60_000

DOCUMENTED_CODES = {
    "framing",
    "oversized",
    "malformed",
    "unsupported",
    "malformed_segment",
    "unknown_location",
    "bad_value",
    "bad_unit",
    "bad_time",
}


def frame(message: bytes) -> bytes:
    return VT + message + END


def parser(**options) -> Pcd01Parser:
    return Pcd01Parser(beds=BEDS, device=DEV, clock_ms=lambda: T_RX, **options)


def obs(bed: str, param: str, value: float | None, t_dev: int, flags: int = 0) -> Observation:
    return Observation(bed=bed, param=param, value=value, t_dev=t_dev, t_rx=T_RX, device=DEV, flags=flags)


def ack(control_id: str, their_app: str, their_facility: str, code: str = "AA", n: int = 1, rest: str = "", trigger: str = "R01") -> bytes:
    """The ACK we expect, written out field by field (the parser's start time is T_RX)."""
    msh = f"MSH|^~\\&|TELEICU|gw-1|{their_app}|{their_facility}|20250101120001.000+0000||ACK^{trigger}^ACK|{T_RX}{n:07d}|P|2.6"
    return VT + f"{msh}\rMSA|{code}|{control_id}{rest}\r".encode() + END


# -- golden messages -------------------------------------------------------------------

# shared/samples/pcd01_oru_r01.hl7, byte for byte (1,118 bytes; CI runs on a fresh clone
# without ../shared). The file ends its segments with "\n", not HL7's "\r": both are accepted.
SAMPLE = (
    b"MSH|^~\\&|GW^080019FFFE0B4020^EUI-64|ICU|||20250101120000+0000||ORU^R01^ORU_R01|MSG0001|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO\n"
    b"PID|||MRN123^^^HOSP^MR||DOE^JANE\n"
    b"PV1||I|ICU^^BED04\n"
    b"OBR|1|MSG0001^GW^080019FFFE0B4020^EUI-64|MSG0001^GW^080019FFFE0B4020^EUI-64|182777000^monitoring of patient^SCT|||20250101120000+0000\n"
    b"OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||080019FFFE0B4020^EUI-64\n"
    b"OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|88|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R\n"
    b"OBX|3|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.1|94|262688^MDC_DIM_PERCENT^MDC|||||R\n"
    b"OBX|4|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|22|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R\n"
    b"OBX|5|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.4.1.1|104|266016^MDC_DIM_MMHG^MDC|||||R\n"
    b"OBX|6|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.4.1.2|62|266016^MDC_DIM_MMHG^MDC|||||R\n"
    b"OBX|7|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.4.1.3|76|266016^MDC_DIM_MMHG^MDC|||||R\n"
    b"OBX|8|NM|150344^MDC_TEMP^MDC|1.5.1.1|38.3|268192^MDC_DIM_DEGC^MDC|||||R\n"
    b"OBX|9|NM|151708^MDC_AWAY_CO2_ET^MDC|1.6.1.1|35|266016^MDC_DIM_MMHG^MDC|||||R\n"
)
SAMPLE_SHA256 = "d73c7118209a81f1f1e5d51893d90b3aa02a1a5361cba1e0d4daf73290ba001b"  # of the shared file
SAMPLE_CR = SAMPLE.replace(b"\n", b"\r")  # as HL7 sends them
SAMPLE_OBS = [
    obs("A-04", "hr", 88, T_1200),
    obs("A-04", "spo2", 94, T_1200),
    obs("A-04", "rr", 22, T_1200),
    obs("A-04", "nibp_sys", 104, T_1200),
    obs("A-04", "nibp_dia", 62, T_1200),
    obs("A-04", "nibp_mean", 76, T_1200),
    obs("A-04", "temp", 38.3, T_1200),
    obs("A-04", "etco2", 35, T_1200),
]
SAMPLE_ACK = ack("MSG0001", "GW^080019FFFE0B4020^EUI-64", "ICU")

# Cuff-pressure and Philips pulse-rate codes, probe off (X), an unknown code,
# kPa and degF converted, OBX-14 with and without an offset, a UCUM unit.
VARIANTS = (
    b"MSH|^~\\&|GW2^0800190000000002^EUI-64|ICU|||20250101120500+0000||ORU^R01^ORU_R01|MSG0002|P|2.6|||NE|AL||UNICODE UTF-8\r"
    b"PID|||MRN456^^^HOSP^MR||ROE^RICHARD\r"
    b"PV1||I|ICU^^BED05\r"
    b"OBR|1|MSG0002^GW2|MSG0002^GW2|182777000^monitoring of patient^SCT|||20250101120500+0000\r"
    b"OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X\r"
    b"OBX|2|NM|149538^MDC_PULS_OXIM_PULS_RATE^MDC|1.2.1.2|71|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R\r"
    b"OBX|3|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.1||262688^MDC_DIM_PERCENT^MDC|||||X\r"
    b"OBX|4|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1.4.1.1|121|266016^MDC_DIM_MMHG^MDC|||||R|||20250101120330+0000\r"
    b"OBX|5|NM|150302^MDC_PRESS_CUFF_DIA^MDC|1.4.1.2|79|266016^MDC_DIM_MMHG^MDC|||||R|||20250101120330+0000\r"
    b"OBX|6|NM|150303^MDC_PRESS_CUFF_MEAN^MDC|1.4.1.3|93|266016^MDC_DIM_MMHG^MDC|||||R|||20250101120330+0000\r"
    b"OBX|7|NM|150457^MDC_PULS_OXIM_PULS_RATE^MDC|1.2.1.3|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R\r"
    b"OBX|8|NM|151708^MDC_AWAY_CO2_ET^MDC|1.6.1.1|5.0|265987^MDC_DIM_KILO_PASCAL^MDC|||||R\r"
    b"OBX|9|NM|150344^MDC_TEMP^MDC|1.5.1.1|98.6|266560^MDC_DIM_FAHR^MDC|||||F|||20250101173500.25+0530\r"
    b"OBX|10|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|18|/min^/min^UCUM|||||R|||202501011205\r"
)
UNKNOWN_150457 = UnmappedObservation(
    bed="A-05", device=DEV, system="MDC", code="150457", name="MDC_PULS_OXIM_PULS_RATE", value="72",
    unit="264864^MDC_DIM_BEAT_PER_MIN^MDC", status="R", t_dev=T_1205, t_rx=T_RX,
)  # fmt: skip
T_NIBP = T_1200 + 3 * 60_000 + 30_000
VARIANTS_EVENTS = [
    obs("A-05", "pr", 71, T_1205),  # 149538: the Philips pulse-rate code
    obs("A-05", "spo2", None, T_1205, Flag.INVALID),  # OBX-11 X: no value
    obs("A-05", "nibp_sys", 121, T_NIBP),  # 150301-3: cuff codes, OBX-14 time
    obs("A-05", "nibp_dia", 79, T_NIBP),
    obs("A-05", "nibp_mean", 93, T_NIBP),
    UNKNOWN_150457,  # kept and reported, not guessed
    obs("A-05", "etco2", 37.5, T_1205),  # 5.0 kPa
    obs("A-05", "temp", 37.0, T_1205 + 250),  # 98.6 degF; 17:35:00.25+0530 = 12:05:00.250Z
    obs("A-05", "rr", 18, T_1205),  # no offset: UTC by default
]
VARIANTS_ACK = ack("MSG0002", "GW2^0800190000000002^EUI-64", "ICU")

# Row errors (AE, the other values kept) and a second patient at an unknown bed.
ERRORS = (
    b"MSH|^~\\&|GW3|ICU|||20250101121000+0000||ORU^R01^ORU_R01|MSG0003|P|2.6\r"
    b"PID|||MRN789\r"
    b"PV1||I|ICU^^BED04\r"
    b"OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|abc|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R\r"
    b"OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.1|97|266016^MDC_DIM_MMHG^MDC|||||R\r"
    b"OBX|3|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|19|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R\r"
    b"OBX|4|ST|150344^MDC_TEMP^MDC|1.5.1.1|warm|268192^MDC_DIM_DEGC^MDC|||||R\r"
    b"OBX|5|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.4.1.1|120||||||R\r"
    b"OBX|6|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.1|140|262688^MDC_DIM_PERCENT^MDC|||||R\r"
    b"OBX|7|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|80|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||2025013199\r"
    b"PID|||MRN999\r"
    b"PV1||I|ICU^^BED99\r"
    b"OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|77|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R\r"
)


def _seg_len(message: bytes, start: bytes) -> int:
    return len(next(s for s in message.split(b"\r") if s.startswith(start)))


ERRORS_EVENTS = [
    ParseError("bad_value", "hr: value 'abc' is not a number", _seg_len(ERRORS, b"OBX|1|")),
    ParseError("bad_unit", "spo2: unit '266016^MDC_DIM_MMHG^MDC' (mm[Hg], expected %) cannot be converted", _seg_len(ERRORS, b"OBX|2|")),
    obs("A-04", "rr", 19, T_1210),
    ParseError("bad_value", "temp: value type 'ST' is not NM", _seg_len(ERRORS, b"OBX|4|")),
    ParseError("bad_unit", "nibp_sys: no unit (expected mm[Hg])", _seg_len(ERRORS, b"OBX|5|")),
    ParseError("bad_value", "spo2=140 % is outside the plausible range [0, 100]", _seg_len(ERRORS, b"OBX|6|")),
    ParseError("bad_time", "hr: OBX-14 '2025013199' is not a valid time", _seg_len(ERRORS, b"OBX|7|")),
    ParseError(
        "unknown_location",
        "PV1-3 location 'ICU^^BED99' is not in this device's beds mapping; 1 OBX row not used",
        _seg_len(ERRORS, b"OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|77"),
    ),
]
ERRORS_ACK = ack(
    "MSG0003",
    "GW3",
    "ICU",
    "AE",
    rest="|hr: value 'abc' is not a number"
    "\rERR||OBX^1^5|102^Data type error^HL70357|E||||hr: value 'abc' is not a number"
    "\rERR||OBX^2^6|103^Table value not found^HL70357|E||||spo2: unit '266016\\S\\MDC_DIM_MMHG\\S\\MDC' (mm[Hg], expected %) cannot be converted"
    "\rERR||OBX^4^2|102^Data type error^HL70357|E||||temp: value type 'ST' is not NM"
    "\rERR||OBX^5^6|101^Required field missing^HL70357|E||||nibp_sys: no unit (expected mm[Hg])"
    "\rERR||OBX^6^5|102^Data type error^HL70357|E||||spo2=140 % is outside the plausible range [0, 100]"
    "\rERR||OBX^7^14|102^Data type error^HL70357|E||||hr: OBX-14 '2025013199' is not a valid time"
    "\rERR||PV1^2^3|204^Unknown key identifier^HL70357|E||||PV1-3 location 'ICU\\S\\\\S\\BED99' is not in this device's beds mapping; 1 OBX row not used",
)

# A message for another gateway's bed: AE, nothing used.
UNKNOWN_BED = SAMPLE_CR.replace(b"ICU^^BED04", b"CCU^2^BED01").replace(b"MSG0001|P", b"MSG0005|P")
UNKNOWN_BED_WHY = "PV1-3 location 'CCU^2^BED01' is not in this device's beds mapping; 8 OBX rows not used"
UNKNOWN_BED_ACK = ack(
    "MSG0005",
    "GW^080019FFFE0B4020^EUI-64",
    "ICU",
    "AE",
    rest="|PV1-3 location 'CCU\\S\\2\\S\\BED01' is not in this device's beds mapping; 8 OBX rows no"  # MSA-3: 80 characters
    "\rERR||PV1^1^3|204^Unknown key identifier^HL70357|E||||PV1-3 location 'CCU\\S\\2\\S\\BED01' is not in this device's beds mapping; 8 OBX rows not used",
)

ADT = b"MSH|^~\\&|ADT1|HOSP|||20250101121500+0000||ADT^A01^ADT_A01|MSG0004|P|2.6\rPID|||MRN1\r"
ADT_ACK = ack(
    "MSG0004",
    "ADT1",
    "HOSP",
    "AR",
    trigger="A01",
    rest="|message type 'ADT' is not ORU\rERR||MSH^1^9|200^Unsupported message type^HL70357|E||||message type 'ADT' is not ORU",
)
NOT_HL7 = b"hello"
NOT_HL7_ACK = VT + (
    b"MSH|^~\\&|TELEICU|gw-1|||20250101120001.000+0000||ACK^R01^ACK|" + str(T_RX).encode() + b"0000001|P|2.6\r"
    b"MSA|AR||message does not start with an MSH segment\r"
    b"ERR||MSH^1|100^Segment sequence error^HL70357|E||||message does not start with an MSH segment\r"
) + END

GOLDEN = [
    (SAMPLE, SAMPLE_OBS, SAMPLE_ACK),
    (SAMPLE_CR, SAMPLE_OBS, SAMPLE_ACK),
    (VARIANTS, VARIANTS_EVENTS, VARIANTS_ACK),
    (ERRORS, ERRORS_EVENTS, ERRORS_ACK),
    (UNKNOWN_BED, [ParseError("unknown_location", UNKNOWN_BED_WHY, sum(len(s) for s in SAMPLE.split(b"\n") if s.startswith(b"OBX|") and not s.startswith(b"OBX|1|")))], UNKNOWN_BED_ACK),
    (ADT, [ParseError("unsupported", "message type 'ADT' is not ORU", len(ADT))], ADT_ACK),
    (NOT_HL7, [ParseError("malformed", "message does not start with an MSH segment", len(NOT_HL7))], NOT_HL7_ACK),
]


def renumber(ack_bytes: bytes, n: int) -> bytes:
    """The same ACK as the n-th one of a connection (its own control id counts up)."""
    return ack_bytes.replace(f"|{T_RX}0000001|".encode(), f"|{T_RX}{n:07d}|".encode())


STREAM = b"".join(frame(m) for m, _, _ in GOLDEN)
STREAM_EVENTS = [e for _, events, _ in GOLDEN for e in events]
STREAM_ACKS = b"".join(renumber(a, i) for i, (_, _, a) in enumerate(GOLDEN, start=1))


def feed_chunks(p: Pcd01Parser, data: bytes, cuts: list[int]) -> list:
    events, prev = [], 0
    for cut in sorted(cuts) + [len(data)]:
        events += p.feed(data[prev:cut])
        prev = cut
    return events


@pytest.mark.parametrize(("message", "events", "ack_bytes"), GOLDEN, ids=["sample", "sample_cr", "variants", "errors", "unknown_bed", "adt", "not_hl7"])
def test_golden_message_whole(message: bytes, events: list, ack_bytes: bytes) -> None:
    p = parser()
    assert p.feed(frame(message)) == events
    assert p.bytes_to_send() == ack_bytes
    assert p.bytes_to_send() == b""  # handed out once
    assert p.buffered == 0


@pytest.mark.parametrize(("message", "events", "ack_bytes"), GOLDEN, ids=["sample", "sample_cr", "variants", "errors", "unknown_bed", "adt", "not_hl7"])
def test_golden_message_split_at_every_boundary(message: bytes, events: list, ack_bytes: bytes) -> None:
    data = frame(message)
    for cut in range(len(data) + 1):
        p = parser()
        assert p.feed(data[:cut]) + p.feed(data[cut:]) == events, cut
        assert p.bytes_to_send() == ack_bytes, cut


def test_golden_stream_one_byte_at_a_time() -> None:
    p = parser()
    events = [e for i in range(len(STREAM)) for e in p.feed(STREAM[i : i + 1])]
    assert events == STREAM_EVENTS
    assert p.bytes_to_send() == STREAM_ACKS
    assert p.acks == {"AA": 3, "AE": 2, "AR": 2}


def test_golden_stream_split_at_every_seventh_boundary() -> None:
    for cut in range(0, len(STREAM) + 1, 7):
        p = parser()
        assert feed_chunks(p, STREAM, [cut]) == STREAM_EVENTS, cut
        assert p.bytes_to_send() == STREAM_ACKS, cut


def test_golden_stream_random_chunks() -> None:
    rng = random.Random(5)
    for _ in range(50):
        p = parser()
        cuts = rng.sample(range(1, len(STREAM)), rng.randint(2, 40))
        assert feed_chunks(p, STREAM, cuts) == STREAM_EVENTS
        assert p.bytes_to_send() == STREAM_ACKS


def test_sample_copy_is_the_shared_file() -> None:
    assert len(SAMPLE) == 1118 and SAMPLE.count(b"\n") == 13 and b"\r" not in SAMPLE
    assert hashlib.sha256(SAMPLE).hexdigest() == SAMPLE_SHA256


def test_patient_id_is_recorded_per_bed() -> None:
    p = parser()
    p.feed(frame(SAMPLE) + frame(VARIANTS) + frame(ERRORS))
    assert p.patients == {"A-04": "MRN789", "A-05": "MRN456"}  # MRN999's bed is not ours


def test_unknown_codes_are_kept_as_unmapped_observations_and_counted() -> None:
    p = parser()
    events = p.feed(frame(VARIANTS) * 3)
    assert [e for e in events if isinstance(e, UnmappedObservation)] == [UNKNOWN_150457] * 3
    assert p.unknown_codes == {"150457 MDC_PULS_OXIM_PULS_RATE": 3}
    assert p.errors == {}  # kept, not an error: the ACK is AA


# -- AR: messages refused whole -------------------------------------------------------------


def msh(fields: str = "", *, body: str = "PID|||MRN1\rPV1||I|ICU^^BED04\r") -> bytes:
    """A message whose MSH is patched: ``fields`` like ``"9=ORU^R30|11=T"``."""
    f = ["MSH", "^~\\&", "GW", "ICU", "", "", "20250101120000+0000", "", "ORU^R01^ORU_R01", "C1", "P", "2.6"]
    for item in filter(None, fields.split("|")):
        n, _, value = item.partition("=")
        f[int(n) - 1] = value
    return ("|".join(f) + "\r" + body).encode()


def hl7_escaped(text: str) -> str:
    for c, e in (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\")):
        text = text.replace(c, e)
    return text


@pytest.mark.parametrize(
    ("message", "code", "hl7", "why"),
    [
        (msh("9=ORU^R30^ORU_R30"), "unsupported", "MSH^1^9|201^Unsupported event code", "trigger event 'R30' is not R01"),
        (msh("11=T"), "unsupported", "MSH^1^11|202^Unsupported processing id", "processing id 'T' is not P (production): test data is not charted"),
        (msh("12=3.0"), "unsupported", "MSH^1^12|203^Unsupported version id", "version '3.0' is not HL7 v2.x"),
        (msh("10="), "malformed", "MSH^1^10|101^Required field missing", "MSH-10 (message control id) is empty"),
        (msh("7="), "malformed", "MSH^1^7|101^Required field missing", "MSH-7 '' is not a valid time (YYYYMMDDHHMM[SS[.SSSS]][+ZZZZ])"),
        (msh("7=20251301120000"), "malformed", "MSH^1^7|102^Data type error", "MSH-7 '20251301120000' is not a valid time (YYYYMMDDHHMM[SS[.SSSS]][+ZZZZ])"),
        (msh("2=^^\\&"), "malformed", "MSH^1^2|102^Data type error", "bad encoding characters '|^^\\\\&'"),
        (b"PID|||MRN1\rMSH|^~\\&|GW\r", "malformed", "MSH^1|100^Segment sequence error", "message does not start with an MSH segment"),
        (b"", "malformed", "MSH^1|100^Segment sequence error", "message does not start with an MSH segment"),
    ],
)
def test_refused_messages_get_ar_with_the_reason(message: bytes, code: str, hl7: str, why: str) -> None:
    p = parser()
    assert p.feed(frame(message)) == [ParseError(code, why, len(message))]
    out = p.bytes_to_send().decode()
    segments = out[1:-2].split("\r")
    msa = segments[1].split("|")
    assert msa[:2] == ["MSA", "AR"]
    assert segments[2] == f"ERR||{hl7}^HL70357|E||||" + hl7_escaped(why)
    assert p.acks == {"AR": 1}


def test_control_id_and_sender_are_unescaped_and_echoed_with_standard_delimiters() -> None:
    # field separator '#', components '$': the ACK still uses |^~\&
    message = b"MSH#$~\\&#GW$EUI#ICU###20250101120000+0000##ORU$R01$ORU_R01#A\\F\\B^C#P#2.6\rPV1##I#ICU$$BED04\r" + (
        b"OBX#1#NM#147842$MDC_ECG_HEART_RATE$MDC#1.1.1.1#70#264864$MDC_DIM_BEAT_PER_MIN$MDC#####R\r"
    )
    p = parser()
    assert p.feed(frame(message)) == [obs("A-04", "hr", 70, T_1200)]
    assert p.bytes_to_send() == ack("A#B\\S\\C", "GW^EUI", "ICU")


def test_oversized_message_is_refused_and_the_stream_resynchronises() -> None:
    big = SAMPLE_CR + b"NTE|1||" + b"x" * 3000 + b"\r"
    assert len(big) == 4126
    p = parser(max_message=2048)
    events = p.feed(frame(big) + frame(SAMPLE_CR))
    assert events == [ParseError("oversized", "message of 4126 bytes exceeds the limit of 2048", len(big))] + SAMPLE_OBS
    out = p.bytes_to_send()
    first, second = out.split(END)[:2]
    assert first + END == ack(
        "MSG0001",
        "GW^080019FFFE0B4020^EUI-64",
        "ICU",
        "AR",
        rest="|message of 4126 bytes exceeds the limit of 2048\rERR|||207^Application internal error^HL70357|E||||message of 4126 bytes exceeds the limit of 2048",
    )
    assert second + END == renumber(SAMPLE_ACK, 2)


def test_oversized_without_a_readable_msh_gets_ar_with_empty_control_id() -> None:
    p = parser(max_message=1024)
    events = p.feed(frame(b"M" * (HEAD_BYTES + 10)))
    assert [e.code for e in events] == ["oversized"]
    assert b"\rMSA|AR||message of 4106 bytes" in p.bytes_to_send()


def test_oversized_buffer_stays_bounded_one_byte_at_a_time() -> None:
    p = parser(max_message=1024)
    p.feed(VT)
    for _ in range(5000):
        assert not p.feed(b"a")
        assert p.buffered <= 1024
    assert p.buffered <= HEAD_BYTES
    assert [e.code for e in p.feed(END)] == ["oversized"]


def test_max_message_option_is_checked() -> None:
    with pytest.raises(ValueError, match="max_message"):
        parser(max_message=10)


# -- framing ----------------------------------------------------------------------------


def test_garbage_outside_blocks_is_reported_per_run_and_messages_survive() -> None:
    p = parser()
    events = p.feed(b"noise" + frame(SAMPLE_CR) + b"\r\n" + frame(SAMPLE_CR))
    assert events == [ParseError("framing", "bytes outside an MLLP block", 5), *SAMPLE_OBS, ParseError("framing", "bytes outside an MLLP block", 2), *SAMPLE_OBS]
    assert p.acks == {"AA": 2}


def test_long_garbage_is_reported_in_bounded_steps() -> None:
    p = parser()
    events = p.feed(b"\x00" * (GARBAGE_REPORT * 2 + 3))
    assert events == [ParseError("framing", "bytes outside an MLLP block", GARBAGE_REPORT)] * 2
    assert p.eof() == [ParseError("framing", "bytes outside an MLLP block", 3)]


def test_block_cut_short_by_a_new_start_gets_no_ack() -> None:
    p = parser()
    half = SAMPLE_CR[:100]
    events = p.feed(VT + half + frame(SAMPLE_CR))
    assert events == [ParseError("framing", "MLLP block cut short by a new start byte 0x0B; 100 bytes discarded, no ACK (the sender re-sends)", 100), *SAMPLE_OBS]
    assert p.bytes_to_send() == SAMPLE_ACK  # one ACK: the cut block gets none


def test_end_byte_without_carriage_return_discards_the_block() -> None:
    p = parser()
    events = p.feed(VT + SAMPLE_CR + b"\x1cX" + frame(SAMPLE_CR))
    assert events[0] == ParseError(
        "framing", f"MLLP end byte 0x1C followed by 0x58, not 0x0D; {len(SAMPLE_CR) + 1} bytes discarded, no ACK (the sender re-sends)", len(SAMPLE_CR) + 1
    )
    assert events[1] == ParseError("framing", "bytes outside an MLLP block", 1)  # the 'X'
    assert events[2:] == SAMPLE_OBS
    assert p.bytes_to_send() == SAMPLE_ACK


def test_eof_reports_an_incomplete_block() -> None:
    p = parser()
    assert p.feed(VT + SAMPLE_CR[:50]) == []
    assert p.eof() == [ParseError("framing", "connection closed inside an MLLP block; 50 bytes discarded, no ACK (the sender re-sends)", 50)]
    assert p.eof() == []
    assert p.bytes_to_send() == b""


def test_pending_acks_are_bounded() -> None:
    tiny = frame(b"MSH|^~\\&|||||202501011200||ORU^R01|1|P|2.6\r")
    n = MAX_PENDING_OUT // 100 + 10
    p = parser()
    p.feed(tiny * n)
    out = p.bytes_to_send()
    assert len(out) <= MAX_PENDING_OUT
    assert p.acks_dropped > 0 and p.acks["AA"] + p.acks_dropped == n == p.messages
    assert out.count(VT) == p.acks["AA"]


# -- OBX rules ---------------------------------------------------------------------------------


def one_obx(obx: str, *, pv1: str = "PV1||I|ICU^^BED04", msh_time: str = "20250101120000+0000", **options) -> list:
    message = msh(f"7={msh_time}", body=f"{pv1}\r{obx}\r")
    return parser(**options).feed(frame(message))


@pytest.mark.parametrize(
    ("obx", "expected"),
    [
        # context rows: no value type, no value -> nothing
        ("OBX|1||70686^MDC_DEV_PRESS_BLD_NONINV_VMD^MDC|1.4.0.0|||||||X", []),
        ("OBX|1||999999^MDC_SOMETHING^MDC|1.4.1.0", []),
        # X wins over a value
        ("OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|70|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||X", [obs("A-04", "hr", None, T_1200, Flag.INVALID)]),
        # known code with an empty value: no value, flagged
        ("OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1||264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R", [obs("A-04", "hr", None, T_1200, Flag.INVALID)]),
        # numbers: sign, leading dot, spaces around
        ("OBX|1|NM|150033^MDC_PRESS_BLD_ART_ABP_SYS^MDC|1.7.1.1|-5|266016^MDC_DIM_MMHG^MDC|||||F", [obs("A-04", "abp_sys", -5, T_1200)]),
        ("OBX|1|NM|150344^MDC_TEMP^MDC|1.5.1.1| 37.25 |268192^MDC_DIM_DEGC^MDC|||||R", [obs("A-04", "temp", 37.25, T_1200)]),
        # corrected result accepted; deleted result refused
        ("OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||C", [obs("A-04", "rr", 20, T_1200)]),
        # OBX-14 with fractional seconds and a negative offset
        ("OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||20250101063000.1234-0530", [obs("A-04", "rr", 20, T_1200 + 123)]),
        # a code from another coding system is not MDC: reported, not guessed
        ("OBX|1|NM|8867-4^Heart rate^LN|1.1.1.1|70|/min^/min^UCUM|||||R",
         [UnmappedObservation("A-04", DEV, "LN", "8867-4", "Heart rate", "70", "/min^/min^UCUM", "R", T_1200, T_RX)]),
        ("OBX|1|NM|abc^MDC_X^MDC|1.1.1.1|70|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R",
         [UnmappedObservation("A-04", DEV, "MDC", "abc", "MDC_X", "70", "264864^MDC_DIM_BEAT_PER_MIN^MDC", "R", T_1200, T_RX)]),
        # an unmapped row keeps its own time, and a bad one is a bad_time like any row's
        ("OBX|1|ST|99999^MDC_X^MDC|1.1.1.1|on\\F\\off||||||F|||20250101120001",
         [UnmappedObservation("A-04", DEV, "MDC", "99999", "MDC_X", "on|off", "", "F", T_1200 + 1000, T_RX)]),
        ("OBX|1|NM|99999^MDC_X^MDC|1.1.1.1|7||||||R|||2025", ["bad_time"]),
        ("OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||D", ["bad_value"]),
        ("OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|1e3|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R", ["bad_value"]),
        ("OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|999^MDC_DIM_X^MDC|||||R", ["bad_unit"]),
        ("OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|mm[Hg]^mm[Hg]^UCUM|||||R", ["bad_unit"]),
        ("OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||20250101", ["bad_time"]),
        ("OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||202501011200+2400", ["bad_time"]),
    ],
)
def test_obx_rules(obx: str, expected: list) -> None:
    events = one_obx(obx)
    got = [e.code if isinstance(e, ParseError) else e for e in events]
    assert got == expected


def test_obr_time_is_used_when_obx_has_none_and_msh_time_last() -> None:
    body = (
        "PV1||I|ICU^^BED04\r"
        "OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R\r"
        "OBR|1||||||20250101120500+0000\r"
        "OBX|2|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|21|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R\r"
    )
    assert parser().feed(frame(msh(body=body))) == [obs("A-04", "rr", 20, T_1200), obs("A-04", "rr", 21, T_1205)]


def test_obx_without_pv1_is_an_unknown_location() -> None:
    events = one_obx("OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R", pv1="NTE|1")
    assert [(e.code, e.detail) for e in events] == [("unknown_location", "no PV1-3 location before the OBX rows; 1 OBX row not used")]


def test_location_key_drops_trailing_components_and_repetitions() -> None:
    row = "OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R"
    assert one_obx(row, pv1="PV1||I|ICU^^BED04^^^^HOSP~OTHER^^BED1") == [obs("A-04", "rr", 20, T_1200)]
    assert [e.code for e in one_obx(row, pv1="PV1||I|icu^^BED04")] == ["unknown_location"]  # exact, case-sensitive


def test_malformed_segment_is_reported_and_the_rest_used() -> None:
    body = "PV1||I|ICU^^BED04\rob x|broken\rOBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R\r"
    p = parser()
    events = p.feed(frame(msh(body=body)))
    assert [e.code if isinstance(e, ParseError) else e.param for e in events] == ["malformed_segment", "rr"]
    assert b"\rMSA|AE|C1|segment 'ob x\\F\\broken' has no valid segment id\r" in p.bytes_to_send()  # '|' escaped


# -- time zones --------------------------------------------------------------------------


def test_timestamps_without_offset_follow_the_timezone_option() -> None:
    row = "OBX|1|NM|151562^MDC_RESP_RATE^MDC|1.3.1.1|20|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||202501011730"
    for tz in ("+0530", "+05:30", "Asia/Kolkata"):
        assert one_obx(row, timezone=tz) == [obs("A-04", "rr", 20, T_1200)], tz
    assert one_obx(row) == [obs("A-04", "rr", 20, T_1200 + 330 * 60_000)]  # UTC by default
    # an explicit offset is never overridden
    assert one_obx(row + "+0000", timezone="Asia/Kolkata") == [obs("A-04", "rr", 20, T_1200 + 330 * 60_000)]


def test_dst_zone_uses_the_offset_in_force_then() -> None:
    tz = parse_timezone("Europe/Berlin")
    assert parse_hl7_time("202501011300", tz) == T_1200  # CET, UTC+1
    assert parse_hl7_time("202507011400", tz) == parse_hl7_time("202507011200+0000", tz)  # CEST, UTC+2


@pytest.mark.parametrize("bad", ["Mars/Olympus", "+2500", "0530", ""])
def test_bad_timezone_option_is_refused_at_construction(bad: str) -> None:
    with pytest.raises(ValueError, match="timezone"):
        parser(timezone=bad)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("202501011200", T_1200),
        ("20250101120000", T_1200),
        ("20250101120000.5", T_1200 + 500),
        ("20250101120000.0501+0000", T_1200 + 50),
        ("20250101133000+0130", T_1200),
        ("2025010112", None),
        ("20250230120000", None),
        ("20250101126000", None),
        ("20250101120000+0060", None),
        ("2025-01-01T12:00", None),
    ],
)
def test_parse_hl7_time(text: str, ms: int | None) -> None:
    assert parse_hl7_time(text, parse_timezone("UTC")) == ms


def test_format_hl7_time_round_trips() -> None:
    assert format_hl7_time(T_1200 + 7) == "20250101120000.007+0000"
    assert parse_hl7_time(format_hl7_time(T_RX + 123), parse_timezone("UTC")) == T_RX + 123


# -- the simulator's bytes decode to what it meant ------------------------------------------


def test_simulator_messages_decode_to_the_intended_values() -> None:
    rows = [Row("hr", 81), Row("spo2", None), Row("pr", None), Row("rr", 17), Row("nibp_sys", 118, T_1200 - 60_000),
            Row("nibp_dia", 76, T_1200 - 60_000), Row("nibp_mean", 90, T_1200 - 60_000), Row("temp", 36.8), Row("etco2", 37)]  # fmt: skip
    for cuff in (False, True):
        for philips in (False, True):
            message = encode_oru(control_id="X1", t_ms=T_1200 + 250, gateway="GW", eui64="00155DFFFE000001",
                                 patient_id="MRN-A-04", location="ICU^^BED04", rows=rows, cuff=cuff, philips_pr=philips)  # fmt: skip
            assert (b"|150301^" in message) is cuff and (b"|149538^" in message) is philips
            p = parser()
            t = T_1200 + 250
            assert p.feed(frame(message)) == [
                obs("A-04", "hr", 81, t),
                obs("A-04", "spo2", None, t, Flag.INVALID),
                obs("A-04", "pr", None, t, Flag.INVALID),
                obs("A-04", "rr", 17, t),
                obs("A-04", "nibp_sys", 118, T_1200 - 60_000),
                obs("A-04", "nibp_dia", 76, T_1200 - 60_000),
                obs("A-04", "nibp_mean", 90, T_1200 - 60_000),
                obs("A-04", "temp", 36.8, t),
                obs("A-04", "etco2", 37, t),
            ]
            assert p.acks == {"AA": 1} and p.patients == {"A-04": "MRN-A-04"}


# -- registration ---------------------------------------------------------------------------


def test_driver_is_registered_for_the_tcp_listen_transport() -> None:
    spec = get_driver("hl7_pcd01")
    assert spec.transport == "tcp_listen" and spec.multi_bed
    p = spec.parser(beds=BEDS, device=DEV)  # as the transport builds it
    p.feed(frame(SAMPLE_CR))
    assert p.bytes_to_send().startswith(VT + b"MSH|^~\\&|TELEICU|gw-1|")


def test_readme_sample_config_is_valid_and_works() -> None:
    text = (Path(__file__).resolve().parents[2] / "edge_agent" / "drivers" / "hl7_pcd01.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert block, "hl7_pcd01.md has no yaml example"
    (dev,) = parse_edge_config(yaml.safe_load(block[1])).devices
    assert dev.driver == "hl7_pcd01" and dev.settings == {"listen": "0.0.0.0:2575"}
    assert dev.beds == {"ICU^^BED04": "ICU1-04", "ICU^^BED05": "ICU1-05"}
    p = get_driver(dev.driver).parser(beds=dev.beds, device=dev.id, clock_ms=lambda: T_RX, **dev.options)
    naive = SAMPLE_CR.replace(b"20250101120000+0000", b"20250101173000")  # Asia/Kolkata wall clock
    assert p.feed(frame(naive))[0] == Observation("ICU1-04", "hr", 88, T_1200, T_RX, "gw-icu1", 0)


# -- fuzzing ------------------------------------------------------------------------------------

_ACK_FRAME = re.compile(rb"\x0bMSH\|\^~\\&\|TELEICU\|gw-1\|[^\x0b\x1c]*\rMSA\|A[AER]\|[^\x0b\x1c]*\r\x1c\r")


def check_invariants(p: Pcd01Parser, events: list, max_message: int) -> None:
    for e in events:
        if isinstance(e, ParseError):
            assert e.code in DOCUMENTED_CODES, e
            assert e.discarded >= 0
        elif isinstance(e, UnmappedObservation):  # whatever a device sends, the wire carries it as sent
            assert e.bed in BEDS.values() and e.device == DEV and e.code
            assert decode_edge(encode_edge(ObsFrame(1, (), (e,)))).unmapped == (e,)
        else:
            assert isinstance(e, Observation), e
            assert e.bed in BEDS.values() and e.device == DEV
            assert screen(e) is None, e
            assert decode_edge(encode_edge(ObsFrame(1, (e,)))).obs == (e,)  # the hub takes what the parser emits
    assert p.buffered <= max_message
    out = p.bytes_to_send()
    acks = _ACK_FRAME.findall(out)
    assert b"".join(acks) == out  # nothing but well-formed ACK frames
    assert len(acks) == p.messages - p.acks_dropped


_PIECES = st.sampled_from(
    [
        *(VT, END, b"\x1c", b"\r", b"\n", b"|", b"^", b"~", b"\\", b"&", b"X", b"88", b"NM", b"+0000", b"x" * 700),
        *(b"MSH|^~\\&|", b"OBX|", b"PV1||I|ICU^^BED04", b"ORU^R01", b"20250101120000"),
        *(b"147842^MDC_ECG_HEART_RATE^MDC", b"264864^MDC_DIM_BEAT_PER_MIN^MDC"),
    ]
)
_NOISE = st.lists(st.one_of(st.binary(max_size=64), _PIECES), max_size=60).map(b"".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_NOISE, cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8))
def test_fuzz_any_bytes(data: bytes, cuts: list[int]) -> None:
    p = parser(max_message=1024)
    events = feed_chunks(p, data, [c for c in cuts if c <= len(data)])
    events += p.eof()
    check_invariants(p, events, 1024)
    # chunking never changes the outcome
    q = parser(max_message=1024)
    assert q.feed(data) + q.eof() == events


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.lists(st.sampled_from([SAMPLE_CR, VARIANTS, ERRORS, SAMPLE]), min_size=1, max_size=3),
    mutations=st.lists(MUTATION, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=6),
)
def test_fuzz_corrupted_valid_messages(which: list[bytes], mutations: list, cuts: list[int]) -> None:
    data = mutate(b"".join(frame(m) for m in which), mutations)
    p = parser()
    events = feed_chunks(p, data, [c for c in cuts if c <= len(data)]) + p.eof()
    check_invariants(p, events, 1 << 20)
    q = parser()
    assert q.feed(data) + q.eof() == events
