"""The sample record: every sample a component produced, as JSON lines, for audits and counting tests.

``teleicu edge --record FILE`` appends what it has spooled; the MQTT simulator's
``record=PATH`` what its monitors produced. A test or an auditor compares the
file with what the hub's store holds, sample by sample. One line per sample:

    numerics  [bed, param, t_dev, value, flags]
    waveform  {"bed": ..., "lead": ..., "t": t_first, "n": samples, "digest": ...}
    unmapped  {"bed": ..., "device": ..., "system": ..., "code": ..., "t": t_dev, "value": ...}

``digest`` is ``samples_digest`` of the chunk's int16 samples: the first 16 hex
digits of the SHA-256 of their little-endian bytes, which are also the bytes
the wire chunk, the embedded store and InfluxDB (base64) carry, so a stored
chunk can be checked against the record without keeping its samples twice.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from wire.messages import Observation, UnmappedObservation, WaveChunk

NumericKey = tuple[str, str, int]  # bed, param, device time
WaveKey = tuple[str, str, int]  # bed, lead, device time of the first sample
UnmappedKey = tuple[str, str, str, str, int]  # bed, device, system, code, device time


def samples_digest(samples: bytes | Iterable[int]) -> str:
    """SHA-256 (first 16 hex digits) of int16 samples as little-endian bytes."""
    if not isinstance(samples, bytes):
        values = tuple(samples)
        samples = struct.pack(f"<{len(values)}h", *values)
    return hashlib.sha256(samples).hexdigest()[:16]


def numeric_line(bed: str, param: str, t: int, value: float | None, flags: int) -> str:
    return json.dumps([bed, param, t, value, flags]) + "\n"


def record_lines(items: Iterable[Observation | UnmappedObservation | WaveChunk]) -> str:
    """The record lines for spooled observations, unmapped observations and waveform chunks."""
    out: list[str] = []
    for x in items:
        if isinstance(x, WaveChunk):
            out.append(json.dumps({"bed": x.bed, "lead": x.lead, "t": x.t_first, "n": len(x.samples), "digest": samples_digest(x.samples)}) + "\n")
        elif isinstance(x, UnmappedObservation):
            out.append(json.dumps({"bed": x.bed, "device": x.device, "system": x.system, "code": x.code, "t": x.t_dev, "value": x.value}) + "\n")
        else:
            out.append(numeric_line(x.bed, x.param, x.t_dev, x.value, x.flags))
    return "".join(out)


@dataclass
class SampleRecord:
    """A record file read back: numerics as {(bed, param, t): value}, waveforms as {(bed, lead, t): (n, digest)},
    unmapped observations as {(bed, device, system, code, t): value}."""

    numerics: dict[NumericKey, float | None] = field(default_factory=dict)
    waves: dict[WaveKey, tuple[int, str]] = field(default_factory=dict)
    unmapped: dict[UnmappedKey, str] = field(default_factory=dict)


def read_record(path: Path) -> SampleRecord:
    """Read a record file (a missing file is an empty record). A line repeated (a sample recorded twice) counts once."""
    rec = SampleRecord()
    if not path.exists():
        return rec
    for line in path.read_text().splitlines():
        item = json.loads(line)
        if isinstance(item, dict) and "lead" in item:
            rec.waves[(item["bed"], item["lead"], item["t"])] = (item["n"], item["digest"])
        elif isinstance(item, dict):
            rec.unmapped[(item["bed"], item["device"], item["system"], item["code"], item["t"])] = item["value"]
        else:
            bed, param, t, value, _flags = item
            rec.numerics[(bed, param, t)] = value
    return rec
