"""The HIS simulator: seeded synthetic patients, and ADT bytes that the hub's parser reads as what was meant."""

from __future__ import annotations

from datetime import date

import pytest

from ingest.adt.events import Admit, CancelAdmit, CancelDischarge, Clinician, Discharge, Transfer, UpdatePatient
from ingest.adt.parser import AdtParser
from simulators.his_adt import DIAGNOSES, AckResult, _AckReader, encode_adt, mllp, synthetic_patients
from wire.abha import abha_number

T = 1_735_732_800_000  # 2025-01-01 12:00 UTC = 17:30 in India
BEDS = {"MICU^^01": "ICU1-01", "MICU^^02": "ICU1-02"}


def test_patients_are_seeded_plausible_and_distinct() -> None:
    a, b = synthetic_patients(200, seed=4), synthetic_patients(200, seed=4)
    assert a == b and a != synthetic_patients(200, seed=5)
    assert len({p.mrn for p in a}) == 200
    with_abha = [p for p in a if p.abha]
    assert 0.5 < len(with_abha) / len(a) < 0.8
    for p in with_abha:
        assert abha_number(p.abha) and p.abha[2] == "-"  # valid, written as on the card
    for p in a:
        born = date(int(p.birth_date[:4]), int(p.birth_date[4:6]), int(p.birth_date[6:]))
        assert 18 <= (date(2025, 1, 1) - born).days / 365.25 <= 90.1
        assert p.sex in ("M", "F") and p.given and p.family and p.name.startswith(p.given)
    assert {p.sex for p in a} == {"M", "F"}


def parse_one(message: bytes):
    p = AdtParser(beds=BEDS, clock_ms=lambda: T)
    (event,) = p.feed(mllp(message))
    return event


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_trigger_reads_back_as_meant(seed: int) -> None:
    patient = next(p for p in synthetic_patients(20, seed=seed) if p.abha)
    doctor = ("D1047", "Rao", "Vivek")

    admit = parse_one(encode_adt("A01", patient, control_id="C1", t_ms=T, location="MICU^^01", attending=doctor, diagnosis=DIAGNOSES[2]))
    assert isinstance(admit, Admit) and admit.bed == "ICU1-01" and admit.t == T and admit.control_id == "C1"
    assert admit.attending == Clinician("D1047", "Dr Vivek Rao") and admit.reason == DIAGNOSES[2][1]
    who = admit.patient
    assert (who.mrn, who.mrn_authority, who.abha) == (patient.mrn, "SMS", abha_number(patient.abha))
    assert (who.family, who.name, who.sex) == (patient.family, patient.name, {"M": "male", "F": "female"}[patient.sex])
    assert who.birth_date == f"{patient.birth_date[:4]}-{patient.birth_date[4:6]}-{patient.birth_date[6:]}"
    assert admit.warnings == ()

    move = parse_one(encode_adt("A02", patient, control_id="C2", t_ms=T + 60_000, location="MICU^^02", prior_location="MICU^^01"))
    assert isinstance(move, Transfer) and (move.from_bed, move.to_bed, move.t) == ("ICU1-01", "ICU1-02", T + 60_000)

    out = parse_one(encode_adt("A03", patient, control_id="C3", t_ms=T, location="MICU^^02", disposition="20", died=True, discharge_ms=T - 600_000))
    assert isinstance(out, Discharge) and (out.outcome, out.disposition, out.discharged_at) == ("died", "20", T - 600_000)

    update = parse_one(encode_adt("A08", patient, control_id="C4", t_ms=T, location="MICU^^02", diagnosis=DIAGNOSES[0]))
    assert isinstance(update, UpdatePatient) and update.reason == DIAGNOSES[0][1] and update.patient == who

    assert isinstance(parse_one(encode_adt("A11", patient, control_id="C5", t_ms=T, location="MICU^^01")), CancelAdmit)
    undo = parse_one(encode_adt("A13", patient, control_id="C6", t_ms=T, location="MICU^^02", event_ms=T - 5_000))
    assert isinstance(undo, CancelDischarge) and undo.bed == "ICU1-02" and undo.t == T - 5_000


def test_text_with_delimiters_is_escaped() -> None:
    patient = synthetic_patients(1)[0]
    odd = type(patient)(mrn="A|B^C", family="D'Souza & Sons", given="Mary~Ann", middle="", sex="F", birth_date="19800101")
    event = parse_one(encode_adt("A01", odd, control_id="X|1", t_ms=T, location="MICU^^01", diagnosis=("R57.0", "Shock, cardiogenic | septic")))
    assert (event.patient.mrn, event.patient.family, event.patient.given) == ("A|B^C", "D'Souza & Sons", "Mary~Ann")
    assert event.control_id == "X|1" and event.reason == "Shock, cardiogenic | septic"


def test_unknown_trigger_is_refused() -> None:
    with pytest.raises(ValueError, match="A04"):
        encode_adt("A04", synthetic_patients(1)[0], control_id="C", t_ms=T)


def test_ack_reader_reads_the_hubs_acks() -> None:
    p = AdtParser(beds=BEDS, clock_ms=lambda: T)
    patient = synthetic_patients(1)[0]
    (event,) = p.feed(mllp(encode_adt("A03", patient, control_id="D1", t_ms=T, location="MICU^^01")))
    p.refused(event.event_id, "not admitted | here", 204)
    p.feed(mllp(b"MSH|^~\\&|HIS|SMS|||20250101120000||ADT^A04|R1|P|2.5\r"))
    out = p.bytes_to_send()
    reader = _AckReader()
    got = reader.feed(out[:10]) + reader.feed(out[10:])
    assert got[0] == AckResult("AE", "D1", "not admitted | here", (("E", "not admitted | here"),))
    assert got[1].code == "AR" and got[1].control_id == "R1" and "A04" in got[1].text
