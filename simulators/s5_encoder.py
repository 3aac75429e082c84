"""GE Datex-Ohmeda S/5 computer interface, the monitor's side: records out, requests in.

Byte facts are in ``shared/clinical/devices.md``; the reading side is the
``s5`` driver (``edge_agent.drivers.s5``). This module is written
independently of it, so a misreading on either side shows in the tests.

* ``frame``/``stuff`` and ``RecordReader`` (an incremental, bounded deframer
  that keeps records whose checksum is right);
* ``encode_basic`` (the basic physiological class, 146 bytes, from per-group
  raw values) and ``encode_record`` (40-byte header + one physiological
  subrecord: u32 time + class block);
* ``parse_request`` (the 49-byte displayed-values request);
* ``S5Emitter``, the simulated monitor (a ``serial_monitor.Emitter``): it sends
  nothing until it reads a valid displayed-values request at the DRI level it
  supports (requests at other levels are ignored, as a real monitor does), then
  one record every ``tx_interval`` seconds, until a request with interval 0.

The simulated monitor sends only the basic class (no ext1-3 subrecords, no
waveform or alarm records). Scaling: HR, RR and pulse rate x1; pressures,
SpO2 and temperatures x0.01; etCO2 as ``et`` (0.01 %) with ``amb_press``
``AMBIENT_RAW`` so that mmHg = et x amb_press x 1e-5. Invasive pressures and
T2-T4 are sent as groups that do not exist (status 0, values invalid).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# the protocol's constants live once, in the driver; the special values are re-exported for building test records
from edge_agent.drivers.s5 import (  # noqa: F401
    BASIC_GROUPS,
    DISCONTINUITY,
    ESC,
    FLAG,
    HEADER_LEN,
    INVALID,
    MAX_RECORD,
    NOT_CALIBRATED,
    NOT_UPDATED,
    OVER_RANGE,
    UNDER_RANGE,
)
from simulators.serial_monitor import NIBP_KEYS, Reading

EXISTS = 0x1
ACTIVE = 0x2
PRESENT = EXISTS | ACTIVE
AMBIENT_RAW = 7600  # amb_press: with et in 0.01 %, 7600 makes et x amb x 1e-5 come out in mmHg at 760 mmHg
DISPLAYED = 1  # phdb_rcrd_type / physiological subrecord type
END_OF_LIST = 0xFF

#: the basic class's groups and their int16 fields, in wire order: the driver's table (one place)
BASIC_SIZE = sum(6 + 2 * len(f) for _, f in BASIC_GROUPS)  # 146


@dataclass(frozen=True, slots=True)
class Group:
    """One group of the basic class: header status and label, then raw int16 fields by name."""

    status: int = PRESENT
    fields: Mapping[str, int] = field(default_factory=dict)  # missing fields are sent as INVALID
    label: int = 0


def stuff(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        if b == FLAG or b == ESC:
            out += bytes((ESC, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def frame(record: bytes) -> bytes:
    """``0x7E`` + stuffed(record + sum mod 256) + ``0x7E``."""
    total = 0
    for b in record:
        total = (total + b) & 0xFF
    return bytes((FLAG,)) + stuff(record + bytes((total,))) + bytes((FLAG,))


def raw(value: float | None, scale: float) -> int:
    """A physical value as the int16 the monitor sends (``None`` -> invalid)."""
    if value is None:
        return INVALID
    n = int(np.floor(value / scale + 0.5))
    if not -32001 <= n <= 32767:
        raise ValueError(f"{value} does not fit an S/5 int16 at scale {scale}")
    return n


def encode_basic(groups: Mapping[str, Group]) -> bytes:
    """The 146-byte basic class; groups not given are sent as not existing (status 0, invalid values)."""
    out = bytearray()
    for name, fieldnames in BASIC_GROUPS:
        g = groups.get(name, Group(status=0))
        unknown = set(g.fields) - set(fieldnames)
        if unknown:
            raise ValueError(f"group {name} has no fields {sorted(unknown)}")
        out += struct.pack("<IH", g.status, g.label)
        out += struct.pack(f"<{len(fieldnames)}h", *(g.fields.get(f, INVALID) for f in fieldnames))
    assert len(out) == BASIC_SIZE
    return bytes(out)


def encode_record(
    t_s: int,
    basic: bytes,
    *,
    dri_level: int,
    r_nbr: int = 0,
    sr_type: int = DISPLAYED,
    maintype: int = 0,
    trailer: bytes = b"",
) -> bytes:
    """Header + one subrecord (u32 time, ``basic``, then ``trailer``: groups beyond CO2 a monitor may add)."""
    sub = struct.pack("<I", t_s) + basic + trailer
    r_len = HEADER_LEN + len(sub)
    header = struct.pack("<hBBHIBBHh", r_len, r_nbr & 0xFF, dri_level, 0, t_s, 0, 0, 0, maintype)
    descriptors = struct.pack("<hB", 0, sr_type) + struct.pack("<hB", 0, END_OF_LIST) * 7
    record = header + descriptors + sub
    assert len(header) + len(descriptors) == HEADER_LEN
    return record


@dataclass(frozen=True, slots=True)
class Request:
    dri_level: int
    record_type: int
    tx_interval_s: int
    class_bf: int


def parse_request(record: bytes) -> Request | None:
    """The physiological-data request in ``record``, or None if it is not one."""
    if len(record) != 49:
        return None
    r_len, _nbr, level, _plug, _t, _a, _b, _c, maintype = struct.unpack_from("<hBBHIBBHh", record, 0)
    (_off0, type0), (_off1, type1) = struct.unpack_from("<hB", record, 16), struct.unpack_from("<hB", record, 19)
    if r_len != 49 or maintype != 0 or type0 != 0 or type1 != END_OF_LIST:
        return None
    rtype, interval, class_bf, _reserved = struct.unpack_from("<BhIH", record, HEADER_LEN)
    return Request(level, rtype, interval, class_bf)


class RecordReader:
    """Incremental deframer for bytes arriving at the monitor: ``feed`` returns good records.

    Holds at most ``MAX_RECORD + 1`` unstuffed bytes; ``bad`` counts frames thrown away.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._esc = False
        self._in_frame = False
        self._overflow = False
        self.bad = 0

    def feed(self, data: bytes) -> list[bytes]:
        records: list[bytes] = []
        for b in data:
            if b == FLAG:
                if self._in_frame and (self._buf or self._esc or self._overflow):
                    rec = self._finish()
                    if rec is not None:
                        records.append(rec)
                self._in_frame = True
                self._buf.clear()
                self._esc = False
                self._overflow = False
            elif not self._in_frame or self._overflow:
                continue
            elif self._esc:
                self._buf.append(b ^ 0x20)
                self._esc = False
            elif b == ESC:
                self._esc = True
            else:
                self._buf.append(b)
            if len(self._buf) > MAX_RECORD + 1:
                self._buf.clear()
                self._overflow = True
        return records

    def _finish(self) -> bytes | None:
        buf = self._buf
        if self._esc or self._overflow or len(buf) < 2:
            self.bad += 1
            return None
        total = 0
        for b in buf[:-1]:
            total = (total + b) & 0xFF
        if total != buf[-1]:
            self.bad += 1
            return None
        return bytes(buf[:-1])


def basic_from_values(
    values: Mapping[str, float | None],
    *,
    probe_off: bool = False,
    probe_off_mask: int = 0,
    nibp_hr: float | None = None,
) -> dict[str, Group]:
    """The groups a monitor fills from our physiology's numerics (keys as ``Physiology.step``)."""
    hr, rr = values.get("hr"), values.get("rr")
    groups = {
        "ecg": Group(fields={"hr": raw(hr, 1), "st1": 0, "st2": 0, "st3": 0, "imp_rr": raw(rr, 1)}),
        "t1": Group(fields={"temp": raw(values.get("temp"), 0.01)}),
        "co2": Group(
            fields={
                "et": raw(values["etco2"] / (AMBIENT_RAW * 1e-5), 1) if values.get("etco2") is not None else INVALID,
                "fi": 0,
                "rr": raw(rr, 1),
                "amb_press": AMBIENT_RAW,
            }
        ),
    }
    if probe_off:
        groups["spo2"] = Group(status=PRESENT | probe_off_mask, fields={"spo2": INVALID, "pr": INVALID, "ir_amp": 0})
    else:
        groups["spo2"] = Group(fields={"spo2": raw(values.get("spo2"), 0.01), "pr": raw(hr, 1), "ir_amp": 0})
    if any(k in values for k in NIBP_KEYS):
        groups["nibp"] = Group(
            fields={
                "sys": raw(values.get("nibp_sys"), 0.01),
                "dia": raw(values.get("nibp_dia"), 0.01),
                "mean": raw(values.get("nibp_mean"), 0.01),
                "hr": raw(nibp_hr, 1),
            }
        )
    return groups


class S5Emitter:
    """A simulated S/5 monitor: silent until a displayed-values request at its DRI level, then a record per interval.

    ``dri_level``: the one level this monitor answers (requests at others are
    ignored). ``probe_off_mask``: SpO2 group-status bits it sets while the probe
    is off (0: none; values are then only sent as invalid). ``edge``: options
    for the edge agent's ``s5`` device entry.
    """

    protocol = "s5"
    baud = 19200
    wants_ecg = False
    listens = True
    protect = 1  # the frame flags

    def __init__(self, *, dri_level: int = 0x09, probe_off_mask: int = 0, edge: Mapping[str, Any] | None = None) -> None:
        self.dri_level = dri_level
        self.probe_off_mask = probe_off_mask
        self._edge = dict(edge or {})
        if probe_off_mask:
            self._edge.setdefault("probe_off_mask", probe_off_mask)
        self._reader = RecordReader()
        self._interval = 0  # seconds; 0: not sending
        self._next_second: int | None = None
        self._nibp: dict[str, float] = {}
        self._nibp_hr: float | None = None
        self._r_nbr = 0
        self.requests: Counter[str] = Counter()  # accepted, stopped, wrong_level, not_displayed, not_a_request
        self.records_sent = 0

    @property
    def sending(self) -> bool:
        return self._interval > 0

    def start(self, start_ms: int) -> None:
        pass

    def receive(self, data: bytes, now_ms: int) -> None:
        for record in self._reader.feed(data):
            req = parse_request(record)
            if req is None:
                self.requests["not_a_request"] += 1
            elif req.dri_level != self.dri_level:
                self.requests["wrong_level"] += 1
            elif req.record_type != DISPLAYED:
                self.requests["not_displayed"] += 1
            elif req.tx_interval_s <= 0:
                self.requests["stopped"] += 1
                self._interval = 0
            else:
                self.requests["accepted"] += 1
                self._interval = req.tx_interval_s
                self._next_second = None  # first record at the next whole second

    def frames(self, k: int, now_ms: int, reading: Reading | None, ecg: np.ndarray | None) -> list[bytes]:
        if reading is None:
            return []
        values: dict[str, float | None] = dict(reading.values)
        nibp = {key: float(values[key]) for key in NIBP_KEYS if values.get(key) is not None}
        if nibp:  # the display keeps the last cuff reading
            self._nibp, self._nibp_hr = nibp, values.get("hr")
        values.update(self._nibp)
        if not self.sending or (self._next_second is not None and reading.second < self._next_second):
            return []
        self._next_second = reading.second + self._interval
        groups = basic_from_values(
            values, probe_off=reading.probe_off, probe_off_mask=self.probe_off_mask, nibp_hr=self._nibp_hr
        )
        record = encode_record(now_ms // 1000, encode_basic(groups), dri_level=self.dri_level, r_nbr=self._r_nbr)
        self._r_nbr += 1
        self.records_sent += 1
        return [frame(record)]

    def edge_options(self) -> dict[str, Any]:
        return dict(self._edge)

