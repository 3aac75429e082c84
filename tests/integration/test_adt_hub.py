"""HL7 ADT from a simulated HIS into a real hub: each trigger changes what it says, refusals change nothing.

The hub listens for ADT (its ``adt:`` settings), the HIS simulator speaks MLLP
to it, and the result is read back through the API and the outbox: A01 admits,
A02 moves, A08 corrects, A03 discharges, A13 undoes the discharge, A11 voids the
admission; a bed already taken, an unknown location or a patient not admitted
gets AE, a malformed message AR, and none of them writes anything. A message
re-sent after the hub restarted (its ACK lost) is applied once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml
from config_support import default_raw
from state_db_support import KINDS, hub_state, state_connection
from support import HubProcess, feed_news2_alarm, free_port, get_json, start_hub

from ingest import outbox
from simulators.his_adt import HisClient, encode_adt, synthetic_patients

pytestmark = pytest.mark.integration

BEDS = {"MICU^^01": "A-01", "MICU^^02": "A-02", "MICU^^03": "A-03"}


def adt_hub(tmp: Path, port: int, db: Path | None = None, state: str | None = None) -> HubProcess:
    cfg = default_raw("hub.yaml") | {"adt": {"port": port, "beds": BEDS, "timezone": "Asia/Kolkata"}}
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return start_hub(tmp, db=db, extra=("--config", str(path)), state=state)


def outbox_types(state: str) -> list[str]:
    with state_connection(state) as conn:
        return [e.data.type for e in outbox.read(conn, 0, 10_000) if e.data.type.startswith(("patient.", "admission.", "discharge."))]


@pytest.mark.parametrize("kind", KINDS)
def test_each_adt_trigger_does_what_it_says_and_refusals_change_nothing(tmp_path: Path, kind: str) -> None:
    with hub_state(kind, tmp_path) as state:
        each_trigger(tmp_path, state)


def each_trigger(tmp_path: Path, state: str | None) -> None:
    port = free_port()
    hub = adt_hub(tmp_path, port, state=state)
    try:
        for bed in BEDS.values():
            feed_news2_alarm(hub, "A", bed, agent=f"edge-{bed}")
        asha, ravi = synthetic_patients(2, seed=3)

        async def conversation() -> list[tuple[str, str]]:
            his = HisClient("127.0.0.1", port, ack_timeout_s=10)
            out = []
            try:
                out.append(("A01", (await his.admit(asha, "MICU^^01", attending=("D1", "Rao", "Anita"), diagnosis=("J18.9", "Pneumonia"))).code))
                out.append(("A01 taken", (await his.admit(ravi, "MICU^^01")).code))
                out.append(("A01 unknown bed", (await his.admit(ravi, "MICU^^99")).code))
                out.append(("A02", (await his.transfer(asha, "MICU^^02", "MICU^^01")).code))
                out.append(("A08", (await his.update(asha, "MICU^^02", diagnosis=("A41.9", "Sepsis"))).code))
                out.append(("A03", (await his.discharge(asha, "MICU^^02", disposition="01")).code))
                out.append(("A03 again", (await his.discharge(asha, "MICU^^02")).code))
                out.append(("A13", (await his.cancel_discharge(asha, "MICU^^02")).code))
                out.append(("A11", (await his.cancel_admit(asha, "MICU^^02")).code))
                out.append(("A03 not admitted", (await his.discharge(ravi, "MICU^^03")).code))
                bad = encode_adt("A01", ravi, control_id="BAD1", t_ms=int(time.time() * 1000), location="MICU^^03").replace(b"|2.5", b"|9.9")
                out.append(("malformed", (await his.send(bad, "BAD1")).code))
            finally:
                await his.close()
            return out

        answers = asyncio.run(conversation())
        assert answers == [("A01", "AA"), ("A01 taken", "AE"), ("A01 unknown bed", "AE"), ("A02", "AA"), ("A08", "AA"),
                           ("A03", "AA"), ("A03 again", "AE"), ("A13", "AA"), ("A11", "AA"), ("A03 not admitted", "AE"),
                           ("malformed", "AR")]  # fmt: skip
        assert outbox_types(hub.state) == ["patient.admitted", "patient.transferred", "patient.updated", "patient.discharged",
                                        "discharge.cancelled", "admission.cancelled"]  # fmt: skip
        with state_connection(hub.state) as conn:
            admitted = next(e.data for e in outbox.read(conn, 0, 100) if e.data.type == "patient.admitted")
            updated = next(e.data for e in outbox.read(conn, 0, 100) if e.data.type == "patient.updated")
        assert admitted.patient.mrn == asha.mrn and admitted.patient.name == asha.name and admitted.encounter.bed == "A-01"
        assert admitted.patient.diagnosis == "Pneumonia" and admitted.patient.attending == "Dr Anita Rao"
        assert (admitted.patient.abha is not None) == (asha.abha is not None)
        assert updated.patient.diagnosis == "Sepsis" and updated.by == "his"
        assert all(get_json(f"{hub.base}/api/beds/{b}")["patient"] is None for b in BEDS.values())  # A11 voided it all
        stats = get_json(f"{hub.base}/api/stats")
        assert stats["counters"]["adt_applied"] == 6 and stats["adt"]["messages_refused"] == 3  # by the hub; and by the parser:
        assert stats["adt"]["error_unknown_location"] == 1 and sum(v for k, v in stats["adt"].items() if k.startswith("error_")) == 2
    finally:
        hub.stop()


def test_a_message_resent_after_a_hub_restart_is_applied_once(tmp_path: Path) -> None:
    port = free_port()
    hub = adt_hub(tmp_path, port)
    try:
        feed_news2_alarm(hub, "A", "A-03", agent="edge-A-03")
        [meena] = synthetic_patients(1, seed=7)
        message = encode_adt("A01", meena, control_id="HIS000042", t_ms=int(time.time() * 1000), location="MICU^^03")

        async def send() -> str:
            his = HisClient("127.0.0.1", port, ack_timeout_s=10)
            try:
                return (await his.send(message, "HIS000042")).code
            finally:
                await his.close()

        assert asyncio.run(send()) == "AA"
        hub.stop()  # the listener's memory of answered messages goes with it
        hub = adt_hub(tmp_path, port, db=hub.db)
        assert asyncio.run(send()) == "AA"  # the same bytes again, as a HIS does when its ACK was lost
        assert outbox_types(hub.state) == ["patient.admitted"]
        assert get_json(f"{hub.base}/api/stats")["counters"]["adt_repeats"] == 1
    finally:
        hub.stop()
