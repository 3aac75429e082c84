"""teleicu's InfluxDB schema: measurements, tags and fields, their line encoders and InfluxQL.

One place for the schema (documented in docs/influxdb.md). Pure: strings in,
strings out. Timestamps are device time in ms, and every tag is a stable fact
of where the sample came from, so writing the same sample again overwrites it.

    vitals        tags hospital, ward, bed, device, param   fields value (float), flags (int), t_rx (int, ms)
    waveform      tags hospital, ward, bed, lead            fields rate (int, Hz), scale (float), n (int),
                                                            samples (string: base64 of int16 little-endian)
    unmapped      tags hospital, ward, bed, device,         fields name, value, unit, status (string, as sent),
                  system, code                              t_rx (int, ms)
    news2         tags hospital, ward, bed                  fields total (int, absent when incomplete), partial (int),
                                                            band (string), incomplete (bool), missing (string),
                                                            any_three (bool), scale (int), rr/spo2/o2/sbp/hr/acvpu/temp (int)
    mews          tags hospital, ward, bed                  fields total, partial, triggered (bool), incomplete, missing,
                                                            sbp/hr/rr/temp/avpu (int)
    qsofa         tags hospital, ward, bed                  fields total, partial, positive (bool), incomplete, missing,
                                                            rr/sbp/mentation (int)
    alarm_event   tags hospital, ward, bed, kind, event     fields id (string, UUIDv7), priority (string), state (string),
                                                            title (string), detail (string), by (string)
    vitals_1m     (aggregate retention policy) tags as vitals; fields mean, min, max (float), n (int), flags (int, max)
    news2_1m      (aggregate retention policy) tags as news2; fields total_max, partial_max (int)
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ingest.line_protocol import (
    bool_field,
    encode_line,
    escape_tag_value,
    float_field,
    int_field,
    quote_tag_value,
    string_field,
)
from wire.messages import Observation, UnmappedObservation, WaveChunk

VITALS = "vitals"
WAVEFORM = "waveform"
UNMAPPED = "unmapped"
NEWS2 = "news2"
MEWS = "mews"
QSOFA = "qsofa"
ALARM_EVENT = "alarm_event"
VITALS_1M = "vitals_1m"
NEWS2_1M = "news2_1m"

NEWS2_COMPONENTS = ("rr", "spo2", "o2", "sbp", "hr", "acvpu", "temp")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a bed is: the hospital and ward tags written with its points ("" leaves a tag out)."""

    hospital: str = ""
    ward: str = ""


def _tag(key: str, value: str) -> str:
    return f",{key}={escape_tag_value(value)}" if value else ""


# --- numerics --------------------------------------------------------------------


def vitals_series(place: Place, bed: str, device: str, param: str) -> str:
    """The measurement-and-tags head of a vitals line (tags in sorted key order); cache it per series."""
    return VITALS + _tag("bed", bed) + _tag("device", device) + _tag("hospital", place.hospital) + _tag("param", param) + _tag("ward", place.ward)


def vitals_line(series: str, o: Observation) -> str:
    """One observation. A value-less observation (probe off...) carries only its flags."""
    value = "" if o.value is None else f"value={float_field(o.value)},"
    return f"{series} {value}flags={int_field(o.flags)},t_rx={int_field(o.t_rx)} {o.t_dev}"


# --- waveforms -------------------------------------------------------------------


def pack_samples(samples: tuple[int, ...] | list[int]) -> str:
    """int16 counts as base64 of little-endian bytes (the bytes the wire chunk and SQLite carry)."""
    return base64.b64encode(struct.pack(f"<{len(samples)}h", *samples)).decode("ascii")


def unpack_samples(text: str) -> tuple[int, ...]:
    raw = base64.b64decode(text, validate=True)
    return struct.unpack(f"<{len(raw) // 2}h", raw)


def waveform_line(place: Place, w: WaveChunk) -> str:
    tags = {"hospital": place.hospital, "ward": place.ward, "bed": w.bed, "lead": w.lead}
    fields = {
        "rate": int_field(w.rate_hz),
        "scale": float_field(w.scale),
        "n": int_field(len(w.samples)),
        "samples": string_field(pack_samples(w.samples)),
    }
    return encode_line(WAVEFORM, tags, fields, w.t_first)


# --- unmapped observations ---------------------------------------------------------


def unmapped_line(place: Place, u: UnmappedObservation) -> str:
    """A value whose code the vocabulary does not map, as sent (one series per device and code)."""
    tags = {"hospital": place.hospital, "ward": place.ward, "bed": u.bed, "device": u.device, "system": u.system, "code": u.code}
    fields = {
        "name": string_field(u.name),
        "value": string_field(u.value),
        "unit": string_field(u.unit),
        "status": string_field(u.status),
        "t_rx": int_field(u.t_rx),
    }
    return encode_line(UNMAPPED, tags, fields, u.t_dev)


def unmapped_queries(rp: str, device: str | None) -> str:
    """Two statements: each code's last sample (with its other fields), then its count of stored samples."""
    where = f" WHERE {ql_tag_equals('device', device)}" if device is not None else ""
    group = ' GROUP BY "device", "system", "code"'
    src = ql_from(rp, UNMAPPED)
    return (f'SELECT last("value") AS "value", "name", "unit", "status", "bed" FROM {src}{where}{group};'
            f'SELECT count("value") AS "n" FROM {src}{where}{group}')  # fmt: skip


# --- scores and alarm events (for the hub to write) --------------------------------


#: verdict fields each score adds to its row (``alerts.*.Result.row``), written as they are
SCORE_VERDICTS: dict[str, tuple[tuple[str, str], ...]] = {
    NEWS2: (("band", "string"), ("any_three", "bool")),
    MEWS: (("triggered", "bool"),),
    QSOFA: (("positive", "bool"),),
}


def score_line(measurement: str, place: Place, bed: str, t_ms: int, score: Mapping[str, Any], *, scale: int | None = None) -> str:
    """A NEWS2, MEWS or qSOFA result as its ``Result.row`` gives it, at the time it was scored.

    ``total`` and a missing component's sub-score are left out (not zero) when
    the score is incomplete, so queries never mistake a partial for a total.
    """
    fields: dict[str, str] = {}
    if score.get("total") is not None:
        fields["total"] = int_field(int(score["total"]))
    fields["partial"] = int_field(int(score["partial"]))
    for name, kind in SCORE_VERDICTS[measurement]:
        fields[name] = string_field(str(score[name])) if kind == "string" else bool_field(bool(score.get(name, False)))
    fields["incomplete"] = bool_field(bool(score["incomplete"]))
    fields["missing"] = string_field(";".join(score.get("missing") or ()))
    if scale is not None:
        fields["scale"] = int_field(scale)
    for name, sub in (score.get("subscores") or {}).items():
        if sub is not None:
            fields[name] = int_field(int(sub))
    return encode_line(measurement, {"hospital": place.hospital, "ward": place.ward, "bed": bed}, fields, t_ms)


def news2_line(place: Place, bed: str, t_ms: int, score: Mapping[str, Any], *, scale: int = 1) -> str:
    """A NEWS2 result (``score_line`` with the SpO2 scale the bed was scored on)."""
    return score_line(NEWS2, place, bed, t_ms, score, scale=scale)


def alarm_event_line(place: Place, alert: Mapping[str, Any], event: str, by: str | None, t_ms: int) -> str:
    """An alarm lifecycle event (raised, escalated, updated, acknowledged, resolved), ``alert`` as ``Alert.to_json``.

    The alert id is a field, not a tag (ids are unbounded; tags are series). Two
    events of the same kind on one bed in the same millisecond are one point.
    """
    tags = {
        "hospital": place.hospital,
        "ward": place.ward or str(alert.get("ward") or ""),
        "bed": str(alert["bed"]),
        "kind": str(alert["kind"]),
        "event": event,
    }
    fields = {
        "id": string_field(str(alert["id"])),
        "priority": string_field(str(alert["priority"])),
        "state": string_field(str(alert["state"])),
        "title": string_field(str(alert.get("title", ""))),
        "detail": string_field(str(alert.get("detail", ""))),
        "by": string_field(by or ""),
    }
    return encode_line(ALARM_EVENT, tags, fields, t_ms)


# --- InfluxQL --------------------------------------------------------------------


def ql_string(s: str) -> str:
    """An InfluxQL string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ql_ident(s: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ql_tag_equals(key: str, value: str) -> str:
    """``"key" = 'value'`` matching a tag as ``quote_tag_value`` stored it."""
    return f"{ql_ident(key)} = {ql_string(quote_tag_value(value))}"


def ql_from(rp: str, measurement: str) -> str:
    """``"rp"."measurement"``, or the database's default policy when ``rp`` is empty."""
    return f"{ql_ident(rp)}.{ql_ident(measurement)}" if rp else ql_ident(measurement)


def raw_trend_query(rp: str, bed: str, param: str, since: int, until: int, limit: int) -> str:
    return (
        f'SELECT "value", "flags" FROM {ql_from(rp, VITALS)} '
        f"WHERE {ql_tag_equals('bed', bed)} AND {ql_tag_equals('param', param)} "
        f"AND time >= {since}ms AND time <= {until}ms ORDER BY time ASC LIMIT {limit}"
    )


def agg_trend_query(rp: str, bed: str, param: str, since: int, until: int, limit: int) -> str:
    """Stored 1-minute aggregates whose minute starts in [since, until)."""
    return (
        f'SELECT "mean", "flags" FROM {ql_from(rp, VITALS_1M)} '
        f"WHERE {ql_tag_equals('bed', bed)} AND {ql_tag_equals('param', param)} "
        f"AND time >= {since}ms AND time < {until}ms ORDER BY time ASC LIMIT {limit}"
    )


def live_agg_trend_query(rp: str, bed: str, param: str, since: int, until: int, limit: int) -> str:
    """1-minute aggregates computed from raw points, for the minutes the continuous query has not settled yet."""
    return (
        f'SELECT mean("value"), max("flags") FROM {ql_from(rp, VITALS)} '
        f"WHERE {ql_tag_equals('bed', bed)} AND {ql_tag_equals('param', param)} "
        f"AND time >= {since}ms AND time <= {until}ms GROUP BY time(1m) fill(none) LIMIT {limit}"
    )


def downsample_selects(db: str, raw_rp: str, agg_rp: str) -> dict[str, str]:
    """The SELECT ... INTO behind each continuous query, by CQ name (also run for late-data backfill)."""
    src = f"{ql_ident(db)}.{ql_ident(raw_rp)}"
    dst = f"{ql_ident(db)}.{ql_ident(agg_rp)}"
    return {
        "teleicu_vitals_1m": (
            f'SELECT mean("value") AS "mean", min("value") AS "min", max("value") AS "max", '
            f'count("value") AS "n", max("flags") AS "flags" '
            f"INTO {dst}.{ql_ident(VITALS_1M)} FROM {src}.{ql_ident(VITALS)}"
        ),
        "teleicu_news2_1m": (
            f'SELECT max("total") AS "total_max", max("partial") AS "partial_max" '
            f"INTO {dst}.{ql_ident(NEWS2_1M)} FROM {src}.{ql_ident(NEWS2)}"
        ),
    }


def continuous_query(name: str, db: str, select: str, resample_for: str) -> str:
    return (
        f"CREATE CONTINUOUS QUERY {ql_ident(name)} ON {ql_ident(db)} RESAMPLE EVERY 1m FOR {resample_for} "
        f"BEGIN {select} GROUP BY time(1m), * END"
    )


def backfill_query(select: str, since: int, until: int) -> str:
    """Recompute the aggregates of minutes [since, until) (ms, minute-aligned) from raw data."""
    return f"{select} WHERE time >= {since}ms AND time < {until}ms GROUP BY time(1m), *"
