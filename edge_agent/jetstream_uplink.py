"""The edge agent's uplink to NATS JetStream: an asyncio shell around ``edge_agent.jetstream_session.JetStreamSession``.

For sites beyond one hub (docs/jetstream.md). Frames are produced and spooled
exactly as for the WebSocket uplink (``edge_agent.uplink_base``: the same
bytes, the same numbering, fsynced before they leave), then each is published
on the agent's subject with the contract's headers
(``wire.jetstream_contract``: ``Nats-Msg-Id`` = agent:epoch:seq, so a frame
sent again is acknowledged by the stream as a duplicate, never stored twice).
The stream's publish acknowledgement is the durable acknowledgement: only then
is a frame deleted from the spool, in batches.

A dispatcher starts one publish task per frame the session hands out (at
most ``max_in_flight`` at once); each ``js.publish`` waits for its
acknowledgement up to ``ack_timeout_s``. When NATS or the stream is
unreachable, slow or refusing, frames stay in the spool and the session
pauses and probes with exponential backoff; nothing is dropped here (only the spool's own size policy drops, and counts). nats-py
moves between the cluster's servers by itself (``wire.nats_connection``);
when it gives up, the connection is rebuilt after the same backoff. Refused
credentials are logged as such (``last_error``) and retried at the backoff's
pace, the frames waiting in the spool.

Device status reports (``Status``: device conditions and the spool) go on
core NATS to the agent's status subject (``wire.jetstream_contract``) when the
device picture changes and every ``status_s``, while connected; the hub worker
owning the ward hears them. They are not spooled: a report lost is replaced by
the next, and its ``floor`` is the stream's, which the hub does not take as
stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.client import JetStreamContext

from edge_agent.config import JetStreamSection, UplinkSettings
from edge_agent.jetstream_session import JetStreamSession
from edge_agent.uplink_base import UplinkBase
from wire.codec import encode_edge
from wire.jetstream_contract import FrameKey, frame_headers, frame_subject, status_headers, status_subject
from wire.jetstream_stream import StreamSettingsError, ensure_stream
from wire.messages import Status
from wire.nats_connection import NatsCredentials, connect_budget_s, connect_options

log = logging.getLogger(__name__)

DELETE_BATCH_S = 0.02  # acknowledged frames are deleted from the spool in batches, this often at most
ACK_LATENCIES = 4096  # publish-to-acknowledgement times kept (for stats and the bench)


class ConnectionClosed(Exception):
    """nats-py closed the connection (every server failed its reconnection attempts), or has been reconnecting too long."""


class CannotConnect(Exception):
    """No NATS server took the connection; the message says why (the most telling of nats-py's reasons)."""


NATS_ERRORS = (nats.errors.Error, OSError, TimeoutError, StreamSettingsError, CannotConnect)


class JetStreamUplink(UplinkBase):
    def __init__(self, cfg: UplinkSettings, js: JetStreamSection, credentials: NatsCredentials | None, agent: str, ward: str,
                 spool_path: Path, *, rng: random.Random | None = None) -> None:  # fmt: skip
        if credentials is None:
            raise ValueError("the JetStream uplink needs NATS credentials (jetstream.user with password_file, or token_file)")
        self.subject = frame_subject(ward, agent, js.subject_prefix)  # before the spool: a bad id opens nothing
        self.status_subject = status_subject(ward, agent, js.status_prefix)
        super().__init__(cfg, agent, ward, spool_path)
        self.js_cfg = js
        self._options = connect_options(js, credentials, name=f"teleicu-edge {agent}")
        self.session = JetStreamSession(agent=agent, ward=ward, epoch=self.spool.epoch, next_seq=self.spool.next_seq,
                                        spooled=self.spool.runs(), max_in_flight=js.max_in_flight,
                                        backoff=(cfg.backoff_initial_s, cfg.backoff_max_s), rng=rng, counters=self.counters)  # fmt: skip
        self.last_error: str | None = None  # the latest reason publishing is held up, for logs and tests
        self._warned: str | None = None  # the reason last logged at warning level (None: publishing works)
        self._acks = asyncio.Event()
        self.client: Client | None = None  # the current connection (tests ask it which server it is on)
        self.ack_latencies: deque[float] = deque(maxlen=ACK_LATENCIES)  # seconds from publish to acknowledgement, latest
        self._status_due = asyncio.Event()  # the device picture changed: report it now

    @property
    def destination(self) -> str:
        return f"{','.join(self.js_cfg.servers)} ({self.subject})"

    @property
    def acked(self) -> int:
        return self.session.floor

    def report(self) -> dict[str, int]:
        return self.spool.report() | {"floor": self.session.floor}

    def _spooled(self, frames: list[tuple[int, bytes]], dropped: list[int]) -> None:
        self.session.spooled([seq for seq, _data in frames], dropped)
        self._wake.set()

    def _status_changed(self) -> None:
        self._status_due.set()

    # --- connection ----------------------------------------------------------------

    async def _connection_loop(self) -> None:
        while True:
            try:
                await self._connection()
            except* NATS_ERRORS as group:
                self.counters["disconnects"] += 1
                self._note_error(self._describe(group.exceptions[0]))
            except* ConnectionClosed as group:
                self.counters["disconnects"] += 1
                self._note_error(f"NATS connection closed: {group.exceptions[0]}")
            finally:
                self.connected.clear()
                self.session.connection_lost()
                self._delete_acknowledged()
            await asyncio.sleep(self.session.reconnect_delay())

    async def _connection(self) -> None:
        closed = asyncio.Event()
        reasons: list[str] = []  # why connection attempts failed, as nats-py reports them

        async def on_error(exc: Exception) -> None:  # nats-py's account of each failed attempt, and of server errors
            reasons.append(self._describe(exc))
            del reasons[:-16]
            log.debug("NATS: %s", reasons[-1])

        async def on_closed() -> None:
            closed.set()

        async def on_disconnected() -> None:
            self.counters["nats_disconnects"] += 1
            log.info("NATS connection lost; nats-py tries the other servers")

        async def on_reconnected() -> None:
            log.info("NATS connection back, to %s", nc.connected_url.netloc if nc.connected_url else "?")

        budget = connect_budget_s(self.js_cfg)
        try:
            async with asyncio.timeout(budget):  # nats-py may hang after a failed TLS handshake (wire.nats_connection)
                nc: Client = await nats.connect(**self._options, error_cb=on_error, closed_cb=on_closed,
                                                disconnected_cb=on_disconnected, reconnected_cb=on_reconnected)  # fmt: skip
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            refused = [r for r in reasons if r.startswith("NATS refused")]
            raise CannotConnect((refused or reasons or [self._describe(exc)])[-1]) from None
        self.client = nc
        try:
            js = nc.jetstream(timeout=self.js_cfg.ack_timeout_s)
            if self.js_cfg.provision_stream:
                await ensure_stream(js, self.js_cfg.stream, self.js_cfg.subject_prefix, update=False)
            self.commit()
            self.session.connected()
            self.connected.set()
            log.info("JetStream uplink connected to %s; %d frames wait in the spool", self.destination, self.session.unacked)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._dispatcher(js, tg), name="jetstream-dispatcher")
                tg.create_task(self._deleter(), name="jetstream-deleter")
                tg.create_task(self._reporter(nc), name="jetstream-status")
                await self._watch(nc, closed, budget)
        finally:
            self.client = None
            with contextlib.suppress(TimeoutError):  # closing can hang like connecting (nats-io/nats.py#718)
                async with asyncio.timeout(5.0):
                    await nc.close()

    async def _watch(self, nc: Client, closed: asyncio.Event, budget: float) -> None:
        """Return (raising ``ConnectionClosed``) when nats-py closes the client or has been reconnecting for ``budget`` s."""
        down_since: float | None = None
        while not closed.is_set():
            now = time.monotonic()
            if nc.is_connected:
                down_since = None
            elif down_since is None:
                down_since = now
            elif now - down_since > budget:
                raise ConnectionClosed(f"no NATS server for {budget:.0f} s")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await closed.wait()
        raise ConnectionClosed("every server failed")

    async def _reporter(self, nc: Client) -> None:
        """The device conditions and the spool to the status subject: at once, on every change, and every ``status_s``."""
        headers = status_headers(self.agent, self.spool.epoch)
        while True:
            self._status_due.clear()
            report = Status(tuple(self._devices.values()), self.report())
            try:
                await nc.publish(self.status_subject, encode_edge(report), headers=headers)
                self.counters["status_published"] += 1
            except nats.errors.Error as exc:  # the next report replaces it
                self.counters["status_not_published"] += 1
                log.debug("status report not published: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.status_s):
                    await self._status_due.wait()

    async def _dispatcher(self, js: JetStreamContext, tg: asyncio.TaskGroup) -> None:
        """Start one publish per frame the session hands out (it bounds them), then wait for new frames, an
        acknowledgement or the end of a pause. One waiter, woken once per event: the cost per frame does not
        grow with the window."""
        session = self.session
        while True:
            self._wake.clear()  # before the work: a frame released meanwhile sets it again
            while (item := session.next_publish(time.monotonic())) is not None:
                data = self.spool.get(item.seq)
                if data is None:  # the session and the spool disagree: the frame cannot be published
                    log.error("frame %d is missing from the spool", item.seq)
                    session.dropped([item.seq])
                    continue
                tg.create_task(self._publish(js, item.key, data))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(session.timeout(time.monotonic())):
                    await self._wake.wait()

    async def _publish(self, js: JetStreamContext, key: FrameKey, data: bytes) -> None:
        """Publish one frame and tell the session how it went; a failure is its business, never this task's end."""
        sent = time.monotonic()
        try:
            ack = await js.publish(self.subject, data, timeout=self.js_cfg.ack_timeout_s, stream=self.js_cfg.stream.name,
                                   headers=frame_headers(key))  # fmt: skip
        except NATS_ERRORS as exc:
            self.session.failed(key.seq, time.monotonic())
            self._note_error(self._describe(exc))
            self._wake.set()  # the dispatcher learns the pause's end from the session
            return
        self.ack_latencies.append(time.monotonic() - sent)
        self.session.published(key.seq, duplicate=bool(ack.duplicate))
        if self._warned is not None:
            self._warned = None
            log.info("publishing to %s again", self.destination)
        self._acks.set()
        self._wake.set()  # the window may have opened (it is one frame wide while probing)

    async def _deleter(self) -> None:
        while True:
            await self._acks.wait()
            await asyncio.sleep(DELETE_BATCH_S)
            self._acks.clear()
            self._delete_acknowledged()

    def _delete_acknowledged(self) -> None:
        deletions = self.session.take_deletions()
        if deletions is not None:
            self.spool.delete(deletions.runs)

    # --- errors --------------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, nats.errors.AuthorizationError) or "authorization violation" in str(exc).lower():
            who = f"user {self._options['user']!r}" if "user" in self._options else "its token"
            return f"NATS refused the agent's credentials ({who}): authorization violation"
        if isinstance(exc, nats.js.errors.NoStreamResponseError):
            return f"no JetStream stream captures {self.subject} (or JetStream is not enabled)"
        if isinstance(exc, CannotConnect):
            reason = str(exc)
            return reason if reason.startswith("NATS refused") else f"no NATS server reachable ({reason})"
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    def _note_error(self, text: str) -> None:
        """Say why publishing is held up: at warning level when it starts or its reason changes, then only counted."""
        self.counters["nats_errors"] += 1
        self.last_error = text
        if text != self._warned:
            self._warned = text
            log.warning("JetStream uplink to %s held up, frames stay spooled: %s", self.destination, text)

    def close(self) -> None:
        self._delete_acknowledged()
        super().close()
