"""Edge agent configuration: the gateway's YAML file, its schema and validation.

Example::

    agent: {id: edge-A, ward: A}
    hub: {url: "ws://127.0.0.1:8080/ws/edge"}
    uplink: {flush_ms: 250, max_outbox_frames: 20000}
    devices:
      - {bed: A-01, id: mon-A-01, driver: tsp, port: /dev/ttyUSB0, baud: 115200}

Unknown keys are refused, so a typo is an error at start-up, not a silent default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge_agent.drivers import get_driver
from wire.codec import MAX_ID_LEN


class EdgeConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    bed: str
    id: str
    driver: str
    port: str
    baud: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UplinkConfig:
    url: str
    flush_ms: int = 250
    max_outbox_frames: int = 20_000
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 15.0


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    agent_id: str
    ward: str
    uplink: UplinkConfig
    devices: tuple[DeviceConfig, ...]


def _ident(v: Any, where: str) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= MAX_ID_LEN:
        raise EdgeConfigError(f"{where} must be a non-empty string of at most {MAX_ID_LEN} characters, got {v!r}")
    return v


def _port(v: Any, where: str) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= 1024:
        raise EdgeConfigError(f"{where} must be a device path or URL, got {v!r}")
    return v


def _only(d: Any, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise EdgeConfigError(f"{where} must be a mapping")
    unknown = set(d) - keys
    if unknown:
        raise EdgeConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(keys)}")
    return d


def parse_edge_config(raw: Any, where: str = "edge config") -> EdgeConfig:
    top = _only(raw, {"agent", "hub", "uplink", "devices"}, where)
    agent = _only(top.get("agent"), {"id", "ward"}, f"{where}: agent")
    hub = _only(top.get("hub"), {"url"}, f"{where}: hub")
    url = hub.get("url")
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        raise EdgeConfigError(f"{where}: hub.url must be a ws:// or wss:// URL, got {url!r}")
    up = _only(top.get("uplink") or {}, {"flush_ms", "max_outbox_frames", "backoff_initial_s", "backoff_max_s"}, f"{where}: uplink")
    uplink = UplinkConfig(url=url, **up)
    if not 10 <= uplink.flush_ms <= 5000 or uplink.max_outbox_frames < 10:
        raise EdgeConfigError(f"{where}: uplink.flush_ms must be 10..5000 and max_outbox_frames >= 10")
    devs = top.get("devices")
    if not isinstance(devs, list) or not devs:
        raise EdgeConfigError(f"{where}: devices must be a non-empty list")
    devices: list[DeviceConfig] = []
    seen: set[str] = set()
    for n, d in enumerate(devs):
        w = f"{where}: devices[{n}]"
        d = _only(d, {"bed", "id", "driver", "port", "baud", "scenario", "options"}, w)
        try:
            spec = get_driver(_ident(d.get("driver"), f"{w}.driver"))
        except KeyError as exc:
            raise EdgeConfigError(f"{w}: {exc.args[0]}") from None
        dev = DeviceConfig(
            bed=_ident(d.get("bed"), f"{w}.bed"),
            id=_ident(d.get("id"), f"{w}.id"),
            driver=spec.name,
            port=_port(d.get("port"), f"{w}.port"),
            baud=int(d.get("baud", spec.default_baud)),
            options=dict(d.get("options") or {}),
        )
        if dev.id in seen:
            raise EdgeConfigError(f"{w}: device id {dev.id!r} used twice")
        seen.add(dev.id)
        devices.append(dev)
    return EdgeConfig(
        agent_id=_ident(agent.get("id"), f"{where}: agent.id"),
        ward=_ident(agent.get("ward"), f"{where}: agent.ward"),
        uplink=uplink,
        devices=tuple(devices),
    )


def load_edge_config(path: Path) -> EdgeConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EdgeConfigError(f"{path}: cannot read: {exc}") from None
    return parse_edge_config(raw, str(path))
