"""NATS JetStream for tests: the local server (it must be there: a test fails without it), unique names, a stream,
and a publisher that follows ``wire.jetstream_contract`` exactly, as the edge does.

The local ``nats-server`` with JetStream listens on 127.0.0.1:4222 without
auth; every test makes its own stream, subject prefix and lease bucket, and
deletes them afterwards. ``make_stream`` is the one place a test's stream is
created, with the provisioning helper the edge and an operator use
(``wire.jetstream_stream.ensure_stream``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import yaml
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from ingest.jetstream_worker import consumer_name
from wire.codec import encode_edge
from wire.jetstream_contract import FrameKey, frame_headers, frame_subject
from wire.jetstream_stream import StreamSettings, ensure_stream
from wire.messages import ObsFrame, WaveChunk

HUB_YAML = Path(__file__).resolve().parents[1] / "config" / "hub.yaml"  # this checkout's default hub file
NATS_URL = "nats://127.0.0.1:4222"
TOKEN = "test-token-nats-ignores-it-0123456789"  # the local server has no auth; a worker must still present something


def unique(stem: str) -> str:
    return f"{stem}_{secrets.token_hex(4)}"


def worker_file(tmp: Path, worker: str, stream: str, prefix: str, bucket: str, wards: list[str], *,
                servers: list[str] | None = None, user: str = "", password: str = "", replicas: int = 1, **more: Any) -> Path:  # fmt: skip
    """A hub file for a JetStream worker process (``teleicu hub --config``): the default hub file with a ``jetstream:``
    section for the local NATS, or ``servers`` with ``user`` and ``password`` (``more`` overrides its keys)."""
    secret = tmp / f"nats-{worker}.secret"
    secret.write_text(password or TOKEN)
    creds = {"user": user, "password_file": str(secret)} if user else {"token_file": str(secret)}
    raw = yaml.safe_load(HUB_YAML.read_text()) | {"waveform_analysis": False}
    raw["jetstream"] = {"servers": servers or [NATS_URL], **creds, "subject_prefix": prefix,
                        "stream": {"name": stream, "replicas": replicas}, "wards": wards, "worker_id": worker, "lease_bucket": bucket} | more  # fmt: skip
    path = tmp / f"hub-{worker}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


async def connect() -> NatsClient:
    """A client of the local server; AssertionError (the test fails) when it is not running."""
    try:
        return await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        raise AssertionError(f"no NATS server with JetStream at {NATS_URL} ({exc!r}): start nats-server -js") from None


async def make_stream(js: JetStreamContext, name: str, prefix: str, replicas: int = 1) -> None:
    """The frames stream for ``prefix`` as configured by default (``StreamSettings``): file storage, R1 (or
    ``replicas``), Nats-Msg-Id duplicates dropped for 2 minutes."""
    await ensure_stream(js, StreamSettings(name=name, replicas=replicas), prefix)


async def remove(js: JetStreamContext, stream: str, bucket: str | None = None) -> None:
    for name in (stream, f"KV_{bucket}" if bucket else None):
        if name is not None:
            try:
                await js.delete_stream(name)
            except nats.js.errors.NotFoundError:
                pass


@dataclass
class Publisher:
    """Publishes an agent's frames on the stream and keeps the edge's record: what the stream acknowledged."""

    js: JetStreamContext
    ward: str
    agent: str
    prefix: str
    epoch: int = 1
    acked: list[ObsFrame | WaveChunk] = field(default_factory=list)
    floor: int = 0  # every frame up to here acknowledged by the stream (sent in order, one at a time)
    last_stream_seq: int = 0  # the stream sequence of the last frame recorded

    async def publish(self, frame: ObsFrame | WaveChunk, *, key: FrameKey | None = None, subject: str | None = None) -> int:
        """Publish ``frame`` (with ``key``'s headers and ``subject`` when a test forges them); returns its stream sequence."""
        key = key or FrameKey(self.ward, self.agent, self.epoch, frame.seq, self.floor)
        ack = await self.js.publish(subject or frame_subject(self.ward, self.agent, self.prefix), encode_edge(frame),
                                    headers=frame_headers(key))  # fmt: skip
        if subject is None and key.agent == self.agent and not ack.duplicate:  # a re-send the stream dropped is no new record
            self.acked.append(frame)
            self.last_stream_seq = ack.seq
            if frame.seq == self.floor + 1:
                self.floor = frame.seq
        return ack.seq


async def removed(stream: str, bucket: str | None = None, connect_to: Callable[[], Awaitable[NatsClient]] | None = None) -> None:
    """``remove`` on a connection of its own (to the local server, or ``connect_to``'s): a test's clean-up."""
    nc = await (connect_to or connect)()
    try:
        await remove(nc.jetstream(), stream, bucket)
    finally:
        await nc.close()


async def consumer_state(stream: str, ward: str, connect_to: Callable[[], Awaitable[NatsClient]] | None = None) -> tuple[int, int, int]:
    """A ward's durable consumer: (messages not yet delivered, delivered and not acknowledged, the ack floor's
    stream sequence), on the local server or ``connect_to``'s."""
    nc = await (connect_to or connect)()
    try:
        info = await nc.jetstream().consumer_info(stream, consumer_name(ward))
        return info.num_pending or 0, info.num_ack_pending or 0, info.ack_floor.stream_seq if info.ack_floor else 0
    finally:
        await nc.close()
