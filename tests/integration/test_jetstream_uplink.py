"""The edge agent's JetStream uplink against real NATS: the local server, a private server, a three-node cluster.

Frames are fed into the uplink as the drivers do (``add_observation``, one
frame each) and committed to its real spool; the uplink publishes them to a
real stream. Every check counts: the stream is read back and each message's
``Nats-Msg-Id`` is matched against the sequence numbers the spool gave out
(``agent:epoch:1 .. next_seq - 1``), each exactly once, payload as spooled,
and the spool ends empty. Faults are real: ``kill -9`` of the cluster node the
agent is connected to, a server that is not running yet, wrong credentials, a
spool restored to its state before the acknowledged frames were deleted (what
a crash between acknowledgement and deletion leaves), a server whose TLS
certificate only the configured CA vouches for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import ssl
from collections import Counter
from collections.abc import Callable
from typing import Any
from pathlib import Path

import pytest
from async_deadline import eventually
import trustme
from jetstream_support import unique
from nats_cluster import NatsCluster, connected, stream_messages
from pydantic import SecretStr

from edge_agent.config import JetStreamSection, UplinkSettings
from edge_agent.events import DeviceStatus
from edge_agent.jetstream_uplink import JetStreamUplink
from wire.codec import decode_edge
from wire.jetstream_contract import parse_frame_headers
from wire.jetstream_stream import StreamSettings, ensure_stream
from wire.messages import ObsFrame, Observation, Status
from wire.nats_connection import NatsCredentials

pytestmark = pytest.mark.integration

UPLINK = UplinkSettings(flush_ms=10, backoff_initial_s=0.05, backoff_max_s=0.5)


def section(servers: list[str], prefix: str = "teleicu.frames", stream: str = "TELEICU_FRAMES", **kw: object) -> JetStreamSection:
    stream_kw = kw.pop("stream_kw", {})
    return JetStreamSection(servers=servers, user="edge", password_file="unused", subject_prefix=prefix,
                            stream=StreamSettings(name=stream, **stream_kw), **kw)  # type: ignore[arg-type]  # fmt: skip


def creds(password: str) -> NatsCredentials:
    return NatsCredentials(user="edge", password=SecretStr(password))


def add_frames(up: JetStreamUplink, n: int, t0: int) -> None:
    for i in range(n):
        up.add_observation(Observation("K-1", "hr", 60.0 + i % 40, t0 + i, t0 + i, "mon"))
        up.flush_observations()  # one frame each


async def until(cond: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    return await eventually(cond, what, timeout, interval=0.01)


@contextlib.asynccontextmanager
async def running(up: JetStreamUplink):
    task = asyncio.create_task(up.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.wait([task])
        assert task.cancelled(), task.exception()


def drained(up: JetStreamUplink) -> bool:
    return up.outbox_size == 0 and up.spool.stats.frames == 0


async def check_stream(servers: list[str], up: JetStreamUplink, stream: str, prefix: str, spooled: dict[int, bytes] | None = None,
                       **auth: object) -> list[str]:  # fmt: skip
    """The stream holds each frame the spool numbered exactly once (by Nats-Msg-Id), headers consistent, payload as spooled."""
    async with connected(servers, **auth) as nc:
        msgs = await stream_messages(nc, stream, f"{prefix}.>")
    ids = [m.headers["Nats-Msg-Id"] for m in msgs if m.headers]
    numbered = up.spool.next_seq - 1
    assert up.spool.stats.dropped_frames == 0
    expected = [f"{up.agent}:{up.spool.epoch}:{seq}" for seq in range(1, numbered + 1)]
    doubled = [i for i, n in Counter(ids).items() if n > 1]
    assert not doubled, f"stored more than once: {doubled[:10]}"
    missing = sorted(set(expected) - set(ids), key=lambda i: int(i.rsplit(":", 1)[1]))
    assert not missing, f"{len(missing)} frames never stored, first {missing[:10]}"
    assert len(ids) == len(msgs) == numbered
    for m in msgs:
        key = parse_frame_headers(m.subject, m.headers, prefix)
        frame = decode_edge(m.data)
        assert isinstance(frame, ObsFrame) and frame.seq == key.seq and key.ward == up.ward and key.floor < key.seq
        if spooled is not None and key.seq in spooled:
            assert m.data == spooled[key.seq]
    return ids


# --- the local server -------------------------------------------------------------------


def test_frames_reach_the_stream_once_each_and_leave_the_spool(local_nats: str, tmp_path: Path) -> None:
    prefix, stream = unique("t") + ".frames", unique("S")

    async def scenario() -> None:
        up = JetStreamUplink(UPLINK, section([local_nats], prefix, stream, max_in_flight=16), creds("x" * 24), "edge-L", "L",
                             tmp_path / "spool.sqlite3")  # fmt: skip
        add_frames(up, 300, 1_000)
        up.commit()  # a backlog before the connection
        spooled = dict(up.spool.read(0, 2**62, 10_000))
        assert len(spooled) == 300
        try:
            async with running(up):
                await until(up.connected.is_set, "the uplink to connect")
                for k in range(10):  # and live frames while it publishes
                    add_frames(up, 50, 10_000 + 100 * k)
                    await asyncio.sleep(0.02)
                await until(lambda: drained(up), "every frame acknowledged and deleted")
            await check_stream([local_nats], up, stream, prefix, spooled)
            assert up.counters["frames_acked"] == 800 and up.counters["frames_acked_duplicate"] == 0
            assert up.report()["floor"] == 800 and up.acked == 800
        finally:
            async with connected(local_nats) as nc:
                await nc.jetstream().delete_stream(stream)
            up.close()

    asyncio.run(scenario())


def test_device_conditions_and_the_spool_are_reported_on_the_status_subject_at_once_and_every_status_s(local_nats: str,
                                                                                                        tmp_path: Path) -> None:  # fmt: skip
    prefix, stream, status = unique("t") + ".frames", unique("S"), unique("t") + ".status"

    async def scenario() -> None:
        settings = UplinkSettings(flush_ms=10, backoff_initial_s=0.05, backoff_max_s=0.5, status_s=0.3)
        up = JetStreamUplink(settings, section([local_nats], prefix, stream, status_prefix=status), creds("x" * 24), "edge-L", "L",
                             tmp_path / "spool.sqlite3")  # fmt: skip
        heard: list[tuple[str, dict[str, str], Status]] = []
        async with connected(local_nats) as nc:

            async def got(msg: Any) -> None:
                report = decode_edge(msg.data)
                assert isinstance(report, Status)
                heard.append((msg.subject, dict(msg.headers or {}), report))

            await nc.subscribe(f"{status}.L.*", cb=got)
            await nc.flush()
            try:
                async with running(up):
                    await until(lambda: heard, "the first report, on connecting")
                    up.add_status(DeviceStatus("L-01", "mon-1", "disconnected", 1_000, "link"))
                    await until(lambda: any(r.devices for _s, _h, r in heard), "the device's condition, reported on the change")
                    n = len(heard)
                    await until(lambda: len(heard) >= n + 2, "reports repeated every status_s")
            finally:
                async with connected(local_nats) as admin:
                    await admin.jetstream().delete_stream(stream)
                up.close()
        subject, headers, report = next(h for h in heard if h[2].devices)
        assert subject == f"{status}.L.edge-L" and headers == {"Teleicu-Agent": "edge-L", "Teleicu-Epoch": str(up.spool.epoch)}
        assert report.devices == ({"bed": "L-01", "device": "mon-1", "status": "disconnected", "detail": "link", "t": 1_000},)
        assert report.spool is not None and report.spool["floor"] == 0
        assert up.counters["status_published"] >= len(heard)  # each report heard was counted (the last may be in flight)

    asyncio.run(scenario())


def test_frames_sent_again_after_a_crash_are_acknowledged_as_duplicates_and_still_deleted(local_nats: str, tmp_path: Path) -> None:
    prefix, stream = unique("t") + ".frames", unique("S")
    path = tmp_path / "spool.sqlite3"

    async def scenario() -> None:
        cfg = section([local_nats], prefix, stream)
        first = JetStreamUplink(UPLINK, cfg, creds("x" * 24), "edge-D", "D", path)
        add_frames(first, 200, 1_000)
        first.close()
        shutil.copy(path, tmp_path / "before.sqlite3")  # the spool as it was before any acknowledgement
        first = JetStreamUplink(UPLINK, cfg, creds("x" * 24), "edge-D", "D", path)
        try:
            async with running(first):
                await until(lambda: drained(first), "the first run's frames acknowledged and deleted")
            assert first.counters["frames_acked"] == 200 and first.counters["frames_acked_duplicate"] == 0
            first.close()
            # the crash: the stream acknowledged every frame, but the deletions never reached the disk
            shutil.copy(tmp_path / "before.sqlite3", path)
            again = JetStreamUplink(UPLINK, cfg, creds("x" * 24), "edge-D", "D", path)
            assert again.spool.stats.frames == 200 and again.spool.epoch == first.spool.epoch
            async with running(again):
                await until(lambda: drained(again), "the re-sent frames acknowledged and deleted")
            assert again.counters["frames_acked"] == 200 and again.counters["frames_acked_duplicate"] == 200
            await check_stream([local_nats], again, stream, prefix)  # still 200 messages, each once
            again.close()
        finally:
            async with connected(local_nats) as nc:
                await nc.jetstream().delete_stream(stream)

    asyncio.run(scenario())


def test_without_a_stream_frames_wait_in_the_spool_until_one_is_provisioned(local_nats: str, tmp_path: Path,
                                                                            caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    prefix, stream = unique("t") + ".frames", unique("S")
    caplog.set_level(logging.WARNING, "edge_agent.jetstream_uplink")

    async def scenario() -> None:
        cfg = section([local_nats], prefix, stream, provision_stream=False)
        up = JetStreamUplink(UPLINK, cfg, creds("x" * 24), "edge-N", "N", tmp_path / "spool.sqlite3")
        add_frames(up, 50, 1_000)
        try:
            async with running(up):
                await until(lambda: up.counters["publish_failures"] >= 3, "publishes to fail for want of a stream")
                assert up.spool.stats.frames == 50 and up.counters["frames_acked"] == 0
                assert up.last_error == f"no JetStream stream captures {prefix}.N.edge-N (or JetStream is not enabled)"
                assert up.session.in_flight <= 1  # probing, not flooding
                async with connected(local_nats) as nc:  # as the hub's workers would
                    await ensure_stream(nc.jetstream(), cfg.stream, prefix)
                await until(lambda: drained(up), "the waiting frames published once the stream exists")
            await check_stream([local_nats], up, stream, prefix)
            warnings = [r.getMessage() for r in caplog.records if "no JetStream stream captures" in r.getMessage()]
            assert len(warnings) == 1, warnings  # said once, then counted
        finally:
            async with connected(local_nats) as nc:
                with contextlib.suppress(Exception):
                    await nc.jetstream().delete_stream(stream)
            up.close()

    asyncio.run(scenario())


# --- a private server with authorisation ----------------------------------------------------


def test_nats_down_at_start_frames_stay_spooled_and_go_when_it_comes_back(nats_single: NatsCluster, tmp_path: Path) -> None:
    server = nats_single

    async def scenario() -> None:
        up = JetStreamUplink(UPLINK, section(server.urls), creds(server.edge_password), "edge-O", "O", tmp_path / "spool.sqlite3")
        add_frames(up, 100, 1_000)
        async with running(up):
            await until(lambda: up.counters["disconnects"] >= 2, "two failed connection attempts")
            add_frames(up, 100, 5_000)
            await until(lambda: up.spool.stats.frames == 200, "the new frames spooled")
            assert not up.connected.is_set() and up.counters["frames_acked"] == 0
            assert up.last_error is not None and up.last_error.startswith("no NATS server reachable"), up.last_error
            server.start()
            server.wait_ready()
            await until(lambda: drained(up), "the spooled frames published once NATS is back", timeout=60)
            add_frames(up, 50, 9_000)
            await until(lambda: drained(up), "live frames after it")
        await check_stream(server.urls, up, "TELEICU_FRAMES", "teleicu.frames", user="admin", password=server.admin_password)
        assert up.spool.next_seq - 1 == 250
        up.close()

    asyncio.run(scenario())


def test_wrong_credentials_are_named_and_the_frames_stay_spooled(nats_single: NatsCluster, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    server = nats_single
    server.start()
    server.wait_ready()
    caplog.set_level(logging.WARNING, "edge_agent.jetstream_uplink")

    async def scenario() -> None:
        up = JetStreamUplink(UPLINK, section(server.urls), creds("not-the-password-" + "x" * 10), "edge-W", "W", tmp_path / "spool.sqlite3")
        add_frames(up, 40, 1_000)
        async with running(up):
            await until(lambda: up.counters["disconnects"] >= 2, "two refused connection attempts")
            add_frames(up, 10, 2_000)
            await until(lambda: up.spool.stats.frames == 50, "the new frames spooled too")
        assert up.last_error == "NATS refused the agent's credentials (user 'edge'): authorization violation"
        assert up.counters["frames_acked"] == 0 and up.spool.stats.frames == 50 and not up.connected.is_set()
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("refused the agent's credentials (user 'edge')" in w for w in warned), warned
        assert not any(server.edge_password in w or "not-the-password" in w for w in warned)
        up.close()

    asyncio.run(scenario())


# --- a three-node cluster -----------------------------------------------------------------


def test_killing_the_node_the_agent_is_on_loses_and_doubles_nothing(nats_cluster: NatsCluster, tmp_path: Path) -> None:
    cluster = nats_cluster
    total = 3_000

    async def scenario() -> None:
        cfg = section(cluster.urls, stream_kw={"replicas": 3}, ack_timeout_s=2.0, max_in_flight=32)
        up = JetStreamUplink(UPLINK, cfg, creds(cluster.edge_password), "edge-K", "K", tmp_path / "spool.sqlite3")
        produced = 0

        async def produce() -> None:  # a steady ward: 10 frames every 10 ms
            nonlocal produced
            while produced < total:
                add_frames(up, 10, 1_000 + produced)
                produced += 10
                await asyncio.sleep(0.01)

        async with running(up):
            await until(up.connected.is_set, "the uplink to connect")
            producer = asyncio.create_task(produce())
            await until(lambda: up.counters["frames_acked"] >= 500, "500 frames acknowledged")
            assert up.client is not None and up.client.connected_url is not None
            victim = cluster.index_of_port(up.client.connected_url.port)
            acked_before = up.counters["frames_acked"]
            cluster.kill(victim)  # kill -9, mid-stream, under the agent's feet
            await producer
            await until(lambda: drained(up), "every frame acknowledged after the node's loss", timeout=90)
            assert up.counters["nats_disconnects"] >= 1 and acked_before < total
            assert up.client is not None and up.client.connected_url is not None
            assert up.client.connected_url.port != cluster.nodes[victim].port
        survivors = [n.url for i, n in enumerate(cluster.nodes) if i != victim]
        ids = await check_stream(survivors, up, "TELEICU_FRAMES", "teleicu.frames", user="admin", password=cluster.admin_password)
        assert len(ids) == total
        async with connected(survivors, user="admin", password=cluster.admin_password) as nc:
            info = await nc.jetstream().stream_info("TELEICU_FRAMES")
        assert info.config.num_replicas == 3 and info.state.messages == total
        up.close()

    asyncio.run(scenario())


def test_tls_servers_are_trusted_through_the_configured_ca_only(tmp_path: Path) -> None:
    ca = trustme.CA(organization_name="teleicu test hospital")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "nats.pem", tmp_path / "nats.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    server = NatsCluster(tmp_path, 1, tls=(cert_file, key_file))
    server.start()

    async def scenario() -> None:
        server.wait_ready()
        untrusting = JetStreamUplink(UPLINK, section(server.urls), creds(server.edge_password), "edge-T", "T", tmp_path / "a.sqlite3")
        add_frames(untrusting, 10, 1_000)
        async with running(untrusting):  # the system's CAs do not know the hospital's: refused by the agent's TLS stack
            await until(lambda: untrusting.counters["disconnects"] >= 1, "a failed connection attempt")
        assert untrusting.spool.stats.frames == 10 and untrusting.counters["frames_acked"] == 0
        assert untrusting.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in untrusting.last_error, untrusting.last_error
        untrusting.close()

        up = JetStreamUplink(UPLINK, section(server.urls, ca_file=str(ca_file)), creds(server.edge_password), "edge-T", "T",
                             tmp_path / "b.sqlite3")  # fmt: skip
        add_frames(up, 100, 1_000)
        async with running(up):
            await until(lambda: drained(up), "the frames published over TLS")
        ctx = ssl.create_default_context(cafile=str(ca_file))
        await check_stream(server.urls, up, "TELEICU_FRAMES", "teleicu.frames", user="admin", password=server.admin_password, tls=ctx)
        up.close()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
