"""Benchmark: the records bridge's throughput (outbox events/s and FHIR writes/s) from a real hub into the EHR service.

A hub process gets ``--patients`` beds on its census (one edge agent, one frame
each scoring NEWS2 11, so alarms and band changes too), then every bed's patient
is admitted, O2 and temperature charted, alarms acknowledged and every
``--discharge-every``-th patient discharged (a discharge summary: Bundle,
PDF, DocumentReference). With the outbox full, the bridge (its real follower,
hub client and FHIR sink, in this process) starts from cursor 0 and the clock
runs until its cursor reaches the last event. Run once per EHR database, and once
with a sink that maps but sends nothing, to show where the time goes.

    .venv/bin/python bench/bridge_throughput.py [--patients 200] [--db sqlite postgresql mapping-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from records_bridge.bridge.cursor import CursorStore
from records_bridge.bridge.fhir_sink import FhirSink
from records_bridge.bridge.follower import Follower
from records_bridge.bridge.hub_client import HubClient
from records_bridge.bridge.metrics import BridgeMetrics
from records_bridge.fhir import MappingContext, writes_for
from teleicu.demo_accounts import DemoUser, create_users, register_agent
from wire.outbox_events import Event

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CTX = MappingContext(mrn_system="https://hospital.example/mrn", facility_name="District Hospital Jaipur", facility_id="")
USERS = [DemoUser("bench-intensivist", "bench-password-1", "intensivist", "Bench"), DemoUser("bench-records", "bench-password-2", "records", "Bench")]
NEWS2_11 = {"rr": 18, "spo2": 90, "o2": 1, "nibp_sys": 100, "hr": 100, "acvpu": 2, "temp": 36.5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict | None = None, token: str | None = None, method: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - our own processes on loopback
        return json.loads(resp.read())


def wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not answer {url}")


def teleicu(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "teleicu", *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def fill_outbox(base: str, state: Path, patients: int, discharge_every: int) -> int:
    """Real clinical activity on the hub; returns the outbox's last event id."""
    from websockets.sync.client import connect

    from wire.codec import decode_hub, encode_edge
    from wire.messages import Ack, Hello, ObsFrame, Observation

    beds = tuple(f"B-{i:03d}" for i in range(patients))
    import base64

    register_agent(state, "bench-edge", "B", beds, state.parent / "bench-edge.secret")
    secret = (state.parent / "bench-edge.secret").read_text().strip()
    auth = {"Authorization": "Basic " + base64.b64encode(f"bench-edge:{secret}".encode()).decode()}
    t = time.time_ns() // 1_000_000
    with connect(base.replace("http", "ws") + "/ws/edge", additional_headers=auth) as ws:
        ws.send(encode_edge(Hello("bench-edge", 1, "B", beds)).decode())
        decode_hub(ws.recv(timeout=10))
        ws.send(encode_edge(ObsFrame(1, tuple(Observation(b, k, v, t, t, "m") for b in beds for k, v in NEWS2_11.items()))).decode())
        while not isinstance(decode_hub(ws.recv(timeout=30)), Ack):
            pass
    token = call(base + "/api/auth/login", {"username": USERS[0].username, "password": USERS[0].password})["access_token"]
    time.sleep(2)  # the scoring tick: alarms and band changes
    for i, bed in enumerate(beds):
        p = {"mrn": f"BENCH-{i:05d}", "name": f"Bench Patient {i}", "sex": "female", "birth_date": "1961-02-03"}
        enc = call(base + "/api/admissions", {"patient": p, "bed": bed}, token)["encounter"]["encounter_id"]
        call(f"{base}/api/beds/{bed}/chart", {"param": "o2", "value": "oxygen"}, token)
        call(f"{base}/api/beds/{bed}/chart", {"param": "temp", "value": 38.1}, token)
        if i % discharge_every == 0:
            call(f"{base}/api/encounters/{enc}/discharge", {"outcome": "discharged"}, token)
    for alert in call(base + "/api/alerts", token=token)["alerts"]:
        call(f"{base}/api/alerts/{alert['id']}/ack", {}, token)
    time.sleep(1)
    rtoken = call(base + "/api/auth/login", {"username": USERS[1].username, "password": USERS[1].password})["access_token"]
    return int(call(base + "/api/events?limit=1", token=rtoken)["last_id"])


class MappingOnly:
    """A sink that maps every event to its FHIR writes and sends nothing: the mapping's own cost."""

    name = "ehr"

    def __init__(self) -> None:
        self.writes = 0

    async def handle(self, event: Event) -> None:
        self.writes += len(writes_for(event, CTX))


async def drain(base: str, sink, state: Path, last: int) -> float:  # type: ignore[no-untyped-def]
    hub = HubClient(base, USERS[1].username, USERS[1].password)
    cursors = CursorStore(state)
    follower = Follower(hub, [sink], cursors, BridgeMetrics(), wait_s=1)
    t0 = time.perf_counter()
    task = asyncio.create_task(follower.run())
    while cursors.position(sink.name) < last:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    task.cancel()
    await asyncio.wait([task])
    await hub.close()
    assert not cursors.parked(), cursors.parked()[:1]
    cursors.close()
    return elapsed


def psql(sql: str) -> None:
    env = dict(os.environ, PGOPTIONS="--client-min-messages=warning")
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", sql], check=True, env=env)


def run_one(kind: str, base: str, last: int, work: Path) -> dict:
    state = work / f"bridge-{kind}.sqlite3"
    if kind == "mapping-only":
        sink = MappingOnly()
        elapsed = asyncio.run(drain(base, sink, state, last))
        return {"sink": kind, "events": last, "s": round(elapsed, 2), "events_per_s": round(last / elapsed), "writes": sink.writes}
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    db = f"sqlite+pysqlite:///{work / 'ehr.sqlite3'}" if kind == "sqlite" else f"{POSTGRES}?options=-csearch_path%3D{schema}"
    if kind == "postgresql":
        psql(f"CREATE SCHEMA {schema}")
    secret = work / f"ehr-{kind}.secret"
    subprocess.run([sys.executable, "-m", "teleicu", "ehr", "clients", "add", "bench", "--role", "writer", "--db", db,
                    "--secret-file", str(secret)], check=True, capture_output=True)  # fmt: skip
    port = free_port()
    ehr = teleicu(["ehr", "serve", "--db", db, "--host", "127.0.0.1", "--port", str(port)], work / f"ehr-{kind}.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", ehr, "the EHR service")
        sink = FhirSink(f"http://127.0.0.1:{port}/fhir", secret.read_text().strip(), CTX)

        async def go() -> float:
            try:
                return await drain(base, sink, state, last)
            finally:
                await sink.close()

        elapsed = asyncio.run(go())
    finally:
        stop(ehr)
        if kind == "postgresql":
            psql(f"DROP SCHEMA {schema} CASCADE")
    return {"sink": f"EHR on {kind}", "events": last, "s": round(elapsed, 2), "events_per_s": round(last / elapsed),
            "writes": sink.writes, "writes_per_s": round(sink.writes / elapsed)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--discharge-every", type=int, default=4)
    ap.add_argument("--db", nargs="+", default=["mapping-only", "sqlite", "postgresql"], choices=["mapping-only", "sqlite", "postgresql"])
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="teleicu-bridge-bench-"))
    state = work / "hub.sqlite3"
    create_users(state, USERS, work / "credentials.txt")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hub = teleicu(["hub", "--port", str(port), "--db", str(state), "--data-dir", str(work)], work / "hub.log")
    rows = []
    try:
        wait_http(base + "/healthz", hub, "the hub")
        t0 = time.perf_counter()
        last = fill_outbox(base, state, args.patients, args.discharge_every)
        print(f"outbox: {last} events from {args.patients} patients in {time.perf_counter() - t0:.1f} s", flush=True)
        for kind in args.db:
            rows.append(run_one(kind, base, last, work))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        stop(hub)
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| sink | events | seconds | events/s | FHIR writes | writes/s |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['sink']} | {r['events']} | {r['s']} | {r['events_per_s']} | {r['writes']} | {r.get('writes_per_s', '-')} |")


if __name__ == "__main__":
    main()
