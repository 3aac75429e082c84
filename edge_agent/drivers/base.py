"""The driver plug-in contract.

A driver is a sans-I/O parser class plus the transport it needs. The agent
builds one parser per configured device::

    parser = spec.parser(bed="A-01", device="mon-1", clock_ms=clock)
    events = parser.feed(chunk_of_bytes)      # -> list[DriverEvent]
    to_send = parser.bytes_to_send()          # -> bytes the device must receive (requests, ACKs)

``feed`` never raises on bad input: garbage becomes ``ParseError`` events and
parsing resumes at the next frame boundary. Every internal buffer is bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from edge_agent.events import DriverEvent


class Parser(Protocol):
    def feed(self, data: bytes) -> list[DriverEvent]: ...

    def bytes_to_send(self) -> bytes: ...


ParserFactory = Callable[..., Parser]


@dataclass(frozen=True, slots=True)
class DriverSpec:
    name: str
    transport: str  # "serial" (more to come: "tcp", "mqtt")
    parser: ParserFactory
    default_baud: int = 115200
    description: str = ""
