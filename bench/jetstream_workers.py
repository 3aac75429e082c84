"""Benchmark: hub workers on NATS JetStream scaled out to 1, 2 and 4 processes on this machine, at a fixed offered load.

For each bed count and each worker count K the bench starts, from nothing:

* a fresh frames stream, subject prefix and lease bucket on the local nats-server (127.0.0.1:4222), deleted after
  the run, consumers with them;
* a private InfluxDB 1.x (``influxd``, started per run as the integration tests start it, its files deleted
  afterwards) as the sample store, at the hub's default ``flush_ms`` unless ``--flush-ms`` says otherwise;
* a fresh schema in the local PostgreSQL (127.0.0.1:5432, db ``test``) as the shared state store, dropped after the
  run, holding the test users and one agent per ward of 25 beds (``edge-W001`` ...), as ``teleicu agents add`` would;
* K real ``teleicu hub`` processes, each with a ``jetstream:`` section whose ``wards:`` list is its share of the
  wards (round-robin: W001 -> worker 1, W002 -> worker 2, ...), waited for until every ward is owned.

This process then publishes straight to the stream what the edge's JetStream uplink would (``wire.jetstream_contract``:
subject ``<prefix>.<ward>.<agent>``, ``Nats-Msg-Id`` agent:epoch:seq, the Teleicu headers): per ward one numerics
frame every 250 ms with the beds whose second falls in it, 1 Hz numerics of 10 values per bed (``edge_load``'s
templates: 7 parameters and the last NIBP reading's 3 values re-sent every second, as monitors do; device time = wall
ms when the frame is made), each ward awaiting the stream's acknowledgement before its
next frame, as the edge does with a window of one. No ECG. It also taps the workers' acknowledgements: a core NATS
subscription on ``$JS.ACK.<stream>.>`` sees every ack a worker sends (a worker acks only once the sample store said
the frame is durable), so each frame's **publish -> stored-and-acked** latency is exact, from the time its publish
began to the time its ack went past. A console per worker (one process of its own, ``teleicu.demo.watch_console``,
signed in as the intensivist) gives **sample -> console** latency as ``bench/hub_load.py`` does.

Over the window after a warm-up it reports, per run: frames and observations stored per second (the workers'
``jetstream.frames_acked`` and ``obs_stored`` counters), publish->ack and sample->console p50/p99 (also per half of
the window, to see a backlog grow), the consumers' backlog at the end of the window, the cores of every worker
process, of nats-server, influxd, PostgreSQL (all its processes, machine-wide) and of this publisher and the console
process, the workers' RSS, how busy the whole machine was (and how much of that was not the bench's processes), and
each worker's cores with no load (leases, ticks, empty pulls; measured for 3 s before the load starts). "keeps up":
at the window's end no more than (1 s + the store's flush) of frames left in the consumers, publish->ack p99 not
growing between the halves (at most 2 x + 250 ms), every frame acknowledged within 30 s of the publisher stopping,
and the publisher on time (so the load was the offered one).

Publish->ack includes the sample store's flush: with the hub's default ``flush_ms`` of 1000 a frame waits up to a
second for its InfluxDB write, so p50 sits near 0.5 s and p99 near 1 s whenever the workers keep up; sample->console
does not wait for the store and shows the workers' own latency.

The machine has two cores: every process above shares them, so from K = 2 on the workers compete with each other
and with nats-server and influxd. The per-worker cost (worker cores per 1,000 beds) is what sizes a cluster.

    .venv/bin/python bench/jetstream_workers.py --beds 1000 --workers 1,2,4 --duration 30 [--warmup 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import psycopg
import yaml
from edge_load import _HEAD, _OBS_OPEN, _T2, _TAIL, TICKS_PER_S, WARD_SIZE, Bed, Patient, layout, patients

for _tests in ("tests", "tests/integration"):  # the tests' influxd launcher, hub processes and PostgreSQL schemas
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / _tests))
from influx_support import Influxd, start_influxd  # noqa: E402
from jetstream_support import TOKEN, connect, make_stream, removed, unique  # noqa: E402
from proc_usage import TICK, cpu_s, machine_busy, rss_mib, tree_cpu_s  # noqa: E402
from state_db_support import hub_state  # noqa: E402
from support import PASSWORD, HubProcess, register_agent, start_hub  # noqa: E402

from ingest.jetstream_worker import consumer_name  # noqa: E402
from ingest.latency import LatencyRecorder  # noqa: E402
from teleicu.demo import ConsoleWatch, SignedIn, watch_console  # noqa: E402
from wire.clock import wall_ms  # noqa: E402
from wire.jetstream_contract import FrameKey, frame_headers, frame_subject  # noqa: E402

HUB_YAML = Path(__file__).resolve().parents[1] / "config" / "hub.yaml"
FLUSH_S = 1 / TICKS_PER_S
KEEP = 10_000_000
USER = "intensivist"
IDLE_S = 3.0


# --- the load: one JetStream publisher per ward, all in this process ------------------------------------------------


@dataclass
class JsWard:
    """One ward's agent publishing on the stream: a numerics frame per flush, the next once the stream acked it."""

    name: str
    beds: list[Bed]
    prefix: str
    epoch: int
    phase_s: float
    seq: int = 0
    floor: int = 0
    lag_s: list[float] = field(default_factory=list)
    skipped: int = 0
    published: list[tuple[int, float]] = field(default_factory=list)  # (stream seq, wall s when its publish began)
    failures: int = 0

    @property
    def agent(self) -> str:
        return f"edge-{self.name}"

    async def run(self, js, t0: float, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        by_tick = [self.beds[q::TICKS_PER_S] for q in range(TICKS_PER_S)]
        subject = frame_subject(self.name, self.agent, self.prefix)
        tick = 0
        start = t0 + self.phase_s
        while not stop.is_set():
            at = start + tick * FLUSH_S
            await asyncio.sleep(at - loop.time())
            late = loop.time() - at
            if late > 1.0:  # more than a second behind: skip ticks (counted), as the simulators do
                skip = int(late / FLUSH_S)
                tick, self.skipped, late = tick + skip, self.skipped + skip, late - skip * FLUSH_S
            self.lag_s.append(late)
            tick += 1
            parts = by_tick[tick % TICKS_PER_S]
            if not parts:
                continue
            self.seq += 1
            now = wall_ms()
            body = f"{_HEAD}{self.seq}{_OBS_OPEN}[{','.join(b.numerics(now) for b in parts)}]{_TAIL}".encode()
            began = time.time()
            try:
                ack = await js.publish(subject, body, headers=frame_headers(FrameKey(self.name, self.agent, self.epoch, self.seq, self.floor)))
            except Exception:  # noqa: BLE001 - counted: a publish the stream did not acknowledge (the edge would re-send)
                self.failures += 1
                continue
            self.published.append((ack.seq, began))
            if self.seq == self.floor + 1:
                self.floor = self.seq


def prime_nibp(bed: Bed, at_ms: int) -> None:
    """Give the bed a cuff reading taken at ``at_ms`` (its patient's first), re-sent every second from the start, so
    each bed sends its ~10 values a second from the first frame instead of only after its first cuff (up to 60 s)."""
    cuff = next(c for _v, c in bed.patient.rows if c is not None)
    bed.nibp = bed.nibp_tmpl.format(at_ms, *cuff).split(str(_T2))


def make_js_wards(plan: list[tuple[str, list[str]]], bank: list[Patient], prefix: str, epoch: int) -> list[JsWard]:
    """Bed ``g`` is patient ``g % len(bank)`` from second ``7 g`` (as ``edge_load``), its NIBP primed, no ECG; phases
    spread over a flush."""
    wards, g = [], 0
    for w, (ward, names) in enumerate(plan):
        beds = []
        for name in names:
            bed = Bed(name, bank[g % len(bank)], 7 * g % len(bank[0].rows), False)
            prime_nibp(bed, epoch)
            beds.append(bed)
            g += 1
        wards.append(JsWard(ward, beds, prefix, epoch, FLUSH_S * w / len(plan)))
    return wards


class AckTap:
    """Every acknowledgement a worker sends for the stream, seen on core NATS: stream seq -> wall s of the first ack."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.acked: dict[int, float] = {}
        self.other = 0  # naks, terms, in-progress

    async def handler(self, msg) -> None:  # type: ignore[no-untyped-def]
        now = time.time()
        if msg.data not in (b"", b"+ACK"):
            self.other += 1
            return
        tokens = msg.subject.split(".")
        try:  # $JS.ACK[.<domain>.<account hash>].<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>
            sseq = int(tokens[tokens.index(self.stream) + 3])
        except (ValueError, IndexError):
            return
        self.acked.setdefault(sseq, now)


# --- the consoles: one per worker, in a process of their own --------------------------------------------------------


def console_main(bases: list[str], conn: Connection) -> None:
    """At each "mark" a new part of the latencies begins; at "stop" every part goes back (the first is the warm-up)."""
    asyncio.run(_consoles(bases, conn))


async def _consoles(bases: list[str], conn: Connection) -> None:
    watches = [ConsoleWatch(LatencyRecorder(KEEP), LatencyRecorder(KEEP)) for _ in bases]
    feeds = [asyncio.create_task(watch_console(b.replace("http://", "ws://") + "/ws/console", w, SignedIn(b, USER, PASSWORD)))
             for b, w in zip(bases, watches, strict=True)]  # fmt: skip
    parts = []
    while True:
        cmd = await asyncio.to_thread(conn.recv)
        parts.append({"sample": np.concatenate([w.sample_latency.values() for w in watches]), "connected": all(w.connected for w in watches)})
        for w in watches:
            w.latency, w.sample_latency = LatencyRecorder(KEEP), LatencyRecorder(KEEP)
        if cmd == "stop":
            break
    for f in feeds:
        f.cancel()
    conn.send(parts)


# --- the workers -----------------------------------------------------------------------------------------------------


def worker_file(home: Path, worker: str, wards: list[str], stream: str, prefix: str, bucket: str) -> Path:
    token = home / "nats.token"
    token.write_text(TOKEN)
    raw = yaml.safe_load(HUB_YAML.read_text()) | {"waveform_analysis": False}  # no ECG in this load
    raw["jetstream"] = {"servers": ["nats://127.0.0.1:4222"], "token_file": str(token), "subject_prefix": prefix, "stream": {"name": stream},
                        "wards": wards, "worker_id": worker, "lease_bucket": bucket}  # fmt: skip
    path = home / f"hub-{worker}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def start_workers(tmp: Path, k: int, wards: list[str], store_url: str, state: str, stream: str, prefix: str, bucket: str) -> list[HubProcess]:
    hubs: list[HubProcess] = []
    try:
        for i in range(k):
            name = f"w{i + 1}"
            home = tmp / name
            home.mkdir()
            config = worker_file(home, name, wards[i::k], stream, prefix, bucket)
            hubs.append(start_hub(home, extra=("--store", store_url, "--config", str(config), "--data-dir", str(home)), state=state))
    except BaseException:
        for h in hubs:
            h.stop()
        raise
    return hubs


# --- measuring -------------------------------------------------------------------------------------------------------


def note(what: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def pids_named(name: str) -> list[int]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                out.append(int(pid))
        except OSError:
            continue
    return out


def cpu_of(pids: list[int]) -> dict[int, float]:
    out = {}
    for p in pids:
        try:
            out[p] = cpu_s(p)
        except OSError:
            continue
    return out


@dataclass
class Snap:
    t: float
    wall: float
    workers_cpu: list[float]
    workers_rss: list[float]
    stats: list[dict]
    nats: dict[int, float]
    influxd: float
    postgres: dict[int, float]
    publisher: float
    console: float
    busy: float


async def snap(hubs: list[HubProcess], clients: list[SignedIn], influx: Influxd, console: int) -> Snap:
    stats = await asyncio.gather(*(asyncio.to_thread(c.get, "/api/stats") for c in clients))
    assert influx.proc is not None
    return Snap(time.monotonic(), time.time(), [tree_cpu_s(h.proc.pid) for h in hubs], [rss_mib(h.proc.pid) for h in hubs], list(stats),
                cpu_of(pids_named("nats-server")), cpu_s(influx.proc.pid), cpu_of(pids_named("postgres")), cpu_s(os.getpid()),
                cpu_s(console), machine_busy()[0] / TICK)  # fmt: skip


def _delta(a: dict[int, float], b: dict[int, float]) -> float:
    return sum(b[p] - a[p] for p in b if p in a)


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


async def consumer_backlog(stream: str, wards: list[str]) -> int:
    """Frames in the wards' consumers not yet acknowledged (pending plus delivered and unacked)."""
    nc = await connect()
    try:
        js = nc.jetstream()
        total = 0
        for w in wards:
            info = await js.consumer_info(stream, consumer_name(w))
            total += (info.num_pending or 0) + (info.num_ack_pending or 0)
        return total
    finally:
        await nc.close()


async def drive(hubs: list[HubProcess], js_wards: list[JsWard], stream: str, influx: Influxd, args: argparse.Namespace) -> dict:
    clients = [SignedIn(h.base, USER, PASSWORD) for h in hubs]
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    console = ctx.Process(target=console_main, args=([h.base for h in hubs], theirs), daemon=True)
    console.start()
    nc = await connect()
    tap = AckTap(stream)
    try:
        await nc.subscribe(f"$JS.ACK.{stream}.>", cb=tap.handler)
        js = nc.jetstream()
        idle = [tree_cpu_s(h.proc.pid) for h in hubs], time.monotonic()
        note("idle measurement")
        await asyncio.sleep(IDLE_S)  # the workers' cost with no load: leases, ticks, empty pulls
        idle_cores = [round((tree_cpu_s(h.proc.pid) - c) / (time.monotonic() - idle[1]), 3) for h, c in zip(hubs, idle[0], strict=True)]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.2
        async with asyncio.TaskGroup() as tg:
            for w in js_wards:
                tg.create_task(w.run(js, t0, stop))
            await asyncio.sleep(args.warmup)
            a = await snap(hubs, clients, influx, console.pid)
            note("window")
            ours.send("mark")
            for w in js_wards:
                w.lag_s = []
            await asyncio.sleep(args.duration / 2)
            mid = time.time()
            ours.send("mark")
            await asyncio.sleep(args.duration / 2)
            b = await snap(hubs, clients, influx, console.pid)
            backlog = await consumer_backlog(stream, [w.name for w in js_wards])
            ours.send("stop")
            stop.set()
        note("draining")
        published = [p for w in js_wards for p in w.published]
        deadline = time.monotonic() + 30  # the last frames' acks: a worker that kept up needs little more than a flush
        while time.monotonic() < deadline and len(tap.acked) < len(published):
            await asyncio.sleep(0.1)
        drained_s = round(time.monotonic() - (deadline - 30), 1)
        final = await asyncio.gather(*(asyncio.to_thread(c.get, "/api/stats") for c in clients))
    finally:
        await nc.close()
    note("console results")
    parts = await asyncio.to_thread(lambda: ours.recv() if ours.poll(30) else [])
    console.join(10)
    return summary(js_wards, a, b, mid, tap, parts, backlog, published, drained_s, final, (args.flush_ms or 1000) / 1000) | {"idle_worker_cores": idle_cores}


def summary(js_wards: list[JsWard], a: Snap, b: Snap, mid: float, tap: AckTap, parts: list[dict], backlog: int,
            published: list[tuple[int, float]], drained_s: float, final: list[dict], flush_s: float) -> dict:  # fmt: skip
    el = b.t - a.t
    in_window = [(s, t) for s, t in published if a.wall <= t < b.wall]
    lat = np.array([(tap.acked[s] - t) * 1000 for s, t in in_window if s in tap.acked])  # acked in the window or the drain
    halves = [np.array([(tap.acked[s] - t) * 1000 for s, t in in_window if s in tap.acked and lo <= t < hi])
              for lo, hi in ((a.wall, mid), (mid, b.wall))]  # fmt: skip
    console_halves = [p["sample"] for p in parts[1:3]] if len(parts) >= 3 else [np.array([]), np.array([])]
    sample = np.concatenate(console_halves)
    js_a, js_b = [s["jetstream"]["counters"] if "counters" in s["jetstream"] else s["jetstream"] for s in a.stats], \
        [s["jetstream"]["counters"] if "counters" in s["jetstream"] else s["jetstream"] for s in b.stats]  # fmt: skip
    acked = [jb.get("frames_acked", 0) - ja.get("frames_acked", 0) for ja, jb in zip(js_a, js_b, strict=True)]
    obs = [sb["counters"].get("obs_stored", 0) - sa["counters"].get("obs_stored", 0) for sa, sb in zip(a.stats, b.stats, strict=True)]
    wcores = [(cb - ca) / el for ca, cb in zip(a.workers_cpu, b.workers_cpu, strict=True)]
    lag = np.array([x for w in js_wards for x in w.lag_s]) * 1000
    n_beds = sum(len(w.beds) for w in js_wards)
    r = {
        "beds": n_beds, "wards": len(js_wards), "workers": len(a.workers_cpu), "window_s": round(el, 1),
        "frames_published_per_s": round(len(in_window) / el, 1),
        "frames_stored_per_s": round(sum(acked) / el, 1), "obs_stored_per_s": round(sum(obs) / el, 1),
        "per_worker_frames_per_s": [round(x / el, 1) for x in acked],
        "publish_to_ack_ms": {"p50": _pct(lat, 50), "p99": _pct(lat, 99), "max": _pct(lat, 100), "n": len(lat), "of": len(in_window),
                              "halves": [{"p50": _pct(h, 50), "p99": _pct(h, 99)} for h in halves]},
        "sample_to_console_ms": {"p50": _pct(sample, 50), "p99": _pct(sample, 99), "n": len(sample),
                                 "halves": [{"p50": _pct(h, 50), "p99": _pct(h, 99)} for h in console_halves],
                                 "connected": all(p["connected"] for p in parts[1:3]) if len(parts) >= 3 else False},
        "consumer_backlog_frames": backlog,
        "store": [{"writes_per_s": round((sb["store"].get("writes", 0) - sa["store"].get("writes", 0)) / el, 2),
                   "lines_per_write": round((sb["store"].get("written", 0) - sa["store"].get("written", 0))
                                            / max(1, sb["store"].get("writes", 0) - sa["store"].get("writes", 0))),
                   "backpressure_waits": sb["store"].get("backpressure_waits", 0) - sa["store"].get("backpressure_waits", 0),
                   "buffered_lines_end": sb["store"].get("buffered"), "retried": sb["store"].get("retried", 0) - sa["store"].get("retried", 0)}
                  for sa, sb in zip(a.stats, b.stats, strict=True)],
        "overload_end": [sb.get("overload") for sb in b.stats],
        "hub_push_p99_ms": [sb.get("push_latency_ms", {}).get("p99") for sb in b.stats],
        "worker_cores": [round(x, 3) for x in wcores], "workers_cores_total": round(sum(wcores), 3),
        "worker_rss_mib": [[round(x, 1), round(y, 1)] for x, y in zip(a.workers_rss, b.workers_rss, strict=True)],
        "nats_cores": round(_delta(a.nats, b.nats) / el, 3), "influxd_cores": round((b.influxd - a.influxd) / el, 3),
        "postgres_cores": round(_delta(a.postgres, b.postgres) / el, 3),
        "publisher_cores": round((b.publisher - a.publisher) / el, 3), "console_cores": round((b.console - a.console) / el, 3),
        "machine_cores_busy": round((b.busy - a.busy) / el, 2),
        "store_flush_ms": round(flush_s * 1000),
        "publisher_lag_ms": {"p50": _pct(lag, 50), "p99": _pct(lag, 99)}, "ticks_skipped": sum(w.skipped for w in js_wards),
        "publish_failures": sum(w.failures for w in js_wards), "acks_seen_other": tap.other,
        "all_acked_after_stop": len(tap.acked) >= len(published), "drain_s": drained_s,
        "frames_published": len(published), "frames_acked_seen": len(tap.acked),
        "wards_owned": [s["jetstream"].get("wards_owned") for s in final],
        "load_average": os.getloadavg(),
    }  # fmt: skip
    r["worker_cores_per_1000_beds"] = round(r["workers_cores_total"] / n_beds * 1000, 3)
    ours = ("workers_cores_total", "nats_cores", "influxd_cores", "postgres_cores", "publisher_cores", "console_cores")
    r["other_cores"] = round(r["machine_cores_busy"] - sum(r[k] for k in ours), 2)  # processes not part of the bench
    why = []
    if backlog > r["frames_published_per_s"] * (1 + flush_s):
        why.append(f"{backlog} frames left in the consumers at the window's end")
    h1, h2 = r["publish_to_ack_ms"]["halves"]
    if h1["p99"] is not None and h2["p99"] is not None and h2["p99"] > 2 * h1["p99"] + 250:
        why.append(f"publish->ack p99 growing ({h1['p99']} -> {h2['p99']} ms)")
    if not r["all_acked_after_stop"]:
        why.append(f"{len(published) - len(tap.acked)} frames not acked 30 s after the publisher stopped")
    if r["ticks_skipped"] or (r["publisher_lag_ms"]["p99"] or 0) > 250:
        why.append("the publisher fell behind")
    if r["publish_failures"]:
        why.append(f"{r['publish_failures']} publishes failed")
    return r | {"keeps_up": not why, "why_not": why}


def register(state: str, agent: str, ward: str, beds: list[str], secret_file: Path) -> None:
    """``teleicu agents add`` for one ward's agent, tried again when PostgreSQL cut the connection (other sessions'
    tests on this machine terminate backends)."""
    for attempt in range(3):
        try:
            register_agent(state, agent, ward, tuple(beds), secret_file)
            return
        except psycopg.OperationalError:
            if attempt == 2:
                raise
            time.sleep(1)


def wait_quiet(limit_s: float, busy_max: float = 0.25) -> float:
    """Wait (at most ``limit_s``) until the machine is idle: under ``busy_max`` cores busy over 3 s, the bench's
    influxd and nats-server included (they idle between runs). Returns the cores busy when it stopped waiting."""
    deadline = time.monotonic() + limit_s
    while True:
        b0, t0 = machine_busy()[0] / TICK, time.monotonic()
        time.sleep(3)
        busy = (machine_busy()[0] / TICK - b0) / (time.monotonic() - t0)
        if busy < busy_max or time.monotonic() > deadline:
            return round(busy, 2)
        note(f"machine busy ({busy:.2f} cores before the run): waiting for it to go quiet")


def measure(n_beds: int, k: int, bank: list[Patient], args: argparse.Namespace) -> dict:
    busy_before = wait_quiet(args.wait_quiet) if args.wait_quiet else None
    tmp = Path(tempfile.mkdtemp(prefix=f"teleicu-scaleout-{n_beds}-{k}-"))
    stream, prefix, bucket, db = unique("BENCH_FRAMES"), unique("bench.frames"), unique("bench_leases"), "scaleout"
    # a fresh influxd per run, its files deleted afterwards: dropping a database in a shared one blocked its writes
    influx = start_influxd(tmp)
    store_url = influx.store_url(db, **({"flush_ms": args.flush_ms} if args.flush_ms else {}))
    plan = layout(n_beds)
    wards = [w for w, _ in plan]
    with hub_state("postgresql", tmp) as state:
        assert state is not None
        hubs: list[HubProcess] = []
        try:
            for ward, beds in plan:
                register(state, f"edge-{ward}", ward, beds, tmp / f"edge-{ward}.secret")

            async def stream_up() -> None:
                nc = await connect()
                await make_stream(nc.jetstream(), stream, prefix)
                await nc.close()

            asyncio.run(stream_up())
            note(f"{n_beds} beds, {k} workers: starting them")
            hubs = start_workers(tmp, k, wards, store_url, state, stream, prefix, bucket)
            clients = [SignedIn(h.base, USER, PASSWORD) for h in hubs]
            deadline = time.monotonic() + 60
            while sorted(w for c in clients for w in c.get("/api/stats")["jetstream"]["wards_owned"]) != sorted(wards):
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not take every ward within 60 s")
                time.sleep(0.2)
            js_wards = make_js_wards(plan, bank, prefix, wall_ms())
            return asyncio.run(drive(hubs, js_wards, stream, influx, args)) | {"data_dir": str(tmp), "machine_cores_busy_before": busy_before}
        finally:
            for h in hubs:
                h.stop()
            asyncio.run(removed(stream, bucket))
            influx.stop()
            shutil.rmtree(influx.root, ignore_errors=True)


def row(r: dict) -> str:
    ack, con = r["publish_to_ack_ms"], r["sample_to_console_ms"]
    rss = ", ".join(f"{x[1]:.0f}" for x in r["worker_rss_mib"])
    return (f"| {r['beds']:,} | {r['workers']} | {r['frames_published_per_s']:,.0f} | {r['frames_stored_per_s']:,.0f} | {r['obs_stored_per_s']:,.0f} "
            f"| {ack['p50']} / {ack['p99']} | {con['p50']} / {con['p99']} | {r['workers_cores_total']:.2f} ({' + '.join(f'{c:.2f}' for c in r['worker_cores'])}) "
            f"| {r['worker_cores_per_1000_beds']:.2f} | {rss} | {r['nats_cores']:.2f} | {r['influxd_cores']:.2f} | {r['postgres_cores']:.2f} "
            f"| {r['publisher_cores']:.2f} + {r['console_cores']:.2f} | {r['machine_cores_busy']:.2f} ({r['other_cores']:.2f}) "
            f"| {'yes' if r['keeps_up'] else 'no: ' + '; '.join(r['why_not'])} |")  # fmt: skip


HEADER = ("| beds | workers | frames/s offered | frames/s stored | obs/s stored | publish->ack p50 / p99 ms | sample->console p50 / p99 ms "
          "| worker cores (each) | worker cores per 1,000 beds | worker RSS MiB | nats-server cores | influxd cores | postgres cores "
          "| publisher + console cores | machine cores busy of 2 (not the bench's) | keeps up |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--beds", type=lambda s: [int(x) for x in s.split(",")], default=[1000], help="bed counts, comma-separated")
    ap.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4], help="worker counts, comma-separated")
    ap.add_argument("--duration", type=float, default=30, help="seconds measured, after the warm-up")
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--flush-ms", type=int, default=0, help="the InfluxDB store's flush_ms (0: the hub's default, 1000)")
    ap.add_argument("--wait-quiet", type=float, default=0, help="before each run wait up to this many seconds for the machine to go idle")
    ap.add_argument("--json", action="store_true", help="print every result as JSON at the end (the table goes to stderr)")
    args = ap.parse_args()
    out = sys.stderr if args.json else sys.stdout
    print(f"wards of {WARD_SIZE} beds, 1 Hz numerics (7 values per bed and second + NIBP's 3 re-sent), one frame per ward per {FLUSH_S * 1000:.0f} ms; "
          f"load average before: {os.getloadavg()}", file=out, flush=True)  # fmt: skip
    bank = patients()
    results = []
    print(HEADER, file=out, flush=True)
    for n in args.beds:
        for k in args.workers:
            r = measure(n, k, bank, args)
            results.append(r)
            print(row(r), file=out, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
