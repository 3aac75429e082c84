"""The hub's stats dict (``Hub.stats()``, store counters included) as Prometheus text exposition format.

``render(stats)`` is pure: dict in, text out (version 0.0.4, served as
``text/plain; version=0.0.4``). Every number becomes a metric named
``teleicu_<path>``: nested dicts add their key to the path (``store`` ->
``teleicu_store_written_total``), counters get ``_total``, and each metric has
its ``# HELP`` and ``# TYPE`` lines. What is a gauge (a level that can go down)
is listed in ``GAUGES``; every other number is a counter (monotonic since the
hub started). Lists count their items (``agents_online``); ``None`` and text are
left out. The push-latency percentiles become one gauge with a ``quantile`` label.
A list of rows named in ``LABELLED`` becomes one counter with a series per row,
labelled by the row's other keys (``unmapped`` -> ``teleicu_unmapped_observations_total{device, system, code}``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

PREFIX = "teleicu"

#: stat paths (joined by "_") that are levels, not running totals
GAUGES: frozenset[str] = frozenset(
    {
        "beds",
        "agents_online",
        "alerts_open",
        "consoles",
        "wave_watchers",
        "store_buffered",
        "store_buffered_batches",
        "store_buffer_limit",
        "store_influx_up",
        "store_queued",
        "jetstream_wards_owned",
    }
)

HELP: dict[str, str] = {
    "beds": "Beds known to the hub.",
    "agents_online": "Edge agents connected now.",
    "alerts_open": "Alarms open (active or acknowledged).",
    "consoles": "Console WebSockets connected now.",
    "consoles_dropped": "Console connections dropped because they fell behind.",
    "wave_watchers": "Bed detail pages receiving live waveforms now.",
    "wave_feed_wave_chunks_to_consoles": "Waveform chunks queued to bed detail pages.",
    "wave_feed_wave_chunks_console_full": "Waveform chunks a bed detail page lost because it had fallen behind.",
    "push_latency_ms": "Hub arrival to console push queued, ms, over recent pushes.",
    "push_latency_ms_max": "Largest hub arrival to console push latency among recent pushes, ms.",
    "push_latency_samples": "Pushes measured for push latency.",
    "counters_frames_ingested": "Edge frames taken in.",
    "counters_frames_rejected": "Edge frames refused (codec or protocol error).",
    "counters_frames_duplicate": "Edge frames dropped as duplicates (already held).",
    "counters_obs_accepted": "Observations accepted.",
    "counters_obs_rejected": "Observations refused by screening.",
    "counters_obs_stored": "Distinct observations durably stored (a device's re-send of a stored sample is not counted here).",
    "counters_obs_resent": "Observations a device sent again with the same time and value as one already stored (not stored twice).",
    "counters_wave_chunks_stored": "Waveform chunks durably stored.",
    "counters_unmapped_accepted": "Observations accepted whose code the vocabulary does not map.",
    "counters_unmapped_stored": "Unmapped observations durably stored.",
    "store_written": "Lines InfluxDB accepted.",
    "store_retried": "Store requests retried after a connection error, timeout or retryable status.",
    "store_dropped": "Lines dropped as poison (refused by InfluxDB for good, or unencodable).",
    "store_buffered": "Lines waiting in the store buffer (in flight included).",
    "store_buffered_batches": "Batches waiting in the store buffer.",
    "store_buffer_limit": "Lines the store buffer holds before submit waits (backpressure).",
    "store_batches": "Edge batches durably handled by the store.",
    "store_writes": "Successful write requests.",
    "store_poison_writes": "Write requests refused as poison.",
    "store_backpressure_waits": "Times a submit waited for buffer space.",
    "store_influx_up": "1 when the last InfluxDB request succeeded, else 0.",
    "store_numerics_written": "Observations written by the store.",
    "store_wave_chunks_written": "Waveform chunks written by the store.",
    "jetstream_wards_owned": "Wards this JetStream worker holds the lease of now.",
    "jetstream_frames_acked": "JetStream frames acknowledged to the stream once durably stored.",
    "jetstream_duplicates_acked": "JetStream frames acknowledged as duplicates of frames already stored.",
    "jetstream_frames_refused": "JetStream frames refused for good (subject, headers and body disagree, or no registered agent).",
    "jetstream_frames_redelivered": "JetStream frames delivered more than once (a failed write, or a worker that died holding them).",
    "jetstream_leases_lost": "Ward leases lost because another worker took the ward.",
}

#: stat path -> (metric name after the prefix, the row key holding the number); the row's other keys are labels
LABELLED: dict[str, tuple[str, str]] = {
    "unmapped": ("unmapped_observations", "count"),
    "alerts_raised_by_kind": ("alerts_raised_by_kind", "count"),
}
HELP["unmapped"] = "Observations accepted whose code the vocabulary does not map (stored as sent, never scored), per device and code."
HELP["alerts_raised_by_kind"] = "Alarms raised, per alarm kind."

_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_QUANTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")


def metric_name(path: str) -> str:
    name = _BAD_CHARS.sub("_", f"{PREFIX}_{path}")
    return name if not name[0].isdigit() else f"_{name}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(v: float) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _flatten(stats: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in stats.items():
        path = f"{prefix}{key}"
        if path == "push_latency_ms" and isinstance(value, Mapping):
            yield path, value  # handled as quantiles
        elif isinstance(value, Mapping):
            yield from _flatten(value, f"{path}_")
        else:
            yield path, value


def _metric(lines: list[str], path: str, value: float, kind: str | None = None) -> None:
    kind = kind or ("gauge" if path in GAUGES else "counter")
    name = metric_name(path) + ("_total" if kind == "counter" else "")
    lines.append(f"# HELP {name} {_escape_help(HELP.get(path, f'teleicu stat {metric_name(path)}.'))}")
    lines.append(f"# TYPE {name} {kind}")
    lines.append(f"{name} {_number(value)}")


def _latency(lines: list[str], path: str, value: Mapping[str, Any]) -> None:
    quantiles = [(float(m.group(1)) / 100, v) for k, v in value.items() if (m := _QUANTILE.match(k)) and isinstance(v, int | float)]
    if quantiles:
        name = metric_name(path)
        lines.append(f"# HELP {name} {_escape_help(HELP[path])}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f'{name}{{quantile="{q:g}"}} {_number(v)}' for q, v in sorted(quantiles))
    if isinstance(value.get("max"), int | float):
        _metric(lines, f"{path}_max", value["max"], "gauge")
    if isinstance(value.get("n"), int):
        _metric(lines, "push_latency_samples", value["n"], "counter")


def _label_value(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labelled(lines: list[str], path: str, rows: list | tuple) -> None:
    suffix, number = LABELLED[path]
    name = metric_name(suffix) + "_total"
    samples = []
    for row in rows:
        if isinstance(row, Mapping) and isinstance(row.get(number), int | float):
            labels = ",".join(f'{_BAD_CHARS.sub("_", str(k))}="{_label_value(v)}"' for k, v in row.items() if k != number)
            samples.append(f"{name}{{{labels}}} {_number(row[number])}")
    if samples:  # a family without samples is left out, as for any other stat
        lines.append(f"# HELP {name} {_escape_help(HELP[path])}")
        lines.append(f"# TYPE {name} counter")
        lines.extend(samples)


def render(stats: Mapping[str, Any]) -> str:
    """Prometheus text format for ``Hub.stats()``: newline-terminated lines, empty when there is nothing to say.

    Two stats whose names sanitise to the same metric keep the first.
    """
    lines: list[str] = []
    seen: set[str] = set()
    for path, value in _flatten(stats):
        if metric_name(path) in seen:
            continue
        seen.add(metric_name(path))
        if path == "push_latency_ms" and isinstance(value, Mapping):
            _latency(lines, path, value)
        elif path in LABELLED and isinstance(value, list | tuple):
            _labelled(lines, path, value)
        elif isinstance(value, bool | int | float):
            _metric(lines, path, value)
        elif isinstance(value, list | tuple | set | frozenset):
            _metric(lines, path, len(value), "gauge")
    return "".join(line + "\n" for line in lines)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
