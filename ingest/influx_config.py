"""Settings of the InfluxDB store and their parsing from a store URL.

    influxdb://[user:password@]host[:8086]/database?option=value&...    HTTP, v1-compatible API
    influxdbs://...                                                      the same over HTTPS
    influxdb2://host:8086/bucket?org=ORG&token=...                        2.x native write endpoint

Every option, its default and meaning is a field of ``InfluxConfig`` (listed in
``OPTIONS`` and docs/influxdb.md); an unknown option or a bad value raises
``InfluxConfigError`` (a ``wire.config.ConfigError``) naming the option, never a silent default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from wire.config import ConfigError, ConfigModel, Problem, validate

_DURATION = re.compile(r"^(INF|\d+[hdw])$")  # InfluxDB keeps data at least 1 h
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class InfluxConfigError(ConfigError):
    """A store URL or option that cannot configure the InfluxDB store."""


def duration_ms(text: str) -> int:
    """``10m`` -> 600000 (units s, m, h, d, w)."""
    m = re.fullmatch(r"(\d+)([smhdw])", text)
    if not m:
        raise InfluxConfigError(f"bad duration {text!r}; use e.g. 90s, 10m, 6h, 7d, 2w")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        if value not in ("0", "1"):
            raise ValueError(f"must be 0 or 1, not {value!r}")
        return value == "1"
    return value


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be 1-64 letters, digits, '_', '.', '-'")
    return value


def _retention(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError("must be like 24h, 7d, 52w, 1825d or INF")
    return value


def _duration(value: str) -> str:
    duration_ms(value)
    return value


def _file(value: Any) -> Any:
    if value == "":
        raise ValueError("needs a file path")
    return value


Name = Annotated[str, AfterValidator(_name)]
Retention = Annotated[str, AfterValidator(_retention)]


class InfluxConfig(ConfigModel):
    """The InfluxDB store's settings: the URL's parts, then every ``?option=`` with its default and meaning.

    Options arrive as text and are converted (``batch_lines=5000`` is a number).
    """

    model_config = ConfigDict(strict=False)

    # from the URL itself
    base_url: str  # http(s)://host:port
    db: Name  # v1 database (or 2.x bucket, 3.x database)
    api: Literal["v1", "v2"] = "v1"  # "v1": POST /write; "v2": POST /api/v2/write (org, bucket)
    username: str | None = None
    password: str | None = None
    # options (OPTIONS, docs/influxdb.md)
    token: str | None = Field(None, description="API token, sent as 'Authorization: Token ...' (2.x/3.x, or 1.x behind a proxy)")
    org: str = Field("", description="2.x organisation (influxdb2:// only)")
    batch_lines: int = Field(5000, ge=1, le=1_000_000, description="lines per write request (default 5000)")
    batch_bytes: int = Field(4_000_000, ge=1_000, le=24_000_000,
                             description="uncompressed bytes per write request (default 4000000; InfluxDB refuses bodies over 25 MB)")
    flush_ms: int = Field(1000, ge=1, le=60_000, description="longest a line waits before its request is sent (default 1000)")
    max_buffer_lines: int = Field(200_000, ge=1, description="lines held before submit waits: the backpressure bound (default 200000)")
    timeout_s: float = Field(10.0, gt=0, le=600, description="HTTP timeout per request (default 10)")
    backoff_initial_ms: int = Field(100, ge=1, description="first retry delay (default 100), doubling up to backoff_max_ms")
    backoff_max_ms: int = Field(10_000, le=600_000, description="longest retry delay (default 10000)")
    gzip_level: int = Field(1, ge=0, le=9, description="gzip level of write bodies, 1-9 (default 1; 0 sends the body uncompressed)")
    manage_retention: Annotated[bool, BeforeValidator(_flag)] = Field(
        True, description="1: create database, retention policies, continuous queries at start (1.x, default); 0: leave the server alone")
    raw_rp: Name = Field("raw", description="retention policy of raw data (default raw)")
    raw_retention: Retention = Field("7d", description="how long raw data is kept (default 7d)")
    agg_rp: Name = Field("agg_1m", description="retention policy of the 1-minute aggregates (default agg_1m)")
    agg_retention: Retention = Field("1825d", description="how long aggregates are kept (default 1825d; INF = forever)")
    resample_for: Annotated[str, AfterValidator(_duration)] = Field(
        "10m", description="window each continuous-query run recomputes (default 10m)")
    raw_max_h: float = Field(6.0, description="trend ranges up to this many hours are raw, longer ones 1-minute means (default 6)")
    hospital: str = Field("", description="hospital tag for beds without one of their own")
    state: Annotated[Path, BeforeValidator(_file)] = Field(
        Path("var") / "teleicu-influx-state.sqlite3",
        description="SQLite file for alerts, audit and sequence marks (default teleicu-influx-state.sqlite3 in the hub's data directory)")
    stop_timeout_s: float = Field(30.0, ge=0, description="how long stop() keeps retrying to flush before giving up (default 30)")

    @model_validator(mode="after")
    def _consistent(self) -> InfluxConfig:
        if self.raw_max_ms < 60_000:
            raise Problem("must be at least 1/60 (one minute)", "raw_max_h")
        if self.backoff_initial_ms > self.backoff_max_ms:
            raise ValueError("need 1 <= backoff_initial_ms <= backoff_max_ms <= 600000")
        if self.api == "v2" and not self.org:
            raise ValueError("influxdb2:// needs ?org=...")
        if self.api == "v2" and self.manage_retention:
            raise Problem("is for InfluxDB 1.x; on 2.x set the bucket's retention instead", "manage_retention")
        if self.token and self.username:
            raise ValueError("give either a token or user:password, not both")
        return self

    @property
    def raw_max_ms(self) -> int:
        """Trend ranges up to this are served raw, longer ones as 1-minute means."""
        return int(self.raw_max_h * 3_600_000)

    @property
    def resample_for_ms(self) -> int:
        return duration_ms(self.resample_for)

    @property
    def write_rp(self) -> str:
        return self.raw_rp if self.manage_retention else ""


_URL_PARTS = ("base_url", "db", "api", "username", "password")

#: every store URL option and its meaning
OPTIONS: dict[str, str] = {
    name: field.description or "" for name, field in InfluxConfig.model_fields.items() if name not in _URL_PARTS
}

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


STATE_FILE = "teleicu-influx-state.sqlite3"
SOURCE = "InfluxDB store URL"  # names the URL in messages (never the URL itself: it may hold a password)


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
    settings: dict[str, object] = {
        "base_url": f"{http}://{host}:{port}",
        "db": db,
        "api": api,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password is not None else None,
        "manage_retention": api == "v1",
        "state": data_dir / STATE_FILE,
    }
    seen: set[str] = set()
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in OPTIONS:
            raise InfluxConfigError(f"unknown InfluxDB store option {key!r}; known: {', '.join(sorted(OPTIONS))}")
        if key in seen:
            raise InfluxConfigError(f"option {key!r} given twice")
        seen.add(key)
        settings[key] = value
    return validate(InfluxConfig, settings, SOURCE, InfluxConfigError)


__all__ = ["OPTIONS", "InfluxConfig", "InfluxConfigError", "duration_ms", "parse_influx_url"]
