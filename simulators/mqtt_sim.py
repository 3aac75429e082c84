"""Simulated MQTT bedside devices: each bed's 1 Hz numerics published to a broker in the ``mqtt_json`` schema.

``create(beds, ward=..., broker=..., topic_prefix=...)`` returns a group of
devices (``simulators.base.SimulatedDevices``), one MQTT client per bed, as an
IoT bedside monitor would be. Each device (schema in ``edge_agent/drivers/mqtt_json.md``):

* connects with a last will ``{"state": "offline", "beds": [<bed>]}`` on
  ``<prefix>/sim-<bed>/presence`` (QoS 1, retained) and then publishes a
  retained ``online`` birth message there;
* publishes once a second, QoS 1, on ``<prefix>/<bed>/vitals`` the numerics of
  ``simulators.physiology`` for its scenario (``simulators.scenarios``): a
  withheld SpO2 is ``null`` with the ``probe_off`` flag, and a ``probe_off`` /
  ``ok`` status goes to ``<prefix>/<bed>/status`` on change and every 10 s
  while off; a ``silent`` bed stops publishing but stays connected;
* publishes each NIBP cuff reading as its own *retained* vitals message stamped
  with the cuff time, so an edge agent that subscribes later still gets the
  last reading (a non-retained publish does not replace a retained one);
* on ``close()`` says ``offline``, then deletes its retained messages
  (``clear_retained``), so a shared broker is left as it was found.

The default topic prefix is ``teleicu-sim/<ward>-<random token>``, so parallel
runs on one broker never see each other's beds. MQTT carries numerics only:
``SimBed.waveforms`` is ignored.

Store and forward, as an IoT monitor with a local buffer does: every message a
device produces goes into its outbox (``Outbox``), at most ``OUTBOX_MAX``
messages (about an hour at 1 Hz); when full, the oldest message is dropped and
counted (``messages_dropped``). A sender task per device publishes the outbox
in order, at QoS 1, removing a message only once the broker acknowledged it
(PUBACK). While the broker is away nothing is published and the device retries
the connection every ``RECONNECT_S``; after it, the held messages go out in
order, with their device times unchanged, before newer ones. A message in
flight when the connection broke is sent again (QoS 1 is at least once: the
broker may get it twice). ``run(duration_s)`` waits up to ``DRAIN_S`` for the
outbox to empty; ``close()`` tries up to ``DRAIN_S`` more (reconnecting if
need be) and counts what is still left as dropped.

Each device produces second ``k`` at ``t0 + k`` on the event loop's clock; if
the loop falls more than ``MAX_CATCH_UP_S`` behind (a stalled process), the
missed seconds are skipped: nothing is published for them (the physiology
still advances). Option ``record=PATH`` appends every vitals sample a device
produced, as it went into the outbox, to ``PATH`` as JSON lines ``[bed, param,
t_ms, value, flags]`` (the edge agent's ``--record`` format), so a test counts
what was generated instead of assuming one sample per second; from the command
line: ``teleicu sim --protocols mqtt --sim-option mqtt.record=PATH``.

``BedDevice`` is the sans-I/O core (what a device publishes at second ``k``),
``Outbox`` the bounded buffer; ``MqttSimulator`` does the I/O.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiomqtt

from edge_agent.drivers.mqtt_json import check_prefix
from edge_agent.transports.mqtt import cancellation_pending, parse_broker_url, raise_if_cancelled
from simulators.base import SimBed
from simulators.physiology import Physiology
from simulators.scenarios import Scenario, get_scenario
from wire.clock import wall_ms
from wire.sample_record import numeric_line
from wire.vocabulary import FLAG_NAMES, Flag, flag_names

log = logging.getLogger(__name__)

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
PUBLISH_QOS = 1
STATUS_REPEAT_S = 10
NIBP_KEYS = ("nibp_sys", "nibp_dia", "nibp_mean")
RECONNECT_S = 2.0
PUBLISH_TIMEOUT_S = 5.0
MAX_CATCH_UP_S = 5  # further behind than this, seconds are skipped
OUTBOX_MAX = 3600  # messages held per device while the broker is away (about an hour at 1 Hz); beyond, the oldest go
DRAIN_S = 5.0  # at the end of run() and in close(): time allowed to empty the outbox
OPTIONS = frozenset({"clear_retained", "edge_client_id", "record"})
FLAG_BITS = {name: bit for bit, name in FLAG_NAMES.items()}


def _compact(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def encode_vitals(t_ms: int, device: str, values: Mapping[str, float | None], flags: Mapping[str, int] | None = None) -> bytes:
    """A ``<prefix>/<bed>/vitals`` payload; whole numbers are written without a decimal point."""
    doc: dict[str, Any] = {
        "t": t_ms,
        "device": device,
        "values": {k: (None if v is None else int(v) if float(v).is_integer() else v) for k, v in values.items()},
    }
    named = {k: flag_names(bits) for k, bits in (flags or {}).items() if bits}
    if named:
        doc["flags"] = named
    return _compact(doc)


def encode_status(t_ms: int, device: str, status: str, detail: str = "") -> bytes:
    doc: dict[str, Any] = {"t": t_ms, "device": device, "status": status}
    if detail:
        doc["detail"] = detail
    return _compact(doc)


def encode_presence(state: str, beds: Sequence[str]) -> bytes:
    return _compact({"state": state, "beds": list(beds)})


@dataclass(frozen=True, slots=True)
class Publication:
    topic: str
    payload: bytes
    retain: bool = False


def vitals_samples(bed: str, pub: Publication) -> Iterator[list[Any]]:
    """The samples of a vitals publication as ``[bed, param, t_ms, value, flags]`` (read back from its payload)."""
    if not pub.topic.endswith("/vitals") or not pub.payload:
        return
    doc = json.loads(pub.payload)
    flags = doc.get("flags", {})
    for param, value in doc["values"].items():
        bits = 0
        for name in flags.get(param, ()):
            bits |= FLAG_BITS[name]
        yield [bed, param, doc["t"], value, bits]


class Outbox:
    """A device's bounded store-and-forward buffer: oldest first, the oldest dropped (and counted) when full."""

    def __init__(self, max_messages: int = OUTBOX_MAX) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be >= 1")
        self.max_messages = max_messages
        self._q: deque[Publication] = deque()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._q)

    def put(self, pubs: Sequence[Publication]) -> None:
        for pub in pubs:
            if len(self._q) >= self.max_messages:
                self._q.popleft()
                self.dropped += 1
            self._q.append(pub)

    def head(self) -> Publication | None:
        return self._q[0] if self._q else None

    def done(self, pub: Publication) -> None:
        """``pub`` (the head when it was taken) was acknowledged; it may have been dropped meanwhile."""
        if self._q and self._q[0] is pub:
            self._q.popleft()

    def clear(self) -> int:
        n = len(self._q)
        self._q.clear()
        return n


class BedDevice:
    """What one simulated bedside device publishes; no I/O. Call ``publications(k, now)`` for k = 0, 1, 2..."""

    def __init__(self, bed: SimBed, prefix: str, *, device_id: str | None = None, scenario: Scenario | None = None) -> None:
        self.bed = bed.bed
        self.device_id = device_id or f"sim-{bed.bed}"
        self.scenario = scenario or get_scenario(bed.scenario)
        self.physiology = Physiology(bed.seed, self.scenario.vitals, nibp_interval_s=bed.nibp_interval_s)
        self.vitals_topic = f"{prefix}/{bed.bed}/vitals"
        self.status_topic = f"{prefix}/{bed.bed}/status"
        self.presence_topic = f"{prefix}/{self.device_id}/presence"
        self._probe_off = False
        self._last_status_s = -STATUS_REPEAT_S
        self.nibp_published = False  # a retained reading exists on the vitals topic

    def will(self) -> Publication:
        return Publication(self.presence_topic, encode_presence("offline", [self.bed]), retain=True)

    def birth(self) -> Publication:
        return Publication(self.presence_topic, encode_presence("online", [self.bed]), retain=True)

    def retained_topics(self) -> list[str]:
        return [self.presence_topic] + ([self.vitals_topic] if self.nibp_published else [])

    def publications(self, second: int, now_ms: int) -> list[Publication]:
        """The messages of second ``second`` since the device started (device time ``now_ms``)."""
        if self.scenario.silent(second):
            return []
        values: dict[str, float | None] = {}
        nibp: dict[str, float | None] = {}
        while self.physiology.t_s <= second:  # catch up if seconds were skipped
            values = dict(self.physiology.step())
            nibp = {k: values.pop(k) for k in NIBP_KEYS if k in values} or nibp
        out: list[Publication] = []
        flags: dict[str, int] = {}
        probe_off = self.scenario.spo2_probe_off(second)
        if probe_off:
            values["spo2"] = None
            flags["spo2"] = Flag.PROBE_OFF
        if second == 0 or probe_off != self._probe_off or (probe_off and second - self._last_status_s >= STATUS_REPEAT_S):
            status = "probe_off" if probe_off else "ok"
            out.append(Publication(self.status_topic, encode_status(now_ms, self.device_id, status, "spo2")))
            self._last_status_s = second
            self._probe_off = probe_off
        if nibp:
            out.append(Publication(self.vitals_topic, encode_vitals(now_ms, self.device_id, nibp), retain=True))
            self.nibp_published = True
        out.append(Publication(self.vitals_topic, encode_vitals(now_ms, self.device_id, values, flags)))
        return out


class _Connection:
    """One device's MQTT client and outbox: connect with will and birth, publish the outbox in order, say goodbye."""

    def __init__(self, device: BedDevice, host: str, port: int, client_id: str, outbox_max: int = OUTBOX_MAX) -> None:
        self.device = device
        self._host, self._port, self.client_id = host, port, client_id
        self._client: aiomqtt.Client | None = None
        self.outbox = Outbox(outbox_max)
        self._pending = asyncio.Event()  # set while the outbox may hold something
        self.connects = 0
        self.sent = 0
        self.retries = 0  # publishes that failed (the message stays in the outbox)
        self.unsent = 0  # left in the outbox when the device stopped

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def connect(self) -> None:
        """Connect and publish the birth message; raises ``aiomqtt.MqttError`` on failure."""
        will = self.device.will()
        client = aiomqtt.Client(
            self._host,
            self._port,
            identifier=self.client_id,
            clean_session=True,
            will=aiomqtt.Will(will.topic, will.payload, qos=PUBLISH_QOS, retain=True),
            keepalive=15,
            timeout=PUBLISH_TIMEOUT_S,
        )
        await client.__aenter__()
        self._client = client
        try:
            raise_if_cancelled()  # the connect may have swallowed it
            await self._publish(self.device.birth())
            raise_if_cancelled()
        except (aiomqtt.MqttError, asyncio.CancelledError):
            await self._drop_client()
            raise
        self.connects += 1

    async def _publish(self, pub: Publication) -> None:
        assert self._client is not None
        await self._client.publish(pub.topic, pub.payload, qos=PUBLISH_QOS, retain=pub.retain)

    def put(self, pubs: Sequence[Publication]) -> None:
        """Queue a second's messages for the sender."""
        if pubs:
            self.outbox.put(pubs)
            self._pending.set()

    async def flush(self) -> bool:
        """Publish the outbox in order while connected; True when it is empty. A failure drops the client."""
        while (pub := self.outbox.head()) is not None:
            if self._client is None:
                return False
            try:
                await self._publish(pub)
            except aiomqtt.MqttError as exc:
                if cancellation_pending():
                    raise asyncio.CancelledError from exc
                self.retries += 1
                log.warning("mqtt sim %s: publish failed (%s); holding %d messages, reconnecting every %.0f s",
                            self.device.device_id, exc, len(self.outbox), RECONNECT_S)  # fmt: skip
                await self._drop_client()
                return False
            self.outbox.done(pub)
            self.sent += 1
            raise_if_cancelled()  # the publish may have swallowed it
        return True

    async def sender(self) -> None:
        """Publish whatever the outbox holds, for ever; while the broker is away, retry every ``RECONNECT_S``."""
        while True:
            await self._pending.wait()
            if cancellation_pending():  # a cancellation lost inside the client library still ends the loop
                raise asyncio.CancelledError
            if self._client is None:
                try:
                    await self.connect()
                    log.info("mqtt sim %s: reconnected; %d messages to send", self.device.device_id, len(self.outbox))
                except aiomqtt.MqttError as exc:
                    if cancellation_pending():
                        raise asyncio.CancelledError from exc
                    log.debug("mqtt sim %s: reconnect failed: %s", self.device.device_id, exc)
                    await asyncio.sleep(RECONNECT_S)
                    continue
            if await self.flush():
                self._pending.clear()  # no await since the outbox was seen empty

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the outbox to empty (the sender must be running); True if it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.outbox) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return not len(self.outbox)

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except aiomqtt.MqttError as exc:
                if cancellation_pending():
                    raise asyncio.CancelledError from exc

    async def close(self, clear_retained: bool) -> None:
        """Send what the outbox holds (up to ``DRAIN_S``), say ``offline`` (a clean disconnect does not fire
        the will), delete retained messages, disconnect. What could not be sent is counted in ``unsent``."""
        if len(self.outbox):
            try:
                async with asyncio.timeout(DRAIN_S):
                    if self._client is None:
                        await self.connect()
                    await self.flush()
            except (aiomqtt.MqttError, TimeoutError) as exc:
                log.warning("mqtt sim %s: outbox not emptied: %s", self.device.device_id, exc)
            self.unsent += self.outbox.clear()
            if self.unsent:
                log.error("mqtt sim %s: %d messages never sent", self.device.device_id, self.unsent)
        if self._client is None:
            return
        try:
            await self._publish(self.device.will())
            if clear_retained:
                for topic in self.device.retained_topics():
                    await self._client.publish(topic, b"", qos=PUBLISH_QOS, retain=True)
        except aiomqtt.MqttError as exc:
            log.warning("mqtt sim %s: goodbye not sent: %s", self.device.device_id, exc)
        await self._drop_client()


def _level(text: str) -> str:
    """``text`` made safe as one topic level / client id part."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:32] or "_"


class MqttSimulator:
    """A group of simulated MQTT bedside devices on one broker (``simulators.base.SimulatedDevices``)."""

    def __init__(
        self,
        beds: Sequence[SimBed],
        *,
        ward: str,
        broker: str = DEFAULT_BROKER,
        topic_prefix: str | None = None,
        clear_retained: bool = True,
        edge_client_id: str | None = None,
        record: str | Path | None = None,
        outbox_max: int = OUTBOX_MAX,
    ) -> None:
        self.ward = ward
        self.record_path = Path(record) if record else None
        self._record: IO[str] | None = None
        self._closed = False
        self.broker = broker
        address = parse_broker_url(broker)
        token = secrets.token_hex(4)
        self.topic_prefix = check_prefix(topic_prefix or f"teleicu-sim/{_level(ward)}-{token}")
        self.edge_client_id = edge_client_id or f"teleicu-edge-{_level(ward)}-{token}"
        self.clear_retained = clear_retained
        self.devices = [BedDevice(b, self.topic_prefix) for b in beds]
        self._connections = [
            _Connection(d, address.host, address.port, f"teleicu-sim-{token}-{_level(d.bed)}", outbox_max) for d in self.devices
        ]

    async def start(self) -> None:
        """Connect every device and publish its birth message; raises ``aiomqtt.MqttError`` if the broker is unreachable."""
        if self.record_path is not None and self._record is None:
            self._record = self.record_path.open("a", encoding="utf-8")
        results = await asyncio.gather(*(c.connect() for c in self._connections), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await self.close()
            if not isinstance(failed[0], aiomqtt.MqttError):
                raise failed[0]
            raise aiomqtt.MqttError(f"mqtt sim: cannot connect to {self.broker}: {failed[0]}")
        log.info("mqtt sim %s: %d devices on %s under %s/", self.ward, len(self.devices), self.broker, self.topic_prefix)

    def edge_devices(self) -> list[dict[str, Any]]:
        return [
            {
                "id": f"mqtt-{_level(self.ward)}",
                "driver": "mqtt_json",
                "broker": self.broker,
                "topic_prefix": self.topic_prefix,
                "client_id": self.edge_client_id,
                "beds": [d.bed for d in self.devices],
            }
        ]

    async def run(self, duration_s: float | None = None) -> None:
        """Produce every second until cancelled or ``duration_s`` (then wait up to ``DRAIN_S`` for the outboxes);
        per device, a producer and a sender task."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with asyncio.TaskGroup() as tg:
            for c in self._connections:
                tg.create_task(self._device(c, t0, duration_s), name=f"mqtt-sim-{c.device.bed}")

    async def _device(self, conn: _Connection, t0: float, duration_s: float | None) -> None:
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(conn.sender(), name=f"mqtt-sim-send-{conn.device.bed}")
            await self._produce(conn, t0, duration_s)
            await conn.drain(DRAIN_S)
            sender.cancel()

    async def _produce(self, conn: _Connection, t0: float, duration_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        k = 0
        while duration_s is None or k <= duration_s:
            delay = t0 + k - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > MAX_CATCH_UP_S:
                k += int(-delay)  # skipped: neither published nor recorded; physiology catches up in publications()
                continue
            pubs = conn.device.publications(k, wall_ms())
            self._write_record(conn.device.bed, pubs)
            conn.put(pubs)
            k += 1

    def _write_record(self, bed: str, pubs: Sequence[Publication]) -> None:
        if self._record is None:
            return
        lines = [numeric_line(*sample) for pub in pubs for sample in vitals_samples(bed, pub)]
        if lines:
            self._record.write("".join(lines))
            self._record.flush()

    async def close(self) -> None:
        """Close every device (each sends what its outbox holds first); the record file too. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.gather(*(c.close(self.clear_retained) for c in self._connections))
        finally:
            if self._record is not None:
                self._record.close()
                self._record = None
        st = self.stats()
        log.info("mqtt sim %s: %d messages sent, %d dropped (outbox full or unsent at the end), %d publishes retried",
                 self.ward, st["messages_sent"], st["messages_dropped"], st["publish_retries"])  # fmt: skip

    def stats(self) -> dict[str, int]:
        return {
            "devices": len(self._connections),
            "connected": sum(c.connected for c in self._connections),
            "connects": sum(c.connects for c in self._connections),
            "messages_sent": sum(c.sent for c in self._connections),
            "messages_dropped": sum(c.outbox.dropped + c.unsent for c in self._connections),
            "outbox": sum(len(c.outbox) for c in self._connections),
            "publish_retries": sum(c.retries for c in self._connections),
        }


def create(
    beds: list[SimBed],
    *,
    ward: str,
    broker: str = DEFAULT_BROKER,
    topic_prefix: str | None = None,
    **options: Any,
) -> MqttSimulator:
    """MQTT devices for ``beds`` (``simulators.base`` contract). Options: ``clear_retained``, ``edge_client_id``,
    ``record`` (a path: every vitals sample produced, as JSON lines)."""
    unknown = set(options) - OPTIONS
    if unknown:
        raise TypeError(f"mqtt_sim.create: unknown options {sorted(unknown)}; known: broker, topic_prefix, {', '.join(sorted(OPTIONS))}")
    return MqttSimulator(beds, ward=ward, broker=broker, topic_prefix=topic_prefix, **options)
