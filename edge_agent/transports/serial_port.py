"""Thin asyncio transport for serial ports: bytes from a tty to a callback, and back.

pyserial opens and configures the port (baud, framing, raw mode, non-blocking);
reading and writing then go straight to its file descriptor through the event
loop's ``add_reader``/``add_writer``, so no thread is needed per port. All
protocol work stays in the driver's sans-I/O parser.

A port that cannot be opened, fails (EIO) or reaches end of file (unplugged
USB adapter, closed pty) is logged, closed and reopened after
``reopen_delay_s``, for ever, until the task is cancelled. Cancellation removes
the reader/writer, closes the port and propagates ``CancelledError``.

Settings of a device entry (``SerialSettings``): ``port`` (required), ``baud``
(default: the driver's) and ``serial`` (pyserial line settings over the
driver's own, ``SerialLine``).

Link status: ``run_serial_device`` reports the port through ``route``
(``edge_agent.transports.LinkReporter``): ``disconnected`` with detail
``link`` for the device's bed when the port is lost, or when the first attempt
to open it fails (a monitor not plugged in at start-up leaves its bed as
unwatched as one unplugged later), and ``ok`` when it opens; once per change,
not per retry, and nothing on cancellation. A parser with ``eof()`` is told
when the port is lost, so a frame cut short is reported.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import termios
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

import serial
from pydantic import Field

from edge_agent.transports import LinkReporter
from wire.config import ConfigModel, Expect

if TYPE_CHECKING:
    from edge_agent.config import DeviceConfig
    from edge_agent.drivers.base import DriverSpec
    from edge_agent.transports import Route

log = logging.getLogger(__name__)

READ_SIZE = 65536
MAX_PENDING_WRITE = 64 * 1024  # bytes queued for the device before writes are dropped


class SerialLine(ConfigModel):
    """pyserial line settings a device entry may set (``serial:``), over its driver's own."""

    parity: Literal["N", "E", "O", "M", "S"] | None = None
    bytesize: Literal[5, 6, 7, 8] | None = None
    stopbits: Literal[1, 1.5, 2] | None = None
    rtscts: bool | None = None
    dsrdtr: bool | None = None
    xonxoff: bool | None = None


class SerialSettings(ConfigModel):
    """The ``serial`` transport's device settings."""

    port: Annotated[str, Field(min_length=1, max_length=1024), Expect("a device path or URL")]
    baud: Annotated[int, Field(ge=50, le=4_000_000)] | None = None  # None: the driver's default_baud
    serial: SerialLine | None = None


class PortLost(Exception):
    """The open port failed or reached end of file."""


class SerialPort:
    """One serial device: ``await run()`` reads for ever; ``write()`` queues bytes to send.

    ``on_bytes`` is called on the event loop with each chunk read. It must not
    raise: an exception from it stops ``run()`` (a parser bug is not a line fault).
    ``on_state(True)`` is called when the port opens, ``on_state(False)`` when
    it is lost or when the first attempt to open it fails (not per retry, not
    on cancellation, not when ``on_bytes`` raised).
    ``serial_options`` go to ``serial.Serial`` (``parity``, ``rtscts``, ...).
    """

    def __init__(
        self,
        port: str,
        baud: int,
        on_bytes: Callable[[bytes], None],
        *,
        reopen_delay_s: float = 1.0,
        on_state: Callable[[bool], None] | None = None,
        **serial_options: Any,
    ) -> None:
        self.port = port
        self.baud = baud
        self._on_bytes = on_bytes
        self._on_state = on_state
        self.reopen_delay_s = reopen_delay_s
        self._serial_options = serial_options
        self._serial: serial.Serial | None = None
        self._fd: int | None = None
        self._out = bytearray()
        self._writing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lost: asyncio.Future[str] | None = None
        self.bytes_read = 0
        self.bytes_written = 0
        self.bytes_dropped = 0  # writes refused: port closed or queue full
        self.opens = 0
        self.open_failures = 0  # consecutive failed attempts to open

    @property
    def connected(self) -> bool:
        return self._fd is not None

    async def run(self) -> None:
        """Open, read until the port is lost, wait, reopen - until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                ser = serial.Serial(self.port, self.baud, timeout=0, write_timeout=0, **self._serial_options)
            except (serial.SerialException, OSError, ValueError, termios.error) as exc:
                # termios.error: pyserial configures the line with tcsetattr, which fails (EINVAL) on a
                # pty whose other end has just gone; it is one more port that cannot be opened yet
                # say it once per outage, not every retry
                level = logging.WARNING if self.open_failures == 0 else logging.DEBUG
                log.log(level, "serial %s: cannot open: %s; retrying every %.1f s", self.port, exc, self.reopen_delay_s)
                if self.opens == 0 and self.open_failures == 0 and self._on_state:
                    self._on_state(False)  # never opened: as unwatched as a port that was lost
                self.open_failures += 1
                await asyncio.sleep(self.reopen_delay_s)
                continue
            self.open_failures = 0
            lost: asyncio.Future[str] = loop.create_future()
            try:
                self._attach(loop, ser, lost)
                reason = await lost
            finally:
                self._detach(loop)
            log.warning("serial %s: %s; reopening in %.1f s", self.port, reason, self.reopen_delay_s)
            if self._on_state:
                self._on_state(False)
            await asyncio.sleep(self.reopen_delay_s)

    def write(self, data: bytes) -> int:
        """Queue ``data`` for the device; returns the bytes accepted (0 when closed or full)."""
        if self._fd is None or len(self._out) + len(data) > MAX_PENDING_WRITE:
            self.bytes_dropped += len(data)
            return 0
        self._out += data
        self._flush()
        return len(data)

    # -- internals ------------------------------------------------------------

    def _attach(self, loop: asyncio.AbstractEventLoop, ser: serial.Serial, lost: asyncio.Future[str]) -> None:
        self._serial = ser
        self._fd = ser.fileno()
        self._lost = lost
        self._loop = loop
        self.opens += 1
        loop.add_reader(self._fd, self._readable)
        log.info("serial %s: open at %d baud", self.port, self.baud)
        if self._on_state:
            self._on_state(True)

    def _detach(self, loop: asyncio.AbstractEventLoop) -> None:
        fd, ser = self._fd, self._serial
        self._fd = None
        self._serial = None
        self._out.clear()
        self._writing = False
        if fd is not None:
            loop.remove_reader(fd)
            loop.remove_writer(fd)
        if ser is not None:
            try:
                ser.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("serial %s: close: %s", self.port, exc)

    def _fail(self, why: str | Exception) -> None:
        """Stop watching the descriptor at once and wake ``run()``, which closes the port."""
        loop, lost = self._loop, self._lost
        assert loop is not None and lost is not None
        if self._fd is not None:
            loop.remove_reader(self._fd)
            loop.remove_writer(self._fd)
            self._writing = False
        if lost.done():
            return
        if isinstance(why, Exception):
            lost.set_exception(why)
        else:
            lost.set_result(why)

    def _readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(f"read error: {errno.errorcode.get(exc.errno or 0, exc.errno)} {exc.strerror}")
            return
        if not data:
            self._fail("end of file (device gone)")
            return
        self.bytes_read += len(data)
        try:
            self._on_bytes(data)
        except Exception as exc:  # noqa: BLE001 - a bug in the consumer: stop run() with it
            self._fail(exc)

    def _flush(self) -> None:
        fd, loop = self._fd, self._loop
        if fd is None or loop is None:
            return
        while self._out:
            try:
                n = os.write(fd, self._out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._fail(f"write error: {exc.strerror}")
                return
            self.bytes_written += n
            del self._out[:n]
        if self._out and not self._writing:
            loop.add_writer(fd, self._flush)
            self._writing = True
        elif not self._out and self._writing:
            loop.remove_writer(fd)
            self._writing = False


async def read_serial(
    port: str,
    baud: int,
    on_bytes: Callable[[bytes], None],
    *,
    reopen_delay_s: float = 1.0,
    **serial_options: Any,
) -> None:
    """Read ``port`` for ever, handing every chunk to ``on_bytes``; reopen after loss.

    Returns only by cancellation (``CancelledError`` propagates) or when
    ``on_bytes`` raises. Use ``SerialPort`` directly to also write.
    """
    await SerialPort(port, baud, on_bytes, reopen_delay_s=reopen_delay_s, **serial_options).run()


async def run_serial_device(dev: DeviceConfig, spec: DriverSpec, route: Route) -> None:
    """The ``serial`` transport: one single-bed device on one port, parser fed from it, replies written back,
    the port's state reported as the device's link status."""
    parser = spec.parser(bed=dev.bed, device=dev.id, **dev.options)
    port: SerialPort
    link = LinkReporter(dev, route)

    def on_bytes(data: bytes) -> None:
        route(parser.feed(data))
        out = parser.bytes_to_send()
        if out:
            port.write(out)

    def on_state(up: bool) -> None:
        eof = getattr(parser, "eof", None)
        if not up and eof is not None and link.up:
            route(eof())  # a frame cut short by the loss
        link(up)

    options = dict(spec.serial_options) | dict(dev.settings.get("serial", {}))
    port = SerialPort(dev.settings["port"], int(dev.settings.get("baud", spec.default_baud)), on_bytes,
                      on_state=on_state, **options)  # fmt: skip
    async with asyncio.TaskGroup() as tg:
        tg.create_task(port.run())
        while True:  # let the parser speak on its own schedule (requests, keep-alives)
            await asyncio.sleep(1.0)
            out = parser.bytes_to_send()
            if out:
                port.write(out)
