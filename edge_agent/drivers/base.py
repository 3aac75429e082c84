"""The driver plug-in contract.

A driver is a sans-I/O parser class plus the name of the transport that carries
its bytes (``edge_agent.transports``). The transport builds the parser:

    single-bed device (a serial monitor):  spec.parser(bed="A-01", device="mon-1", **options)
    multi-bed device (an HL7 gateway, an MQTT topic tree):
                                           spec.parser(beds={"ICU^^BED04": "A-04"}, device="gw-1", **options)

and then, for every chunk of bytes it receives::

    events = parser.feed(chunk)          # -> list[DriverEvent]
    to_send = parser.bytes_to_send()     # requests, ACKs: written back to the device

``options`` are the device entry's ``options:`` mapping. Each driver declares
them as a model (``DriverSpec.options``, a ``wire.config.ConfigModel``): the
edge configuration is checked against it when the file is loaded, and the
parser validates the same mapping with ``parser_options`` when it is built.

The transport also calls ``bytes_to_send()`` about once a second, so a parser
can re-send a request on its own schedule (it keeps its own clock).
``feed`` never raises on bad input: garbage becomes ``ParseError`` events and
parsing resumes at the next frame boundary. Every internal buffer is bounded.
A stream transport that loses its connection calls the parser's optional
``eof() -> list[DriverEvent]`` so a message cut short is reported, not lost silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from edge_agent.events import DriverEvent, ParseError
from wire.config import ConfigModel, validate

O = TypeVar("O", bound=ConfigModel)


class Parser(Protocol):
    def feed(self, data: bytes) -> list[DriverEvent]: ...

    def bytes_to_send(self) -> bytes: ...


ParserFactory = Callable[..., Parser]


class NoOptions(ConfigModel):
    """The options of a driver that has none: any key under ``options:`` is refused."""


def parser_options(model: type[O], options: Mapping[str, Any], driver: str) -> O:
    """A parser's keyword options checked against its driver's model.

    Raises ``wire.config.ConfigError`` (a ``ValueError``) naming the driver, the option and the problem.
    """
    return validate(model, dict(options), driver)


class ErrorAccounting:
    """Bad-input accounting shared by the byte-stream parsers.

    ``_error`` emits a ``ParseError`` and counts it per code (``errors``) and in
    ``discarded_bytes``. Bytes outside any frame go to ``_add_garbage``, which
    reports them in runs of ``GARBAGE_CHUNK`` bytes (so a stream of noise is
    reported while it lasts, not once at its end); ``_flush_garbage`` reports the
    rest when the next frame starts. The parser initialises ``errors``,
    ``discarded_bytes`` and ``_garbage`` and names its frames in ``GARBAGE_DETAIL``.
    """

    GARBAGE_DETAIL: ClassVar[str] = "bytes outside a frame"
    GARBAGE_CHUNK: ClassVar[int] = 4096
    errors: Counter[str]
    discarded_bytes: int
    _garbage: int

    def _error(self, events: list[DriverEvent], code: str, detail: str, discarded: int) -> None:
        self.errors[code] += 1
        self.discarded_bytes += discarded
        events.append(ParseError(code=code, detail=detail, discarded=discarded))

    def _add_garbage(self, count: int, events: list[DriverEvent]) -> None:
        self._garbage += count
        while self._garbage >= self.GARBAGE_CHUNK:
            self._garbage -= self.GARBAGE_CHUNK
            self._error(events, "framing", self.GARBAGE_DETAIL, self.GARBAGE_CHUNK)

    def _flush_garbage(self, events: list[DriverEvent]) -> None:
        if self._garbage:
            self._error(events, "framing", self.GARBAGE_DETAIL, self._garbage)
            self._garbage = 0


@dataclass(frozen=True, slots=True)
class DriverSpec:
    name: str
    transport: str  # a key of edge_agent.transports.TRANSPORTS: "serial", "tcp_listen", "mqtt"
    parser: ParserFactory
    multi_bed: bool = False  # one device instance serves several beds (mapping given in the config)
    default_baud: int = 115200
    serial_options: Mapping[str, Any] = field(default_factory=dict)  # parity, rtscts... for pyserial
    description: str = ""
    options: type[ConfigModel] = NoOptions  # what the device entry's ``options:`` may hold
