"""The demo's records side: the EHR service and the records bridge as processes, and a patient admitted to every bed.

The bridge signs in to the hub as a ``records`` user and to the EHR with a
writer client's secret, both made as an administrator would make them (the
secret by ``teleicu ehr clients add``, written to a file only the demo's user
can read). Patients are seeded synthetic people (``simulators.his_adt``): the
same seed admits the same names and identifiers. At the end the demo waits
for the bridge to reach the end of the hub's outbox, then counts what the EHR
holds by resource type.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from simulators.his_adt import HisPatient, synthetic_patients
from teleicu.admin import write_secret_file

MRN_SYSTEM = "https://demo.teleicu.example/mrn"  # the demo hospital's MRN namespace
FACILITY = "Demo District Hospital, Jaipur"
SINKS = ("ehr", "locker", "opd", "facility")  # the bridge's sinks: the EHR, the health locker, follow-up bookings, KPI events
OPD_FACILITY = "demo-dh"  # the demo hospital in the OPD queue and (for patients without ABHA) in the locker
FOLLOW_UP = {"department": "MED", "after_days": 7}  # the demo's discharge asks for a medicine OPD visit a week later


@dataclass(frozen=True, slots=True)
class RecordsSide:
    ehr_db: str  # the EHR's database URL
    ehr_base: str  # http://host:port/fhir
    bridge_config: Path
    metrics_url: str
    locker_db: Path
    queue_db: Path
    locker_url: str
    board_url: str  # the OPD display board, with its key
    facility_url: str  # the facility registry: its map and the KPI dashboard
    facility_db: Path


def admission_body(patient: HisPatient, bed: str, t_ms: int) -> dict:
    """The hub's admission request for one synthetic patient."""
    born = patient.birth_date
    return {
        "bed": bed,
        "t": t_ms,
        "patient": {
            "mrn": patient.mrn,
            "abha": patient.abha,
            "name": patient.name,
            "sex": {"M": "male", "F": "female"}.get(patient.sex, "unknown"),
            "birth_date": f"{born[:4]}-{born[4:6]}-{born[6:]}",
        },
    }


def patients_for(beds: Iterable[str], seed: int) -> dict[str, HisPatient]:
    """One synthetic patient per bed, in bed order, the same for the same seed."""
    ordered = sorted(beds)
    return dict(zip(ordered, synthetic_patients(len(ordered), seed=seed, facility="DEMO"), strict=True))


def write_bridge_config(data_dir: Path, hub_base: str, user: str, password: str, ehr_base: str, secret_file: Path,
                        metrics_port: int, locker_url: str, queue_url: str, facility_url: str, wards: dict[str, str]) -> Path:  # fmt: skip
    write_secret_file(data_dir / "bridge.password", password)
    cfg = {
        "hub": {"url": hub_base, "user": user, "password_file": "bridge.password"},
        "ehr": {"url": ehr_base, "secret_file": secret_file.name},
        "hospital": {"mrn_system": MRN_SYSTEM, "facility_name": FACILITY},
        "locker": {"url": locker_url, "facility": OPD_FACILITY},
        "queue": {"url": queue_url, "queues": {FOLLOW_UP["department"]: "med"}},
        "facility": {"url": facility_url, "wards": wards, "hub_id": "demo-hub"},
        "state": "bridge-state.sqlite3",
        "metrics_listen": f"127.0.0.1:{metrics_port}",
    }
    path = data_dir / "bridge.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def bridge_position(metrics_url: str) -> tuple[float, float]:
    """How far the slowest of the bridge's sinks is (its cursor), and how many events they parked in all, from its
    Prometheus endpoint."""
    with urllib.request.urlopen(metrics_url, timeout=5) as resp:  # noqa: S310 - our own bridge on loopback
        text = resp.read().decode()
    cursors = dict.fromkeys(SINKS, 0.0)
    parked = 0.0
    for line in text.splitlines():
        for sink in SINKS:
            if f'sink="{sink}"' not in line:
                continue
            if line.startswith("teleicu_bridge_cursor{"):
                cursors[sink] = float(line.rsplit(" ", 1)[1])
            elif line.startswith("teleicu_bridge_events_parked_total{"):
                parked += float(line.rsplit(" ", 1)[1])
    return min(cursors.values()), parked


def bridge_cursors(bridge_config: Path) -> dict[str, int]:
    """Each sink's cursor (the last outbox event it handled), from the bridge's state file next to its config; read
    once the bridge has stopped, so that every store's count belongs to the same moment."""
    state = bridge_config.parent / yaml.safe_load(bridge_config.read_text())["state"]
    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
        return dict(db.execute("SELECT sink, last_id FROM cursors").fetchall())


async def wait_for_bridge(metrics_url: str, last_event: Callable[[], int], timeout: float) -> tuple[int, int]:
    """Wait until the bridge has handled every event the hub has written; returns (events handled, events parked)."""
    deadline = time.monotonic() + timeout
    while True:
        last = await asyncio.to_thread(last_event)
        try:
            cursor, parked = await asyncio.to_thread(bridge_position, metrics_url)
        except OSError:
            cursor, parked = 0.0, 0.0
        if cursor >= last or time.monotonic() > deadline:
            return int(cursor), int(parked)
        await asyncio.sleep(0.25)
