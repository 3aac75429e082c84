"""Benchmark: bedside video on loopback, the whole system: glass-to-glass latency, and what it costs the edge, the hub
and coturn.

Starts, each as its own process: coturn on loopback, ``teleicu hub`` (its file names coturn), a simulated ward of
vitals (``teleicu sim``, 25 beds by default, ECG on every bed, and its ``teleicu edge``) that the hub carries
throughout, and a camera-only ``teleicu edge`` for ward B with one test-pattern camera per bed (640x480, 15 fps,
500 kbps: the defaults). The viewers are aiortc peers in this process, signalling only through the hub's
``/ws/video`` as the console does; their decoding is never counted in a measured process.

Each decoded frame's glass-to-glass latency is ``now - t`` where ``t`` is the wall-clock millisecond the edge's test
pattern burnt into the frame when it made it (same machine, same clock); frames that do not read back exactly are
counted, not measured. CPU is user + system time of each process from /proc over the window, as % of one core.

Windows, in this order (``--window`` s each, the latency ones ``--latency-window`` s):

    idle, 1 stream P2P, 1 stream relay-only, 4 streams P2P, idle, 4 streams relay-only, idle, 4 streams relay-only

so the hub's vitals-only CPU and its CPU with 4 live streams are each measured three times, interleaved.

    .venv/bin/python bench/video_system.py [--window 20] [--latency-window 30] [--beds 25] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from access import bearer, signed_in_console
from proc_usage import cpu_s, machine_busy

from edge_agent.video.test_pattern import PatternUnreadable, read_back
from ingest.video.coturn import Coturn, start_coturn
from teleicu import config_files
from teleicu.demo_accounts import register_agent, register_simulated_ward
from wire.video_signal import Signal, decode_signal, encode_signal

CAMERA_WARD = "B"
CAMERA_BEDS = ("B-01", "B-02", "B-03", "B-04")
SETTLE_S = 3.0  # after every stream is live and reading back, before a window starts


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def wait_for(pred, what: str, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def get_json(url: str, headers: dict[str, str]) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
        return json.loads(r.read())


@dataclass
class Viewer:
    """One console viewer of one bed: an aiortc peer that signals only through the hub's /ws/video."""

    port: int
    token: str
    bed: str
    relay_only: bool
    live: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (monotonic s at decode, latency ms)
    unreadable: list[float] = field(default_factory=list)  # monotonic s of frames that did not read back
    wrong_bed: int = 0
    failure: str = ""
    ws: object = None
    pc: object = None
    tasks: list[asyncio.Task] = field(default_factory=list)

    async def open(self) -> Viewer:
        from websockets.asyncio.client import connect

        self.ws = await connect(f"ws://127.0.0.1:{self.port}/ws/video?bed={self.bed}",
                                additional_headers={"Authorization": f"Bearer {self.token}"}, open_timeout=10)  # fmt: skip
        self.tasks.append(asyncio.create_task(self._signalling()))
        return self

    async def _signalling(self) -> None:
        from aiortc import RTCConfiguration, RTCIceServer, RTCSessionDescription
        from aiortc import RTCPeerConnection as Peer
        from aiortc.rtcconfiguration import RTCIceTransportPolicy
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:  # type: ignore[attr-defined]
                sig = decode_signal(raw, session_required=False)
                if sig.type == "session":
                    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                               for s in sig.ice_servers]  # fmt: skip
                    policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
                    self.pc = pc = Peer(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
                    pc.on("track", lambda track: track.kind == "video" and self.tasks.append(asyncio.create_task(self._decode(track))))
                elif sig.type == "offer":
                    await self.pc.setRemoteDescription(RTCSessionDescription(sig.sdp, "offer"))  # type: ignore[attr-defined]
                    await self.pc.setLocalDescription(await self.pc.createAnswer())  # type: ignore[attr-defined]
                    await self.ws.send(encode_signal(Signal("answer", sdp=self.pc.localDescription.sdp)))  # type: ignore[attr-defined]
                elif sig.type == "state" and sig.state == "failed" or sig.type == "hangup":
                    self.failure = self.failure or f"{sig.type}: {sig.state} {sig.reason}"
                    break
        except ConnectionClosed:
            pass
        finally:
            self.ended.set()

    async def _decode(self, track) -> None:  # type: ignore[no-untyped-def]
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now_ms, mono = time.time() * 1000, time.monotonic()  # the moment the decoded frame is in the viewer's hands
            try:
                bed, t_ms = read_back(frame.to_ndarray(format="rgb24"))
            except PatternUnreadable:
                self.unreadable.append(mono)
                continue
            if bed != self.bed:
                self.wrong_bed += 1
                continue
            self.samples.append((mono, now_ms - t_ms))
            self.live.set()

    def relayed_only(self) -> bool:
        lines = [x for x in self.pc.localDescription.sdp.splitlines() if x.startswith("a=candidate:")]  # type: ignore[attr-defined]
        return bool(lines) and all(" typ relay " in x for x in lines)

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # the hub may have closed it first
            await self.ws.send(json.dumps({"type": "hangup"}))  # type: ignore[attr-defined]
            await self.ws.close()  # type: ignore[attr-defined]
        if self.pc is not None:
            await self.pc.close()  # type: ignore[attr-defined]
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass
class Window:
    name: str
    streams: int
    relay: bool
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # process -> % of one core
    machine: float = 0.0  # all cores busy, % of one core (200 = both cores flat out)
    latencies: list[float] = field(default_factory=list)
    unreadable: int = 0
    stored: int = 0  # vitals observations the hub stored in the window

    def row(self) -> dict:
        return {"window": self.name, "streams": self.streams, "relay_only": self.relay, "seconds": round(self.seconds, 1),
                "cpu_pct": {k: round(v, 2) for k, v in self.cpu.items()}, "machine_pct": round(self.machine, 1),
                "frames": len(self.latencies), "unreadable": self.unreadable,
                "fps_per_stream": round(len(self.latencies) / self.seconds / self.streams, 2) if self.streams else None,
                "latency_ms": {"p50": round(percentile(self.latencies, 50), 1), "p95": round(percentile(self.latencies, 95), 1),
                               "max": round(max(self.latencies), 1)} if self.latencies else None,
                "vitals_stored_per_s": round(self.stored / self.seconds, 1)}  # fmt: skip


class System:
    """The processes under test and their pids; everything under one temporary directory."""

    def __init__(self, tmp: Path, beds: int) -> None:
        self.tmp, self.beds = tmp, beds
        self.procs: dict[str, subprocess.Popen] = {}
        self.turn: Coturn | None = None
        self.port = free_tcp_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db = tmp / "store.sqlite3"
        self.run = [sys.executable, "-m", "teleicu"]

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        with (self.tmp / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen([*self.run, *args], stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.procs[name] = proc
        return proc

    def start(self) -> None:
        for _ in range(5):  # a random UDP port and relay range; try again if another run holds them
            port, low = random.randint(20000, 29999), random.randint(50000, 59000)
            turn = start_coturn(self.tmp / f"coturn-{port}", port=port, relay_ports=(low, low + 200), verbose=False)
            wait_for(turn.listening, "coturn to listen", 10)
            if turn.proc.poll() is None:
                self.turn = turn
                break
        else:
            raise RuntimeError(f"coturn would not start: {turn.log.read_text()[-2000:]}")
        hub_file = self.tmp / "hub.yaml"
        raw = yaml.safe_load(config_files.default_file("hub.yaml").read_text(encoding="utf-8"))
        raw["video"] = {"turn": {"urls": [self.turn.url], "secret_file": str(self.turn.secret_file)}}
        hub_file.write_text(yaml.safe_dump(raw))
        self.client = signed_in_console(self.db, self.base, self.tmp)  # the demo's users, in the state before the hub starts
        hub = self.spawn("hub", "hub", "--port", str(self.port), "--db", str(self.db), "--config", str(hub_file))
        wait_for(lambda: hub.poll() is not None or get_json(f"{self.base}/healthz", {})["ok"], "the hub", 30)
        if hub.poll() is not None:
            raise RuntimeError(f"the hub exited: {(self.tmp / 'hub.log').read_text()[-2000:]}")
        # the vitals: a simulated ward and its edge agent, as a hospital would run them
        ward_cfg = self.tmp / "ward-A.yaml"
        self.spawn("sim", "sim", "--ward", "A", "--beds", str(self.beds), "--seed", "7", "--edge-config", str(ward_cfg),
                   "--hub", f"ws://127.0.0.1:{self.port}/ws/edge")  # fmt: skip
        wait_for(ward_cfg.exists, "the simulator's edge config", 30)
        register_simulated_ward(self.db, ward_cfg)
        self.spawn("vitals-edge", "edge", "--config", str(ward_cfg))
        # the cameras: an edge agent for ward B with only test-pattern cameras, at the default settings
        secret = self.tmp / "cam-B.secret"
        register_agent(self.db, "cam-B", CAMERA_WARD, CAMERA_BEDS, secret)
        cam_cfg = self.tmp / "cam-B.yaml"
        cam_cfg.write_text(yaml.safe_dump({
            "agent": {"id": "cam-B", "ward": CAMERA_WARD},
            "hub": {"url": f"ws://127.0.0.1:{self.port}/ws/edge", "secret_file": str(secret)},
            "uplink": {"spool": str(self.tmp / "cam-B.spool.sqlite3")},
            "devices": [],
            "cameras": [{"bed": b, "source": "testpattern", "talkback": False} for b in CAMERA_BEDS],
        }))  # fmt: skip
        self.spawn("camera-edge", "edge", "--config", str(cam_cfg))
        wait_for(lambda: all(get_json(f"{self.base}/api/beds/{b}/video", self.headers())["camera"] for b in CAMERA_BEDS),
                 "the camera edge's video link", 60)  # fmt: skip
        wait_for(lambda: self.stored() > 0, "the ward's vitals to be stored", 60)

    def headers(self) -> dict[str, str]:
        return bearer(self.client)

    def stored(self) -> int:
        counters = get_json(f"{self.base}/api/stats", self.headers())["counters"]
        return int(counters.get("obs_stored", 0))

    def pids(self) -> dict[str, int]:
        assert self.turn is not None
        out = {"hub": self.procs["hub"].pid, "camera-edge": self.procs["camera-edge"].pid, "coturn": self.turn.proc.pid}
        for name, proc in (*self.procs.items(), ("coturn", self.turn.proc)):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")
        return out

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.turn is not None:
            self.turn.stop()


async def measure(system: System, window: Window, seconds: float, viewers: list[Viewer]) -> Window:
    pids = system.pids()
    stored0 = await asyncio.to_thread(system.stored)
    c0 = {k: cpu_s(p) for k, p in pids.items()}
    m0, t0 = machine_busy(), time.monotonic()
    await asyncio.sleep(seconds)
    c1 = {k: cpu_s(p) for k, p in pids.items()}
    m1, t1 = machine_busy(), time.monotonic()
    window.stored = await asyncio.to_thread(system.stored) - stored0
    window.seconds = t1 - t0
    window.cpu = {k: 100 * (c1[k] - c0[k]) / window.seconds for k in pids}
    window.machine = 100 * os.cpu_count() * (m1[0] - m0[0]) / max(m1[1] - m0[1], 1)  # type: ignore[operator]
    for v in viewers:
        window.latencies += [lat for t, lat in v.samples if t0 <= t <= t1]
        window.unreadable += sum(t0 <= t <= t1 for t in v.unreadable)
    return window


async def streams_window(system: System, name: str, beds: tuple[str, ...], relay: bool, seconds: float) -> Window:
    token = await asyncio.to_thread(system.client.token)
    viewers = [Viewer(system.port, token, bed, relay) for bed in beds]
    try:
        for v in viewers:
            await v.open()
        async with asyncio.timeout(45):
            for v in viewers:
                done = asyncio.ensure_future(v.live.wait())
                await asyncio.wait([done, asyncio.ensure_future(v.ended.wait())], return_when=asyncio.FIRST_COMPLETED)
                if not v.live.is_set():
                    raise RuntimeError(f"{v.bed}: no readable video ({v.failure or 'ended'})")
        if relay and not all(v.relayed_only() for v in viewers):
            raise RuntimeError("a relay-only viewer offered a non-relay candidate")
        await asyncio.sleep(SETTLE_S)
        window = await measure(system, Window(name, len(beds), relay), seconds, viewers)
        if any(v.ended.is_set() for v in viewers):
            raise RuntimeError(f"a stream ended during the window: {[v.failure for v in viewers if v.ended.is_set()]}")
        return window
    finally:
        for v in viewers:
            await v.close()
        await asyncio.to_thread(wait_for, lambda: not any(get_json(f"{system.base}/api/beds/{b}/video", system.headers())["running"]
                                                          for b in beds), "the cameras to stop", 30)  # fmt: skip


async def idle_window(system: System, name: str, seconds: float) -> Window:
    await asyncio.sleep(SETTLE_S)
    return await measure(system, Window(name, 0, False), seconds, [])


async def run(system: System, window: float, latency_window: float) -> list[Window]:
    one, four = CAMERA_BEDS[:1], CAMERA_BEDS
    plan = [
        ("idle 1", None, False, window),
        ("1 stream P2P", one, False, latency_window),
        ("1 stream relay", one, True, latency_window),
        ("4 streams P2P", four, False, window),
        ("idle 2", None, False, window),
        ("4 streams relay 1", four, True, window),
        ("idle 3", None, False, window),
        ("4 streams relay 2", four, True, window),
    ]
    out = []
    for name, beds, relay, seconds in plan:
        w = await (idle_window(system, name, seconds) if beds is None else streams_window(system, name, beds, relay, seconds))
        print(f"  {name:<18} {w.seconds:5.1f} s  hub {w.cpu['hub']:5.2f} %  camera edge {w.cpu['camera-edge']:6.2f} %  "
              f"coturn {w.cpu['coturn']:5.2f} %  machine {w.machine:5.1f} %  frames {len(w.latencies)}", file=sys.stderr, flush=True)  # fmt: skip
        out.append(w)
    return out


def spread(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.2f} % (windows {', '.join(f'{x:.2f}' for x in xs)})"


def report(windows: list[Window], args: argparse.Namespace, load0: str, load1: str) -> dict:
    by = {w.name: w for w in windows}
    idle = [w for w in windows if w.streams == 0]
    p2p4 = [w for w in windows if w.streams == 4 and not w.relay]
    relay4 = [w for w in windows if w.streams == 4 and w.relay]
    four = p2p4 + relay4

    def mean(ws: list[Window], proc: str) -> float:
        return statistics.mean(w.cpu[proc] for w in ws)

    print(f"\nBedside video, loopback, {os.cpu_count()} cores; hub carrying {args.beds} simulated beds of vitals (ECG on each) "
          f"throughout; camera 640x480, 15 fps, 500 kbps; load average at start {load0}, at end {load1}\n")  # fmt: skip
    print("| window | streams | path | s | frames | unreadable | fps/stream | g2g p50 ms | p95 ms | max ms | hub % | camera edge % | coturn % | machine % | vitals obs/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for w in windows:
        r = w.row()
        lat = r["latency_ms"] or {"p50": "-", "p95": "-", "max": "-"}
        path = "-" if not w.streams else ("relay (coturn)" if w.relay else "P2P")
        print(f"| {w.name} | {w.streams} | {path} | {w.seconds:.0f} | {len(w.latencies)} | {w.unreadable} | {r['fps_per_stream'] or '-'} | "
              f"{lat['p50']} | {lat['p95']} | {lat['max']} | {w.cpu['hub']:.2f} | {w.cpu['camera-edge']:.2f} | {w.cpu['coturn']:.2f} | "
              f"{w.machine:.0f} | {r['vitals_stored_per_s']} |")  # fmt: skip
    edge_idle = mean(idle, "camera-edge")
    edge_one = statistics.mean(by[n].cpu["camera-edge"] for n in ("1 stream P2P", "1 stream relay"))
    edge_four = mean(four, "camera-edge")
    hub_idle, hub_four = [w.cpu["hub"] for w in idle], [w.cpu["hub"] for w in four]
    turn_zero = [w.cpu["coturn"] for w in windows if not w.relay]
    turn_four = [w.cpu["coturn"] for w in relay4]
    summary = {
        "latency_p2p_ms": by["1 stream P2P"].row()["latency_ms"],
        "latency_relay_ms": by["1 stream relay"].row()["latency_ms"],
        "edge_cpu_pct": {"idle": round(edge_idle, 2), "1 stream": round(edge_one, 2), "4 streams": round(edge_four, 2),
                         "per stream (1)": round(edge_one - edge_idle, 2), "per stream (4)": round((edge_four - edge_idle) / 4, 2)},
        "hub_cpu_pct": {"vitals only": [round(x, 2) for x in hub_idle], "vitals + 4 streams": [round(x, 2) for x in hub_four],
                        "difference": round(statistics.mean(hub_four) - statistics.mean(hub_idle), 2),
                        "vitals-only spread": round(max(hub_idle) - min(hub_idle), 2)},
        "coturn_cpu_pct": {"0 relayed": [round(x, 2) for x in turn_zero], "4 relayed": [round(x, 2) for x in turn_four],
                           "per relayed stream": round((statistics.mean(turn_four) - statistics.mean(turn_zero)) / 4, 2)},
    }  # fmt: skip
    lp, lr = summary["latency_p2p_ms"], summary["latency_relay_ms"]
    print(f"\nglass-to-glass, 1 stream: P2P p50 {lp['p50']} ms, p95 {lp['p95']} ms; relay-only p50 {lr['p50']} ms, p95 {lr['p95']} ms "
          f"(aim p50 < 300 ms: {'met' if max(lp['p50'], lr['p50']) < 300 else 'NOT met'})")  # fmt: skip
    print(f"edge CPU: idle {edge_idle:.2f} %, 1 stream {edge_one:.2f} %, 4 streams {edge_four:.2f} % of one core; "
          f"per stream {edge_one - edge_idle:.2f} % (1) / {(edge_four - edge_idle) / 4:.2f} % (4)")  # fmt: skip
    print(f"hub CPU: vitals only {spread(hub_idle)}; vitals + 4 live streams {spread(hub_four)}; "
          f"difference {summary['hub_cpu_pct']['difference']:+.2f} points, vitals-only windows spread {summary['hub_cpu_pct']['vitals-only spread']:.2f}")  # fmt: skip
    print(f"coturn CPU: 0 relayed {spread(turn_zero)}; 4 relayed {spread(turn_four)}; "
          f"per relayed stream {summary['coturn_cpu_pct']['per relayed stream']:.2f} %")  # fmt: skip
    return {"args": vars(args) | {"json": str(args.json) if args.json else None}, "load_average": {"start": load0, "end": load1},
            "windows": [w.row() for w in windows], "summary": summary}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", type=float, default=20, help="seconds of each idle and 4-stream window (default 20)")
    ap.add_argument("--latency-window", type=float, default=30, help="seconds of each 1-stream latency window (default 30)")
    ap.add_argument("--beds", type=int, default=25, help="simulated beds of vitals the hub carries throughout (default 25)")
    ap.add_argument("--warmup", type=float, default=10, help="seconds after everything is up before the first window (default 10)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here as JSON")
    args = ap.parse_args()
    load0 = loadavg()
    print(f"load average at start: {load0}", file=sys.stderr, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="teleicu-video-bench-"))
    system = System(tmp, args.beds)
    try:
        system.start()
        time.sleep(args.warmup)
        windows = asyncio.run(run(system, args.window, args.latency_window))
    except BaseException:
        print(f"logs in {tmp}", file=sys.stderr)
        raise
    finally:
        system.stop()
    shutil.rmtree(tmp, ignore_errors=True)  # kept, with the processes' logs, only if the run failed
    out = report(windows, args, load0, loadavg())
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
