"""Patients, encounters, charting and the outbox in the hub core, on the real state: SQLite, and PostgreSQL.

Each operation is checked for what it stores, the outbox event it appends (in
order, with gapless ids) and its audit entry; refusals change nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from config_support import alarm_policy, hub_config, score_tables
from state_db_support import KINDS, hub_state, state_connection

from ingest import outbox
from ingest.auth import audit_log
from ingest.hub import Hub
from ingest.patients.hourly import HOUR_MS
from ingest.patients.records import PatientDetails, PatientError, check_abha
from ingest.patients.service import Actor, PatientRefused
from ingest.stores import open_stores
from wire.messages import Hello, ObsFrame, Observation

T0 = 1_800_000_000_000
HELLO = Hello(agent="edge-T", epoch=1, ward="T", beds=("T-01", "T-02", "T-03"))
NURSE = Actor("meena", "10.0.0.7")
ASHA = PatientDetails(mrn="MRN-0001", abha="91-1234-5678-9012", name="Asha Devi", sex="female", birth_date="1956-03-02",
                      diagnosis="community-acquired pneumonia", attending="Dr Rao")  # fmt: skip
# S/5 and HL7 monitors send these; never O2 or ACVPU: NEWS2 stays incomplete until a nurse charts them
MONITORED = dict(rr=18, spo2=90, nibp_sys=100, hr=100, temp=36.5)


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> int:
        return self.t


@pytest.fixture(params=KINDS)
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the hub keeps its state: the SQLite store file, or a fresh PostgreSQL schema (``--state``)."""
    with hub_state(request.param, tmp_path) as url:
        yield url or str(tmp_path / "s.sqlite3")


async def _hub(tmp: Path, clock: Clock, state: str) -> Hub:
    stores = open_stores(str(tmp / "s.sqlite3"), tmp, None if state.endswith(".sqlite3") else state)
    hub = Hub(hub_config(), stores, clock=clock, policy=alarm_policy(), tables=score_tables())
    await hub.start()
    hub.hello(HELLO)
    return hub


async def _ingest(hub: Hub, seq: int, bed: str, t: int, **values: float) -> None:
    batch, rejected = hub.take_frame(HELLO, ObsFrame(seq, tuple(Observation(bed, k, v, t, t, "mon") for k, v in values.items())), t)
    assert not rejected and batch is not None
    await hub.store.write(batch)
    hub.handled(HELLO, seq, batch)


def events(state: str) -> list[tuple[int, str]]:
    with state_connection(state) as conn:
        return [(e.id, e.data.type) for e in outbox.read(conn, 0, 1000)]


def audited(state: str) -> list[tuple[str, str]]:
    with state_connection(state) as conn:
        return [(a, t) for a, t in conn.execute("SELECT actor, action FROM audit_log WHERE action LIKE 'patient.%' ORDER BY seq")]


def test_abha_numbers_are_14_digits_plain_or_grouped() -> None:
    assert check_abha("91-1234-5678-9012") == check_abha("91123456789012") == "91123456789012"
    for bad in ("9112345678901", "91-1234-5678-901X", "911234567890123", "", "asha@abdm"):
        with pytest.raises(PatientError, match="ABHA"):
            check_abha(bad)
    with pytest.raises(ValueError, match="birth date"):
        PatientDetails(mrn="M1", name="x", birth_date="2999-01-01")
    with pytest.raises(ValueError, match="MRN"):
        PatientDetails(mrn="bad mrn with spaces", name="x")


def test_admit_transfer_discharge_each_write_one_event_and_one_audit_entry(tmp_path: Path, state: str) -> None:
    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock, state)
        enc, patient = await hub.patients.admit(ASHA, "T-01", "T", None, NURSE)
        assert patient.abha == "91123456789012" and enc.bed == "T-01" and enc.start == T0
        assert hub.beds_json()[0]["patient"]["name"] == "Asha Devi"
        # the bed is taken, and the patient cannot be in two beds
        with pytest.raises(PatientRefused) as taken:
            await hub.patients.admit(PatientDetails(mrn="MRN-0002", name="Ravi Kumar"), "T-01", "T", None, NURSE)
        assert taken.value.status == 409 and "taken" in taken.value.message
        with pytest.raises(PatientRefused) as twice:
            await hub.patients.admit(ASHA, "T-02", "T", None, NURSE)
        assert twice.value.status == 409 and "already admitted" in twice.value.message
        clock.t += 60_000
        moved = await hub.patients.transfer(enc.encounter_id, "T-02", "T", None, NURSE)
        assert moved.bed == "T-02" and hub.patients.census.of_bed("T-01") is None
        with pytest.raises(PatientRefused) as early:
            await hub.patients.discharge(enc.encounter_id, "discharged", T0 - 1, NURSE)
        assert early.value.status == 400
        clock.t += 60_000
        ended = await hub.patients.discharge(enc.encounter_id, "transferred_out", None, NURSE)
        assert ended.end == clock.t and ended.outcome == "transferred_out"
        with pytest.raises(PatientRefused) as again:
            await hub.patients.discharge(enc.encounter_id, "discharged", None, NURSE)
        assert again.value.status == 409
        # an A13: the discharge was wrong; then an A08 with nothing new writes nothing
        reopened = await hub.patients.cancel_discharge(enc.encounter_id, NURSE)
        assert reopened.end is None and hub.patients.census.of_bed("T-02") is not None
        await hub.patients.update_patient(patient.patient_id, ASHA, NURSE)
        await hub.patients.update_patient(patient.patient_id, ASHA.model_copy(update={"attending": "Dr Iyer"}), NURSE)
        await hub.patients.cancel_admission(enc.encounter_id, NURSE)
        stays = (await hub.patients.encounter(enc.encounter_id))[2]  # type: ignore[index]
        assert [(s.bed, s.start, s.end is not None) for s in stays] == [("T-01", T0, True), ("T-02", T0 + 60_000, True)]
        await hub.stop()

    asyncio.run(go())
    assert events(state) == [(1, "patient.admitted"), (2, "patient.transferred"), (3, "patient.discharged"), (4, "discharge.cancelled"),
                          (5, "patient.updated"), (6, "admission.cancelled")]  # fmt: skip
    assert audited(state) == [("meena", a) for a in ("patient.admit", "patient.transfer", "patient.discharge",
                                                  "patient.discharge_cancelled", "patient.update", "patient.admission_cancelled")]  # fmt: skip
    with state_connection(state) as conn:
        assert audit_log.verify(audit_log.rows(conn))[1] is None  # the chain holds with the hub's own entries in it


def test_charting_o2_and_acvpu_completes_news2_and_the_stay_is_summarised_at_discharge(tmp_path: Path, state: str) -> None:
    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock, state)
        enc, _patient = await hub.patients.admit(ASHA, "T-03", "T", None, NURSE)
        await _ingest(hub, 1, "T-03", clock.t, **MONITORED)
        clock.t += 100
        hub.tick()
        row = hub.score(clock.t).news2.row(hub.state.index["T-03"])
        assert row["total"] is None and set(row["missing"]) == {"o2", "acvpu"}  # the monitor cannot say
        with pytest.raises(PatientRefused) as not_here:
            await hub.chart("T-01", "o2", "oxygen", None, NURSE)
        assert not_here.value.status == 409  # nobody admitted to T-01
        with pytest.raises(PatientRefused) as bad:
            await hub.chart("T-03", "acvpu", "X", None, NURSE)
        assert bad.value.status == 400
        await hub.chart("T-03", "o2", "oxygen", None, NURSE)
        clock.t += 100
        hub.tick()
        got = await hub.chart("T-03", "acvpu", "V", None, NURSE)
        assert got["value"] == 2 and got["by"] == "meena"
        clock.t += 100
        hub.tick()
        row = hub.score(clock.t).news2.row(hub.state.index["T-03"])
        assert row["total"] == 11 and row["band"] == "high"  # the worked example of scores.md, completed by charting
        assert hub.beds_json()[2]["vitals"]["acvpu"]["charted_by"] == "meena"
        await hub.audit.flush()
        clock.t += 100
        ended = await hub.patients.discharge(enc.encounter_id, "discharged", None, NURSE)
        # the bed's next patient does not inherit her oxygen and consciousness: NEWS2 is incomplete again
        await hub.patients.admit(PatientDetails(mrn="MRN-0002", name="Ravi Kumar"), "T-03", "T", None, NURSE)
        row = hub.score(clock.t).news2.row(hub.state.index["T-03"])
        assert row["total"] is None and set(row["missing"]) == {"o2", "acvpu"}
        await hub.stop()
        return ended

    asyncio.run(go())
    with state_connection(state) as conn:
        evs = outbox.read(conn, 0, 1000)
    types = [e.data.type for e in evs]
    assert types.count("observation.charted") == 2
    bands = [e.data for e in evs if e.data.type == "score.band_changed"]
    # the monitor's part alone proves medium (6 with a single 3); oxygen makes it high, still incomplete; ACVPU completes it
    assert [(b.band, b.total, b.partial) for b in bands] == [("medium", None, 6), ("high", None, 8), ("high", 11, 11)]
    summary = next(e.data for e in evs if e.data.type == "patient.discharged").summary
    assert summary.charted == 2 and [(p.total, p.partial) for p in summary.news2] == [(None, 6), (None, 8), (11, 11)]
    assert {v.param for v in summary.last_vitals} >= {"hr", "o2", "acvpu", "temp"}
    assert any(a.kind == "news2" for a in summary.alarms)  # the alarm of the stay
    alarm_events = [e.data for e in evs if e.data.type.startswith("alarm.")]
    assert alarm_events and all(a.encounter_id == bands[0].encounter_id for a in alarm_events)


def test_hourly_summaries_are_the_median_once_per_hour_across_a_restart(tmp_path: Path, state: str) -> None:
    hour = (T0 // HOUR_MS + 1) * HOUR_MS

    async def go() -> int:
        clock = Clock()
        clock.t = hour - 1000
        hub = await _hub(tmp_path, clock, state)
        await hub.patients.admit(ASHA, "T-01", "T", hour - 1000, NURSE)
        for k, hr in enumerate([80, 90, 100, 200, 85]):  # median 90; one flagged sample does not count
            await _ingest(hub, k + 1, "T-01", hour + k * 60_000, hr=hr)
        batch, _ = hub.take_frame(HELLO, ObsFrame(9, (Observation("T-01", "hr", None, hour + 30_000, hour, "mon", 4),)), hour)
        assert batch is not None
        await hub.store.write(batch)
        clock.t = hour + HOUR_MS + 4 * 60_000  # the hour is over, but not yet by the grace period
        assert await hub.hourly.catch_up() == 0
        clock.t = hour + HOUR_MS + 6 * 60_000
        written = await hub.hourly.catch_up()
        await hub.stop()
        again = await _hub(tmp_path, clock, state)  # a restart: nothing summarised twice
        written += await again.hourly.catch_up()
        await again.stop()
        return written

    assert asyncio.run(go()) == 1
    with state_connection(state) as conn:
        [summary] = [e.data for e in outbox.read(conn, 0, 1000) if e.data.type == "vitals.hourly"]
    assert summary.hour == hour and [(v.param, v.median, v.n) for v in summary.values] == [("hr", 90.0, 5)]


def test_a_monitor_naming_another_patient_raises_patient_mismatch_and_it_is_audited(tmp_path: Path, state: str) -> None:
    from wire.messages import PatientSeen

    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock, state)
        await hub.patients.admit(ASHA, "T-01", "T", None, NURSE)

        async def monitor_names(seq: int, patient_id: str) -> None:
            frame = ObsFrame(seq, (Observation("T-01", "hr", 80, clock.t, clock.t, "pcd"),), (), (PatientSeen("T-01", patient_id, "pcd", clock.t),))
            batch, rejected = hub.take_frame(HELLO, frame, clock.t)
            assert not rejected and batch is not None
            await hub.store.write(batch)
            hub.handled(HELLO, seq, batch)

        await monitor_names(1, "MRN-0001")  # the admitted patient: nothing to say
        hub.tick()
        assert not [a for a in hub.book.list_open() if a.kind == "technical:patient_mismatch"]
        clock.t += 1000
        await monitor_names(2, "MRN-9999")  # another patient's data in her bed
        hub.tick()
        [alarm] = [a for a in hub.book.list_open() if a.kind == "technical:patient_mismatch"]
        assert alarm.bed == "T-01" and alarm.priority == "high" and "MRN-9999" in alarm.detail and "MRN-0001" in alarm.detail
        clock.t += 1000
        await monitor_names(3, "MRN-0001")  # put right at the monitor
        for _ in range(7):
            clock.t += 1000
            hub.tick()
        assert not [a for a in hub.book.list_open() if a.kind == "technical:patient_mismatch"]  # cleared after its delay
        await hub.audit.flush()
        await hub.stop()

    asyncio.run(go())
    with state_connection(state) as conn:
        rows = conn.execute("SELECT actor, action, target FROM audit_log WHERE action LIKE 'patient.mismatch%' ORDER BY seq").fetchall()
    assert rows == [("agent:edge-T", "patient.mismatch", "bed:T-01"), ("hub", "patient.mismatch_cleared", "bed:T-01")]


def test_a_patients_spo2_scale_and_bed_limits_go_with_her_and_her_old_bed_goes_back_to_the_defaults(tmp_path: Path, state: str) -> None:
    """Scale 2 on a new patient would score her SpO2 of 88-92 % as 0: a bed's clinical settings are the patient's.
    A transfer moves them (replacing the new bed's own), a discharge resets the bed, and a restart keeps all that."""

    async def go() -> None:
        clock = Clock()
        hub = await _hub(tmp_path, clock, state)
        await _ingest(hub, 1, "T-01", T0, **MONITORED)
        await _ingest(hub, 2, "T-02", T0, **MONITORED)
        enc, _ = await hub.patients.admit(ASHA, "T-01", "T", None, NURSE)
        await hub.set_spo2_scale("T-01", 2)
        await hub.set_bed_limit("T-01", "hr", 45, 110)
        await hub.set_bed_limit("T-02", "rr", 6, 35)  # left over on the empty bed she moves to
        ward_hr = hub.engine.limits_of("T-03", "T")["hr"]

        def picture(h: Hub) -> dict[str, tuple[int, float | None, float | None, float | None]]:
            out = {}
            for bed in ("T-01", "T-02"):
                limits = h.engine.limits_of(bed, "T")
                out[bed] = (h.state.beds[h.state.index[bed]].spo2_scale, limits["hr"].low, limits["hr"].high, limits["rr"].low)
            return out

        await hub.patients.transfer(enc.encounter_id, "T-02", "T", None, NURSE)
        moved = picture(hub)
        ward_rr = hub.engine.limits_of("T-03", "T")["rr"].low
        assert moved == {"T-01": (1, ward_hr.low, ward_hr.high, ward_rr), "T-02": (2, 45, 110, ward_rr)}
        await hub.stop()
        hub = await _hub(tmp_path, clock, state)
        assert picture(hub) == moved  # kept through the audit writer
        await hub.patients.discharge(enc.encounter_id, "discharged", None, NURSE)
        assert picture(hub)["T-02"] == (1, ward_hr.low, ward_hr.high, ward_rr)
        await hub.stop()
        hub = await _hub(tmp_path, clock, state)
        assert picture(hub)["T-02"] == (1, ward_hr.low, ward_hr.high, ward_rr)
        await hub.stop()

    asyncio.run(go())
