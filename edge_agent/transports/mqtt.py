"""Thin asyncio MQTT transport (aiomqtt): broker messages to a driver's parser, for ever.

``run_mqtt_device(dev, spec, route)`` builds the driver's parser with
``spec.parser(beds=dev.beds, device=dev.id, topic_prefix=..., **dev.options)``,
connects to ``dev.settings["broker"]`` (``mqtt://host[:port]``, port 1883 by
default), subscribes at QoS 1 to the parser's ``topic_filters`` (every topic
under the prefix if it has none) and hands every message to
``parser.feed_message(topic, payload)``, the events to ``route``. All protocol
work stays in the parser.

Delivery guarantee
==================

The client speaks MQTT 5 with a stable client id (setting ``client_id``,
default ``teleicu-<device id>``), ``clean_start=False`` and a session expiry of
``SESSION_EXPIRY_S`` (1 h): the broker keeps the subscriptions and queues the
QoS 1 messages published while the agent is away (a restart, a broker or
network outage) and delivers them when it comes back. Limits:

* only messages *published at QoS 1 or 2* are queued (``mosquitto_pub -q 1``);
  QoS 0 messages sent while the agent is away are lost;
* the broker queues a bounded number per session (Mosquitto's
  ``max_queued_messages``, 1000 by default: about 2 minutes of 8 beds at 1 Hz);
  raise it for longer outages;
* the session outlives a broker restart only if the broker persists sessions
  (Mosquitto: ``persistence true``), and is dropped after ``SESSION_EXPIRY_S``
  without the agent;
* the client acknowledges a message (PUBACK) as soon as it is in this process's
  queue (at most ``MAX_QUEUED_MESSAGES`` messages and ``MAX_QUEUED_BYTES`` of
  payload): what is in memory when the agent process dies is lost, as is
  anything the full queue refused (counted in ``MqttDevice.dropped`` and logged
  as an error); what the queue holds when the connection drops or the task is
  cancelled is still handed to the parser;
* the client tells the broker its MQTT 5 Maximum Packet Size
  (``MAX_PACKET_BYTES``, 256 KiB): the broker drops bigger messages instead of
  sending them (a smaller over-limit message reaches the parser, which reports it);
* two agents must never share a client id: the broker would disconnect one
  whenever the other connects.

A lost broker is retried with exponential backoff (``backoff_initial_s``
doubling to ``backoff_max_s``, with jitter), for ever, until the task is
cancelled; cancellation disconnects cleanly (the session is kept) and
re-raises ``CancelledError``.

Link status
===========

The agent's own connection to the broker is the device's link, reported
through ``route`` (``edge_agent.transports.LinkReporter``): ``disconnected``
with detail ``link`` for every bed of the device entry when the connection is
lost or the first attempt to connect fails, ``ok`` once it is connected and
subscribed again; once per change, not per retry, and nothing on cancellation.
It is not the *presence* of the devices publishing to the broker (their last
will, which the ``mqtt_json`` parser reports with detail ``presence`` under the
publishing device's id): with the broker gone the agent cannot know whether
they are still there, only that nothing of theirs can reach it. What they
publish meanwhile reaches the agent after the outage only if they hold it
(``simulators.mqtt_sim`` does: a bounded outbox per device).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import AfterValidator, Field

from edge_agent.drivers.mqtt_json import DEFAULT_PREFIX, check_prefix
from edge_agent.transports import LinkReporter
from wire.config import ConfigModel

if TYPE_CHECKING:
    from edge_agent.config import DeviceConfig
    from edge_agent.drivers.base import DriverSpec
    from edge_agent.transports import Route

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
SUBSCRIBE_QOS = 1
SESSION_EXPIRY_S = 3600
KEEPALIVE_S = 15  # a silent network partition is noticed within 1.5x this
MAX_QUEUED_MESSAGES = 4096  # received but not yet parsed; beyond this the client drops (and counts)
MAX_QUEUED_BYTES = 16 * 1024 * 1024  # the same queue's payload bytes
MAX_PACKET_BYTES = 256 * 1024  # MQTT 5 Maximum Packet Size: the broker drops bigger messages for us


class BrokerUrlError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host[:port]`` -> ``BrokerAddress``; raises ``BrokerUrlError`` for anything else."""
    if not isinstance(url, str):
        raise BrokerUrlError(f"broker must be a URL like mqtt://host:1883, got {url!r}")
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise BrokerUrlError(f"broker {url!r}: bad port") from None
    if parts.scheme != "mqtt" or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise BrokerUrlError(f"broker must be mqtt://host[:port] (no path, credentials go in username/password), got {url!r}")
    return BrokerAddress(parts.hostname, port)


def _broker(url: str) -> str:
    parse_broker_url(url)  # raises BrokerUrlError (a ValueError) with the reason
    return url


class MqttSettings(ConfigModel):
    """The ``mqtt`` transport's device settings."""

    broker: Annotated[str, AfterValidator(_broker)]  # mqtt://host[:port]
    topic_prefix: Annotated[str, AfterValidator(check_prefix)] = DEFAULT_PREFIX
    client_id: Annotated[str, Field(min_length=1)] | None = None  # None: teleicu-<device id>
    username: str | None = None
    password: str | None = None


def _size(item: aiomqtt.Message) -> int:
    return len(item.payload) if isinstance(item.payload, bytes | bytearray) else 0


def _bounded_queue(owner: MqttDevice) -> type[asyncio.Queue[aiomqtt.Message]]:
    """aiomqtt's incoming queue class: bounded in messages (``maxsize``) and payload bytes, counting what it refuses."""

    class BoundedQueue(asyncio.Queue[aiomqtt.Message]):
        queued_bytes = 0

        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            owner._received = self  # this connection's queue: run() drains it when the connection ends

        def put_nowait(self, item: aiomqtt.Message) -> None:
            try:
                if self.queued_bytes + _size(item) > MAX_QUEUED_BYTES:
                    raise asyncio.QueueFull
                super().put_nowait(item)
            except asyncio.QueueFull:
                owner.dropped += 1
                log.error("mqtt %s: incoming queue full, message on %s dropped (%d so far)", owner.name, item.topic, owner.dropped)
                raise

        def _put(self, item: aiomqtt.Message) -> None:
            self.queued_bytes += _size(item)
            super()._put(item)  # type: ignore[misc]

        def _get(self) -> aiomqtt.Message:
            item: aiomqtt.Message = super()._get()  # type: ignore[misc]
            self.queued_bytes -= _size(item)
            return item

    return BoundedQueue


class MqttDevice:
    """One broker subscription feeding one parser. ``await run()`` until cancelled.

    ``on_message(topic, payload)`` is called for each message, in order. It must
    not raise: an exception from it stops ``run()`` (a parser bug is not a
    network fault). ``connected`` is set while subscribed. ``on_state(True)``
    is called once subscribed, ``on_state(False)`` after every lost connection
    or failed attempt to connect (not on cancellation, not when ``on_message``
    raised).
    """

    def __init__(
        self,
        name: str,
        broker: BrokerAddress,
        topic_filters: tuple[str, ...],
        on_message: Callable[[str, bytes], None],
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 15.0,
        session_expiry_s: int = SESSION_EXPIRY_S,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self.name = name
        self._on_state = on_state
        self.broker = broker
        self.topic_filters = topic_filters
        self._on_message = on_message
        self.client_id = client_id
        self._username = username
        self._password = password
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.session_expiry_s = session_expiry_s
        self.connected = asyncio.Event()
        self.connects = 0
        self.failures = 0  # consecutive failed or lost connections
        self.messages = 0
        self.dropped = 0
        self._received: asyncio.Queue[aiomqtt.Message] | None = None

    def _client(self) -> aiomqtt.Client:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        props.MaximumPacketSize = MAX_PACKET_BYTES
        return aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            identifier=self.client_id,
            username=self._username,
            password=self._password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            keepalive=KEEPALIVE_S,
            queue_type=_bounded_queue(self),
            max_queued_incoming_messages=MAX_QUEUED_MESSAGES,
        )

    async def run(self) -> None:
        delay = self.backoff_initial_s
        while True:
            if cancellation_pending():  # a cancellation lost inside the client library still ends the loop
                raise asyncio.CancelledError
            try:
                async with self._client() as client:
                    for topic in self.topic_filters:
                        raise_if_cancelled()  # the connect, or the last subscribe, may have swallowed it
                        granted = await client.subscribe(topic, qos=SUBSCRIBE_QOS)
                        refused = [rc for rc in granted if getattr(rc, "is_failure", False)]
                        if refused:
                            raise aiomqtt.MqttError(f"subscription to {topic} refused: {refused[0]}")
                    raise_if_cancelled()
                    self.connects += 1
                    log.info("mqtt %s: connected to %s as %s, subscribed to %s", self.name, self.broker, self.client_id, ", ".join(self.topic_filters))
                    self.failures = 0
                    delay = self.backoff_initial_s
                    self.connected.set()
                    if self._on_state:
                        self._on_state(True)
                    async for message in client.messages:
                        self._deliver(message)
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                self._drain_received()
                if cancellation_pending():  # the error came while the cancellation unwound the client
                    raise asyncio.CancelledError from exc
                # say it once per outage, not every retry
                level = logging.WARNING if self.failures == 0 else logging.DEBUG
                log.log(level, "mqtt %s: broker %s: %s; retrying with backoff", self.name, self.broker, exc)
                self.failures += 1
                if self._on_state:
                    self._on_state(False)
            except asyncio.CancelledError:
                try:
                    self._drain_received()
                except Exception:  # the cancellation must go on; a parser bug is still reported
                    log.exception("mqtt %s: handing on the last received messages failed", self.name)
                raise
            finally:
                self.connected.clear()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max_s)

    def _deliver(self, message: aiomqtt.Message) -> None:
        self.messages += 1
        self._on_message(message.topic.value, _payload_bytes(message.payload))

    def _drain_received(self) -> None:
        """Hand on what the ended connection had received but not yet delivered.

        The client acknowledged those messages on receipt, so the broker will not
        send them again; aiomqtt's iterator stops at a disconnection even when its
        queue still holds some (a broker that sends and then goes away at once).
        """
        queue, self._received = self._received, None
        while queue is not None and not queue.empty():
            self._deliver(queue.get_nowait())


def cancellation_pending() -> bool:
    """Has this task been asked to stop? A cancellation can get lost inside the client library: Python
    3.11's ``asyncio.wait_for`` (which aiomqtt uses for every operation) drops it when the awaited operation
    completes at the same moment, and an error raised while the cancellation unwinds ``async with client``
    (a disconnect timing out) replaces the ``CancelledError``. A retry loop must check this, or it would
    swallow the cancellation and retry for ever."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def raise_if_cancelled() -> None:
    """After an awaited client call that returned normally: end the task if it was cancelled meanwhile.
    Without this, a task whose cancellation the library swallowed goes on to wait for messages for ever."""
    if cancellation_pending():
        raise asyncio.CancelledError


def _payload_bytes(payload: Any) -> bytes:
    """aiomqtt hands paho's payload through; received messages carry bytes, but be exact about it."""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def device_from_config(
    dev: DeviceConfig, topic_filters: tuple[str, ...], on_message: Callable[[str, bytes], None], **kwargs: Any
) -> MqttDevice:
    s = dev.settings
    return MqttDevice(
        dev.id,
        parse_broker_url(s["broker"]),
        topic_filters,
        on_message,
        client_id=str(s.get("client_id") or f"teleicu-{dev.id}"),
        username=s.get("username"),
        password=s.get("password"),
        **kwargs,
    )


async def run_mqtt_device(dev: DeviceConfig, spec: DriverSpec, route: Route, **kwargs: Any) -> None:
    """The ``mqtt`` transport: one multi-bed device (a topic tree on a broker) feeding its parser,
    the broker connection reported as the device's link status on every bed it serves.

    ``kwargs`` go to ``MqttDevice`` (``backoff_initial_s``, ``backoff_max_s``, ``session_expiry_s``).
    """
    prefix = str(dev.settings.get("topic_prefix") or DEFAULT_PREFIX)
    parser: Any = spec.parser(beds=dev.beds, device=dev.id, topic_prefix=prefix, **dev.options)
    filters = tuple(getattr(parser, "topic_filters", (f"{prefix}/#",)))

    def on_message(topic: str, payload: bytes) -> None:
        route(parser.feed_message(topic, payload))

    await device_from_config(dev, filters, on_message, on_state=LinkReporter(dev, route), **kwargs).run()
