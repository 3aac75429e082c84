"""Edge agent configuration: the gateway's YAML file, its schema and validation.

Example::

    agent: {id: edge-A, ward: A}
    hub: {url: "ws://127.0.0.1:8080/ws/edge"}
    uplink: {flush_ms: 250, spool: /var/lib/teleicu/edge-A.spool.sqlite3, spool_max_mb: 512, backlog_rate: 200}
    devices:
      - {bed: A-01, id: mon-A-01, driver: tsp, port: /dev/ttyUSB0, baud: 115200}
      - {id: gw-1, driver: <multi-bed driver>, beds: {"ICU^^BED04": A-04}, <transport settings>}

A single-bed device names its ``bed``; a multi-bed device (a gateway or a topic
tree) maps the device's own bed identifiers to ours with ``beds`` (a list means
the identifiers are already ours). The keys a device may carry besides
``id, driver, bed/beds, options, scenario`` are its transport's settings
(``edge_agent.transports``). Unknown keys are refused, so a typo is an error at
start-up, not a silent default.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from edge_agent.drivers import get_driver
from edge_agent.transports import transport_spec
from wire.codec import MAX_ID_LEN


class EdgeConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    id: str
    driver: str
    bed: str | None  # single-bed devices
    beds: dict[str, str] = field(default_factory=dict)  # multi-bed devices: device's bed id -> our bed id
    settings: dict[str, Any] = field(default_factory=dict)  # transport settings (port, baud, listen, broker...)
    options: dict[str, Any] = field(default_factory=dict)  # parser options

    @property
    def served_beds(self) -> tuple[str, ...]:
        return (self.bed,) if self.bed else tuple(self.beds.values())


@dataclass(frozen=True, slots=True)
class UplinkConfig:
    url: str
    flush_ms: int = 250
    spool: str | None = None  # spool file; default <config dir>/<agent id>.spool.sqlite3
    spool_max_mb: int = 512
    backlog_rate: int = 200  # backlog frames per second after an outage, behind live data
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 15.0
    status_s: float = 5.0  # a status report (device conditions, spool and its floor) at least this often


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
    up = _only(top.get("uplink") or {}, {"flush_ms", "spool", "spool_max_mb", "backlog_rate", "backoff_initial_s", "backoff_max_s", "status_s"},
               f"{where}: uplink")  # fmt: skip
    uplink = UplinkConfig(url=url, **up)
    if not 10 <= uplink.flush_ms <= 5000 or uplink.spool_max_mb < 1 or uplink.backlog_rate < 1 or not 0.05 <= uplink.status_s <= 60:
        raise EdgeConfigError(f"{where}: uplink.flush_ms must be 10..5000, spool_max_mb >= 1, backlog_rate >= 1 and status_s 0.05..60")
    devs = top.get("devices")
    if not isinstance(devs, list) or not devs:
        raise EdgeConfigError(f"{where}: devices must be a non-empty list")
    devices: list[DeviceConfig] = []
    seen: set[str] = set()
    for n, d in enumerate(devs):
        dev = _device(d, f"{where}: devices[{n}]")
        if dev.id in seen:
            raise EdgeConfigError(f"{where}: devices[{n}]: device id {dev.id!r} used twice")
        seen.add(dev.id)
        devices.append(dev)
    all_beds = [b for d in devices for b in d.served_beds]
    dupes = sorted({b for b in all_beds if all_beds.count(b) > 1})
    if dupes:
        raise EdgeConfigError(f"{where}: beds served by more than one device: {dupes}")
    return EdgeConfig(
        agent_id=_ident(agent.get("id"), f"{where}: agent.id"),
        ward=_ident(agent.get("ward"), f"{where}: agent.ward"),
        uplink=uplink,
        devices=tuple(devices),
    )


_COMMON_KEYS = {"id", "driver", "bed", "beds", "options", "scenario"}


def _device(d: Any, w: str) -> DeviceConfig:
    if not isinstance(d, dict):
        raise EdgeConfigError(f"{w} must be a mapping")
    try:
        spec = get_driver(_ident(d.get("driver"), f"{w}.driver"))
        tspec = transport_spec(spec.transport)
    except KeyError as exc:
        raise EdgeConfigError(f"{w}: {exc.args[0]}") from None
    allowed = _COMMON_KEYS | tspec.required | tspec.optional
    _only(d, allowed, w)
    missing = sorted(tspec.required - set(d))
    if missing:
        raise EdgeConfigError(f"{w}: driver {spec.name!r} ({spec.transport}) needs {missing}")
    bed, beds = d.get("bed"), d.get("beds")
    if spec.multi_bed:
        if bed is not None or not beds:
            raise EdgeConfigError(f"{w}: driver {spec.name!r} serves several beds: give 'beds' (a mapping or list), not 'bed'")
        if isinstance(beds, list):
            beds = {b: b for b in beds}
        if not isinstance(beds, dict):
            raise EdgeConfigError(f"{w}.beds must be a mapping of device bed id to bed id, or a list of bed ids")
        bed_map = {str(k): _ident(v, f"{w}.beds[{k!r}]") for k, v in beds.items()}
        bed_id = None
    else:
        if beds is not None:
            raise EdgeConfigError(f"{w}: driver {spec.name!r} serves one bed: give 'bed', not 'beds'")
        bed_id, bed_map = _ident(bed, f"{w}.bed"), {}
    if "port" in d:
        _port(d["port"], f"{w}.port")
    options = d.get("options") or {}
    if not isinstance(options, dict):
        raise EdgeConfigError(f"{w}.options must be a mapping")
    return DeviceConfig(
        id=_ident(d.get("id"), f"{w}.id"),
        driver=spec.name,
        bed=bed_id,
        beds=bed_map,
        settings={k: d[k] for k in tspec.required | tspec.optional if k in d},
        options=dict(options),
    )


def load_edge_config(path: Path) -> EdgeConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EdgeConfigError(f"{path}: cannot read: {exc}") from None
    cfg = parse_edge_config(raw, str(path))
    if cfg.uplink.spool is None:  # keep the spool next to the config, named for the agent
        cfg = replace(cfg, uplink=replace(cfg.uplink, spool=str(path.parent / f"{cfg.agent_id}.spool.sqlite3")))
    return cfg
