"""The hub's HL7 ADT listener: an asyncio MLLP server that hands each event to the hub and ACKs what it stored.

Constructor and callback contract::

    listener = AdtListener(apply, beds={"MICU^^01": "ICU1-01"}, host="0.0.0.0", port=2575,
                           allow_from=["10.20.0.15/32"], ssl=tls_server_context(...),
                           facility="TELEICU-HUB", timezone="Asia/Kolkata", dispositions={"DAMA": "left_against_advice"},
                           max_connections=4, idle_timeout_s=300, remembered=4096)
    # or AdtListener.from_settings(AdtSettings(...), apply)
    await listener.run()        # until cancelled; ``listener.port`` is the bound port once ``listening`` is set

``apply`` is ``async def apply(event: AnyAdtEvent) -> None`` (``ingest.adt.events``):

* it returns once the hub has **durably stored** the change: only then is the
  message answered AA;
* it raises ``AdtRefused(reason, hl7_code=...)`` for an event the hub will not
  take (a discharge of a patient who is not admitted, a bed already occupied):
  the message is answered AE with ``reason`` in MSA-3 and an ERR segment
  carrying ``hl7_code`` (HL7 table 0357: 204 unknown key, 205 duplicate key,
  206 record locked, 207 application error, the default);
* any other exception (the store is down, a bug) is logged and the connection
  is closed without an ACK for that message or any after it, so the HIS
  re-sends them later: nothing unstored is ever acknowledged.

``apply`` is called for one event at a time across all connections, in the
order the messages arrived on each connection: ADT order matters (an admit
before its discharge). A message re-sent by the HIS after its AA was lost
(same ``message_key``: same sender, control id and content) is answered AA
again without calling ``apply`` a second time; the last ``remembered``
accepted messages are kept for that. A refused message is not remembered: sent
again, it is tried again. Events still carry the control id, so the hub can
be idempotent on its own too.

Who may connect: MLLP has no authentication of its own, so the listener lets
in only peers whose address is in ``allow_from`` (CIDR networks; default
loopback only, and ``host`` defaults to 127.0.0.1): anyone else is closed at
once and counted as ``not_allowed``. With ``ssl`` (see
``ingest.tls.tls_server_context``) it speaks MLLP over TLS, and with a client CA
it requires the HIS's certificate too.

Served by ``edge_agent.transports.bounded_server``, as the edge's ``tcp_listen`` is: one ``AdtParser`` per connection;
at most ``max_connections`` at once (more are closed at once, counted as
``refused``); a connection silent for ``idle_timeout_s``, or whose peer does
not take our ACKs for that long, is closed; a peer that disconnects ends only
its own connection, and a message it cut short is never ACKed (the HIS
re-sends it). Connection tasks run in a ``TaskGroup``; cancelling ``run``
closes the listening socket and every connection and re-raises
``CancelledError``. ``counters`` counts accepted, refused, not_allowed,
idle_closed, reset, messages_applied, messages_refused, repeats, apply_failed
and ``error_<code>`` for each ``AdtError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl as _ssl
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence

from ingest.adt.events import AdtError, AnyAdtEvent
from ingest.adt.parser import DEFAULT_FACILITY, MAX_MESSAGE, AdtParser
from ingest.adt.settings import DEFAULT_PORT, IDLE_TIMEOUT_S, LOOPBACK, MAX_CONNECTIONS, REMEMBERED, AdtSettings
from edge_agent.transports.bounded_server import BoundedServer, ServedListener
from ingest.tls import tls_server_context
from wire.clock import wall_ms

log = logging.getLogger(__name__)

READ_SIZE = 65536

Apply = Callable[[AnyAdtEvent], Awaitable[None]]


class AdtRefused(Exception):
    """Raised by ``apply`` for an event the hub will not take; the HIS gets AE with ``reason``."""

    def __init__(self, reason: str, *, hl7_code: int = 207) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hl7_code = hl7_code


class _Closed(Exception):
    """``apply`` failed: end this connection without acknowledging the message."""


class AdtListener(ServedListener):
    """Accepts MLLP connections from the HIS and runs one ``AdtParser`` per connection until cancelled."""

    def __init__(
        self,
        apply: Apply,
        beds: Mapping[str, str],
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        allow_from: Sequence[str] = LOOPBACK,
        ssl: _ssl.SSLContext | None = None,
        facility: str = DEFAULT_FACILITY,
        timezone: str = "UTC",
        max_message: int = MAX_MESSAGE,
        dispositions: Mapping[str, str] | None = None,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        remembered: int = REMEMBERED,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        if max_connections < 1 or not idle_timeout_s > 0 or remembered < 0:
            raise ValueError("max_connections must be >= 1, idle_timeout_s > 0 and remembered >= 0")
        self._apply = apply
        self.host, self.requested_port = host, port
        self.allow_from = [ipaddress.ip_network(n, strict=False) for n in allow_from]
        self._ssl = ssl
        self._parser_options = {
            "beds": dict(beds), "facility": facility, "timezone": timezone, "max_message": max_message,
            "dispositions": dict(dispositions or {}), "clock_ms": clock_ms,
        }  # fmt: skip
        self.new_parser()  # bad settings fail here, at start-up
        self.idle_timeout_s = float(idle_timeout_s)
        self.remembered = remembered
        self.counters: Counter[str] = Counter()
        self._done: OrderedDict[str, None] = OrderedDict()  # message keys applied, oldest first
        self._apply_lock = asyncio.Lock()
        self.server = BoundedServer(self._serve, label="HL7 ADT", max_connections=max_connections, counters=self.counters,
                                    admit=self.allowed, read_size=READ_SIZE)  # fmt: skip

    @classmethod
    def from_settings(cls, settings: AdtSettings, apply: Apply, *, clock_ms: Callable[[], int] = wall_ms) -> AdtListener:
        return cls(
            apply, settings.beds, host=settings.host, port=settings.port, allow_from=settings.allow_from,
            ssl=tls_server_context(settings.tls) if settings.tls is not None else None, facility=settings.facility, timezone=settings.timezone,
            max_message=settings.max_message, dispositions=settings.dispositions, max_connections=settings.max_connections,
            idle_timeout_s=settings.idle_timeout_s, remembered=settings.remembered, clock_ms=clock_ms,
        )  # fmt: skip

    def new_parser(self) -> AdtParser:
        return AdtParser(**self._parser_options)  # type: ignore[arg-type]

    async def run(self) -> None:
        await self.server.run(self.host, self.requested_port, ssl=self._ssl)

    def allowed(self, peer: object) -> bool:
        """Is the peer's address in ``allow_from``? (an IPv4 peer on an IPv6 socket counts as IPv4)"""
        try:
            address = ipaddress.ip_address(peer[0])  # type: ignore[index]
        except (TypeError, ValueError, IndexError):
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.allow_from)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object) -> None:
        parser = self.new_parser()
        log.info("HL7 ADT: connection from %s", peer)
        why = "closed by peer"
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout_s):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    self.counters["idle_closed"] += 1
                    why = f"idle for {self.idle_timeout_s:g} s"
                    return
                if not data:
                    return
                for item in parser.feed(data):
                    if isinstance(item, AdtError):
                        self._report(item, peer)
                    else:
                        await self._decide(parser, item)
                        await self._send(writer, parser.bytes_to_send())  # each ACK as soon as it is known
                await self._send(writer, parser.bytes_to_send())
        except _Closed as exc:
            why = str(exc)
            with contextlib.suppress(OSError):  # the ACKs of the messages before it (TimeoutError is an OSError)
                await self._send(writer, parser.bytes_to_send())
        except TimeoutError:
            self.counters["idle_closed"] += 1
            why = f"peer took no data for {self.idle_timeout_s:g} s"
        except (ConnectionError, OSError) as exc:
            self.counters["reset"] += 1
            why = f"connection lost: {exc}"
        finally:
            for item in parser.eof():
                self._report(item, peer)
            writer.close()
            log.info("HL7 ADT: connection from %s ended (%s)", peer, why)
            with contextlib.suppress(Exception):  # not CancelledError: that still propagates
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def _decide(self, parser: AdtParser, event: AnyAdtEvent) -> None:
        """Apply one event (one at a time, across connections) and tell the parser how its ACK reads."""
        async with self._apply_lock:
            if event.message_key in self._done:
                self._done.move_to_end(event.message_key)
                self.counters["repeats"] += 1
                log.info("HL7 ADT: message %s was applied before: acknowledged again, not applied twice", event.control_id)
                parser.accepted(event.event_id)
                return
            try:
                await self._apply(event)
            except AdtRefused as exc:
                self.counters["messages_refused"] += 1
                log.warning("HL7 ADT: %s %s refused by the hub: %s", type(event).__name__, event.control_id, exc.reason)
                parser.refused(event.event_id, exc.reason, exc.hl7_code)
                return
            except Exception as exc:  # noqa: BLE001 - anything else: not stored, so never ACKed; the HIS re-sends
                self.counters["apply_failed"] += 1
                log.exception("HL7 ADT: applying %s %s failed; closing the connection unacknowledged", type(event).__name__, event.control_id)
                raise _Closed(f"apply failed for {event.control_id}: {type(exc).__name__}") from exc
            self.counters["messages_applied"] += 1
            if self.remembered:
                self._done[event.message_key] = None
                while len(self._done) > self.remembered:
                    self._done.popitem(last=False)
            parser.accepted(event.event_id)

    def _report(self, error: AdtError, peer: object) -> None:
        self.counters[f"error_{error.code}"] += 1
        level = logging.DEBUG if error.code == "framing" else logging.WARNING
        log.log(level, "HL7 ADT from %s: %s %s: %s", peer, error.code, error.control_id, error.detail)

    async def _send(self, writer: asyncio.StreamWriter, out: bytes) -> None:
        if out:
            writer.write(out)
            async with asyncio.timeout(self.idle_timeout_s):
                await writer.drain()
