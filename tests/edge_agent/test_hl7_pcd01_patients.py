"""PCD-01 patient ids: with ``patient_events`` the parser reports each PID-3 seen at a known bed as ``PatientSeen``."""

from __future__ import annotations

import pytest

from edge_agent.config import parse_edge_config
from edge_agent.drivers import get_driver
from edge_agent.drivers.hl7_pcd01 import Pcd01Parser
from edge_agent.events import ParseError
from simulators.hl7_sim import Row, encode_oru, mllp
from wire.messages import Observation, PatientSeen

T_RX = 1_735_732_801_000
T_1200 = 1_735_732_800_000  # MSH-7 of the messages below
BEDS = {"ICU^^BED04": "A-04", "ICU^^BED05": "A-05"}
HR = "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|80|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R"


def parser(**options) -> Pcd01Parser:
    return Pcd01Parser(beds=BEDS, device="gw-1", clock_ms=lambda: T_RX, **options)


def message(body: str, control_id: str = "C1") -> bytes:
    return mllp(f"MSH|^~\\&|GW|ICU|||20250101120000+0000||ORU^R01^ORU_R01|{control_id}|P|2.6\r{body}".encode())


def seen(bed: str, patient: str) -> PatientSeen:
    return PatientSeen(bed=bed, patient_id=patient, device="gw-1", t=T_1200)


def test_each_patient_group_at_a_known_bed_is_reported_before_its_rows() -> None:
    body = (
        f"PID|||MRN1^^^HOSP^MR||DOE^JANE\rPV1||I|ICU^^BED04\r{HR}\r"
        f"PID|||MRN2\rPV1||I|ICU^^BED99\r{HR}\r"  # not our bed: no PatientSeen, its row refused
        f"PID|||MRN3~OTHER\rPV1||I|ICU^^BED05^^^^HOSP\r{HR}\r"  # first repetition, first component
    )
    p = parser(patient_events=True)
    events = p.feed(message(body))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["PatientSeen", "Observation", "ParseError", "PatientSeen", "Observation"]
    assert events[0] == seen("A-04", "MRN1") and events[3] == seen("A-05", "MRN3")
    assert isinstance(events[1], Observation) and events[1].bed == "A-04"
    assert isinstance(events[2], ParseError) and events[2].code == "unknown_location"  # reported as its group ends
    assert p.patients == {"A-04": "MRN1", "A-05": "MRN3"}


def test_every_message_reports_its_patient_again_and_a_change_shows() -> None:
    p = parser(patient_events=True)
    first = p.feed(message(f"PID|||MRN1\rPV1||I|ICU^^BED04\r{HR}\r", "C1"))
    again = p.feed(message(f"PID|||MRN1\rPV1||I|ICU^^BED04\r{HR}\r", "C2"))
    other = p.feed(message(f"PID|||MRN9\rPV1||I|ICU^^BED04\r{HR}\r", "C3"))
    assert [e for e in first + again + other if isinstance(e, PatientSeen)] == [seen("A-04", "MRN1")] * 2 + [seen("A-04", "MRN9")]


@pytest.mark.parametrize(
    "body",
    [
        f"PV1||I|ICU^^BED04\r{HR}\r",  # no PID at all
        f"PID|||\rPV1||I|ICU^^BED04\r{HR}\r",  # an empty PID-3
        f"PV1||I|ICU^^BED04\rPID|||MRN1\r{HR}\r",  # PID after PV1 starts a new group without a bed
    ],
)
def test_no_patient_id_no_event(body: str) -> None:
    assert not [e for e in parser(patient_events=True).feed(message(body)) if isinstance(e, PatientSeen)]


def test_off_by_default_and_the_acks_are_the_same_either_way() -> None:
    data = message(f"PID|||MRN1\rPV1||I|ICU^^BED04\r{HR}\r")
    off, on = parser(), parser(patient_events=True)
    events_off, events_on = off.feed(data), on.feed(data)
    assert events_on == [seen("A-04", "MRN1"), *events_off]
    assert off.bytes_to_send() == on.bytes_to_send()


def test_the_simulator_patient_is_seen_and_the_option_is_checked_in_the_edge_config() -> None:
    rows = [Row("hr", 81), Row("rr", 17)]
    sim = encode_oru(control_id="X1", t_ms=T_1200, gateway="GW", eui64="00155DFFFE000001", patient_id="MRN-A-04",
                     location="ICU^^BED04", rows=rows)  # fmt: skip
    assert parser(patient_events=True).feed(mllp(sim))[0] == seen("A-04", "MRN-A-04")
    raw = {
        "agent": {"id": "e1", "ward": "W"},
        "hub": {"url": "ws://127.0.0.1:1/ws/edge", "secret_file": "s"},
        "devices": [{"id": "gw-1", "driver": "hl7_pcd01", "listen": "127.0.0.1:0", "beds": BEDS, "options": {"patient_events": True}}],
    }
    (dev,) = parse_edge_config(raw).devices
    p = get_driver(dev.driver).parser(beds=dev.beds, device=dev.id, **dev.options)
    assert p.patient_events is True
    raw["devices"][0]["options"] = {"patient_events": "sometimes"}
    with pytest.raises(ValueError, match="patient_events"):
        parse_edge_config(raw)
