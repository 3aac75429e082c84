"""Settings of the InfluxDB store and their parsing from a store URL.

    influxdb://[user:password@]host[:8086]/database?option=value&...    HTTP, v1-compatible API
    influxdbs://...                                                      the same over HTTPS
    influxdb2://host:8086/bucket?org=ORG&token=...                        2.x native write endpoint

Every option, its default and meaning is in ``OPTIONS`` (and docs/influxdb.md);
an unknown option or a bad value raises ``InfluxConfigError``, never a silent default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

_DURATION = re.compile(r"^(INF|\d+[hdw])$")  # InfluxDB keeps data at least 1 h
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class InfluxConfigError(ValueError):
    """A store URL or option that cannot configure the InfluxDB store."""


def duration_ms(text: str) -> int:
    """``10m`` -> 600000 (units s, m, h, d, w)."""
    m = re.fullmatch(r"(\d+)([smhdw])", text)
    if not m:
        raise InfluxConfigError(f"bad duration {text!r}; use e.g. 90s, 10m, 6h, 7d, 2w")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


@dataclass(frozen=True, slots=True)
class InfluxConfig:
    base_url: str  # http(s)://host:port
    db: str  # v1 database (or 2.x bucket, 3.x database)
    api: str = "v1"  # "v1": POST /write; "v2": POST /api/v2/write (org, bucket)
    org: str = ""
    username: str | None = None
    password: str | None = None
    token: str | None = None
    batch_lines: int = 5000
    batch_bytes: int = 4_000_000  # uncompressed line-protocol bytes per write request
    flush_ms: int = 1000
    max_buffer_lines: int = 200_000
    timeout_s: float = 10.0
    backoff_initial_ms: int = 100
    backoff_max_ms: int = 10_000
    gzip_level: int = 1
    manage_retention: bool = True  # create database, retention policies and continuous queries (1.x)
    raw_rp: str = "raw"
    raw_retention: str = "7d"
    agg_rp: str = "agg_1m"
    agg_retention: str = "1825d"
    resample_for: str = "10m"  # continuous queries recompute this much of the recent past each minute
    raw_max_ms: int = 6 * 3_600_000  # trend ranges up to this are served raw, longer ones as 1-minute means
    hospital: str = ""  # default hospital tag
    state: Path = Path("var/teleicu-influx-state.sqlite3")  # alerts, audit and sequence marks (SQLite); the hub puts
    # it in its data directory unless the URL's ``state=`` says otherwise
    stop_timeout_s: float = 30.0

    @property
    def resample_for_ms(self) -> int:
        return duration_ms(self.resample_for)

    @property
    def write_rp(self) -> str:
        return self.raw_rp if self.manage_retention else ""


OPTIONS: dict[str, str] = {
    "token": "API token, sent as 'Authorization: Token ...' (2.x/3.x, or 1.x behind a proxy)",
    "org": "2.x organisation (influxdb2:// only)",
    "batch_lines": "lines per write request (default 5000)",
    "batch_bytes": "uncompressed bytes per write request (default 4000000)",
    "flush_ms": "longest a line waits before its request is sent (default 1000)",
    "max_buffer_lines": "lines held before submit waits: the backpressure bound (default 200000)",
    "timeout_s": "HTTP timeout per request (default 10)",
    "backoff_initial_ms": "first retry delay (default 100), doubling up to backoff_max_ms",
    "backoff_max_ms": "longest retry delay (default 10000)",
    "gzip_level": "gzip level of write bodies, 1-9 (default 1)",
    "manage_retention": "1: create database, retention policies, continuous queries at start (1.x, default); 0: leave the server alone",
    "raw_rp": "retention policy of raw data (default raw)",
    "raw_retention": "how long raw data is kept (default 7d)",
    "agg_rp": "retention policy of the 1-minute aggregates (default agg_1m)",
    "agg_retention": "how long aggregates are kept (default 1825d; INF = forever)",
    "resample_for": "window each continuous-query run recomputes (default 10m)",
    "raw_max_h": "trend ranges up to this many hours are raw, longer ones 1-minute means (default 6)",
    "hospital": "hospital tag for beds without one of their own",
    "state": "SQLite file for alerts, audit and sequence marks (default teleicu-influx-state.sqlite3 in the hub's data directory)",
    "stop_timeout_s": "how long stop() keeps retrying to flush before giving up (default 30)",
}

_INT_OPTIONS = ("batch_lines", "batch_bytes", "flush_ms", "max_buffer_lines", "backoff_initial_ms", "backoff_max_ms", "gzip_level")
_FLOAT_OPTIONS = ("timeout_s", "stop_timeout_s")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


STATE_FILE = "teleicu-influx-state.sqlite3"


def parse_influx_url(url: str, data_dir: Path = Path("var")) -> InfluxConfig:
    """The store's settings from its URL; the state file defaults to ``STATE_FILE`` in ``data_dir``."""
    parts = urlsplit(url)
    schemes = {"influxdb": ("http", "v1"), "influxdbs": ("https", "v1"), "influxdb2": ("http", "v2"), "influxdb2s": ("https", "v2")}
    if parts.scheme not in schemes:
        raise InfluxConfigError(f"not an InfluxDB URL: {url!r}")
    http, api = schemes[parts.scheme]
    try:
        port = parts.port or 8086
    except ValueError as exc:
        raise InfluxConfigError(f"bad port in {url!r}") from exc
    host = parts.hostname
    if not host:
        raise InfluxConfigError(f"InfluxDB URL needs a host: {url!r}")
    db = unquote(parts.path.lstrip("/"))
    if not db or "/" in db:
        raise InfluxConfigError(f"InfluxDB URL needs the database (bucket) as its path, e.g. influxdb://127.0.0.1:8086/teleicu; got {url!r}")
    if ":" in host:
        host = f"[{host}]"
    cfg = InfluxConfig(
        base_url=f"{http}://{host}:{port}",
        db=db,
        api=api,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        manage_retention=api == "v1",
        state=data_dir / STATE_FILE,
    )
    changes: dict[str, object] = {}
    seen: set[str] = set()
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in OPTIONS:
            raise InfluxConfigError(f"unknown InfluxDB store option {key!r}; known: {', '.join(sorted(OPTIONS))}")
        if key in seen:
            raise InfluxConfigError(f"option {key!r} given twice")
        seen.add(key)
        changes.update(_option(key, value))
    cfg = replace(cfg, **changes)  # type: ignore[arg-type]
    validate(cfg)
    return cfg


def _option(key: str, value: str) -> dict[str, object]:
    try:
        if key in _INT_OPTIONS:
            return {key: int(value)}
        if key in _FLOAT_OPTIONS:
            return {key: float(value)}
    except ValueError as exc:
        raise InfluxConfigError(f"option {key}={value!r} is not a number") from exc
    if key == "manage_retention":
        if value not in ("0", "1"):
            raise InfluxConfigError("manage_retention must be 0 or 1")
        return {key: value == "1"}
    if key == "raw_max_h":
        try:
            return {"raw_max_ms": int(float(value) * 3_600_000)}
        except ValueError as exc:
            raise InfluxConfigError(f"option raw_max_h={value!r} is not a number") from exc
    if key == "state":
        if not value:
            raise InfluxConfigError("state needs a file path")
        return {key: Path(value)}
    return {key: value}


def validate(cfg: InfluxConfig) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise InfluxConfigError(what)

    need(1 <= cfg.batch_lines <= 1_000_000, "batch_lines must be 1..1000000")
    need(1_000 <= cfg.batch_bytes <= 24_000_000, "batch_bytes must be 1000..24000000 (InfluxDB refuses bodies over 25 MB)")
    need(1 <= cfg.flush_ms <= 60_000, "flush_ms must be 1..60000")
    need(cfg.max_buffer_lines >= 1, "max_buffer_lines must be at least 1")
    need(0 < cfg.timeout_s <= 600, "timeout_s must be in (0, 600]")
    need(1 <= cfg.backoff_initial_ms <= cfg.backoff_max_ms <= 600_000, "need 1 <= backoff_initial_ms <= backoff_max_ms <= 600000")
    need(0 <= cfg.gzip_level <= 9, "gzip_level must be 0..9 (0 sends the body uncompressed)")
    need(cfg.stop_timeout_s >= 0, "stop_timeout_s must not be negative")
    need(cfg.raw_max_ms >= 60_000, "raw_max_h must be at least 1/60 (one minute)")
    for name in ("db", "raw_rp", "agg_rp"):
        need(bool(_NAME.match(getattr(cfg, name))), f"{name} must be 1-64 letters, digits, '_', '.', '-'")
    for name in ("raw_retention", "agg_retention"):
        need(bool(_DURATION.match(getattr(cfg, name))), f"{name} must be like 24h, 7d, 52w, 1825d or INF")
    duration_ms(cfg.resample_for)
    need(cfg.api == "v1" or bool(cfg.org), "influxdb2:// needs ?org=...")
    need(cfg.api == "v1" or not cfg.manage_retention, "manage_retention is for InfluxDB 1.x; on 2.x set the bucket's retention instead")
    need(not (cfg.token and cfg.username), "give either a token or user:password, not both")


__all__ = ["OPTIONS", "InfluxConfig", "InfluxConfigError", "duration_ms", "parse_influx_url"]
