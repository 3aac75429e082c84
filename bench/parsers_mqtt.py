"""Benchmark: mqtt_json parser throughput, and optionally the transport's through a real Mosquitto.

Parser (sans-I/O, in process): the messages 8 simulated beds publish in
``--seconds`` seconds (``simulators.mqtt_sim.BedDevice``: 1 Hz vitals of 7-10
values, status, retained NIBP), fed to ``MqttJsonParser.feed_message`` over and
over for ``--duration`` seconds; plus a set of bad messages (every error path).
Reports messages/s and observations/s, best of ``--repeat`` runs.

Transport (``--broker mqtt://127.0.0.1:1883``): ``mosquitto_pub -l`` (its own
process) sends ``--count`` QoS 1 vitals messages under a random topic prefix,
at most ``WINDOW`` ahead of what the ``mqtt`` transport (aiomqtt) and the parser
have received, so the broker's per-subscriber queue never overflows.
Reports messages/s from the first publish to the last message parsed, and
how many were lost (a broker queues at most ``max_queued_messages`` per
subscriber, 1000 by default in Mosquitto, when publishers outrun it).

Agent footprint (``--agent-beds 8``): real processes - ``teleicu hub``,
``teleicu sim --protocols mqtt`` and ``teleicu edge`` - with every bed on the
broker given by ``--broker``; after a warm-up, the edge process's CPU (from
/proc, user + system) and resident memory over ``--agent-duration`` seconds.

    .venv/bin/python bench/parsers_mqtt.py [--duration 2] [--repeat 3]
        [--broker mqtt://127.0.0.1:1883 [--count 20000] [--agent-beds 8 --agent-duration 30]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from proc_usage import cpu_s, rss_mib

from edge_agent.drivers.mqtt_json import MqttJsonParser
from simulators.base import SimBed
from simulators.mqtt_sim import BedDevice
from simulators.scenarios import assign_scenarios
from teleicu.demo_accounts import register_simulated_ward
from wire.messages import Observation

PREFIX = "teleicu"
N_BEDS = 8
WINDOW = 500  # messages published but not yet parsed (below Mosquitto's 1000 queued per subscriber)
BATCH = 50


def ward_messages(seconds: int) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    scenarios = assign_scenarios(N_BEDS, 1)
    beds = [SimBed(f"B-{i + 1:02d}", s, i, nibp_interval_s=30) for i, s in enumerate(scenarios)]
    devices = [BedDevice(b, PREFIX) for b in beds]
    now = 1_800_000_000_000
    msgs = [(d.birth().topic, d.birth().payload) for d in devices]
    for k in range(seconds):
        for d in devices:
            msgs += [(p.topic, p.payload) for p in d.publications(k, now + 1000 * k)]
    return {b.bed: b.bed for b in beds}, msgs


BAD = [
    ("teleicu/B-01/vitals", b'{"values": {"hr": "82", "xx": 1, "spo2": NaN}, "flags": {"rr": ["probe_off"]}}'),
    ("teleicu/B-01/vitals", b'{"values": {"hr": 82}'),
    ("teleicu/B-99/vitals", b'{"values": {"hr": 82}}'),
    ("elsewhere/B-01/vitals", b"{}"),
    ("teleicu/B-01/vitals", b'{"t": "now", "values": {}}'),
    ("teleicu/m/presence", b"maybe"),
    ("teleicu/B-01/vitals", b"\xff" * 100),
]


def bench_parser(beds: dict[str, str], msgs: list[tuple[str, bytes]], duration: float) -> tuple[float, float]:
    parser = MqttJsonParser(beds=beds, device="bench", topic_prefix=PREFIX)
    n_msgs = n_obs = 0
    t0 = time.perf_counter()
    deadline = t0 + duration
    while time.perf_counter() < deadline:
        for topic, payload in msgs:
            n_obs += sum(isinstance(e, Observation) for e in parser.feed_message(topic, payload))
        n_msgs += len(msgs)
    elapsed = time.perf_counter() - t0
    return n_msgs / elapsed, n_obs / elapsed


async def bench_transport(broker: str, count: int) -> tuple[int, int, int, float]:
    from edge_agent.config import parse_edge_config
    from edge_agent.transports.mqtt import device_from_config, parse_broker_url

    prefix = f"teleicu-bench/{secrets.token_hex(4)}"
    client_id = f"teleicu-bench-{secrets.token_hex(4)}"
    raw = {"agent": {"id": "bench", "ward": "B"}, "hub": {"url": "ws://127.0.0.1:9/ws/edge"},
           "devices": [{"id": "bench", "driver": "mqtt_json", "broker": broker, "topic_prefix": prefix,
                        "client_id": client_id, "beds": ["B-01"]}]}  # fmt: skip
    dev = parse_edge_config(raw).devices[0]
    parser = MqttJsonParser(beds=dev.beds, device=dev.id, topic_prefix=prefix)
    got = 0
    done = asyncio.Event()

    def on_message(topic: str, payload: bytes) -> None:
        nonlocal got
        got += sum(isinstance(e, Observation) for e in parser.feed_message(topic, payload))
        if got >= count:
            done.set()

    mqtt = device_from_config(dev, parser.topic_filters, on_message, session_expiry_s=0)
    task = asyncio.create_task(mqtt.run())
    addr = parse_broker_url(broker)
    line = json.dumps({"t": 1_800_000_000_000, "values": {"hr": 80}}).encode() + b"\n"
    try:
        await asyncio.wait_for(mqtt.connected.wait(), 10)
        # mosquitto_pub -l: one QoS 1 message per stdin line, from its own process
        pub = await asyncio.create_subprocess_exec(
            "mosquitto_pub", "-h", addr.host, "-p", str(addr.port), "-q", "1", "-l", "-t", f"{prefix}/B-01/vitals",
            stdin=asyncio.subprocess.PIPE,
        )
        assert pub.stdin is not None
        t0 = time.perf_counter()
        sent = 0
        while sent < count:  # keep at most WINDOW messages between the publisher and the parser
            if sent - got < WINDOW:
                n = min(BATCH, count - sent)
                pub.stdin.write(line * n)
                await pub.stdin.drain()
                sent += n
            else:
                await asyncio.sleep(0.001)
        pub.stdin.close()
        await pub.wait()
        t_last, seen = time.perf_counter(), -1
        while not done.is_set() and time.perf_counter() - t_last < 3.0:  # until nothing more arrives
            if got != seen:
                t_last, seen = time.perf_counter(), got
            await asyncio.sleep(0.01)
        elapsed = (time.perf_counter() if done.is_set() else t_last) - t0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return got, count, mqtt.dropped, elapsed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(pred: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def bench_agent(broker: str, beds: int, duration: float) -> tuple[float, float, dict]:
    """Edge agent CPU (% of one core) and RSS (MiB) serving ``beds`` MQTT beds, with a real hub and simulator."""
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp_name:
        tmp = Path(tmp_name)

        def spawn(name: str, *args: str) -> subprocess.Popen:
            with (tmp / f"{name}.log").open("wb") as out:
                p = subprocess.Popen([sys.executable, "-m", "teleicu", *args], stdout=out, stderr=subprocess.STDOUT)
            procs.append(p)
            return p

        try:
            port = _free_port()
            spawn("hub", "hub", "--port", str(port), "--db", str(tmp / "db.sqlite3"))
            _wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200, "the hub")
            cfg = tmp / "edge.yaml"
            spawn("sim", "sim", "--protocols", "mqtt", "--beds", str(beds), "--edge-config", str(cfg), "--hub",
                  f"ws://127.0.0.1:{port}/ws/edge", "--sim-option", f"mqtt.broker={broker}")  # fmt: skip
            _wait(cfg.exists, "the simulator's edge config")
            register_simulated_ward(tmp / "db.sqlite3", cfg)
            edge = spawn("edge", "edge", "--config", str(cfg), "--stats-file", str(tmp / "edge.json"))
            time.sleep(5.0)  # warm-up: imports, connections, retained messages
            c0, t0 = cpu_s(edge.pid), time.monotonic()
            time.sleep(duration)
            c1, t1 = cpu_s(edge.pid), time.monotonic()
            rss = rss_mib(edge.pid)
            edge.terminate()
            edge.wait(15)
            stats = json.loads((tmp / "edge.json").read_text())
        finally:
            for p in reversed(procs):
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(15)
                    except subprocess.TimeoutExpired:
                        p.kill()
    return 100.0 * (c1 - c0) / (t1 - t0), rss, stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60, help="simulated seconds of ward traffic in the mix (default 60)")
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per parser run (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="parser runs, best reported (default 3)")
    ap.add_argument("--broker", default=None, help="also measure the transport through this broker, e.g. mqtt://127.0.0.1:1883")
    ap.add_argument("--count", type=int, default=20_000, help="messages for the transport run (default 20000)")
    ap.add_argument("--agent-beds", type=int, default=0, help="also measure a real edge agent serving this many MQTT beds")
    ap.add_argument("--agent-duration", type=float, default=30.0, help="seconds of the agent measurement (default 30)")
    args = ap.parse_args()

    beds, good = ward_messages(args.seconds)
    print(f"mqtt_json on {platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    print("| input | messages/s | observations/s |")
    print("|---|---|---|")
    for name, msgs in (("8-bed ward traffic (simulator)", good), ("bad messages (every error path)", BAD)):
        best = max((bench_parser(beds, msgs, args.duration) for _ in range(args.repeat)), key=lambda r: r[0])
        print(f"| {name} | {best[0]:,.0f} | {best[1]:,.0f} |")
    if args.broker:
        got, sent, dropped, elapsed = asyncio.run(bench_transport(args.broker, args.count))
        rate = got / elapsed
        print(f"| transport: QoS 1 through {args.broker} (mosquitto_pub -l, window {WINDOW}) | {rate:,.0f} | {rate:,.0f} |")
        print(f"\ntransport run: {sent} published, {got} parsed in {elapsed:.2f} s, {dropped} dropped by the agent's queue,"
              f" {sent - got - dropped} not delivered by the broker")
    if args.broker and args.agent_beds:
        cpu, rss, stats = bench_agent(args.broker, args.agent_beds, args.agent_duration)
        up = stats["uplink"]
        print(f"\nedge agent, {args.agent_beds} MQTT beds at 1 Hz (numerics only), {args.agent_duration:.0f} s: "
              f"CPU {cpu:.2f} % of one core, RSS {rss:.1f} MiB; frames sent {up.get('frames_sent', 0)}, "
              f"parse errors {sum(v for k, v in stats['agent'].items() if k.startswith('parse_error_'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
