"""A hub worker on NATS JetStream: it owns wards through leases and consumes their edge frames from the stream.

Started by the hub's lifespan when the hub file has a ``jetstream:`` section
(``ingest.jetstream_settings``), after the stores open and stopped before they
close. The frames are exactly those of the WebSocket uplink, on the subjects,
message ids and headers of ``wire.jetstream_contract``; they go through the
same hub core (``Hub.hello``, ``take_frame``, the sample store, ``handled``).

**Ownership.** A ward is owned through a lease in a JetStream key-value bucket
(key = ward, value = this worker's id, the bucket's TTL = the lease's);
``ingest.ward_leases`` decides what to ask the bucket, this module asks. A
worker consumes a ward only while it holds its lease; a renewal refused (the
lease expired and another worker took it), or one not answered in time, stops
that ward's consumer at once. A worker that stops gives its wards back.

**Alarms and agents move with the ward.** A worker judges only the wards it
owns: at start (for the wards it may own, and for any ward another worker holds
the lease of), and whenever it loses a ward, the ward's open alarms leave its
book unchanged and its agents are no longer expected (``Hub.leave_ward``), so it
neither resolves nor escalates alarms of beds it has no data for, nor raises
"agent offline" for agents another worker hears. Taking a ward, it carries on
the ward's open alarms from the shared state store under their ids, reads its
beds' settings (SpO2 scale, alarm limits) and expects the ward's remembered
agents (``Hub.take_ward``). A worker giving a ward back
(balancing, a changed ward list) deletes its lease only once the ward's
consumer has stopped and the alarm changes it made are written
(``AuditWriter.caught_up``), bounded by ``HANDOVER_S``, so the next owner does
not adopt the alarms as they were a moment before.

**Consoles see every ward from any worker.** The worker speaks for its wards
on core NATS and relays other workers' wards to its own consoles
(``ingest.console_relay``), so a console may connect to any worker.

**Consuming a ward.** One durable pull consumer per ward (``hub-ward-<ward>``,
filter ``ward_filter(ward)``, explicit acknowledgement), so the position in the
ward's frames survives the worker that read them. For each message:

* ``parse_frame_headers`` and the codec: a message whose subject, headers and
  body do not agree, or that is not an observation frame or waveform chunk, is
  refused for good (``term``: it will never become valid), counted and
  audited (``edge.jetstream_refused``, once per subject);
* the agent must be registered (``teleicu agents add``), not revoked, and to the
  subject's ward; otherwise refused for good the same way. Its registered beds
  make the ``Hello`` (``Hub.hello`` when the agent or its epoch is new here),
  and values for any other bed are refused as on the WebSocket;
* ``take_frame``; a duplicate is acknowledged; a batch goes to the store, and
  the message is acknowledged **only once the store says it is durable**
  (``Hub.handled``, then ``ack``). A failed write is not acknowledged: it is
  ``nak``-ed with a growing delay and the stream delivers it again. While the
  store reports an error the ward *holds* as a WebSocket connection does: one
  batch in flight probes the store, every other frame still reaches the bed
  state (consoles keep seeing the patients) and is ``nak``-ed for later.

What is in flight is bounded (``max_ack_pending``, and the hub's
``max_inflight_frames``); while the hub is overloaded (``ingest.overload``) each
pull waits the brake and asks for one frame per agent of the ward, as each
WebSocket reader reads one frame per brake. When a ward is taken, the durable
watermarks other workers saved in the shared state store raise this worker's
(so frames stored before a failover are acknowledged as duplicates, not written
again); agents' floors from the headers raise them only once the consumer's
ack floor has passed them (``ingest.stream_floors`` says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig
from nats.js.kv import KeyValue

from ingest.auth.accounts import AgentCredential
from ingest.auth.audit_log import AuditEntry
from ingest.auth.service import AGENT_KEY
from ingest.console_relay import ConsoleRelay
from ingest.hub import Hub
from ingest.jetstream_settings import JetStreamSettings
from ingest.stores.base import Batch, StoreError
from ingest.stream_floors import StreamFloors
from ingest.ward_leases import Peers, Step, WardLeases
from wire.backoff import Backoff
from wire.codec import WireError
from wire.jetstream_contract import (
    FrameKey,
    JetStreamContractError,
    parse_frame_headers,
    parse_status_headers,
    status_filter,
    token,
    ward_filter,
)
from wire.jetstream_stream import StreamSettingsError, ensure_stream
from wire.messages import Hello, ObsFrame, Status, WaveChunk
from wire.nats_connection import connect_budget_s, connect_options
from wire.obs_frame_fast import decode_edge

log = logging.getLogger(__name__)

FETCH_WAIT_S = 1.0  # a pull waits this long for frames; then the ward's loop looks at its lease and the brake again
FLOOR_CHECK_S = 5.0  # how often a ward with agents' floors waiting reads its consumer's ack floor
KV_TIMEOUT_S = 5.0  # longest wait for the lease bucket's answer (less when a third of the TTL is shorter)
RELEASE_TIMEOUT_S = 2.0  # on stop, giving the wards back gets this long (the TTL frees them anyway)
HANDOVER_S = 2.0  # a ward given back waits at most this (and half a renewal period) for its consumer and alarm writes
NAK_DELAY = (1.0, 30.0)  # redelivery delay after a failed write: first, most (doubling)
MAX_AUDITED = 1000  # subjects, and (agent, bed) pairs, audited once each per worker
CONSUMER_PREFIX = "hub-ward-"
PRESENCE = "workers."  # with balance: a worker's key in the lease bucket, workers.<id> = the wards it may own (JSON)
MAX_PRESENCE_BYTES = 1024 * 1024


class LeaseGone(Exception):
    """This worker no longer holds the ward's lease: its consumer stops."""


def default_worker_id() -> str:
    host = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in socket.gethostname())[:40] or "hub"
    return f"{host}-{os.getpid()}"


def _presence_wards(value: bytes) -> frozenset[str] | None | bool:
    """The wards a worker's presence says it may own (None: every ward), or False for a value that says nothing usable."""
    if len(value) > MAX_PRESENCE_BYTES:
        return False
    try:
        wards = orjson.loads(value).get("wards")
    except (orjson.JSONDecodeError, AttributeError):
        return False
    if wards == "all":
        return None
    return frozenset(w for w in wards if isinstance(w, str)) if isinstance(wards, list) else False


def consumer_name(ward: str) -> str:
    return CONSUMER_PREFIX + token(ward, "ward")


@dataclass(slots=True)
class _InFlight:
    msg: Msg
    fut: asyncio.Future[None]
    batch: Batch
    hello: Hello
    seq: int


@dataclass
class _Ward:
    """One ward's consumer: its agents' hellos here, their floors waiting, its in-flight frames."""

    ward: str
    current: dict[str, Hello] = field(default_factory=dict)  # agent -> the hello of its newest epoch seen
    floors: StreamFloors = field(default_factory=StreamFloors)
    backoff: Backoff = field(default_factory=lambda: Backoff(*NAK_DELAY))
    inflight: asyncio.Queue[_InFlight] | None = None
    acking: _InFlight | None = None  # the frame whose verdict the acker waits for


class JetStreamWorker:
    def __init__(self, hub: Hub, settings: JetStreamSettings, *, source: Path = Path("hub config"),
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        """Raises ``ConfigError`` when the credentials the settings name cannot be read."""
        self.hub = hub
        self.s = settings
        self.creds = settings.credentials(source)
        self.worker_id = settings.worker_id or default_worker_id()
        self.clock = clock
        self.leases = WardLeases(self.worker_id, settings.lease_ttl_s)
        self.counters: Counter[str] = Counter()
        self._consumers: dict[str, asyncio.Task[None]] = {}
        self._wards_seen: list[str] = []  # with wards: all, the registered wards last read
        self._audited: set[str] = set()
        self._closing = False
        self._nc: NatsClient | None = None  # the connection, once made (status reports are core NATS)
        self._last_peers: Peers = {}  # with balance: the other live workers last read
        self._max_inflight = max(1, min(settings.max_ack_pending, hub.cfg.max_inflight_frames))
        self._kv_timeout = min(KV_TIMEOUT_S, self.leases.every_s)
        self.relay = ConsoleRelay(hub, settings.console_prefix, self.worker_id, self._owns, self.counters)
        hub.jetstream_stats = self.stats

    def stats(self) -> dict[str, Any]:
        return {"worker": self.worker_id, "wards_owned": sorted(self.leases.owned(self.clock())), **self.counters}

    # --- connection and leases -------------------------------------------------------

    async def run(self) -> None:
        """Connect, hold leases and consume the owned wards until cancelled; then give the wards back."""
        for ward in await self._wanted():  # none is this worker's yet: their alarms and agents are the owner's
            self._leave(ward)
        nc = self._nc = await self._connect()
        kv: KeyValue | None = None
        try:
            js = nc.jetstream()
            kv = await self._lease_bucket(js)
            for ward in await self._held_elsewhere(kv):  # a ward outside this worker's list another worker serves
                self._leave(ward)
            await self._provision_stream(js)
            log.info("jetstream worker %s: stream %s, wards %s", self.worker_id, self.s.stream.name, self.s.wards)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.relay.run(nc), name="jetstream-console-relay")
                tg.create_task(self._lease_loop(js, kv, tg), name="jetstream-leases")
        finally:  # the consumers have stopped (the task group waited for them): now the wards may go to another worker
            if kv is not None:
                await self._release_all(kv)
            self._closing = True
            await nc.close()

    async def _connect(self) -> NatsClient:
        """The edge's connection settings (``wire.nats_connection``), except that a worker, once connected, keeps
        reconnecting for as long as it runs: its leases, not the connection, decide what it may consume. The first
        connect is bounded, since nats-py can hang after a failed TLS handshake."""
        options = connect_options(self.s, self.creds, name=f"teleicu-hub {self.worker_id}")
        options |= {"max_reconnect_attempts": -1, "reconnect_time_wait": 1, "error_cb": self._nats_error,
                    "disconnected_cb": self._nats_disconnected, "reconnected_cb": self._nats_reconnected}  # fmt: skip
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                async with asyncio.timeout(connect_budget_s(self.s)):
                    return await nats.connect(**options)
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                self.counters["nats_connect_failures"] += 1
                log.warning("jetstream: cannot connect to %s (%s); trying again", ", ".join(self.s.servers), exc or type(exc).__name__)
                await asyncio.sleep(backoff.next())

    async def _provision_stream(self, js: JetStreamContext) -> None:
        """The frames stream as ``stream:`` says (created, or brought to it). A change NATS refuses (storage,
        more replicas than servers) is logged and the stream used as it is; NATS unreachable: retried later by
        the consumers, which wait for the stream."""
        try:
            await ensure_stream(js, self.s.stream, self.s.subject_prefix, update=True)
        except StreamSettingsError as exc:
            log.error("jetstream: the stream %s stays as it is: %s", self.s.stream.name, exc)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            log.warning("jetstream: cannot provision the stream %s yet (%s)", self.s.stream.name, exc or type(exc).__name__)

    async def _nats_error(self, exc: Exception) -> None:
        log.warning("jetstream: NATS connection: %s", exc or type(exc).__name__)

    async def _nats_disconnected(self) -> None:
        if self._closing:
            return
        log.warning("jetstream: disconnected from NATS; reconnecting (leases not renewed in time stop their wards)")

    async def _nats_reconnected(self) -> None:
        log.warning("jetstream: reconnected to NATS")

    async def _lease_bucket(self, js: JetStreamContext) -> KeyValue:
        """The lease bucket, created when absent, retried with backoff while NATS cannot answer yet (a cluster
        still electing its JetStream leader must not stop the hub); a TTL that differs from this worker's is fatal."""
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                async with asyncio.timeout(self._kv_timeout * 4):
                    return await self._open_lease_bucket(js)
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                self.counters["lease_bucket_failures"] += 1
                log.warning("jetstream: lease bucket %s not available yet (%s); trying again", self.s.lease_bucket, exc or type(exc).__name__)
                await asyncio.sleep(backoff.next())

    async def _open_lease_bucket(self, js: JetStreamContext) -> KeyValue:
        name, ttl = self.s.lease_bucket, self.s.lease_ttl_s
        try:
            kv = await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            kv = await js.create_key_value(KeyValueConfig(bucket=name, history=1, ttl=ttl, replicas=self.s.stream.replicas,
                                                          description="teleicu ward leases"))  # as many copies as the frames  # fmt: skip
        status = await kv.status()
        if status.ttl is None or abs(status.ttl - ttl) > 0.001:
            raise RuntimeError(f"lease bucket {name} expires leases after {status.ttl} s but this worker's jetstream.lease_ttl_s "
                               f"is {ttl:g}: every worker must use the same TTL (or another bucket)")  # fmt: skip
        return kv

    async def _held_elsewhere(self, kv: KeyValue) -> list[str]:
        """The wards whose lease another worker holds now (read once, at start: none of their alarms are this
        worker's to judge, even when its ``wards:`` list leaves them out). Nothing when the bucket cannot be read."""
        held: list[str] = []
        try:
            async with asyncio.timeout(self._kv_timeout * 4):
                try:
                    keys = await kv.keys()
                except nats.js.errors.NoKeysError:
                    return []
                for ward in (k for k in keys if not k.startswith(PRESENCE)):
                    with contextlib.suppress(nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
                        entry = await kv.get(ward)
                        if entry.value and entry.value.decode(errors="replace") != self.worker_id:
                            held.append(ward)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("jetstream: cannot read who holds which ward (%s); judging the wards restored here", exc or type(exc).__name__)
        return held

    async def _wanted(self) -> list[str]:
        if self.s.wards != "all":
            return list(self.s.wards)
        try:
            wards = await self.hub.auth.registered_wards()
        except StoreError as exc:
            log.warning("jetstream: cannot read the registered wards (%s); keeping %s", exc, self._wards_seen)
            return self._wards_seen
        usable = []
        for w in wards:
            try:
                usable.append(token(w, "ward"))
            except JetStreamContractError as exc:
                if w not in self._audited:
                    self._audited.add(w)
                    log.error("jetstream: %s: its agents cannot publish to the stream", exc)
        self._wards_seen = usable
        return usable

    async def _lease_loop(self, js: JetStreamContext, kv: KeyValue, tg: asyncio.TaskGroup) -> None:
        while True:
            for ward in self.leases.expire(self.clock()):
                self.counters["leases_expired"] += 1
                self._stop_ward(ward, "its lease could not be renewed in time")
            peers = await self._peers(kv) if self.s.balance else None
            for step in self.leases.plan(self.clock(), await self._wanted(), peers):
                await self._lease_step(js, kv, tg, step)
            now = self.clock()
            await asyncio.sleep(min(self.leases.every_s, max(0.05, self.leases.next_due(now) - now)))

    async def _peers(self, kv: KeyValue) -> Peers:
        """With ``balance``: say this worker is alive (its presence key, which the bucket's TTL removes when it stops
        saying so), then read the other live workers and the wards each may own. The last answer when NATS does not
        give one (a failed read only delays balancing)."""
        mine = orjson.dumps({"wards": self.s.wards})
        try:
            async with asyncio.timeout(self._kv_timeout):
                await kv.put(PRESENCE + self.worker_id, mine)
                watcher = await kv.watch(PRESENCE + "*")
                peers: dict[str, frozenset[str] | None] = {}
                try:
                    async for entry in watcher:
                        if entry is None:  # the current values are all in
                            break
                        worker = entry.key.removeprefix(PRESENCE)
                        if worker != self.worker_id and entry.value and entry.operation is None:
                            wards = _presence_wards(entry.value)
                            if wards is not False:
                                peers[worker] = wards
                finally:
                    await watcher.stop()
        except (nats.errors.Error, TimeoutError) as exc:
            self.counters["presence_failures"] += 1
            log.info("jetstream: cannot read the live workers (%s); balancing as before", exc or type(exc).__name__)
            return self._last_peers
        self._last_peers = peers
        return peers

    async def _lease_step(self, js: JetStreamContext, kv: KeyValue, tg: asyncio.TaskGroup, step: Step) -> None:
        ward, sent = step.ward, self.clock()
        if step.op == "release":  # stop consuming first, then let another worker have it
            self._stop_ward(ward, "this worker no longer serves it")
            await self._settle(ward)
        try:
            async with asyncio.timeout(self._kv_timeout):
                if step.op == "take":
                    revision = await kv.create(ward, self.worker_id.encode())
                elif step.op == "renew":
                    revision = await kv.update(ward, self.worker_id.encode(), last=step.last)
                else:
                    await kv.delete(ward, last=step.last)
                    revision = 0
        except nats.js.errors.KeyWrongLastSequenceError:
            if step.op == "take":
                self.leases.busy(ward, self.clock())
            elif step.op == "renew":
                self.leases.lost(ward, self.clock())
                self.counters["leases_lost"] += 1
                self._stop_ward(ward, "another worker holds its lease now")
            else:
                self.leases.released(ward, self.clock())
            return
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("jetstream: lease %s of ward %s got no answer (%s)", step.op, ward, exc or type(exc).__name__)
            if step.op == "take":
                self.leases.unanswered(ward, self.clock())
            elif step.op == "release":
                self.leases.released(ward, self.clock())
            return
        if step.op == "take":
            self.leases.taken(ward, revision, sent)
            self.counters["leases_taken"] += 1
            log.warning("jetstream: worker %s owns ward %s", self.worker_id, ward)
            self._start_ward(js, tg, ward)
        elif step.op == "renew":
            self.leases.renewed(ward, revision, sent)
        else:
            self.leases.released(ward, self.clock())
            self.counters["leases_released"] += 1

    async def _release_all(self, kv: KeyValue) -> None:
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_S):
                if self.s.balance:  # no longer a live worker: the others stop leaving wards to it
                    with contextlib.suppress(nats.errors.Error):
                        await kv.delete(PRESENCE + self.worker_id)
                for step in self.leases.release_all():
                    with contextlib.suppress(nats.errors.Error):
                        await kv.delete(step.ward, last=step.last)
                        self.counters["leases_released"] += 1
                    self.leases.released(step.ward, self.clock())
        except TimeoutError:
            log.warning("jetstream: could not give every ward back; their leases expire in %g s", self.s.lease_ttl_s)

    def _start_ward(self, js: JetStreamContext, tg: asyncio.TaskGroup, ward: str) -> None:
        previous = self._consumers.get(ward)
        self._consumers[ward] = tg.create_task(self._consume(js, ward, previous), name=f"jetstream-ward-{ward}")

    def _stop_ward(self, ward: str, why: str) -> None:
        task = self._consumers.get(ward)
        if task is not None and not task.done():
            log.warning("jetstream: worker %s stops consuming ward %s: %s", self.worker_id, ward, why)
            task.cancel()

    async def _settle(self, ward: str) -> None:
        """Before giving a ward back: its consumer has finished and every alarm change of it is written, or the bound
        (the lease loop renews the other wards' leases meanwhile: it waits at most half a renewal period) has passed."""
        task = self._consumers.get(ward)
        try:
            async with asyncio.timeout(min(HANDOVER_S, self.leases.every_s / 2)):
                if task is not None:
                    await asyncio.wait([task])
                await self.hub.audit.caught_up()
        except TimeoutError:
            self.counters["handovers_unsettled"] += 1
            log.warning("jetstream: giving ward %s back before its last alarm changes are written (%d waiting)", ward, self.hub.audit.waiting)

    def _leave(self, ward: str) -> None:
        """The ward is not (or no longer) this worker's: its alarms and agents are left to its owner, counted."""
        released, handed = self.hub.leave_ward(ward)
        self.counters["alarms_let_go"] += released
        self.counters["agents_handed_over"] += handed

    def _owns(self, ward: str) -> bool:
        return ward in self.leases.owned(self.clock())

    # --- one ward's consumer ---------------------------------------------------------

    async def _consume(self, js: JetStreamContext, ward: str, previous: asyncio.Task[None] | None) -> None:
        """Consume the ward while its lease holds; a NATS or store failure starts the consumer again."""
        if previous is not None:
            await asyncio.wait([previous])  # the ward's last consumer here has finished its clean-up
        backoff = Backoff(0.5, 10.0)
        taken = False
        try:
            while self._owns(ward):
                failure: BaseException | None = None
                gone = False
                try:
                    if not taken:  # once per ownership: a consumer restart must not bring back alarms resolved here
                        adopted, expected = await self.hub.take_ward(ward)
                        self.counters["alarms_adopted"] += adopted
                        self.counters["agents_expected"] += expected
                        taken = True
                    await self.relay.serve(ward)  # consoles on other workers ask this one for the ward now
                    await self._consume_once(js, _Ward(ward))
                except* LeaseGone:
                    gone = True
                except* (nats.errors.Error, StoreError, TimeoutError) as group:
                    failure = group.exceptions[0]
                if gone:
                    return
                self.counters["consumer_restarts"] += 1
                log.warning("jetstream: ward %s: %s; consuming again shortly", ward, failure or "stopped")
                await asyncio.sleep(backoff.next())
        finally:  # the ward is another worker's now (or this hub stops): its alarms and agents are not this worker's
            await self.relay.unserve(ward)
            self._leave(ward)

    async def _consume_once(self, js: JetStreamContext, w: _Ward) -> None:
        name = consumer_name(w.ward)
        config = ConsumerConfig(durable_name=name, filter_subject=ward_filter(w.ward, self.s.subject_prefix),
                                ack_policy=AckPolicy.EXPLICIT, ack_wait=self.s.ack_wait_s, max_ack_pending=self.s.max_ack_pending,
                                deliver_policy=DeliverPolicy.ALL, max_deliver=-1)  # fmt: skip
        await js.add_consumer(self.s.stream.name, config)  # creates it, or finds it as it was
        sub = await js.pull_subscribe_bind(durable=name, stream=self.s.stream.name)
        w.inflight = asyncio.Queue(maxsize=self._max_inflight)

        async def status_heard(msg: Msg) -> None:
            await self._status(w, msg)

        assert self._nc is not None
        reports = await self._nc.subscribe(status_filter(w.ward, self.s.status_prefix), cb=status_heard)
        try:
            for (agent, epoch), mark in (await self.hub.state_store.last_seqs()).items():
                self.hub.seqs.raise_floor(agent, epoch, mark)  # what the ward's previous owner stored is durable
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._reader(w, sub), name=f"jetstream-read-{w.ward}")
                tg.create_task(self._acker(w), name=f"jetstream-ack-{w.ward}")
                tg.create_task(self._floors(w, sub), name=f"jetstream-floors-{w.ward}")
        finally:
            with contextlib.suppress(nats.errors.Error):
                await reports.unsubscribe()
            await self._let_go(w)
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()

    async def _let_go(self, w: _Ward) -> None:
        """The consumer stops: frames still in flight are handed back for redelivery (their writes may still land:
        written twice, a sample overwrites itself), and this worker no longer hears the ward's agents."""
        pending = [w.acking] if w.acking is not None else []
        while w.inflight is not None and not w.inflight.empty():
            pending.append(w.inflight.get_nowait())
        for item in pending:
            item.fut.add_done_callback(_retrieve)
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
                await item.msg.nak()
        self.counters["frames_handed_back"] += len(pending)
        for hello in w.current.values():
            self.hub.goodbye(hello)
        w.current.clear()

    async def _reader(self, w: _Ward, sub: JetStreamContext.PullSubscription) -> None:
        while True:
            if not self._owns(w.ward):
                raise LeaseGone(w.ward)
            n = self.s.fetch_batch
            brake = self.hub.overload.brake_s()
            if brake > 0:  # overloaded: as each WebSocket reader reads one frame per brake, one frame per agent here
                self.counters["fetches_braked"] += 1
                n = max(1, min(n, len(w.current)))
                await asyncio.sleep(brake)
            try:
                msgs = await sub.fetch(n, timeout=FETCH_WAIT_S)
            except TimeoutError:  # nats.errors.TimeoutError too: nothing to read
                continue
            for msg in msgs:
                await self._take(w, msg)

    async def _take(self, w: _Ward, msg: Msg) -> None:
        hub = self.hub
        assert w.inflight is not None
        t_hub = hub.clock()
        meta = msg.metadata
        if meta.num_delivered > 1:
            self.counters["frames_redelivered"] += 1
        try:
            key = parse_frame_headers(msg.subject, msg.headers, self.s.subject_prefix)
            if key.ward != w.ward:
                raise JetStreamContractError(f"subject {msg.subject!r} is not of ward {w.ward!r}")
            frame = decode_edge(msg.data)
            if not isinstance(frame, ObsFrame | WaveChunk):
                raise JetStreamContractError(f"a {type(frame).__name__} message: the stream carries observation frames and waveform chunks only")
            if frame.seq != key.seq:
                raise JetStreamContractError(f"the frame's seq {frame.seq} is not its header's {key.seq}")
        except (JetStreamContractError, WireError) as exc:
            return await self._refuse(msg, str(exc))
        try:
            cred = await hub.auth.registered(key.agent)
        except StoreError:  # the state store cannot be read: not the frame's fault, it comes again
            await msg.nak(delay=w.backoff.next() + NAK_DELAY[0])
            return
        if cred is None:
            return await self._refuse(msg, f"agent {key.agent!r} is not registered (or was revoked)", key.agent)
        if cred.ward != key.ward:
            return await self._refuse(msg, f"agent {key.agent!r} is registered to ward {cred.ward!r}, not {key.ward!r}", key.agent)
        hello = self._hello(w, key, cred)
        w.floors.seen(key.agent, key.epoch, key.floor, meta.sequence.stream)
        batch, rejected = hub.take_frame(hello, frame, t_hub)
        for r in rejected:
            if r.get("bed") not in hello.beds:
                hub.counters["values_for_unregistered_beds"] += 1
                self._audit_once(f"{key.agent}\0{r.get('bed')}", AGENT_KEY + key.agent, "edge.unregistered_bed", f"bed:{r.get('bed')}",
                                 {"what": "data refused", "via": "jetstream"})  # fmt: skip
        if batch is None:  # a duplicate of a frame already durable
            self.counters["duplicates_acked"] += 1
            await msg.ack()
            return
        if hub.store.error is not None and (not w.inflight.empty() or w.acking is not None):
            self.counters["frames_held"] += 1  # live values are on the consoles; the frame comes again later
            await msg.nak(delay=w.backoff.next() + NAK_DELAY[0])
            return
        fut = await hub.store.submit(batch)
        await w.inflight.put(_InFlight(msg, fut, batch, hello, key.seq))

    async def _acker(self, w: _Ward) -> None:
        """Each verdict in order: durable -> the hub records it, then the stream is told; failed -> delivered again later."""
        assert w.inflight is not None
        while True:
            item = w.acking = await w.inflight.get()
            try:
                await item.fut
            except StoreError as exc:
                self.counters["frames_nakked_store_failed"] += 1
                log.debug("jetstream: ward %s: write failed (%s); frame %s comes again", w.ward, exc, item.seq)
                await item.msg.nak(delay=w.backoff.next() + NAK_DELAY[0])
                w.acking = None
                continue
            w.backoff.reset()
            self.hub.handled(item.hello, item.seq, item.batch)
            w.acking = None
            await item.msg.ack()
            self.counters["frames_acked"] += 1

    async def _floors(self, w: _Ward, sub: JetStreamContext.PullSubscription) -> None:
        """Raise watermarks to agents' floors once the consumer's ack floor has passed the frames that carried them."""
        while True:
            await asyncio.sleep(FLOOR_CHECK_S)
            if not w.floors:
                continue
            try:
                info = await sub.consumer_info()
            except (nats.errors.Error, TimeoutError) as exc:
                log.debug("jetstream: ward %s: no consumer info (%s)", w.ward, exc)
                continue
            for agent, epoch, floor in w.floors.settled(info.ack_floor.stream_seq if info.ack_floor else 0):
                self.hub.seqs.raise_floor(agent, epoch, floor)
                self.counters["floors_raised"] += 1

    async def _status(self, w: _Ward, msg: Msg) -> None:
        """An agent's status report (core NATS): device conditions and its spool, from a registered agent of the ward
        (its floor is the stream's: not applied). A report that breaks the contract or comes from no agent of the
        ward is counted and audited once per subject; the next report replaces one the state store could not check."""
        try:
            ward, agent, epoch = parse_status_headers(msg.subject, msg.headers, self.s.status_prefix)
            report = decode_edge(msg.data) if ward == w.ward else None
            if not isinstance(report, Status):
                raise JetStreamContractError(f"{msg.subject}: the status subjects carry an agent's status reports only")
            cred = await self.hub.auth.registered(agent)
            if cred is None or cred.ward != ward:
                raise JetStreamContractError(f"status report from {agent!r}, which is not a registered agent of ward {ward!r}")
        except (JetStreamContractError, WireError) as exc:
            self.counters["status_refused"] += 1
            agent_of = AGENT_KEY + msg.subject.rsplit(".", 1)[-1][:64]
            if self._audit_once(msg.subject, agent_of, "edge.jetstream_refused", f"subject:{msg.subject[:200]}", {"why": str(exc)[:300]}):
                log.warning("jetstream: refused a status report on %s: %s", msg.subject, exc)
            return
        except StoreError:
            return
        self.hub.agent_status(self._hello(w, FrameKey(ward, agent, epoch, 0, 0), cred), report, floor_is_final=False)
        self.counters["status_reports"] += 1

    def _hello(self, w: _Ward, key: FrameKey, cred: AgentCredential) -> Hello:
        """The hello standing for the agent's registration: the hub hears of it when the agent or its epoch is new
        here (or its registration changed); a late frame of an older epoch is taken under its own epoch."""
        cur = w.current.get(key.agent)
        if cur is not None and cur.epoch == key.epoch and cur.beds == cred.beds and cur.ward == cred.ward:
            return cur
        if cur is not None and key.epoch < cur.epoch:
            return Hello(key.agent, key.epoch, cred.ward, cred.beds)
        hello = Hello(key.agent, key.epoch, cred.ward, cred.beds)
        self.hub.hello(hello)
        if cur is not None:
            self.hub.goodbye(cur)
        w.current[key.agent] = hello
        self.counters["hellos"] += 1
        return hello

    async def _refuse(self, msg: Msg, why: str, agent: str | None = None) -> None:
        """A frame that can never be taken: counted, audited once per subject, and terminated (never redelivered)."""
        self.counters["frames_refused"] += 1
        self.hub.frame_rejected()
        if agent is None:
            agent = msg.subject.rsplit(".", 1)[-1][:64]
        detail = {"why": why[:300], "msg_id": (msg.headers or {}).get("Nats-Msg-Id", "")[:200]}
        if self._audit_once(msg.subject, AGENT_KEY + agent, "edge.jetstream_refused", f"subject:{msg.subject[:200]}", detail):
            log.warning("jetstream: refused a frame on %s for good: %s", msg.subject, why)
        await msg.term()

    def _audit_once(self, key: str, actor: str, action: str, target: str, detail: dict[str, str]) -> bool:
        if key in self._audited or len(self._audited) >= MAX_AUDITED:
            return False
        self._audited.add(key)
        self.hub.audit.persist(AuditEntry(self.hub.clock(), actor, action, target, detail, "jetstream"))
        return True


def _retrieve(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()  # a failed write of a frame handed back is expected here, not an unhandled error
