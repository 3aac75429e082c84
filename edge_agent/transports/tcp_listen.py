"""Thin asyncio transport for devices that connect to the edge agent over TCP (HL7/MLLP gateways).

``run_tcp_listen_device`` listens on the device's ``listen`` setting
(``"host:port"``; ``"[::1]:2575"`` for IPv6; ``"0.0.0.0:2575"`` for every
interface) and builds one parser per accepted connection
(``spec.parser(beds=dev.beds, device=dev.id, **dev.options)``), since stream
state such as MLLP framing belongs to one connection. Every chunk read is fed
to that parser, its events go to ``route``, and ``bytes_to_send()`` (the ACKs)
is written back at once; it is also polled every ``POLL_S`` seconds, as the
driver contract promises.

Limits: at most ``max_connections`` connections at once (further ones are
accepted and closed at once, and counted); a connection with nothing received
for ``idle_timeout_s`` (or whose peer does not take our bytes for that long) is
closed. Reads are ``READ_SIZE`` bytes at most; the parser bounds its own
buffers. A peer that disconnects or resets only ends its own connection; an
incomplete message it leaves is reported by the parser's ``eof()`` (if it has
one). The optional device settings ``max_connections`` and ``idle_timeout_s``
override the defaults.

No link status is reported (unlike the serial and MQTT transports, see
``edge_agent.transports``): an HL7 sender may open a connection per message
or batch and close it after the ACK, so a closed or absent connection is
normal, not a lost device. A sender that goes quiet shows at the hub as "no
data" for its beds.

If the address cannot be bound (port in use), the error is logged and binding
is retried with backoff, so the other devices of the agent keep running.
Cancellation closes the listening socket and every connection, then re-raises
``CancelledError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field

from edge_agent.transports.bounded_server import BoundedServer, ServedListener
from wire.config import ConfigModel

if TYPE_CHECKING:
    from edge_agent.config import DeviceConfig
    from edge_agent.drivers.base import DriverSpec, Parser
    from edge_agent.transports import Route

log = logging.getLogger(__name__)

READ_SIZE = 65536
MAX_CONNECTIONS = 16
IDLE_TIMEOUT_S = 300.0
POLL_S = 1.0
BIND_RETRY_INITIAL_S = 1.0
BIND_RETRY_MAX_S = 30.0


def parse_listen(text: Any) -> tuple[str, int]:
    """``"host:port"`` -> (host, port); ``[v6]:port`` for IPv6. Raises ``ValueError`` with the reason."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"listen must be 'host:port', got {text!r}")
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port_text.isascii() or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen must be 'host:port' with a port 0-65535, got {text!r}")
    return host, int(port_text)


def _listen(text: str) -> str:
    parse_listen(text)  # raises ValueError with the reason
    return text


class TcpListenSettings(ConfigModel):
    """The ``tcp_listen`` transport's device settings."""

    listen: Annotated[str, AfterValidator(_listen)]  # "host:port"
    max_connections: Annotated[int, Field(ge=1)] = MAX_CONNECTIONS
    idle_timeout_s: Annotated[float, Field(gt=0)] = IDLE_TIMEOUT_S


class TcpListener(ServedListener):
    """Accepts connections on one address and runs one parser per connection until cancelled."""

    def __init__(
        self,
        dev: DeviceConfig,
        spec: DriverSpec,
        route: Route,
        *,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.host, self.requested_port = parse_listen(dev.settings.get("listen"))
        if max_connections < 1 or not idle_timeout_s > 0:
            raise ValueError("max_connections must be >= 1 and idle_timeout_s > 0")
        self.dev = dev
        self.spec = spec
        self.route = route
        self.idle_timeout_s = float(idle_timeout_s)
        self.counters: Counter[str] = Counter()  # accepted, refused, idle_closed, reset, bind_failures
        self.server = BoundedServer(self._serve, label=f"device {dev.id}", max_connections=max_connections,
                                    counters=self.counters, read_size=READ_SIZE)  # fmt: skip

    def new_parser(self) -> Parser:
        return self.spec.parser(beds=self.dev.beds, device=self.dev.id, **self.dev.options)

    async def run(self) -> None:
        self.new_parser()  # bad parser options fail here, at start-up, not at the first connection
        await self.server.run(self.host, self.requested_port, bind_retry=(BIND_RETRY_INITIAL_S, BIND_RETRY_MAX_S))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object) -> None:
        parser = self.new_parser()
        loop = asyncio.get_running_loop()
        last_rx = loop.time()
        log.info("device %s: connection from %s", self.dev.id, peer)
        why = "closed by peer"
        try:
            while True:
                try:
                    async with asyncio.timeout(POLL_S):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    await self._send(writer, parser.bytes_to_send())
                    if loop.time() - last_rx >= self.idle_timeout_s:
                        self.counters["idle_closed"] += 1
                        why = f"idle for {self.idle_timeout_s:g} s"
                        return
                    continue
                if not data:
                    return
                last_rx = loop.time()
                self.route(parser.feed(data))
                await self._send(writer, parser.bytes_to_send())
        except TimeoutError:
            self.counters["idle_closed"] += 1
            why = f"peer took no data for {self.idle_timeout_s:g} s"
        except (ConnectionError, OSError) as exc:
            self.counters["reset"] += 1
            why = f"connection lost: {exc}"
        finally:
            eof = getattr(parser, "eof", None)
            if eof is not None:
                self.route(eof())
            writer.close()
            log.info("device %s: connection from %s ended (%s)", self.dev.id, peer, why)
            with contextlib.suppress(Exception):  # not CancelledError: that still propagates
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def _send(self, writer: asyncio.StreamWriter, out: bytes) -> None:
        if out:
            writer.write(out)
            async with asyncio.timeout(self.idle_timeout_s):
                await writer.drain()


async def run_tcp_listen_device(dev: DeviceConfig, spec: DriverSpec, route: Route) -> None:
    """The ``tcp_listen`` transport: listen on ``dev.settings["listen"]``, one parser per connection."""
    await TcpListener(
        dev,
        spec,
        route,
        max_connections=int(dev.settings.get("max_connections", MAX_CONNECTIONS)),
        idle_timeout_s=float(dev.settings.get("idle_timeout_s", IDLE_TIMEOUT_S)),
    ).run()
