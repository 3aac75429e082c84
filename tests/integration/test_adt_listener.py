"""The hub's HL7 ADT listener on real sockets, driven by the HIS simulator and raw clients.

A small in-memory ward stands in for the hub's store: it keeps who is in which
bed and refuses what a hub refuses (an occupied bed, a discharge of a patient
who is not there). The tests check the contract the hub relies on: an AA only
after ``apply`` returned, an AE with the reason when it raised ``AdtRefused``,
no ACK and a re-send when it failed otherwise, nothing lost or applied twice
when connections drop, ACKs in message order, and the listener's limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from async_deadline import async_test, eventually
import trustme

from ingest.adt.events import Admit, AnyAdtEvent, CancelAdmit, CancelDischarge, Discharge, Transfer, UpdatePatient
from ingest.adt.listener import AdtListener, AdtRefused
from ingest.adt.settings import AdtSettings
from ingest.tls import TlsSettings, tls_server_context
from simulators.his_adt import AckResult, HisCensus, HisClient, HisNoAck, encode_adt, mllp, synthetic_patients

pytestmark = pytest.mark.integration

LOCATIONS = {f"MICU^^{i:02d}": f"ICU1-{i:02d}" for i in range(1, 7)}
VT, END = b"\x0b", b"\x1c\r"


run_async = async_test(90)  # a deadline that fails the test, never hangs it


async def wait_for(cond: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    return await eventually(cond, what, timeout, interval=0.01)


class Ward:
    """Stands in for the hub's store: bed -> MRN, refusing what a hub would refuse."""

    def __init__(self) -> None:
        self.beds: dict[str, str] = {}
        self.applied: list[AnyAdtEvent] = []
        self.calls = 0
        self.gate: asyncio.Event | None = None  # when set, apply waits for it
        self.fail: set[str] = set()  # control ids whose first apply raises (a store outage)

    def bed_of(self, mrn: str) -> str | None:
        return next((b for b, m in self.beds.items() if m == mrn), None)

    async def apply(self, ev: AnyAdtEvent) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if ev.control_id in self.fail:
            self.fail.discard(ev.control_id)
            raise OSError("the state store is not reachable")
        mrn = ev.patient.mrn
        if isinstance(ev, Admit):
            if ev.bed in self.beds:
                raise AdtRefused(f"bed {ev.bed} is occupied", hl7_code=205)
            self.beds[ev.bed] = mrn
        elif isinstance(ev, Discharge | CancelAdmit):
            bed = ev.bed or self.bed_of(mrn)
            if bed is None or self.beds.get(bed) != mrn:
                raise AdtRefused(f"patient {mrn} is not admitted", hl7_code=204)
            del self.beds[bed]
        elif isinstance(ev, Transfer):
            src = ev.from_bed or self.bed_of(mrn)
            if src is None or self.beds.get(src) != mrn:
                raise AdtRefused(f"patient {mrn} is not admitted", hl7_code=204)
            if ev.to_bed is not None and ev.to_bed in self.beds:
                raise AdtRefused(f"bed {ev.to_bed} is occupied", hl7_code=205)
            del self.beds[src]
            if ev.to_bed is not None:
                self.beds[ev.to_bed] = mrn
        elif isinstance(ev, CancelDischarge):
            if ev.bed is None or ev.bed in self.beds:
                raise AdtRefused("no free bed to return the patient to", hl7_code=205)
            self.beds[ev.bed] = mrn
        else:
            assert isinstance(ev, UpdatePatient)
        self.applied.append(ev)


@contextlib.asynccontextmanager
async def running(listener: AdtListener) -> AsyncIterator[int]:
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        assert listener.port
        yield listener.port
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert listener.active == 0


def new_listener(ward: Ward, **options: Any) -> AdtListener:
    return AdtListener(ward.apply, LOCATIONS, host="127.0.0.1", port=0, timezone="Asia/Kolkata", **options)


async def read_ack(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes:
    async with asyncio.timeout(timeout):
        assert await reader.readuntil(VT) == VT  # nothing but ACK frames on the wire
        return VT + await reader.readuntil(END)


PATIENTS = synthetic_patients(30, seed=11)
DOC = ("D1102", "Bhatnagar", "Seema")


@run_async
async def test_aa_only_after_apply_returned_and_a_resend_meanwhile_is_not_applied_twice() -> None:
    ward = Ward()
    ward.gate = asyncio.Event()
    listener = new_listener(ward)
    async with running(listener) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        message = mllp(encode_adt("A01", PATIENTS[0], control_id="A1", t_ms=int(time.time() * 1000), location="MICU^^01", attending=DOC))
        writer.write(message)
        await wait_for(lambda: ward.calls == 1, "apply to be called")
        with pytest.raises(TimeoutError):  # the hub has not stored it: no ACK on the wire
            async with asyncio.timeout(0.5):
                await reader.read(1)
        writer.write(message)  # the HIS times out and sends it again while the hub is still busy
        await asyncio.sleep(0.1)
        assert ward.applied == []
        ward.gate.set()
        first, second = await read_ack(reader), await read_ack(reader)
        assert first.endswith(b"\rMSA|AA|A1\r" + END) and second.endswith(b"\rMSA|AA|A1\r" + END)
        assert [type(e) for e in ward.applied] == [Admit] and ward.beds == {"ICU1-01": PATIENTS[0].mrn}
        assert ward.calls == 1 and listener.counters["repeats"] == 1 and listener.counters["messages_applied"] == 1
        writer.close()


@run_async
async def test_the_simulator_gets_ae_with_the_reason_when_the_hub_refuses() -> None:
    ward = Ward()
    listener = new_listener(ward)
    async with running(listener) as port:
        his = HisClient("127.0.0.1", port, ack_timeout_s=5)
        try:
            assert (await his.admit(PATIENTS[0], "MICU^^01", attending=DOC)).code == "AA"
            busy = await his.admit(PATIENTS[1], "MICU^^01")
            assert busy == AckResult("AE", "HIS000002", "bed ICU1-01 is occupied", (("E", "bed ICU1-01 is occupied"),))
            nobody = await his.discharge(PATIENTS[2], "MICU^^02")
            assert nobody.code == "AE" and nobody.text == f"patient {PATIENTS[2].mrn} is not admitted"
            unknown = await his.admit(PATIENTS[3], "WARD7^^01")  # not our bed: the parser's own AE, apply never called
            assert unknown.code == "AE" and unknown.errors == (("E", "PV1-3 location 'WARD7^^01' is not in the hub's beds mapping"),)
            assert ward.calls == 3 and [type(e) for e in ward.applied] == [Admit]
            assert his.counters == {"connects": 1, "sent": 4, "aa": 1, "ae": 3}
        finally:
            await his.close()
    assert listener.counters["messages_refused"] == 2 and listener.counters["error_unknown_location"] == 1


@run_async
async def test_a_dropped_connection_loses_nothing_that_was_acked_and_applies_nothing_twice() -> None:
    ward = Ward()
    listener = new_listener(ward)
    async with running(listener) as port:
        his = HisClient("127.0.0.1", port, ack_timeout_s=2)
        try:
            assert (await his.admit(PATIENTS[0], "MICU^^01")).code == "AA"
            # a connection drops in the middle of a discharge: nothing applied, nothing answered
            cut = mllp(encode_adt("A03", PATIENTS[0], control_id="D1", t_ms=int(time.time() * 1000), location="MICU^^01"))
            r1, w1 = await asyncio.open_connection("127.0.0.1", port)
            w1.write(cut[: len(cut) // 2])
            await w1.drain()
            w1.close()
            await wait_for(lambda: listener.counters["error_framing"] == 1, "the cut message to be reported")
            assert [type(e) for e in ward.applied] == [Admit]
            # the HIS sends it again in full: applied once
            assert (await his.send(cut[1:-2], "D1")).code == "AA"
            # a connection drops after the hub stored a message but before its AA was read
            update = encode_adt("A01", PATIENTS[1], control_id="U1", t_ms=int(time.time() * 1000), location="MICU^^02")
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            w2.write(mllp(update))
            await wait_for(lambda: len(ward.applied) == 3, "the admission to be stored")
            w2.close()
            # the HIS never saw the AA, so it sends the same message again: AA, not a second admission (or a refusal)
            assert (await his.send(update, "U1")).code == "AA"
        finally:
            await his.close()
    assert [type(e).__name__ for e in ward.applied] == ["Admit", "Discharge", "Admit"]
    assert ward.beds == {"ICU1-02": PATIENTS[1].mrn} and listener.counters["repeats"] == 1


@run_async
async def test_apply_failure_closes_without_ack_and_the_simulator_resends() -> None:
    ward = Ward()
    ward.fail = {"HIS000001"}
    listener = new_listener(ward)
    async with running(listener) as port:
        his = HisClient("127.0.0.1", port, ack_timeout_s=2)
        try:
            ack = await his.admit(PATIENTS[0], "MICU^^03", attending=DOC)
        finally:
            await his.close()
    assert ack.code == "AA" and ward.calls == 2 and len(ward.applied) == 1
    assert his.counters["disconnects"] == 1 and his.counters["connects"] == 2 and his.counters["resends"] == 1
    assert listener.counters["apply_failed"] == 1 and listener.counters["messages_applied"] == 1


@run_async
async def test_pipelined_messages_are_applied_and_answered_in_order() -> None:
    ward = Ward()
    listener = new_listener(ward)
    now = int(time.time() * 1000)
    async with running(listener) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        batch = [
            encode_adt("A01", PATIENTS[0], control_id="P1", t_ms=now, location="MICU^^04"),
            b"MSH|^~\\&|HIS|SMS|||20250101120000||ADT^A04^ADT_A01|P2|P|2.5\r",  # AR at once, but in its turn
            encode_adt("A02", PATIENTS[0], control_id="P3", t_ms=now, location="MICU^^05", prior_location="MICU^^04"),
            encode_adt("A03", PATIENTS[0], control_id="P4", t_ms=now, location="MICU^^05", disposition="02"),
            encode_adt("A13", PATIENTS[0], control_id="P5", t_ms=now, location="MICU^^05"),
            encode_adt("A08", PATIENTS[0], control_id="P6", t_ms=now, location="MICU^^05"),
            encode_adt("A11", PATIENTS[0], control_id="P7", t_ms=now, location="MICU^^05"),
        ]
        writer.write(b"".join(mllp(m) for m in batch))
        acks = [await read_ack(reader) for _ in batch]
        writer.close()
    msa = [a.split(b"\rMSA|")[1].split(b"\r")[0].split(b"|")[:2] for a in acks]
    assert msa == [[b"AA", b"P1"], [b"AR", b"P2"], [b"AA", b"P3"], [b"AA", b"P4"], [b"AA", b"P5"], [b"AA", b"P6"], [b"AA", b"P7"]]
    assert [type(e).__name__ for e in ward.applied] == ["Admit", "Transfer", "Discharge", "CancelDischarge", "UpdatePatient", "CancelAdmit"]
    assert ward.beds == {}
    discharge = ward.applied[2]
    assert isinstance(discharge, Discharge) and discharge.outcome == "transferred_out"


@run_async
async def test_connection_limit_idle_timeout_and_settings() -> None:
    ward = Ward()
    settings = AdtSettings.model_validate({"host": "127.0.0.1", "port": 0, "beds": LOCATIONS, "max_connections": 1, "idle_timeout_s": 0.5})
    listener = AdtListener.from_settings(settings, ward.apply)
    async with running(listener) as port:
        r1, w1 = await asyncio.open_connection("127.0.0.1", port)
        await wait_for(lambda: listener.active == 1, "the first connection")
        r2, w2 = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(r2.read(100), 5) == b""  # over the limit: closed at once
        assert listener.counters["refused"] == 1
        assert await asyncio.wait_for(r1.read(100), 5) == b""  # silent for idle_timeout_s: closed
        assert listener.counters["idle_closed"] == 1
        await wait_for(lambda: listener.active == 0, "the idle connection to go")
        for w in (w1, w2):
            w.close()
    with pytest.raises(ValueError, match="timezone"):
        AdtListener(ward.apply, LOCATIONS, timezone="Moon/Base")


@run_async
async def test_a_census_from_the_simulator_keeps_hub_and_his_in_step() -> None:
    ward = Ward()
    listener = new_listener(ward)
    locations = sorted(LOCATIONS)
    async with running(listener) as port:
        his = HisClient("127.0.0.1", port, ack_timeout_s=5)
        census = HisCensus(his, locations, seed=3, interval_s=0.02)
        try:
            await census.run(duration_s=1.5)
        finally:
            await his.close()
    assert census.results["A01_AA"] >= len(locations) and census.results["A03_AA"] >= 3
    assert not [k for k in census.results if not k.endswith("_AA")], census.results  # a consistent HIS is never refused
    assert ward.beds == {LOCATIONS[loc]: p.mrn for loc, p in census.occupied.items()}
    assert listener.counters["messages_applied"] == census.results.total()


@run_async
async def test_only_allowed_peers_get_in() -> None:
    ward = Ward()
    listener = new_listener(ward, allow_from=["10.0.0.0/8", "fd00::/8"])
    async with running(listener) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(mllp(encode_adt("A01", PATIENTS[0], control_id="X1", t_ms=int(time.time() * 1000), location="MICU^^01")))
        assert await asyncio.wait_for(reader.read(100), 5) == b""  # closed, unanswered
        writer.close()
    assert listener.counters["not_allowed"] == 1 and ward.calls == 0
    assert AdtSettings.model_validate({"beds": LOCATIONS}).allow_from == ["127.0.0.1/32", "::1/128"]  # loopback by default
    assert new_listener(ward).allowed(("::ffff:127.0.0.1", 5, 0, 0)) and not new_listener(ward).allowed(("192.0.2.1", 5))
    with pytest.raises(ValueError, match="allow_from"):
        AdtSettings.model_validate({"beds": LOCATIONS, "allow_from": ["10.0.0.300/8"]})


@run_async
async def test_mllp_over_mutual_tls(tmp_path: Path) -> None:
    ca = trustme.CA(organization_name="teleicu test hospital")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
    files = {}
    for name, identity in (("hub", "127.0.0.1"), ("his", "his.hospital.example")):
        leaf = ca.issue_cert(identity)
        leaf.private_key_pem.write_to_path(str(tmp_path / f"{name}.key"))
        (tmp_path / f"{name}.pem").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        files[name] = (str(tmp_path / f"{name}.pem"), str(tmp_path / f"{name}.key"))
    tls = TlsSettings(cert=files["hub"][0], key=files["hub"][1], client_ca=str(tmp_path / "ca.pem"))
    ward = Ward()
    settings = AdtSettings.model_validate({"port": 0, "beds": LOCATIONS, "tls": tls.model_dump()})
    listener = AdtListener.from_settings(settings, ward.apply)
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    async with running(listener) as port:
        plain = HisClient("127.0.0.1", port, ack_timeout_s=1, max_resends=0)
        no_cert = HisClient("127.0.0.1", port, ack_timeout_s=1, max_resends=0, tls=client)
        for his in (plain, no_cert):
            with pytest.raises(HisNoAck):  # the connection is closed or the handshake fails: never an ACK
                try:
                    await his.admit(PATIENTS[0], "MICU^^01")
                finally:
                    await his.close()
        client.load_cert_chain(*files["his"])
        his = HisClient("127.0.0.1", port, ack_timeout_s=5, tls=client)
        try:
            assert (await his.admit(PATIENTS[0], "MICU^^01")).code == "AA"
        finally:
            await his.close()
    assert [type(e) for e in ward.applied] == [Admit]
    assert tls_server_context(tls).minimum_version >= ssl.TLSVersion.TLSv1_2
