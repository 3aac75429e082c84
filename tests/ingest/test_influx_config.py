"""Store URLs for InfluxDB: defaults, options, auth, refusals; and what open_stores builds for each."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.influx_config import InfluxConfigError, duration_ms, parse_influx_url
from ingest.stores import StoreUrlError, open_stores
from ingest.stores.influx_samples import InfluxSampleStore
from ingest.stores.sqlite_samples import SQLiteSampleStore
from ingest.stores.sql_state import SQLStateStore


def test_defaults() -> None:
    cfg = parse_influx_url("influxdb://127.0.0.1:8086/teleicu")
    assert (cfg.base_url, cfg.db, cfg.api) == ("http://127.0.0.1:8086", "teleicu", "v1")
    assert (cfg.batch_lines, cfg.flush_ms, cfg.raw_retention, cfg.raw_rp, cfg.agg_rp) == (5000, 1000, "7d", "raw", "agg_1m")
    assert cfg.manage_retention and cfg.token is None and cfg.username is None
    assert cfg.state == Path("var/teleicu-influx-state.sqlite3")
    assert cfg.raw_max_ms == 6 * 3_600_000


def test_options_and_credentials() -> None:
    cfg = parse_influx_url(
        "influxdbs://nurse%40icu:p%3Ass@influx.example/tele?batch_lines=2000&flush_ms=250&state=/tmp/s.sqlite3"
        "&raw_retention=14d&agg_retention=INF&raw_max_h=2&hospital=Civil%20Hospital&max_buffer_lines=1000"
    )
    assert cfg.base_url == "https://influx.example:8086"
    assert (cfg.username, cfg.password) == ("nurse@icu", "p:ss")
    assert (cfg.batch_lines, cfg.flush_ms, cfg.max_buffer_lines) == (2000, 250, 1000)
    assert (cfg.state, cfg.raw_retention, cfg.agg_retention) == (Path("/tmp/s.sqlite3"), "14d", "INF")
    assert cfg.raw_max_ms == 2 * 3_600_000 and cfg.hospital == "Civil Hospital"
    v2 = parse_influx_url("influxdb2://[::1]:9999/bucket?org=state&token=abc")
    assert (v2.base_url, v2.api, v2.org, v2.token, v2.manage_retention) == ("http://[::1]:9999", "v2", "state", "abc", False)


@pytest.mark.parametrize(
    "url",
    [
        "influxdb://127.0.0.1:8086/",  # no database
        "influxdb://127.0.0.1:8086/a/b",
        "influxdb://127.0.0.1:8086/db?bogus=1",
        "influxdb://127.0.0.1:8086/db?batch_lines=0",
        "influxdb://127.0.0.1:8086/db?batch_lines=many",
        "influxdb://127.0.0.1:8086/db?flush_ms=1&flush_ms=2",
        "influxdb://127.0.0.1:8086/db?raw_retention=30m",  # InfluxDB keeps data at least 1 h
        "influxdb://127.0.0.1:8086/db?manage_retention=yes",
        "influxdb://u:p@127.0.0.1:8086/db?token=t",  # both kinds of credentials
        "influxdb2://127.0.0.1:8086/bucket",  # no org
        "influxdb://127.0.0.1:notaport/db",
        "influxdb:///db",
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(InfluxConfigError):
        parse_influx_url(url)


def test_open_store_chooses_by_scheme(tmp_path: Path) -> None:
    for url in (str(tmp_path / "x.sqlite3"), f"sqlite://{tmp_path}/x.sqlite3"):
        stores = open_stores(url)
        assert isinstance(stores.samples, SQLiteSampleStore) and isinstance(stores.state, SQLStateStore)
        assert stores.samples.db is stores.state.db and stores.state.db.path == tmp_path / "x.sqlite3"  # one file, one writer
    stores = open_stores(f"influxdb://127.0.0.1:8086/teleicu?state={tmp_path}/s.sqlite3")
    assert isinstance(stores.samples, InfluxSampleStore) and stores.samples.state is stores.state
    assert stores.state.db.path == tmp_path / "s.sqlite3"
    assert open_stores("influxdb://127.0.0.1:8086/teleicu", data_dir=tmp_path).state.db.path == tmp_path / "teleicu-influx-state.sqlite3"
    with pytest.raises(StoreUrlError, match="unknown InfluxDB store option"):
        open_stores("influxdb://127.0.0.1:8086/teleicu?nope=1")
    with pytest.raises(StoreUrlError, match="unknown store scheme"):
        open_stores("postgres://x/y")


def test_durations() -> None:
    assert duration_ms("10m") == 600_000 and duration_ms("2w") == 14 * 86_400_000
    with pytest.raises(InfluxConfigError):
        duration_ms("ten minutes")
