"""Transports: the thin I/O layers that carry a driver's bytes (serial, TCP, MQTT).

Each transport is ``async def run(dev, spec, route)``: it builds the driver's
parser(s), moves bytes between the device and the parser, hands every batch of
events to ``route``, and runs until cancelled (re-raising ``CancelledError``),
recovering by itself from unplugged cables and dropped connections.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edge_agent.drivers.base import DriverSpec
from edge_agent.events import DriverEvent

Route = Callable[[list[DriverEvent]], None]
TransportRun = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TransportSpec:
    target: str  # "module:function", imported on first use (a serial-only gateway needs no aiomqtt)
    required: frozenset[str]  # device settings keys the transport needs
    optional: frozenset[str] = frozenset()


TRANSPORTS: dict[str, TransportSpec] = {
    "serial": TransportSpec(
        "edge_agent.transports.serial_port:run_serial_device", frozenset({"port"}), frozenset({"baud", "serial"})
    ),
    "tcp_listen": TransportSpec(
        "edge_agent.transports.tcp_listen:run_tcp_listen_device",
        frozenset({"listen"}),
        frozenset({"max_connections", "idle_timeout_s"}),
    ),
    "mqtt": TransportSpec(
        "edge_agent.transports.mqtt:run_mqtt_device",
        frozenset({"broker"}),
        frozenset({"topic_prefix", "client_id", "username", "password"}),
    ),
}


def get_transport(name: str) -> TransportRun:
    module, func = transport_spec(name).target.split(":")
    return getattr(importlib.import_module(module), func)


def transport_spec(name: str) -> TransportSpec:
    try:
        return TRANSPORTS[name]
    except KeyError:
        raise KeyError(f"unknown transport {name!r}; known: {', '.join(sorted(TRANSPORTS))}") from None


__all__ = ["Route", "TransportRun", "TransportSpec", "TRANSPORTS", "get_transport", "transport_spec", "DriverSpec"]
