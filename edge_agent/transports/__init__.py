"""Transports: the thin I/O layers that carry a driver's bytes (serial, TCP, MQTT).

Each transport is a module with ``async def run(dev, spec, route)`` and the
model of its device settings (the keys of a device entry beyond ``id, driver,
bed/beds, options, scenario``; a ``wire.config.ConfigModel``), both named in
``TRANSPORTS``. The module is imported when a configuration first names the
transport (a serial-only gateway never imports aiomqtt), and the settings are
checked against the model when the file is loaded. ``run`` builds the driver's
parser(s), moves bytes between the device and the parser, hands every batch of
events to ``route``, and runs until cancelled (re-raising ``CancelledError``),
recovering by itself from unplugged cables and dropped connections.

Link status
===========

A transport with one link per device (a serial port, a broker connection)
reports it through ``route`` with ``LinkReporter``: ``DeviceStatus(bed,
device, "disconnected", t_dev=<now ms>, detail="link")`` for every bed the
device serves when the link is lost, and ``status="ok"`` when it is (re)
established, each once per change. A link that cannot be established at
start-up is reported lost: a configured device the agent cannot reach leaves
its beds unwatched, whether it was never there or went away. Cancellation (the
agent stopping) reports nothing. The hub keys device conditions by (bed,
device, detail), raises ``technical:device_disconnected`` for ``disconnected``
and clears it on ``ok``. ``tcp_listen`` reports no link: its senders connect
when they have something to say (see its docstring).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_agent.drivers.base import DriverSpec
from edge_agent.events import DeviceStatus, DriverEvent
from wire.clock import wall_ms
from wire.config import ConfigModel

if TYPE_CHECKING:
    from edge_agent.config import DeviceConfig

Route = Callable[[list[DriverEvent]], None]
TransportRun = Callable[..., Awaitable[None]]

LINK = "link"  # the detail (subject) of a transport's link status


def link_events(dev: DeviceConfig, up: bool, t_ms: int) -> list[DriverEvent]:
    """The link of ``dev`` is up (``ok``) or lost (``disconnected``): one status per bed it serves."""
    status = "ok" if up else "disconnected"
    return [DeviceStatus(bed, dev.id, status, t_ms, LINK) for bed in dev.served_beds]


class LinkReporter:
    """``reporter(up)``: route ``link_events`` for ``dev`` when the link state changes (not on repeats)."""

    def __init__(self, dev: DeviceConfig, route: Route, clock_ms: Callable[[], int] = wall_ms) -> None:
        self.dev = dev
        self._route = route
        self._clock_ms = clock_ms
        self.up: bool | None = None  # None until first known

    def __call__(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        self._route(link_events(self.dev, up, self._clock_ms()))


@dataclass(frozen=True, slots=True)
class TransportSpec:
    module: str  # imported on first use (a serial-only gateway needs no aiomqtt)
    run: str  # its ``async def run(dev, spec, route)``
    settings: str  # its ``ConfigModel`` of a device entry's settings


TRANSPORTS: dict[str, TransportSpec] = {
    "serial": TransportSpec("edge_agent.transports.serial_port", "run_serial_device", "SerialSettings"),
    "tcp_listen": TransportSpec("edge_agent.transports.tcp_listen", "run_tcp_listen_device", "TcpListenSettings"),
    "mqtt": TransportSpec("edge_agent.transports.mqtt", "run_mqtt_device", "MqttSettings"),
}


def get_transport(name: str) -> TransportRun:
    spec = transport_spec(name)
    return getattr(importlib.import_module(spec.module), spec.run)


def transport_settings(name: str) -> type[ConfigModel]:
    """The model of the device settings the transport ``name`` takes."""
    spec = transport_spec(name)
    return getattr(importlib.import_module(spec.module), spec.settings)


def transport_spec(name: str) -> TransportSpec:
    try:
        return TRANSPORTS[name]
    except KeyError:
        raise KeyError(f"unknown transport {name!r}; known: {', '.join(sorted(TRANSPORTS))}") from None


__all__ = ["LINK", "LinkReporter", "Route", "TransportRun", "TransportSpec", "TRANSPORTS", "DriverSpec", "get_transport",
           "link_events", "transport_settings", "transport_spec"]
