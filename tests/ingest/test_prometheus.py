"""Prometheus text rendering of the hub's stats: names, HELP/TYPE, counters vs gauges, quantiles."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from config_support import alarm_policy, hub_config, score_tables
from ingest.hub import Hub
from ingest.prometheus import metric_name, render
from ingest.stores import sqlite_stores
from wire.messages import Hello, Observation, ObsFrame

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{quantile="[0-9.]+"\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$')


def parse_exposition(text: str) -> dict[str, tuple[str, list[tuple[str, float]]]]:
    """name -> (type, [(labels, value)]); asserts the format rules we rely on."""
    assert text == "" or text.endswith("\n")
    out: dict[str, tuple[str, list[tuple[str, float]]]] = {}
    helped: set[str] = set()
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helped, f"two HELP lines for {name}"
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name in helped and kind in ("counter", "gauge"), line
            assert name not in out, f"metric {name} declared twice"
            out[name] = (kind, [])
            current = name
        else:
            m = _SAMPLE.match(line)
            assert m, f"bad sample line {line!r}"
            assert m.group(1) == current, f"sample {line!r} outside its TYPE block"
            out[current][1].append((m.group(2) or "", float(m.group(3))))
    for name, (kind, samples) in out.items():
        assert samples, name
        if kind == "counter":
            assert name.endswith("_total")
    return out


def real_hub_stats(tmp: Path) -> dict:
    async def go() -> dict:
        hub = Hub(hub_config(), sqlite_stores(tmp / "s.sqlite3"), clock=lambda: 1_800_000_000_000, policy=alarm_policy(),
                  tables=score_tables())  # fmt: skip
        await hub.start()
        hello = Hello("edge-T", 1, "T", ("T-01",))
        hub.hello(hello)
        batch, _ = hub.take_frame(hello, ObsFrame(1, (Observation("T-01", "hr", 80, 1_800_000_000_000, 1_800_000_000_000, "m"),)), hub.clock())
        assert batch is not None
        await hub.store.write(batch)
        hub.tick()
        stats = hub.stats()
        await hub.stop()
        return stats

    return asyncio.run(go())


def test_real_hub_stats_render_as_valid_exposition(tmp_path: Path) -> None:
    stats = real_hub_stats(tmp_path)
    metrics = parse_exposition(render(stats))
    assert metrics["teleicu_counters_frames_ingested_total"] == ("counter", [("", 1.0)])
    assert metrics["teleicu_counters_obs_accepted_total"] == ("counter", [("", 1.0)])
    assert metrics["teleicu_beds"] == ("gauge", [("", 1.0)])
    assert metrics["teleicu_agents_online"] == ("gauge", [("", 1.0)])  # a list counts its items
    assert metrics["teleicu_store_numerics_written_total"] == ("counter", [("", 1.0)])
    kind, samples = metrics["teleicu_push_latency_ms"]
    assert kind == "gauge" and [lbl for lbl, _ in samples] == ['{quantile="0.5"}', '{quantile="0.9"}', '{quantile="0.99"}']


def test_influx_store_counters_and_gauges() -> None:
    store = {"written": 10, "retried": 2, "dropped": 1, "buffered": 40, "buffer_limit": 200000, "influx_up": 0, "batches": 3}
    text = render({"store": store, "push_latency_ms": {"p50": None, "p90": None, "p99": None, "n": 0}, "agents_online": [], "alerts_open": 0})
    metrics = parse_exposition(text)
    assert metrics["teleicu_store_written_total"] == ("counter", [("", 10.0)])
    assert metrics["teleicu_store_retried_total"][0] == "counter"
    assert metrics["teleicu_store_buffered"] == ("gauge", [("", 40.0)])
    assert metrics["teleicu_store_influx_up"] == ("gauge", [("", 0.0)])
    assert "teleicu_push_latency_ms" not in metrics  # no samples yet: no quantiles
    assert "# HELP teleicu_store_dropped_total Lines dropped as poison" in text


def test_metric_names_are_sanitised() -> None:
    assert metric_name("store_some-odd key") == "teleicu_store_some_odd_key"


@given(st.dictionaries(st.text(min_size=1, max_size=10), st.one_of(st.integers(0, 10**12), st.floats(allow_nan=False, allow_infinity=False), st.none(), st.text(max_size=5)), max_size=8))
def test_any_flat_stats_render_parseable(stats: dict) -> None:
    text = render({"counters": stats})
    names = set(parse_exposition(text))
    assert len(names) <= len(stats)
