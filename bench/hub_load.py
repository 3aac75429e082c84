"""Benchmark: the hub under load from one cheap process that speaks the edge protocol for thousands of beds.

For each size a real hub process (``teleicu hub``, a fresh SQLite store) is started, one agent per ward of 25 beds
is registered with its own secret (``teleicu.demo_accounts``, run by the hub's own Python, so a baseline revision
writes its own state), and this process drives them all (``edge_load``: the edge protocol as the edge agent speaks
it, 1 Hz numerics on every bed, ECG chunks on a share of them, 10 % by default; frames are never held back for
acknowledgements).

A console signs in as the intensivist and watches ``/ws/console`` in a process of its own (``teleicu.demo``'s
``watch_console``), so its JSON parsing is neither the generator's nor the hub's. Over the window after a warm-up:

* sample -> console: console receipt minus the device time of a bed's newest sample, once per sample
  (``ConsoleWatch.sample_latency``; the generator stamps wall ms as it makes the frame and sends it at once), with
  the hub's arrival -> console and its own arrival -> push (``/api/stats``);
* the hub's cores (user + system of it and its worker processes over the window, /proc), its RSS at start and end;
* frames and observations per second the hub accepted (its counters); frames acknowledged / sent;
* the generator's and the console's own cores, and how late the generator's ticks were;
* pacing (``pacing``): the hub's paces sent and frames braked in the window, the agents' paces received, frames held
  and frames sent paced over the run;
* overload (``overload``): whether the hub called itself overloaded at the window's end (its technical alarm), the
  episodes that began in the window, and its event loop's median lag at the start and end.

"keeps up": no connection lost, acknowledgements and sending at most a second behind, the generator on time, the
second half's latency not well above the first's (p50 1.5 x + 20 ms, p99 2 x + 100 ms: a backlog moves the median,
another process sharing the cores moves the tail), the hub's RSS not up by more than 20 %.

With ``--influx`` the hub stores its samples in a private InfluxDB 1.x (``influxd`` from Debian, started on free
ports as the integration tests do) instead of the embedded SQLite file; influxd's own cores are reported beside the
hub's ("store cores"), since they are part of what the state pays for the hub.

    .venv/bin/python bench/hub_load.py --beds 1000 2000 --duration 60 [--influx] [--hub-python PATH] [--baseline REV] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
from edge_load import Patient, Ward, layout, make_wards, patients
from ingest_latency import baseline_python
for _tests in ("tests", "tests/integration"):  # the tests' influxd launcher and what it imports
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / _tests))
from influx_support import Influxd, start_influxd  # noqa: E402
from proc_usage import TICK, cpu_s, descendants, machine_busy, processes_in, rss_mib, thread_cpu_s, tree_cpu_s

from ingest.latency import LatencyRecorder
from teleicu import config_files
from teleicu.demo import ConsoleWatch, SignedIn, free_port, watch_console

HOST = "127.0.0.1"
KEEP = 10_000_000  # latencies a console part keeps

# run by the hub's Python: its own revision's accounts code writes its own state file
_REGISTER = """
import json, sys
from pathlib import Path
from ingest.stores import state_location
from teleicu.demo_accounts import create_users, demo_users, register_agent
job = json.load(sys.stdin)
home = Path(job["home"])
state = state_location(job["store"], home)
users = demo_users(job["agents"][0][1])
create_users(state, users, home / "credentials.txt")
for agent, ward, beds in job["agents"]:
    register_agent(state, agent, ward, tuple(beds), home / (agent + ".secret"))
print(json.dumps([users[0].username, users[0].password]))
"""


def console_main(base: str, user: str, password: str, conn: Connection) -> None:
    """The measuring console, in a process of its own: at each "mark" from the generator a new part of its
    latencies begins; at "stop" it sends back every part (the first is the warm-up)."""
    asyncio.run(_console(base, user, password, conn))


async def _console(base: str, user: str, password: str, conn: Connection) -> None:
    watch = ConsoleWatch(LatencyRecorder(KEEP), LatencyRecorder(KEEP))
    feed = asyncio.create_task(watch_console(base.replace("http://", "ws://") + "/ws/console", watch, SignedIn(base, user, password)))
    parts = []
    while True:
        cmd = await asyncio.to_thread(conn.recv)
        parts.append({"sample": watch.sample_latency.values(), "hub": watch.latency.values(), "connected": watch.connected})
        watch.latency, watch.sample_latency = LatencyRecorder(KEEP), LatencyRecorder(KEEP)
        if cmd == "stop":
            break
    feed.cancel()
    conn.send(parts)


@dataclass(frozen=True, slots=True)
class Snap:
    t: float
    hub_cpu: float
    hub_threads: dict[int, float]
    hub_rss: float
    machine_busy: float
    gen_cpu: float
    console_cpu: float
    store_cpu: float
    counters: dict
    sent: int
    acked: int
    made: int
    overload: dict  # the hub's overload detector: overloaded now, episodes, median loop lag, brake


async def snap(hub: int, console: int, client: SignedIn, wards: list[Ward], store: int | None) -> Snap:
    stats = await asyncio.to_thread(client.get, "/api/stats")
    c = [w.session.counters for w in wards]
    return Snap(time.monotonic(), tree_cpu_s(hub), thread_cpu_s(hub), rss_mib(hub), machine_busy()[0] / TICK, cpu_s(os.getpid()),
                cpu_s(console), cpu_s(store) if store else 0.0, stats["counters"] | {"_push": stats["push_latency_ms"]}, sum(x["frames_sent"] for x in c),
                sum(x["frames_acked"] for x in c), sum(w.session.next_seq - 1 for w in wards), stats.get("overload", {}))  # fmt: skip


async def drive(wards: list[Ward], port: int, hub: int, console: multiprocessing.Process, conn: Connection, client: SignedIn,
                args: argparse.Namespace, store: int | None = None) -> dict:  # fmt: skip
    """Connect every ward, warm up, measure the window (console parts marked at its start and middle), then stop
    producing and give acknowledgements 5 s to catch up."""
    loop = asyncio.get_running_loop()
    start: asyncio.Future[float] = loop.create_future()
    gate = asyncio.Semaphore(8)
    tasks = [asyncio.create_task(w.run(f"ws://{HOST}:{port}/ws/edge", gate, start)) for w in wards]
    deadline = time.monotonic() + 300
    while not all(w.connected.is_set() or t.done() for w, t in zip(wards, tasks, strict=True)):
        if time.monotonic() > deadline:
            raise SystemExit("agents still connecting after 300 s")
        await asyncio.sleep(0.1)
    if failed := [f"{w.agent}: {w.failure or t.exception()!r}" for w, t in zip(wards, tasks, strict=True) if t.done()]:
        raise SystemExit(f"{len(failed)} agents could not connect, e.g. {failed[0]}")
    start.set_result(loop.time() + 0.1)
    await asyncio.sleep(args.warmup)
    a = await snap(hub, console.pid, client, wards, store)
    conn.send("mark")
    for w in wards:
        w.lag_s = []
    await asyncio.sleep(args.duration / 2)
    conn.send("mark")
    await asyncio.sleep(args.duration / 2)
    b = await snap(hub, console.pid, client, wards, store)
    conn.send("stop")
    for w in wards:
        w.producing = False
    for _ in range(50):  # the last tick's frames, then every acknowledgement, within 5 s
        drained = (sum(w.session.counters["frames_acked"] for w in wards), sum(w.session.next_seq - 1 for w in wards))
        if drained[0] >= drained[1]:
            break
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    parts = await asyncio.to_thread(lambda: conn.recv() if conn.poll(30) else None)
    workers_rss = sum(rss_mib(p) for p in descendants(hub))
    return summary(wards, a, b, parts or [], drained, workers_rss)


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def summary(wards: list[Ward], a: Snap, b: Snap, parts: list[dict], drained: tuple[int, int], workers_rss: float) -> dict:
    el = b.t - a.t
    d = {k: b.counters.get(k, 0) - a.counters.get(k, 0) for k in b.counters if k != "_push"}
    halves = parts[1:3] if len(parts) >= 3 else [{"sample": np.array([]), "hub": np.array([]), "connected": False}] * 2
    sample = np.concatenate([h["sample"] for h in halves])
    hub_arrival = np.concatenate([h["hub"] for h in halves])
    lag = np.array([x for w in wards for x in w.lag_s]) * 1000
    errors = Counter({k: v for w in wards for k, v in w.session.counters.items() if k.startswith("hub_error_")})
    n_beds = sum(len(t) for w in wards for t in w.by_tick)
    r = {
        "beds": n_beds, "wards": len(wards), "ecg_beds": sum(len(w.ecg_beds) for w in wards), "window_s": round(el, 1),
        "hub_cores": round((b.hub_cpu - a.hub_cpu) / el, 3), "store_cores": round((b.store_cpu - a.store_cpu) / el, 3), "hub_rss_mib": [round(a.hub_rss, 1), round(b.hub_rss, 1)],
        "hub_busiest_thread_cores": round(max(t - a.hub_threads.get(tid, 0.0) for tid, t in b.hub_threads.items()) / el, 3),
        "machine_cores_busy": round((b.machine_busy - a.machine_busy) / el, 2),
        "hub_workers_rss_mib": round(workers_rss, 1),
        "frames_per_s": round(d.get("frames_ingested", 0) / el, 1), "obs_per_s": round(d.get("obs_accepted", 0) / el, 1),
        "obs_stored_per_s": round(d.get("obs_stored", 0) / el, 1), "wave_chunks_per_s": round(d.get("wave_chunks_stored", 0) / el, 1),
        "obs_rejected": d.get("obs_rejected", 0), "frames_rejected": d.get("frames_rejected", 0),
        "sample_to_console_ms": {"p50": _pct(sample, 50), "p99": _pct(sample, 99), "n": len(sample),
                                 "halves": [{"p50": _pct(h["sample"], 50), "p99": _pct(h["sample"], 99)} for h in halves]},
        "hub_arrival_to_console_ms": {"p50": _pct(hub_arrival, 50), "p99": _pct(hub_arrival, 99)},
        "hub_push_ms": b.counters["_push"], "console_connected": all(h["connected"] for h in halves),
        "sent": b.sent, "acked": b.acked, "made": b.made, "acked_made_after_drain": drained,
        "generator_cores": round((b.gen_cpu - a.gen_cpu) / el, 3), "console_cores": round((b.console_cpu - a.console_cpu) / el, 3),
        "generator_lag_ms": {"p50": _pct(lag, 50), "p99": _pct(lag, 99), "max": round(float(lag.max()), 1) if len(lag) else None},
        "ticks_skipped": sum(w.skipped for w in wards), "agents_lost": [f"{w.agent}: {w.failure}" for w in wards if w.failure], "held_and_resent": sum(w.resends for w in wards),
        "hub_errors": dict(errors), "load_average": os.getloadavg(),
        "overload": {"at_end": b.overload.get("overloaded"), "episodes_in_window": b.overload.get("overload_episodes", 0) - a.overload.get("overload_episodes", 0),
                     "loop_lag_median_ms": [a.overload.get("loop_lag_median_ms"), b.overload.get("loop_lag_median_ms")]},
        "pacing": {"paces_sent": d.get("paces_sent", 0), "frames_braked": d.get("frames_braked", 0),  # the hub's, in the window
                   **{k: sum(w.session.counters[k] for w in wards) for k in ("paces_received", "frames_held", "frames_sent_paced")}},
    }  # fmt: skip
    sent_per_s = (b.sent - a.sent) / el
    why = []
    if r["agents_lost"]:
        why.append(f"{len(r['agents_lost'])} agent connections lost")
    if r["ticks_skipped"] or (r["generator_lag_ms"]["p99"] or 0) > 100:
        why.append("the generator fell behind (not the hub)")
    if b.sent - b.acked > sent_per_s:
        why.append(f"acknowledgements {b.sent - b.acked} frames behind")
    if b.made - b.sent > sent_per_s:
        why.append(f"{b.made - b.sent} frames unsent (the hub reads slowly)")
    h1, h2 = r["sample_to_console_ms"]["halves"]
    if h1["p50"] is None or h2["p50"] is None or not r["console_connected"]:
        why.append("the console saw no samples")
    elif h2["p50"] > 1.5 * h1["p50"] + 20 or h2["p99"] > 2 * h1["p99"] + 100:
        why.append(f"latency growing (p50 {h1['p50']} -> {h2['p50']}, p99 {h1['p99']} -> {h2['p99']} ms)")
    if b.hub_rss > 1.2 * a.hub_rss:
        why.append(f"hub RSS growing ({a.hub_rss:.0f} -> {b.hub_rss:.0f} MiB)")
    if errors:
        why.append("hub errors: " + ", ".join(f"{k[10:]} {v}" for k, v in errors.items()))
    return r | {"keeps_up": not why, "why_not": why}


def start_hub(python: str, home: Path, port: int, hub_args: list[str], store: str) -> subprocess.Popen:
    with open(home / "hub.log", "wb") as log:
        hub = subprocess.Popen([python, "-m", "teleicu", "hub", "--host", HOST, "--port", str(port), "--data-dir", str(home),
                                "--store", store, *hub_args], stdout=log, stderr=subprocess.STDOUT, cwd=home)  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1)
            return hub
        except OSError:
            if hub.poll() is not None or time.monotonic() > deadline:
                hub.kill()
                raise SystemExit(f"the hub did not start; see {home / 'hub.log'}") from None
            time.sleep(0.2)


def register(python: str, home: Path, plan: list[tuple[str, list[str]]], store: str) -> tuple[str, str, dict[str, str]]:
    """The demo's users and one agent per ward in the hub's state; (intensivist, password, {agent: secret})."""
    job = {"home": str(home), "store": store, "agents": [[f"edge-{w}", w, beds] for w, beds in plan]}
    done = subprocess.run([python, "-c", _REGISTER], check=False, input=json.dumps(job), capture_output=True, text=True, cwd=home)
    if done.returncode != 0:
        raise SystemExit(f"registering the agents failed: {done.stderr.strip()[-2000:]}")
    user, password = json.loads(done.stdout)
    return user, password, {agent: (home / f"{agent}.secret").read_text().strip() for agent, _w, _b in job["agents"]}


def measure(python: str, n_beds: int, bank: list[Patient], args: argparse.Namespace) -> dict:
    home = Path(tempfile.mkdtemp(prefix="teleicu-load-"))
    port = free_port(HOST)
    plan = layout(n_beds)
    influx: Influxd | None = start_influxd(home) if args.influx else None
    store = influx.store_url("teleicu", state=home / "state.sqlite3") if influx else str(home / "store.sqlite3")
    hub = start_hub(python, home, port, config_files.hub_arguments(args), store)
    ctx = multiprocessing.get_context("spawn")
    console = None
    try:
        user, password, secrets = register(python, home, plan, store)
        ours, theirs = ctx.Pipe()
        console = ctx.Process(target=console_main, args=(f"http://{HOST}:{port}", user, password, theirs), daemon=True)
        console.start()
        wards = make_wards(plan, secrets, bank, args.ecg)
        client = SignedIn(f"http://{HOST}:{port}", user, password)
        store_pid = influx.proc.pid if influx and influx.proc else None
        return asyncio.run(drive(wards, port, hub.pid, console, ours, client, args, store_pid)) | {"data_dir": str(home), "store": "influxdb" if influx else "sqlite"}
    finally:
        if console is not None:
            console.terminate()
            console.join(10)
        hub.terminate()
        try:
            hub.wait(20)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
        if influx is not None:
            influx.stop()
        for pid in processes_in(home):  # a hub stopped by SIGTERM can leave a waveform worker behind (started there)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def row(version: str, r: dict) -> str:
    lat = r["sample_to_console_ms"]
    rss = r["hub_rss_mib"]
    cores = f"{r['hub_cores']:.2f}" + (f" + {r['store_cores']:.2f} influxd" if r.get("store") == "influxdb" else "")
    return (f"| {version} | {r['beds']:,} | {cores} | {rss[0]:.0f} -> {rss[1]:.0f} | {r['frames_per_s']:,.0f} | "
            f"{r['obs_per_s']:,.0f} | {lat['p50']} / {lat['p99']} | {r['hub_push_ms'].get('p99')} | {r['acked']:,} / {r['sent']:,} | "
            f"{r['generator_cores']:.2f} | {r['machine_cores_busy']:.2f} | {'yes' if r['keeps_up'] else 'no: ' + '; '.join(r['why_not'])} |")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--beds", type=int, nargs="+", default=[1000, 2000])
    ap.add_argument("--duration", type=float, default=60, help="seconds measured, after the warm-up")
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--ecg", type=float, default=0.1, help="share of the beds that also send ECG")
    ap.add_argument("--hub-python", default=sys.executable, help="the Python that runs this checkout's hub")
    ap.add_argument("--baseline", default=None, help="also run this git revision, interleaved (its own virtualenv)")
    ap.add_argument("--json", action="store_true", help="print every result as JSON at the end (the table goes to stderr)")
    ap.add_argument("--influx", action="store_true", help="samples in a private influxd instead of the embedded SQLite file")
    config_files.add_hub_arguments(ap)  # handed to the hub when given
    args = ap.parse_args()
    versions = [("this checkout", args.hub_python)]
    if args.baseline:
        versions.insert(0, (args.baseline, str(baseline_python(args.baseline))))
    bank = patients()
    out = sys.stderr if args.json else sys.stdout
    print("| version | beds | hub cores | hub RSS MiB | frames/s | obs/s | sample->console p50 / p99 ms | hub push p99 ms "
          "| acked / sent | generator cores | machine cores busy | keeps up |\n|---|---|---|---|---|---|---|---|---|---|---|---|", file=out, flush=True)  # fmt: skip
    results = []
    for n in args.beds:
        for version, python in versions:
            r = measure(python, n, bank, args) | {"version": version}
            results.append(r)
            print(row(version, r), file=out, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
