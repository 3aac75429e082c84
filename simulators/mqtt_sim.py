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
``SimBed.waveforms`` is ignored. A publish that fails (broker down) is counted
and dropped; the device reconnects every ``RECONNECT_S``. ``BedDevice`` is the
sans-I/O core (what a device publishes at second ``k``); ``MqttSimulator`` does
the I/O.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt

from edge_agent.drivers.mqtt_json import check_prefix
from edge_agent.transports.mqtt import parse_broker_url
from simulators.base import SimBed
from simulators.physiology import Physiology
from simulators.scenarios import Scenario, get_scenario
from wire.vocabulary import Flag, flag_names

log = logging.getLogger(__name__)

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
PUBLISH_QOS = 1
STATUS_REPEAT_S = 10
NIBP_KEYS = ("nibp_sys", "nibp_dia", "nibp_mean")
RECONNECT_S = 2.0
PUBLISH_TIMEOUT_S = 5.0
MAX_CATCH_UP_S = 5  # further behind than this, seconds are skipped
OPTIONS = frozenset({"clear_retained", "edge_client_id"})


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


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
    """One device's MQTT client: connect with will and birth, publish, say goodbye."""

    def __init__(self, device: BedDevice, host: str, port: int, client_id: str) -> None:
        self.device = device
        self._host, self._port, self.client_id = host, port, client_id
        self._client: aiomqtt.Client | None = None
        self._next_try = 0.0
        self.connects = 0
        self.sent = 0
        self.dropped = 0

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
            await self._publish(self.device.birth())
        except aiomqtt.MqttError:
            await self._drop_client()
            raise
        self.connects += 1

    async def _publish(self, pub: Publication) -> None:
        assert self._client is not None
        await self._client.publish(pub.topic, pub.payload, qos=PUBLISH_QOS, retain=pub.retain)

    async def publish_all(self, pubs: Sequence[Publication]) -> None:
        """Publish in order; drop (and count) what cannot be sent, reconnecting at most every ``RECONNECT_S``."""
        loop = asyncio.get_running_loop()
        if self._client is None and pubs and loop.time() >= self._next_try:
            self._next_try = loop.time() + RECONNECT_S
            try:
                await self.connect()
                log.info("mqtt sim %s: reconnected", self.device.device_id)
            except aiomqtt.MqttError as exc:
                log.debug("mqtt sim %s: reconnect failed: %s", self.device.device_id, exc)
        for i, pub in enumerate(pubs):
            if self._client is None:
                self.dropped += len(pubs) - i
                return
            try:
                await self._publish(pub)
                self.sent += 1
            except aiomqtt.MqttError as exc:
                log.warning("mqtt sim %s: publish failed (%s); reconnecting every %.0f s", self.device.device_id, exc, RECONNECT_S)
                self.dropped += 1
                await self._drop_client()
                self._next_try = loop.time() + RECONNECT_S

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except aiomqtt.MqttError:
                pass

    async def close(self, clear_retained: bool) -> None:
        """Say ``offline`` (a clean disconnect does not fire the will), delete retained messages, disconnect."""
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
    ) -> None:
        self.ward = ward
        self.broker = broker
        address = parse_broker_url(broker)
        token = secrets.token_hex(4)
        self.topic_prefix = check_prefix(topic_prefix or f"teleicu-sim/{_level(ward)}-{token}")
        self.edge_client_id = edge_client_id or f"teleicu-edge-{_level(ward)}-{token}"
        self.clear_retained = clear_retained
        self.devices = [BedDevice(b, self.topic_prefix) for b in beds]
        self._connections = [
            _Connection(d, address.host, address.port, f"teleicu-sim-{token}-{_level(d.bed)}") for d in self.devices
        ]

    async def start(self) -> None:
        """Connect every device and publish its birth message; raises ``aiomqtt.MqttError`` if the broker is unreachable."""
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
        """Publish every second until cancelled or ``duration_s``; one task per device."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with asyncio.TaskGroup() as tg:
            for c in self._connections:
                tg.create_task(self._device_loop(c, t0, duration_s), name=f"mqtt-sim-{c.device.bed}")

    async def _device_loop(self, conn: _Connection, t0: float, duration_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        k = 0
        while duration_s is None or k <= duration_s:
            delay = t0 + k - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > MAX_CATCH_UP_S:
                k += int(-delay)  # physiology catches up inside publications()
                continue
            await conn.publish_all(conn.device.publications(k, wall_ms()))
            k += 1

    async def close(self) -> None:
        await asyncio.gather(*(c.close(self.clear_retained) for c in self._connections))

    def stats(self) -> dict[str, int]:
        return {
            "devices": len(self._connections),
            "connected": sum(c.connected for c in self._connections),
            "connects": sum(c.connects for c in self._connections),
            "messages_sent": sum(c.sent for c in self._connections),
            "messages_dropped": sum(c.dropped for c in self._connections),
        }


def create(
    beds: list[SimBed],
    *,
    ward: str,
    broker: str = DEFAULT_BROKER,
    topic_prefix: str | None = None,
    **options: Any,
) -> MqttSimulator:
    """MQTT devices for ``beds`` (``simulators.base`` contract). Options: ``clear_retained``, ``edge_client_id``."""
    unknown = set(options) - OPTIONS
    if unknown:
        raise TypeError(f"mqtt_sim.create: unknown options {sorted(unknown)}; known: broker, topic_prefix, {', '.join(sorted(OPTIONS))}")
    return MqttSimulator(beds, ward=ward, broker=broker, topic_prefix=topic_prefix, **options)
