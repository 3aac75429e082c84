"""``teleicu demo``: the whole system on one machine, as real processes on real sockets.

Starts, in order: the hub; one user per role (``teleicu.demo_accounts``; their
passwords in ``demo-credentials.txt`` in the data directory, readable by you
only); the EHR service and the records bridge (``teleicu.demo_records``); per ward, a simulator process (monitors on pty serial ports, MLLP,
MQTT) and an edge agent with its own secret; then a console client that signs
in and watches the hub like a browser would. Security is on as in a hospital.
Prints the console URL and runs until Ctrl-C or ``--duration``. Stops in
reverse order (simulators, edge agents, hub) and prints a summary: frames
ingested and rejected, alerts raised (by the scenario of the bed), and
sample-to-console latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import socket
import sqlite3
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


from ingest import outbox
from ingest.latency import LatencyRecorder
from ingest.stores import state_location
from teleicu import config_files
from teleicu.admin import write_secret_file
from teleicu.demo_accounts import create_users, demo_users, register_simulated_ward
from teleicu.demo_facilities import demo_registry, register
from teleicu.demo_records import (
    FOLLOW_UP,
    OPD_FACILITY,
    RecordsSide,
    admission_body,
    bridge_cursors,
    patients_for,
    wait_for_bridge,
    write_bridge_config,
)
from wire.vocabulary import HUB_DERIVED

WARD_NAMES = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def add_demo_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--beds", type=int, default=24, help="number of simulated beds (default 24)")
    ap.add_argument("--ward-size", type=int, default=25, help="beds per ward; one simulator and one edge agent per ward")
    ap.add_argument("--seed", type=int, default=1, help="seed for the patient simulators (same seed, same patients)")
    ap.add_argument("--duration", type=float, default=None, help="seconds to run, then print the summary and exit")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="hub port (0 picks a free one)")
    ap.add_argument("--waveforms", type=int, default=None, help="how many beds per ward stream ECG (default all)")
    ap.add_argument("--protocols", default="tsp,s5,hl7",
                    help="device protocols the simulated beds speak, shared round-robin: tsp, s5, nonin, hl7, and mqtt "
                         "(needs a broker on 127.0.0.1:1883)")  # fmt: skip
    ap.add_argument("--nibp-interval", type=float, default=60.0, help="seconds between NIBP cycles")
    ap.add_argument("--store", default=None, help="hub store URL (default: SQLite in the data dir)")
    ap.add_argument("--data-dir", type=Path, default=None, help="where the store and logs go (default: a new temp dir)")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    config_files.add_hub_arguments(ap)  # handed to the hub when given


@dataclass
class ConsoleWatch:
    """What a console saw: bed-update latency from hub arrival and from the sample's device time, and alerts raised.

    ``sample_latency`` is measured once per sample, when the console first sees it: receipt minus the device time of
    the newest value a device measured (``newest_measured``); it means something where device clocks are the
    console's (simulators and benchmarks on one machine stamp wall-clock ms)."""

    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    sample_latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    alerts_raised: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # bed -> (priority, category)
    updates: int = 0
    connected: bool = False
    newest_seen: dict[str, int] = field(default_factory=dict)  # bed -> device time of the newest sample seen, ms


def newest_measured(bed: dict) -> int:
    """Device time (ms) of the newest value a device measured in a console's bed update (not one the hub derived from
    a waveform, nor one a nurse charted); 0 if none."""
    return max((v["t"] for k, v in bed["vitals"].items() if k not in HUB_DERIVED and "charted_by" not in v), default=0)


class SignedIn:
    """The demo's own client of the hub, signed in as one of the demo users; signs in again before the session ends."""

    RENEW_S = 10 * 60  # sessions last 15 minutes

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base, self.username, self.password = base, username, password
        self._token, self._at = "", -float("inf")

    def token(self) -> str:
        if time.monotonic() - self._at > self.RENEW_S:
            self._token, self._at = _sign_in(self.base, self.username, self.password), time.monotonic()
        return self._token

    def expire(self) -> None:
        self._at = -float("inf")

    def get(self, path: str) -> dict:
        return _get_json(self.base + path, self.token())


async def watch_console(url: str, watch: ConsoleWatch, client: SignedIn) -> None:
    from websockets.asyncio.client import connect

    while True:
        try:
            token = await asyncio.to_thread(client.token)
            async with connect(url, max_size=64 * 1024 * 1024, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                await _read_console(ws, watch)
        except Exception:  # noqa: BLE001 - reconnect like a console would
            pass
        watch.connected = False
        client.expire()  # the feed ended (a restarted hub, an ended session): sign in afresh
        await asyncio.sleep(0.5)


async def _read_console(ws, watch: ConsoleWatch) -> None:  # type: ignore[no-untyped-def]
    watch.connected = True
    async for raw in ws:
        now = time.time_ns() / 1e6
        msg = json.loads(raw)
        if msg["type"] == "beds":
            for bed in msg["beds"]:
                watch.updates += 1
                if "rx_hub" in bed:
                    watch.latency.add(now - bed["rx_hub"])
                    t = newest_measured(bed)
                    if t > watch.newest_seen.get(bed["bed"], 0):
                        watch.newest_seen[bed["bed"]] = t
                        watch.sample_latency.add(now - t)
        elif msg["type"] == "alert":
            a = msg["alert"]
            await ws.send(json.dumps({"type": "delivered", "alerts": [a["id"]]}))
            if msg.get("event") in ("raised", "priority_raised"):
                watch.alerts_raised.setdefault(a["bed"] or a["subject"], []).append((a["priority"], a["category"]))
        elif msg["type"] == "snapshot":
            await ws.send(json.dumps({"type": "delivered", "alerts": [a["id"] for a in msg["alerts"]]}))


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _get_json(url: str, token: str | None = None) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - our own hub on loopback
        return json.loads(resp.read())


def _post_json(url: str, body: dict, token: str, method: str = "POST") -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - our own hub on loopback
        return json.loads(resp.read())


def _sign_in(base: str, username: str, password: str) -> str:
    """Sign in as a user would; the access token for the API."""
    body = json.dumps({"username": username, "password": password}).encode()
    req = urllib.request.Request(base + "/api/auth/login", data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - our own hub on loopback
        return json.loads(resp.read())["access_token"]


async def _wait_for(pred, what: str, timeout: float, procs: list[asyncio.subprocess.Process]) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if pred():
                return
        for p in procs:
            if p.returncode is not None:
                raise RuntimeError(f"a child process exited with {p.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


class Children:
    """Child processes, started in order and stopped in reverse order with SIGTERM (then SIGKILL)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[tuple[str, asyncio.subprocess.Process]] = []

    async def start(self, name: str, *args: str) -> asyncio.subprocess.Process:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "teleicu", *args, stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def failed(self) -> list[str]:
        return [f"{n} (exit {p.returncode})" for n, p in self.procs if p.returncode not in (None, 0, -signal.SIGTERM)]

    async def stop(self, names: list[str] | None = None, timeout: float = 10) -> None:
        for name, proc in reversed(self.procs):
            if names is not None and not any(name.startswith(n) for n in names):
                continue
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancellation
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def run_demo(args: argparse.Namespace) -> dict:
    host = args.host
    port = args.port or free_port(host)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="teleicu-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    base = f"http://{host}:{port}"
    hub_ws = f"ws://{host}:{port}/ws/edge"
    children = Children(data_dir)
    stop = _stop_on_signals()
    watch = ConsoleWatch()
    n_wards = max(1, -(-args.beds // args.ward_size))
    if n_wards > len(WARD_NAMES):
        raise SystemExit(f"--beds {args.beds} needs more than {len(WARD_NAMES)} wards; raise --ward-size")
    scenarios: dict[str, str] = {}
    try:
        store = args.store or str(data_dir / "store.sqlite3")
        hub = await children.start("hub", "hub", "--host", host, "--port", str(port), "--store", store, "--data-dir", str(data_dir),
                                   *config_files.hub_arguments(args))  # fmt: skip
        await _wait_for(lambda: _get_json(base + "/healthz")["ok"], "the hub", 30, [hub])
        state = state_location(store, data_dir)
        users = demo_users(WARD_NAMES[0])
        credentials = data_dir / "demo-credentials.txt"
        create_users(state, users, credentials)
        client = SignedIn(base, users[0].username, users[0].password)  # the demo's console client: the intensivist
        bridge_user = next(u for u in users if u.role == "records")
        bridge_client = SignedIn(base, bridge_user.username, bridge_user.password)
        admin_user = next(u for u in users if u.role == "admin")
        ward_beds = {WARD_NAMES[w]: min(args.ward_size, args.beds - w * args.ward_size) for w in range(n_wards)}
        records = await _start_records(children, data_dir, host, base, bridge_user.username, bridge_user.password,
                                       SignedIn(base, admin_user.username, admin_user.password), ward_beds)  # fmt: skip
        edge_configs = []
        for w in range(n_wards):
            ward = WARD_NAMES[w]
            n = min(args.ward_size, args.beds - w * args.ward_size)
            cfg = data_dir / f"edge-{ward}.yaml"
            sim_args = [
                "sim", "--ward", ward, "--beds", str(n), "--seed", str(args.seed * 1000 + w),
                "--bed-prefix", f"{ward}-", "--edge-config", str(cfg), "--hub", hub_ws,
                "--nibp-interval", str(args.nibp_interval), "--protocols", args.protocols,
                "--cameras", str(n),  # a test-pattern camera per bed: it runs only while someone watches
            ]  # fmt: skip
            if args.waveforms is not None:
                sim_args += ["--waveforms", str(args.waveforms)]
            sim = await children.start(f"sim-{ward}", *sim_args)
            edge_configs.append((ward, cfg, sim))
        for ward, cfg, sim in edge_configs:
            await _wait_for(cfg.exists, f"simulator of ward {ward}", 30, [sim])
            scenarios.update(register_simulated_ward(state, cfg)[1])
            await children.start(
                f"edge-{ward}", "edge", "--config", str(cfg), "--stats-file", str(data_dir / f"edge-{ward}.stats.json")
            )
        console = asyncio.create_task(watch_console(f"ws://{host}:{port}/ws/console", watch, client))
        await _wait_for(lambda: client.get("/api/stats")["beds"] >= args.beds, "beds to register", 30,
                        [p for _, p in children.procs])  # fmt: skip
        encounters = await asyncio.to_thread(_admit_everyone, client, scenarios, args.seed)
        print(f"teleicu demo: {args.beds} beds in {n_wards} ward(s); console at {base}/  (API docs {base}/docs)", flush=True)
        print(f"teleicu demo: sign in with one of the accounts in {credentials} (one per role, readable by you only)", flush=True)
        board_file = data_dir / "opd-board-url.txt"
        write_secret_file(board_file, records.board_url)
        print(f"teleicu demo: patients' health locker at {records.locker_url}/ ; the OPD display board's address (it carries "
              f"its key) is in {board_file}", flush=True)  # fmt: skip
        print(f"teleicu demo: hospitals on the map at {records.facility_url}/map ; the programme's KPI dashboard at "
              f"{records.facility_url}/kpi", flush=True)  # fmt: skip
        print(f"teleicu demo: logs and store in {data_dir}; Ctrl-C to stop", flush=True)
        stop.live = True
        live = time.monotonic()
        deadline = None if args.duration is None else live + args.duration
        while not stop.is_set():
            if children.failed():
                raise RuntimeError(f"child process failed: {', '.join(children.failed())}; see logs in {data_dir}")
            if deadline is not None and time.monotonic() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await stop.wait()
        live_s = time.monotonic() - live
        live_stats = client.get("/api/stats")  # alarms of the live run, before the shutdown unplugs the monitors
        console.cancel()  # the summary's alarms and latencies are those of the live run, not of the shutdown
        await asyncio.wait([console])  # its end; a cancellation of the demo itself still goes through
        discharged = await asyncio.to_thread(_discharge_first, client, encounters)
        await children.stop(["sim"])
        await children.stop(["edge"])
        stats = client.get("/api/stats")  # what was stored, once the edge agents have delivered everything
        _, parked = await wait_for_bridge(records.metrics_url, lambda: bridge_client.get("/api/events?limit=1")["last_id"], 60)
        await children.stop(["bridge"])  # then nothing moves: each store's count below belongs to one moment
        cursors = bridge_cursors(records.bridge_config)
        handled = min(cursors.values(), default=0)  # the slowest sink
        ehr = await _ehr_counts(records.ehr_db)
        filed, booked = _locker_and_opd_counts(records)
        facilities = _facility_counts(records) | {"kpi_cursor": cursors.get("facility", 0)}
    finally:
        await children.stop()
    failed = children.failed()
    summary = _summary(args, stats, live_stats, watch, scenarios, live_s, failed, data_dir)
    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as conn:
        written = outbox.last_id(conn)  # the hub has stopped: every event it wrote
    summary["records"] = {"admitted": len(encounters), "discharged": discharged, "events_written": written, "events_handled": handled,
                          "events_parked": parked, "ehr_resources": ehr, "locker_records": filed, "opd_follow_ups": booked,
                          "facility": facilities}  # fmt: skip
    return summary


class _Stop(asyncio.Event):
    live = False  # before the live run, a signal stops the demo at once


def _stop_on_signals() -> _Stop:
    """SIGINT/SIGTERM end the live run; while starting, or a second time, they cancel the demo at once (its
    ``finally`` still stops every child, which runs in a session of its own and would otherwise be left behind)."""
    stop, main, loop = _Stop(), asyncio.current_task(), asyncio.get_running_loop()

    def on_signal() -> None:
        if (stop.is_set() or not stop.live) and main is not None:
            main.cancel()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop


async def _start_records(children: Children, data_dir: Path, host: str, hub_base: str, user: str, password: str,
                         admin: SignedIn, ward_beds: dict[str, int]) -> RecordsSide:  # fmt: skip
    """The EHR service (SQLite in the data dir) with a writer client for the bridge, the health locker, the OPD
    queue (laid out by the admin: one medicine queue) and the facility registry (one hospital per ward, registered by
    the admin), then the bridge."""
    ehr_db = f"sqlite:///{data_dir / 'ehr.sqlite3'}"
    client = f"demo-bridge-{int(time.time())}"  # a new client each run: a reused data directory keeps the old ones
    secret_file = data_dir / f"ehr-{client}.secret"
    made = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "teleicu", "ehr", "clients", "add", client, "--role", "writer",
        "--db", ehr_db, "--secret-file", str(secret_file), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await made.communicate()
    if made.returncode != 0:
        raise RuntimeError(f"teleicu ehr clients add failed: {out.decode(errors='replace').strip()}")
    ehr_port = free_port(host)
    ehr = await children.start("ehr", "ehr", "serve", "--db", ehr_db, "--host", host, "--port", str(ehr_port))
    ehr_base = f"http://{host}:{ehr_port}/fhir"
    await _wait_for(lambda: _get_json(f"http://{host}:{ehr_port}/healthz") is not None, "the EHR service", 30, [ehr])
    locker_db, queue_db = data_dir / "locker.sqlite3", data_dir / "opd-queue.sqlite3"
    locker_port, queue_port = free_port(host), free_port(host)
    share_secret = data_dir / "locker-share.secret"
    if not share_secret.exists():
        write_secret_file(share_secret, secrets.token_urlsafe(48))
    locker = await children.start("locker", "locker", "serve", "--db", str(locker_db), "--host", host, "--port", str(locker_port),
                                  "--hub", hub_base, "--sms-log", str(data_dir / "sms.jsonl"), "--share-secret-file", str(share_secret))  # fmt: skip
    queue = await children.start("queue", "queue", "serve", "--db", str(queue_db), "--host", host, "--port", str(queue_port),
                                 "--hub", hub_base, "--sms-log", str(data_dir / "sms.jsonl"))  # fmt: skip
    facility_db, facility_port = data_dir / "facility.sqlite3", free_port(host)
    facility = await children.start("facility", "facility", "serve", "--db", str(facility_db), "--host", host, "--port",
                                    str(facility_port), "--hub", hub_base)  # fmt: skip
    locker_url, queue_url = f"http://{host}:{locker_port}", f"http://{host}:{queue_port}"
    facility_url = f"http://{host}:{facility_port}"
    for url, what, proc in ((locker_url, "the health locker", locker), (queue_url, "the OPD queue", queue),
                            (facility_url, "the facility registry", facility)):  # fmt: skip
        await _wait_for(lambda u=url: _get_json(f"{u}/healthz") is not None, what, 30, [proc])
    board_url = await asyncio.to_thread(_lay_out_opd, queue_url, admin)
    wards, hospitals = demo_registry(ward_beds)
    await asyncio.to_thread(register, lambda path, body: _post_json(facility_url + path, body, admin.token(), method="PUT"), hospitals)
    metrics_port = free_port(host)
    cfg = write_bridge_config(data_dir, hub_base, user, password, ehr_base, secret_file, metrics_port, locker_url, queue_url,
                              facility_url, wards)  # fmt: skip
    bridge = await children.start("bridge", "bridge", "--config", str(cfg), "--log-level", "warning")
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    await _wait_for(lambda: urllib.request.urlopen(metrics_url, timeout=2).status == 200, "the records bridge", 30, [bridge])  # noqa: S310
    return RecordsSide(ehr_db, ehr_base, cfg, metrics_url, locker_db, queue_db, locker_url, board_url, facility_url, facility_db)


def _lay_out_opd(queue_url: str, admin: SignedIn) -> str:
    """The demo hospital's medicine OPD in the queue service, as its administrator would lay it out; the display
    board's address (with its key)."""
    for path, body in ((f"/api/facilities/{OPD_FACILITY}", {"name": "Demo District Hospital"}),
                       (f"/api/facilities/{OPD_FACILITY}/departments/med", {"name": "Medicine"}),
                       ("/api/departments/med/queues/med", {"name": "Medicine OPD", "prefix": "MED"}),
                       (f"/api/facilities/{OPD_FACILITY}/counters/room-1", {"name": "Room 1", "department_id": "med"})):  # fmt: skip
        _post_json(queue_url + path, body, admin.token(), method="PUT")
    made = _post_json(f"{queue_url}/api/facilities/{OPD_FACILITY}/credentials", {"kind": "board", "name": f"demo-{int(time.time())}"},
                      admin.token())  # fmt: skip
    return f"{queue_url}{made['board_path']}?key={made['secret']}"


def _admit_everyone(client: SignedIn, scenarios: dict[str, str], seed: int) -> dict[str, str]:
    """Admit a seeded synthetic patient to every simulated bed; {bed: encounter id}."""
    now = int(time.time() * 1000)
    out = {}
    for bed, patient in patients_for(scenarios, seed).items():
        try:
            answer = _post_json(client.base + "/api/admissions", admission_body(patient, bed, now), client.token())
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # 409: a reused data directory, the patient still admitted from the last run
                raise RuntimeError(f"admitting a patient to bed {bed}: the hub answered {exc.code}") from None
            continue
        out[bed] = answer["encounter"]["encounter_id"]
    return out


def _discharge_first(client: SignedIn, encounters: dict[str, str]) -> int:
    """Discharge the first bed's patient with a follow-up visit: the summary goes to the EHR and the patient's locker,
    and the visit is booked in the OPD queue (its token filed in the locker too)."""
    if not encounters:
        return 0
    first = encounters[min(encounters)]
    try:
        _post_json(f"{client.base}/api/encounters/{first}/discharge", {"outcome": "discharged", "follow_up": FOLLOW_UP}, client.token())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"discharging the patient of bed {min(encounters)}: the hub answered {exc.code}") from None
    return 1


def _locker_and_opd_counts(records: RecordsSide) -> tuple[dict[str, int], list[str]]:
    """The locker's records by type, and the follow-up tokens booked in the OPD queue (counted in their databases)."""
    with contextlib.closing(sqlite3.connect(f"file:{records.locker_db}?mode=ro", uri=True)) as db:
        filed = dict(db.execute("SELECT type, count(*) FROM locker_records GROUP BY type").fetchall())
    with contextlib.closing(sqlite3.connect(f"file:{records.queue_db}?mode=ro", uri=True)) as db:
        booked = [f"{q.upper()}-{n:03d} on {day}" for q, n, day in
                  db.execute("SELECT queue_id, number, day FROM queue_tokens WHERE booking_id LIKE 'follow-up-%' ORDER BY day, number")]  # fmt: skip
    return filed, booked


def _facility_counts(records: RecordsSide) -> dict[str, int]:
    """The registry's hospitals, those with ICU occupancy from the hub, and the KPI events stored (in its database)."""
    with contextlib.closing(sqlite3.connect(f"file:{records.facility_db}?mode=ro", uri=True)) as db:
        one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
        return {"hospitals": one("SELECT count(*) FROM facility_facilities"), "with_occupancy": one("SELECT count(*) FROM facility_occupancy"),
                "kpi_events": one("SELECT count(*) FROM kpi_events")}  # fmt: skip


async def _ehr_counts(ehr_db: str) -> dict[str, int]:
    counted = await asyncio.create_subprocess_exec(sys.executable, "-m", "teleicu", "ehr", "count", "--db", ehr_db,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
    out, err = await counted.communicate()
    if counted.returncode != 0:
        raise RuntimeError(f"teleicu ehr count failed: {err.decode(errors='replace').strip()}")
    return json.loads(out)


def _summary(args, stats: dict, live_stats: dict, watch: ConsoleWatch, scenarios: dict[str, str], live_s: float,
             failed: list[str], data_dir: Path) -> dict:  # fmt: skip
    c, live = stats["counters"], live_stats["counters"]
    by_scenario: dict[str, dict[str, int]] = {}
    for bed, scen in scenarios.items():
        row = by_scenario.setdefault(scen, {"beds": 0, "alerted": 0, "medium_or_high": 0, "technical": 0})
        row["beds"] += 1
        raised = watch.alerts_raised.get(bed, [])
        physiological = [p for p, cat in raised if cat == "physiological"]
        row["alerted"] += bool(physiological)
        row["medium_or_high"] += any(p in ("medium", "high") for p in physiological)
        row["technical"] += any(cat == "technical" for _p, cat in raised)
    return {
        "beds": args.beds,
        "seed": args.seed,
        "live_s": round(live_s, 1),
        "frames_ingested": c.get("frames_ingested", 0),
        "frames_rejected": c.get("frames_rejected", 0),
        "frames_duplicate": c.get("frames_duplicate", 0),
        "observations_stored": c.get("obs_stored", 0),
        "observations_resent": c.get("obs_resent", 0),
        "observations_rejected": c.get("obs_rejected", 0),
        "unmapped_stored": c.get("unmapped_stored", 0),
        "wave_chunks_stored": c.get("wave_chunks_stored", 0),
        "alerts_raised": live.get("alerts_raised", 0),
        "alerts_priority_raised": live.get("alerts_priority_raised", 0),
        "alerts_escalated": live.get("alerts_escalated", 0),
        "alerts_by_kind": {row["kind"]: row["count"] for row in live_stats["alerts_raised_by_kind"]},
        "alerts_by_scenario": by_scenario,
        "sample_to_console_ms": watch.latency.percentiles((50, 99)),
        "hub_push_ms": stats["push_latency_ms"],
        "waveform_analysis": live_stats.get("waveform_analysis", {}),  # windows judged and their CPU, during the live run
        "artefact_holds": live_stats.get("artefact", {}),
        "failed_processes": failed,
        "data_dir": str(data_dir),
    }


def _print_summary(s: dict) -> None:
    lat = s["sample_to_console_ms"]
    print(f"\nteleicu demo summary ({s['beds']} beds, seed {s['seed']}, {s['live_s']} s live)")
    print(f"  frames ingested     {s['frames_ingested']}")
    print(f"  frames rejected     {s['frames_rejected']}   (duplicates dropped: {s['frames_duplicate']})")
    print(f"  observations stored {s['observations_stored']}   (distinct samples; re-sent by monitors and not stored again: "
          f"{s['observations_resent']}; rejected: {s['observations_rejected']})")
    print(f"  waveform chunks     {s['wave_chunks_stored']}")
    if s["unmapped_stored"]:
        print(f"  unmapped codes      {s['unmapped_stored']} observations stored as sent (GET /api/unmapped)")
    print(f"  alerts raised       {s['alerts_raised']}   (during the live run; priority raised: {s['alerts_priority_raised']}, "
          f"escalated to the next tier: {s['alerts_escalated']})")
    print(f"    by kind (adds up to the alerts raised): {', '.join(f'{k} {n}' for k, n in s['alerts_by_kind'].items()) or 'none'}")
    for scen, row in sorted(s["alerts_by_scenario"].items()):
        print(
            f"    {scen:<12} {row['alerted']:>3}/{row['beds']:<3} beds with physiological alarms, "
            f"{row['medium_or_high']} at medium or high; {row['technical']} with technical alarms"
        )
    print(f"  sample-to-console   p50 {lat['p50']} ms   p99 {lat['p99']} ms   (n={lat['n']}, hub arrival -> console receipt)")
    r = s["records"]
    late = r["events_written"] - r["events_handled"]
    print(f"  patients            {r['admitted']} admitted, {r['discharged']} discharged; the records bridge handled "
          f"{r['events_handled']} of the hub's {r['events_written']} outbox events ({r['events_parked']} parked)"
          + (f"; the other {late}, written after the monitors were unplugged at shutdown, wait in the outbox for "
             "the bridge's next run" if late else ""))
    held = ", ".join(f"{k} {n}" for k, n in sorted(r["ehr_resources"].items())) or "nothing"
    print(f"  EHR resources       {sum(r['ehr_resources'].values())}: {held}")
    filed = ", ".join(f"{k} {n}" for k, n in sorted(r["locker_records"].items())) or "nothing"
    print(f"  health locker       {sum(r['locker_records'].values())} records: {filed}")
    print(f"  OPD follow-ups      {len(r['opd_follow_ups'])} booked{': ' + ', '.join(r['opd_follow_ups']) if r['opd_follow_ups'] else ''}")
    f = r["facility"]
    print(f"  facility registry   {f['hospitals']} hospitals, {f['with_occupancy']} with ICU occupancy from the hub; {f['kpi_events']} events for the KPIs")
    if s["failed_processes"]:
        print(f"  FAILED processes: {', '.join(s['failed_processes'])}; logs in {s['data_dir']}")


def demo_main(args: argparse.Namespace) -> int:
    from wire.config import ConfigError

    try:  # the hub's files are checked here, so a mistake is named before anything starts
        config_files.hub_config(args.config), config_files.alarm_policy(args.alarms), config_files.score_tables(args.scores)
    except ConfigError as exc:
        print(f"teleicu demo: {exc}", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(run_demo(args))
    except RuntimeError as exc:
        print(f"teleicu demo: {exc}", file=sys.stderr)
        return 1
    except asyncio.CancelledError:  # a signal while starting, or a second one: every child has been stopped
        print("teleicu demo: stopped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    return 1 if summary["failed_processes"] else 0


