"""The driver plug-in contract.

A driver is a sans-I/O parser class plus the name of the transport that carries
its bytes (``edge_agent.transports``). The transport builds the parser:

    single-bed device (a serial monitor):  spec.parser(bed="A-01", device="mon-1", **options)
    multi-bed device (an HL7 gateway, an MQTT topic tree):
                                           spec.parser(beds={"ICU^^BED04": "A-04"}, device="gw-1", **options)

and then, for every chunk of bytes it receives::

    events = parser.feed(chunk)          # -> list[DriverEvent]
    to_send = parser.bytes_to_send()     # requests, ACKs: written back to the device

The transport also calls ``bytes_to_send()`` about once a second, so a parser
can re-send a request on its own schedule (it keeps its own clock).
``feed`` never raises on bad input: garbage becomes ``ParseError`` events and
parsing resumes at the next frame boundary. Every internal buffer is bounded.
A stream transport that loses its connection calls the parser's optional
``eof() -> list[DriverEvent]`` so a message cut short is reported, not lost silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge_agent.events import DriverEvent


class Parser(Protocol):
    def feed(self, data: bytes) -> list[DriverEvent]: ...

    def bytes_to_send(self) -> bytes: ...


ParserFactory = Callable[..., Parser]


@dataclass(frozen=True, slots=True)
class DriverSpec:
    name: str
    transport: str  # a key of edge_agent.transports.TRANSPORTS: "serial", "tcp_listen", "mqtt"
    parser: ParserFactory
    multi_bed: bool = False  # one device instance serves several beds (mapping given in the config)
    default_baud: int = 115200
    serial_options: Mapping[str, Any] = field(default_factory=dict)  # parity, rtscts... for pyserial
    description: str = ""
