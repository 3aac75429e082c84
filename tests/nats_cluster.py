"""Real NATS for the JetStream tests: a private cluster of ``nats-server`` processes on loopback, and the local server.

``NatsCluster(tmp, nodes=3)`` writes one configuration per node (JetStream,
its own store directory, user/password authorisation, cluster routes between
the nodes), starts them, and ``wait_ready`` waits until JetStream's meta group
has a leader that every live node agrees on (the monitoring endpoint's
``/jsz``). ``kill(i)`` is ``kill -9``; ``start(i)`` brings the node back on
the same ports and store. ``nodes=1`` is a single server (no cluster block)
that a test may stop and start; ``tls=(cert, key)`` makes its clients speak TLS.

Two users: ``edge`` with the permissions docs/jetstream.md gives an edge
agent (publish its frames and the stream's INFO and CREATE API, replies on
``_INBOX.>``), and ``admin`` with none withheld, for the test's own checks.

``local_nats`` is a fixture for the server every machine of this project runs
at 127.0.0.1:4222 (JetStream on, no authorisation; ``jetstream_support``):
it FAILS the test when that server is not reachable. Tests there use unique
stream names and subject prefixes (``jetstream_support.unique``) and delete
their streams.

A missing ``nats-server`` fails the test, never skips it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from jetstream_support import NATS_URL, connect
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from support import free_port, wait_until

from wire.jetstream_contract import DEFAULT_STATUS_PREFIX

EDGE_USER, ADMIN_USER = "edge", "admin"


def nats_server() -> str:
    path = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
    if path is None:
        pytest.fail("nats-server is not installed (Debian: apt install nats-server)")
    return path


def listen_port(taken: set[int]) -> int:
    """A free loopback port below the kernel's ephemeral range (32768 up), so that no outgoing connection (a
    route between the nodes, a client) can take it between now and the server binding it, or while it is down;
    not one of ``taken``, to which it is added."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    return free_port()


def edge_permissions(prefix: str, stream: str) -> dict:
    """What an edge agent may do: publish its frames and status reports, read and create the frames stream, receive
    replies."""
    return {
        "publish": {"allow": [f"{prefix}.>", f"{DEFAULT_STATUS_PREFIX}.>", f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.STREAM.CREATE.{stream}"]},
        "subscribe": {"allow": ["_INBOX.>"]},
    }


@dataclass
class Node:
    name: str
    port: int
    cluster_port: int
    monitor_port: int
    store: Path
    conf: Path
    log: Path
    proc: subprocess.Popen | None = None

    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class NatsCluster:
    tmp: Path
    nodes_wanted: int = 3
    prefix: str = "teleicu.frames"
    stream: str = "TELEICU_FRAMES"
    edge_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    nodes: list[Node] = field(default_factory=list)
    tls: tuple[Path, Path] | None = None  # (certificate, key): clients must use tls:// and trust its CA

    def __post_init__(self) -> None:
        binary = nats_server()
        self.binary = binary
        base = self.tmp / f"nats-{uuid.uuid4().hex[:6]}"
        taken: set[int] = set()
        for i in range(self.nodes_wanted):
            d = base / f"n{i + 1}"
            d.mkdir(parents=True)
            self.nodes.append(Node(f"n{i + 1}", listen_port(taken), listen_port(taken), listen_port(taken), d / "store", d / "nats.conf", d / "nats.log",
                                   tls=self.tls is not None))  # fmt: skip
        for node in self.nodes:
            node.conf.write_text(self._config(node))

    def _config(self, node: Node) -> str:
        users = [
            {"user": EDGE_USER, "password": self.edge_password, "permissions": edge_permissions(self.prefix, self.stream)},
            {"user": ADMIN_USER, "password": self.admin_password},
        ]
        lines = [
            f"server_name: {node.name}",
            f"listen: 127.0.0.1:{node.port}",
            f"http: 127.0.0.1:{node.monitor_port}",
            f"jetstream {{ store_dir: {json.dumps(str(node.store))}, max_memory_store: 64MB, max_file_store: 1GB }}",
            f"authorization {{ users: {json.dumps(users)} }}",
        ]
        if self.tls is not None:
            lines.append(f"tls {{ cert_file: {json.dumps(str(self.tls[0]))}, key_file: {json.dumps(str(self.tls[1]))} }}")
        if len(self.nodes) > 1:
            routes = ", ".join(json.dumps(f"nats-route://127.0.0.1:{n.cluster_port}") for n in self.nodes if n is not node)
            lines.append(f"cluster {{ name: teleicu-test, listen: 127.0.0.1:{node.cluster_port}, routes: [{routes}] }}")
        return "\n".join(lines) + "\n"

    # --- processes -----------------------------------------------------------------

    def start(self, i: int | None = None) -> None:
        """Start node ``i`` (every node when None) on its ports and store."""
        for node in self.nodes if i is None else [self.nodes[i]]:
            if node.alive:
                continue
            out = node.log.open("ab")
            node.proc = subprocess.Popen([self.binary, "-c", str(node.conf)], stdout=out, stderr=subprocess.STDOUT)
            out.close()

    def kill(self, i: int) -> None:
        """``kill -9`` node ``i``: no goodbye to its peers or clients, whatever it had not flushed is its store's problem."""
        node = self.nodes[i]
        assert node.proc is not None and node.alive, f"{node.name} is not running"
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(10)

    def stop(self) -> None:
        for node in self.nodes:
            if node.alive:
                assert node.proc is not None
                node.proc.terminate()
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(10)

    def index_of_port(self, port: int) -> int:
        return next(i for i, n in enumerate(self.nodes) if n.port == port)

    # --- readiness -----------------------------------------------------------------

    def jsz(self, i: int) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.nodes[i].monitor_port}/jsz", timeout=2) as r:
            return json.load(r)

    def meta_leader(self) -> str | None:
        """The meta group's leader, if every live node names the same one (a single server leads itself)."""
        live = [i for i, n in enumerate(self.nodes) if n.alive]
        if not live:
            return None
        if len(self.nodes) == 1:
            return self.nodes[0].name if self.jsz(0).get("config") is not None else None
        leaders = {(self.jsz(i).get("meta_cluster") or {}).get("leader") for i in live}
        leader = leaders.pop() if len(leaders) == 1 else None
        return leader or None

    def wait_ready(self, timeout: float = 30) -> str:
        def ready() -> str | None:
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None and n.proc.returncode not in (-9, 0):
                    raise AssertionError(f"{n.name} exited with {n.proc.returncode}: {n.log.read_text()[-2000:]}")
            return self.meta_leader()

        return wait_until(ready, "the NATS cluster to elect a JetStream meta leader", timeout=timeout)

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    async def admin(self) -> Client:
        return await nats.connect(servers=self.urls, user=ADMIN_USER, password=self.admin_password, connect_timeout=2,
                                  max_reconnect_attempts=5, reconnect_time_wait=0.2)  # fmt: skip


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A three-node JetStream cluster with authorisation, on free loopback ports, ready (meta leader elected)."""
    cluster = NatsCluster(tmp_path, 3)
    cluster.start()
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def nats_single(tmp_path: Path) -> Iterator[NatsCluster]:
    """One JetStream server with authorisation, on a free port, NOT started: the test starts (and stops) it."""
    cluster = NatsCluster(tmp_path, 1)
    try:
        yield cluster
    finally:
        cluster.stop()


def _local_check() -> None:
    async def probe() -> None:
        nc = await connect()  # AssertionError when the server is not there
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001 - any failure means the service is not there
        pytest.fail(f"the local NATS server with JetStream at {NATS_URL} is not usable: {type(exc).__name__}: {exc}")


@pytest.fixture
def local_nats() -> str:
    """The project's local NATS (JetStream, no authorisation) at 127.0.0.1:4222; fails the test when it is not there."""
    _local_check()
    return NATS_URL


# --- reading a stream back -------------------------------------------------------------


async def stream_messages(nc: Client, stream: str, subject: str, *, batch: int = 500) -> list[Msg]:
    """Every message the stream holds on ``subject`` (a filter), oldest first, read by an ephemeral pull consumer.

    Just after a node's loss the cluster may still be electing leaders: the first requests are retried for 30 s."""
    js = nc.jetstream()
    deadline = time.monotonic() + 30
    while True:
        try:
            expected = (await js.stream_info(stream)).state.messages
            sub = await js.pull_subscribe(subject, stream=stream, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL,
                                                                                          ack_policy=AckPolicy.NONE))  # fmt: skip
            break
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    out: list[Msg] = []
    try:
        deadline = time.monotonic() + 30
        while len(out) < expected and time.monotonic() < deadline:
            try:
                out += await sub.fetch(batch, timeout=1)
            except nats.errors.TimeoutError:
                if out and (await sub.consumer_info()).num_pending == 0:
                    break
    finally:
        await sub.unsubscribe()
    return out


@asynccontextmanager
async def connected(url: str | list[str], **kw: object) -> AsyncIterator[Client]:
    nc = await nats.connect(servers=url if isinstance(url, list) else [url], connect_timeout=2, **kw)  # type: ignore[arg-type]
    try:
        yield nc
    finally:
        await nc.close()
