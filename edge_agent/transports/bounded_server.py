"""A TCP server that serves at most ``max_connections`` connections at once, each a task in one ``TaskGroup``.

The shell both MLLP listeners share: the edge's HL7 PCD-01 transport
(``tcp_listen``) and the hub's HL7 ADT receiver (``ingest.adt.listener``). It
binds (optionally retrying with backoff while the address is taken), lets in
only the peers ``admit`` accepts (counted ``not_allowed``), closes at once a
connection beyond the limit (counted ``refused``), runs ``serve(reader,
writer, peer)`` for each of the others (counted ``accepted``), and on
cancellation closes the listening socket and every connection, then
re-raises ``CancelledError``. What a connection carries is ``serve``'s affair.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections import Counter
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter, object], Awaitable[None]]


class BoundedServer:
    def __init__(self, serve: Serve, *, label: str, max_connections: int, counters: Counter[str],
                 admit: Callable[[object], bool] | None = None, read_size: int = 65536) -> None:  # fmt: skip
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self._serve = serve
        self.label = label  # names the server in its log lines: "device gw-1", "HL7 ADT"
        self.max_connections = max_connections
        self.counters = counters  # the owner's: accepted, refused, not_allowed, bind_failures
        self._admit = admit
        self._read_size = read_size
        self.port: int | None = None  # the bound port, once listening
        self.listening = asyncio.Event()
        self._active: set[asyncio.StreamWriter] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._stopping = False

    @property
    def active(self) -> int:
        return len(self._active)

    async def run(self, host: str, port: int, *, ssl: _ssl.SSLContext | None = None,
                  bind_retry: tuple[float, float] | None = None) -> None:  # fmt: skip
        """Serve until cancelled; ``bind_retry`` (first, longest delay in s): retry a bind that fails, else raise."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            server = await self._bind(host, port, ssl, bind_retry)
            try:
                self.port = server.sockets[0].getsockname()[1]
                log.info("%s: listening on %s:%d", self.label, host, self.port)
                self.listening.set()
                await server.serve_forever()
            finally:
                self._stopping = True
                server.close()
                for writer in list(self._active):
                    writer.close()
                self.listening.clear()
                # leaving the TaskGroup cancels and awaits the connection tasks

    async def _bind(self, host: str, port: int, ssl: _ssl.SSLContext | None, retry: tuple[float, float] | None) -> asyncio.Server:
        delay = retry[0] if retry else 0.0
        while True:
            try:
                return await asyncio.start_server(self._accepted, host, port, limit=self._read_size, ssl=ssl)
            except OSError as exc:
                if retry is None:
                    raise
                self.counters["bind_failures"] += 1
                level = logging.ERROR if self.counters["bind_failures"] == 1 else logging.DEBUG
                log.log(level, "%s: cannot listen on %s:%s: %s; retrying", self.label, host, port, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, retry[1])

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self._admit is not None and not self._admit(peer):
            self.counters["not_allowed"] += 1
            log.warning("%s: closed a connection from %s, which is not allowed to connect", self.label, peer)
            writer.close()
            return
        if self._stopping or self._tg is None or len(self._active) >= self.max_connections:
            self.counters["refused"] += 1
            log.warning("%s: refused connection from %s (%d connections open)", self.label, peer, len(self._active))
            writer.close()
            return
        self._active.add(writer)
        self.counters["accepted"] += 1
        try:
            self._tg.create_task(self._one(reader, writer, peer))
        except RuntimeError:  # the task group is shutting down
            self._active.discard(writer)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object) -> None:
        try:
            await self._serve(reader, writer, peer)
        finally:
            self._active.discard(writer)


class ServedListener:
    """What a listener built on a ``BoundedServer`` (its ``server``) shows of it."""

    server: BoundedServer

    @property
    def port(self) -> int | None:
        """The bound port, once listening."""
        return self.server.port

    @property
    def listening(self) -> asyncio.Event:
        return self.server.listening

    @property
    def active(self) -> int:
        return self.server.active
