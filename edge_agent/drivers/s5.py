"""Driver ``s5``: the GE Datex-Ohmeda S/5 computer interface (serial), sans-I/O.

The parser asks the monitor for its displayed values (a 49-byte request,
framed, byte-stuffed and checksummed), retrying over DRI levels until records
arrive, and turns the *basic* physiological class of each record into
observations and device status. Wire facts come from
``shared/clinical/devices.md``; the README beside this module
(``edge_agent/drivers/s5.md``) gives the mapping, the status handling and a
sample device entry.

Framing
=======

``0x7E`` + stuffed(record + checksum) + ``0x7E``. Inside, ``0x7E`` travels as
``0x7D 0x5E`` and ``0x7D`` as ``0x7D 0x5D`` (any byte after ``0x7D`` is XORed
with ``0x20``). The checksum is the sum of the record bytes mod 256. A flag
ends the frame in progress and starts the next, so a lost flag costs at most
the frames it touches. A record is at most ``MAX_RECORD`` bytes.

Requests and DRI levels
=======================

``bytes_to_send()`` (polled after every ``feed`` and about once a second)
sends the request at the first level of ``dri_levels`` (0x09, 0x08, 0x07) and
moves to the next level each ``retry_s`` without a physiological record. Once
records arrive it is silent; if none arrive for ``timeout_s`` it starts
requesting again, first at the level that last worked. The parser keeps its own
(monotonic, injectable) clock.

Errors (``ParseError.code``)
=============================

=================  ===========================================================
``framing``        bytes before the first flag, a frame too short to hold a
                   header, or an escape byte right before a flag
``oversized``      more than ``MAX_RECORD`` record bytes between two flags
``checksum``       the sum does not match: the frame is discarded and counted
                   (``errors["checksum"]``)
``bad_record``     ``r_len`` differs from the record's length, bad subrecord
                   descriptors, or a physiological subrecord too short to hold
                   the basic class
``unsupported``    a record main type (waveform, alarm...) or subrecord type
                   this driver does not decode
``bad_value``      a special value below -32001 that is not in the table
``implausible``    a value outside the vocabulary's plausible range, or a
                   pressure whose systolic, mean and diastolic are out of order;
                   the value is reported as invalid
``unmapped``       a field carrying a value that has no vocabulary key
                   (st1-3, invasive-pressure pulse rate, ir_amp...); reported
                   once per field, never as an observation
=================  ===========================================================

``discarded`` counts the raw (stuffed) bytes thrown away. ``feed`` never
raises; events are the same however the byte stream is chunked.
"""

from __future__ import annotations

import struct
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from edge_agent.drivers import register
from edge_agent.drivers.base import DriverSpec, ErrorAccounting, parser_options
from edge_agent.events import DeviceStatus, DriverEvent
from wire.messages import Observation
from wire.vocabulary import BY_KEY, Flag
from wire.clock import wall_ms
from wire.config import ConfigModel

FLAG = 0x7E
ESC = 0x7D
_FLAG_B = b"\x7e"
_ESC_B = b"\x7d"
HEADER_LEN = 40
MAX_RECORD = 4096  # record bytes (unstuffed, without the checksum)
REQUEST_LEN = 49
DRI_LEVELS = (0x09, 0x08, 0x07)

MT_PHYSIOLOGICAL = 0
SR_END = 0xFF
SR_REQUEST = 0
#: physiological subrecord types, as the request's phdb_rcrd_type
RECORD_TYPES = {"displayed": 1, "trend_10s": 2, "trend_60s": 3}
PHYSIOLOGICAL_SUBRECORDS = frozenset(RECORD_TYPES.values())
CLASS_BASIC_EXT1_3 = 0x0E  # class_bf from devices.md: basic + ext1-3

# special values: anything below -32001 is not a measurement
SPECIAL_LIMIT = -32001
INVALID = -32767
NOT_UPDATED = -32766
DISCONTINUITY = -32765
UNDER_RANGE = -32764
OVER_RANGE = -32763
NOT_CALIBRATED = -32762
#: special value -> DeviceStatus.status it raises (None: only the INVALID flag)
SPECIAL_STATUS: dict[int, str | None] = {
    INVALID: None,
    DISCONTINUITY: None,
    UNDER_RANGE: "under_range",
    OVER_RANGE: "over_range",
    NOT_CALIBRATED: "not_calibrated",
}

STATUS_EXISTS = 0x1  # group header status bit 0: the group exists
STATUS_ACTIVE = 0x2  # bit 1: its measurement is active

# The basic class, after the subrecord's u32 time: group header (u32 status,
# u16 label) then int16 fields, at the offsets of devices.md. One table for the
# parser and the simulator's encoder.
BASIC_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ecg", ("hr", "st1", "st2", "st3", "imp_rr")),
    ("p1", ("sys", "dia", "mean", "hr")),
    ("p2", ("sys", "dia", "mean", "hr")),
    ("p3", ("sys", "dia", "mean", "hr")),
    ("p4", ("sys", "dia", "mean", "hr")),
    ("nibp", ("sys", "dia", "mean", "hr")),
    ("t1", ("temp",)),
    ("t2", ("temp",)),
    ("t3", ("temp",)),
    ("t4", ("temp",)),
    ("spo2", ("spo2", "pr", "ir_amp", "svo2")),
    ("co2", ("et", "fi", "rr", "amb_press")),
)
_BASIC = struct.Struct("<" + "".join(f"IH{len(fields)}h" for _, fields in BASIC_GROUPS))
BASIC_LEN = _BASIC.size  # 146
SUBRECORD_MIN = 4 + BASIC_LEN
_HEADER = struct.Struct("<hBBHIBBHh")  # r_len, r_nbr, dri_level, plug_id, r_time, reserved x3, maintype
_DESC = struct.Struct("<hB")

#: index into the unpacked basic class of each group's status, and of each field
_GROUP_AT: dict[str, int] = {}
_FIELD_AT: dict[tuple[str, str], int] = {}
_i = 0
for _g, _fields in BASIC_GROUPS:
    _GROUP_AT[_g] = _i
    for _j, _f in enumerate(_fields):
        _FIELD_AT[(_g, _f)] = _i + 2 + _j
    _i += 2 + len(_fields)
del _i, _g, _fields, _j, _f

PRESSURE_CHANNELS = ("p1", "p2", "p3", "p4")
TEMP_CHANNELS = ("t1", "t2", "t3", "t4")
DEFAULT_PRESSURES: dict[str, str | None] = {"p1": "abp"}
#: decimals kept after scaling (the wire's resolution); others keep 2
DECIMALS: dict[str, int] = {"hr": 0, "pr": 0, "rr": 0, "etco2": 1}


def checksum(record: bytes) -> int:
    """Sum of the record bytes mod 256."""
    return sum(record) & 0xFF


def stuff(data: bytes) -> bytes:
    """Escape ``0x7D`` then ``0x7E`` (order matters: escapes must not be re-escaped)."""
    return data.replace(b"\x7d", b"\x7d\x5d").replace(b"\x7e", b"\x7d\x5e")


def frame(record: bytes) -> bytes:
    """``0x7E`` + stuffed(record + checksum) + ``0x7E``."""
    return _FLAG_B + stuff(record + bytes((checksum(record),))) + _FLAG_B


def build_request(
    dri_level: int,
    *,
    record_type: int = RECORD_TYPES["displayed"],
    tx_interval_s: int = 5,
    class_bf: int = CLASS_BASIC_EXT1_3,
) -> bytes:
    """The framed 49-byte physiological-data request at ``dri_level``."""
    header = _HEADER.pack(REQUEST_LEN, 0, dri_level, 0, 0, 0, 0, 0, MT_PHYSIOLOGICAL)
    descriptors = _DESC.pack(0, SR_REQUEST) + _DESC.pack(0, SR_END) + bytes(3 * 6)
    body = struct.pack("<BhIH", record_type, tx_interval_s, class_bf, 0)
    record = header + descriptors + body
    assert len(record) == REQUEST_LEN
    return frame(record)


@dataclass(frozen=True, slots=True)
class _Target:
    """One observation drawn from the basic class."""

    group: str
    field: str
    key: str
    scale: float


class _State(Enum):
    HUNT = 0  # before the first flag
    FRAME = 1  # collecting a frame's content
    OVERSIZED = 2  # skipping to the next flag


def _mask(v: int) -> int:
    if v & (STATUS_EXISTS | STATUS_ACTIVE):
        raise ValueError("must not include bits 0-1 (group exists / active)")
    return v


StatusMask = Annotated[int, Field(ge=0, le=0xFFFFFFFF), AfterValidator(_mask)]


class S5Options(ConfigModel):
    """``options:`` of an ``s5`` device entry; each is explained in ``S5Parser``."""

    pressures: dict[str, str | None] | None = None  # None: DEFAULT_PRESSURES
    temperature: str | None = "t1"
    rr_source: str = "co2"
    leads_off_mask: StatusMask = 0
    probe_off_mask: StatusMask = 0
    tx_interval_s: Annotated[int, Field(ge=1, le=3600)] = 5
    record_type: str = "displayed"
    class_bf: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] = CLASS_BASIC_EXT1_3
    dri_levels: Annotated[list[Annotated[int, Field(ge=0, le=255)]], Field(min_length=1)] = list(DRI_LEVELS)
    retry_s: Annotated[float, Field(gt=0)] | None = None  # None: tx_interval_s + 2
    timeout_s: Annotated[float, Field(gt=0)] | None = None  # None: 3 * tx_interval_s + 2

    @model_validator(mode="after")
    def _consistent(self) -> S5Options:
        if self.record_type not in RECORD_TYPES:
            raise ValueError(f"record_type must be one of {sorted(RECORD_TYPES)}, got {self.record_type!r}")
        _plan(self.pressures, self.temperature, self.rr_source)  # raises for an impossible mapping
        return self


class S5Parser(ErrorAccounting):
    """Sans-I/O S/5 computer-interface client for one monitor on one bed.

    Options (``options:`` of the device entry), all optional:

    ``pressures``
        invasive channel -> vocabulary prefix, default ``{p1: abp}`` (P1 is
        assumed to be the arterial line; P2-P4 are not reported). A prefix
        ``x`` needs ``x_sys``, ``x_dia`` and ``x_mean`` in the vocabulary.
    ``temperature``
        the channel carrying body temperature, ``t1`` (default) .. ``t4``, or null.
    ``rr_source``
        ``co2`` (default: the CO2 group's rr) or ``impedance`` (the ECG group's imp_rr).
    ``leads_off_mask`` / ``probe_off_mask``
        ECG / SpO2 group-status bits that mean leads off / probe off. Default
        0: not interpreted (see the README: not established from public docs).
    ``tx_interval_s``, ``record_type``, ``class_bf``, ``dri_levels``
        what the request asks for, and the DRI levels tried in order.
    ``retry_s``, ``timeout_s``
        seconds without records before the next DRI level / a new request
        (defaults ``tx_interval_s + 2`` and ``3 * tx_interval_s + 2``).
    """

    def __init__(
        self,
        bed: str,
        device: str,
        *,
        clock_ms: Callable[[], int] = wall_ms,
        monotonic: Callable[[], float] = time.monotonic,
        **options: Any,
    ) -> None:
        opts = parser_options(S5Options, options, "s5")
        self.bed = bed
        self.device = device
        self._clock_ms = clock_ms
        self._monotonic = monotonic
        self._targets, self._unmapped = _plan(opts.pressures, opts.temperature, opts.rr_source)
        wanted = {t.group for t in self._targets} | {"co2"}  # co2: etco2 is always reported
        self._mapped_groups = tuple(g for g, _ in BASIC_GROUPS if g in wanted)
        self.leads_off_mask = opts.leads_off_mask
        self.probe_off_mask = opts.probe_off_mask
        tx_interval_s = opts.tx_interval_s
        self.dri_levels = tuple(opts.dri_levels)
        self.retry_s = opts.retry_s if opts.retry_s is not None else tx_interval_s + 2.0
        self.timeout_s = opts.timeout_s if opts.timeout_s is not None else 3.0 * tx_interval_s + 2.0
        self._requests = {
            lvl: build_request(lvl, record_type=RECORD_TYPES[opts.record_type], tx_interval_s=tx_interval_s, class_bf=opts.class_bf)
            for lvl in self.dri_levels
        }
        # deframing
        self._state = _State.HUNT
        self._buf = bytearray()  # unstuffed content of the frame in progress
        self._raw = 0  # raw bytes of the frame in progress (for ``discarded``)
        self._esc = False
        self._garbage = 0
        # request schedule
        self._level_i = 0
        self._last_request: float | None = None
        self._last_data: float | None = None
        self._receiving = False
        # status and reporting state
        self._conditions: dict[str, str] = {}
        self._was_active: set[str] = set()
        self._existed: set[str] = set()
        self._reported_unmapped: set[str] = set()
        self._last_nibp: dict[str, tuple[float | None, int]] = {}
        #: ParseError counts by code, bytes discarded, records decoded, requests sent
        self.errors: Counter[str] = Counter()
        self.discarded_bytes = 0
        self.records = 0
        self.requests_sent = 0
        self.timeouts = 0
        self.dri_level: int | None = None  # level of the last record received

    @property
    def buffered(self) -> int:
        """Record bytes held for the frame in progress (never above ``MAX_RECORD + 1``)."""
        return len(self._buf)

    # -- requests -----------------------------------------------------------------

    def bytes_to_send(self) -> bytes:
        now = self._monotonic()
        if self._last_data is not None:
            if now - self._last_data <= self.timeout_s:
                return b""
            # records stopped: ask again, first at the level that worked
            self._last_data = None
            self._last_request = None
            self._receiving = False
            self.timeouts += 1
        if self._last_request is not None:
            if now - self._last_request < self.retry_s:
                return b""
            self._level_i = (self._level_i + 1) % len(self.dri_levels)
        self._last_request = now
        self.requests_sent += 1
        return self._requests[self.dri_levels[self._level_i]]

    # -- bytes in -------------------------------------------------------------------

    def feed(self, data: bytes) -> list[DriverEvent]:
        events: list[DriverEvent] = []
        data = bytes(data)
        pos, n = 0, len(data)
        while pos < n:
            i = data.find(_FLAG_B, pos)
            end = n if i < 0 else i
            if self._state is _State.HUNT:
                self._garbage += end - pos
                if i >= 0:
                    if self._garbage:
                        self._error(events, "framing", "bytes before the first frame flag", self._garbage)
                        self._garbage = 0
                    self._start()
            elif self._state is _State.FRAME:
                self._append(data, pos, end)
                if i >= 0:
                    if self._state is _State.OVERSIZED:
                        self._report_oversized(events)
                    else:
                        self._end_of_frame(events)
            else:  # OVERSIZED
                self._raw += end - pos
                if i >= 0:
                    self._report_oversized(events)
            pos = end + 1 if i >= 0 else n
        return events

    def _report_oversized(self, events: list[DriverEvent]) -> None:
        self._error(events, "oversized", f"more than {MAX_RECORD} record bytes between flags", self._raw + 1)
        self._start()

    def _start(self) -> None:
        self._state = _State.FRAME
        self._buf.clear()
        self._raw = 0
        self._esc = False

    def _append(self, data: bytes, pos: int, end: int) -> None:
        """Unstuff ``data[pos:end]`` onto the frame in progress; switch to OVERSIZED past the limit."""
        if pos == end:
            return
        self._raw += end - pos
        buf = self._buf
        if self._esc:  # the previous chunk ended with an escape byte
            buf.append(data[pos] ^ 0x20)
            pos += 1
            self._esc = False
        while pos < end:
            j = data.find(_ESC_B, pos, end)
            if j < 0:
                buf += data[pos:end]
                break
            buf += data[pos:j]
            if j + 1 < end:
                buf.append(data[j + 1] ^ 0x20)
                pos = j + 2
            else:
                self._esc = True
                break
        if len(buf) > MAX_RECORD + 1:
            buf.clear()
            self._state = _State.OVERSIZED

    def _end_of_frame(self, events: list[DriverEvent]) -> None:
        """A flag arrived: the content since the previous flag is one frame."""
        raw = self._raw + 1  # with its closing flag
        buf, esc = bytes(self._buf), self._esc
        self._start()
        if not buf and not esc:
            return  # back-to-back flags: idle line, not an error
        if esc:
            self._error(events, "framing", "escape byte right before a flag", raw)
            return
        if len(buf) < HEADER_LEN + 1:
            self._error(events, "framing", f"frame of {len(buf)} bytes is too short for a record", raw)
            return
        record = buf[:-1]
        expected, actual = buf[-1], checksum(record)
        if expected != actual:
            self._error(events, "checksum", f"checksum {expected:02X} != computed {actual:02X}", raw)
            return
        self._record(record, raw, events)

    # -- records --------------------------------------------------------------------

    def _record(self, rec: bytes, raw: int, events: list[DriverEvent]) -> None:
        r_len, _nbr, dri_level, _plug, r_time, _r1, _r2, _r3, maintype = _HEADER.unpack_from(rec, 0)
        if r_len != len(rec):
            self._error(events, "bad_record", f"r_len {r_len} != record length {len(rec)}", raw)
            return
        subs = _subrecords(rec)
        if subs is None:
            self._error(events, "bad_record", "subrecord descriptors out of order or outside the record", raw)
            return
        if maintype != MT_PHYSIOLOGICAL:
            self._error(events, "unsupported", f"record main type {maintype} is not decoded (only 0, physiological)", raw)
            return
        basic = next(((start, end) for sr_type, start, end in subs if sr_type in PHYSIOLOGICAL_SUBRECORDS), None)
        if basic is None:
            types = ",".join(str(t) for t, _, _ in subs) or "none"
            self._error(events, "unsupported", f"no physiological subrecord (types {types})", raw)
            return
        start, end = basic
        if end - start < SUBRECORD_MIN:
            self._error(events, "bad_record", f"physiological subrecord of {end - start} bytes, need {SUBRECORD_MIN}", raw)
            return
        now = self._monotonic()
        self._last_data = now
        self.records += 1
        self.dri_level = dri_level
        t_rx = self._clock_ms()
        t_dev = r_time * 1000 if r_time else t_rx
        if not self._receiving:
            self._receiving = True
            self._level_i = self.dri_levels.index(dri_level) if dri_level in self.dri_levels else self._level_i
            events.append(DeviceStatus(self.bed, self.device, "ok", t_dev, f"receiving at DRI level 0x{dri_level:02X}"))
        self._basic(_BASIC.unpack_from(rec, start + 4), t_dev, t_rx, events)

    def _basic(self, vals: tuple[int, ...], t_dev: int, t_rx: int, events: list[DriverEvent]) -> None:
        conditions: dict[str, str] = {}
        usable: dict[str, int] = {}  # group -> flags for its values, for groups that report values
        for group in self._mapped_groups:
            status = vals[_GROUP_AT[group]]
            if not status & STATUS_EXISTS:
                if group in self._existed:
                    conditions[group] = "disconnected"
                continue
            self._existed.add(group)
            if not status & STATUS_ACTIVE:
                if group in self._was_active:
                    conditions[group] = "inactive"
                continue
            self._was_active.add(group)
            flags = 0
            if group == "ecg" and status & self.leads_off_mask:
                flags = Flag.LEADS_OFF
                conditions[group] = "leads_off"
            elif group == "spo2" and status & self.probe_off_mask:
                flags = Flag.PROBE_OFF
                conditions[group] = "probe_off"
            usable[group] = flags

        out: list[Observation] = []

        def emit(key: str, value: float | None, flags: int) -> None:
            out.append(Observation(self.bed, key, value, t_dev, t_rx, self.device, int(flags)))

        for tg in self._targets:
            if tg.group in usable:
                raw = vals[_FIELD_AT[(tg.group, tg.field)]]
                if not self._not_a_number(tg.key, raw, usable[tg.group], emit, conditions, events):
                    self._number(tg.key, raw * tg.scale, emit, events)
        if "co2" in usable:
            et, amb = vals[_FIELD_AT[("co2", "et")]], vals[_FIELD_AT[("co2", "amb_press")]]
            if not self._not_a_number("etco2", et, usable["co2"], emit, conditions, events):
                if amb < SPECIAL_LIMIT or amb <= 0:
                    self._error(events, "bad_value", f"etco2: ambient pressure {amb} unusable", 0)
                    emit("etco2", None, Flag.INVALID)
                else:
                    self._number("etco2", et * amb * 1e-5, emit, events)
        self._check_pressure_order(out, events)
        self._report_unmapped(vals, events)
        for o in out:
            if o.param.startswith("nibp_"):
                # the displayed NIBP is the last cuff reading, repeated: report each reading once
                key = (o.value, o.flags)
                if self._last_nibp.get(o.param) == key:
                    continue
                self._last_nibp[o.param] = key
            events.append(o)
        self._update_conditions(conditions, t_dev, events)

    def _not_a_number(
        self,
        key: str,
        raw: int,
        flags: int,
        emit: Callable[[str, float | None, int], None],
        conditions: dict[str, str],
        events: list[DriverEvent],
    ) -> bool:
        """Handle a flagged group or a special value; False when ``raw`` is a plain number."""
        if flags:
            emit(key, None, flags)  # probe / leads off: whatever the number, it is not a measurement
            return True
        if raw >= SPECIAL_LIMIT:
            return False
        if raw == NOT_UPDATED:
            return True  # nothing new to say
        if raw in SPECIAL_STATUS:
            status = SPECIAL_STATUS[raw]
            if status:
                conditions[key] = status
        else:
            self._error(events, "bad_value", f"{key}: unknown special value {raw}", 0)
        emit(key, None, Flag.INVALID)
        return True

    def _number(self, key: str, value: float, emit: Callable[[str, float | None, int], None], events: list[DriverEvent]) -> None:
        value = round(value, DECIMALS.get(key, 2))
        p = BY_KEY[key]
        if p.lo <= value <= p.hi:
            emit(key, value, 0)
        else:
            self._error(events, "implausible", f"{key}: {value:g} outside {p.lo:g}..{p.hi:g}", 0)
            emit(key, None, Flag.INVALID)

    def _check_pressure_order(self, out: list[Observation], events: list[DriverEvent]) -> None:
        """Systolic >= mean >= diastolic, or the three are not a measurement."""
        where = {o.param: i for i, o in enumerate(out)}
        for prefix in sorted({o.param[:-4] for o in out if o.param.endswith("_sys")}):
            idx = [where.get(f"{prefix}_{s}") for s in ("sys", "mean", "dia")]
            if any(i is None for i in idx):
                continue
            trio = [out[i] for i in idx if i is not None]
            sys_, mean, dia = (o.value for o in trio)
            if sys_ is None or mean is None or dia is None or sys_ >= mean >= dia:
                continue
            self._error(events, "implausible", f"{prefix}: {sys_:g}/{dia:g} (mean {mean:g}) out of order", 0)
            for i, o in zip(idx, trio, strict=True):
                assert i is not None
                out[i] = Observation(o.bed, o.param, None, o.t_dev, o.t_rx, o.device, int(Flag.INVALID))

    def _report_unmapped(self, vals: tuple[int, ...], events: list[DriverEvent]) -> None:
        if len(self._reported_unmapped) == len(self._unmapped):
            return
        for group, fieldname in self._unmapped:
            name = f"{group}.{fieldname}"
            if name in self._reported_unmapped:
                continue
            status = vals[_GROUP_AT[group]]
            raw = vals[_FIELD_AT[(group, fieldname)]]
            if status & STATUS_EXISTS and status & STATUS_ACTIVE and raw >= SPECIAL_LIMIT:
                self._reported_unmapped.add(name)
                self._error(events, "unmapped", f"{name} = {raw} (raw) has no vocabulary key; not reported", 0)

    def _update_conditions(self, conditions: dict[str, str], t_dev: int, events: list[DriverEvent]) -> None:
        old = self._conditions
        for subject in sorted(old.keys() | conditions.keys()):
            new = conditions.get(subject, "ok")
            if old.get(subject, "ok") != new:
                events.append(DeviceStatus(self.bed, self.device, new, t_dev, subject))
        self._conditions = conditions


def _subrecords(rec: bytes) -> list[tuple[int, int, int]] | None:
    """``(type, start, end)`` of each subrecord (absolute offsets), or None if the descriptors are inconsistent."""
    descs: list[tuple[int, int]] = []
    for k in range(8):
        offset, sr_type = _DESC.unpack_from(rec, 16 + 3 * k)
        if sr_type == SR_END:
            break
        descs.append((sr_type, offset))
    out: list[tuple[int, int, int]] = []
    prev = -1
    for k, (sr_type, offset) in enumerate(descs):
        start = HEADER_LEN + offset
        if offset <= prev or start >= len(rec):
            return None
        prev = offset
        end = HEADER_LEN + descs[k + 1][1] if k + 1 < len(descs) else len(rec)
        out.append((sr_type, start, min(end, len(rec))))
    return out


def _plan(
    pressures: Mapping[str, str | None] | None, temperature: str | None, rr_source: str
) -> tuple[list[_Target], list[tuple[str, str]]]:
    """Which basic-class fields become which vocabulary keys, and which fields stay unmapped."""
    press = dict(DEFAULT_PRESSURES if pressures is None else pressures)
    if not isinstance(press, dict) or not set(press) <= set(PRESSURE_CHANNELS):
        raise ValueError(f"pressures must map channels {PRESSURE_CHANNELS} to a vocabulary prefix, got {pressures!r}")
    prefixes = [p for p in press.values() if p is not None]
    for prefix in prefixes:
        if prefix == "nibp" or not all(f"{prefix}_{s}" in BY_KEY for s in ("sys", "dia", "mean")):
            raise ValueError(f"pressures: {prefix!r} is not an invasive-pressure prefix of the vocabulary (e.g. 'abp')")
    if len(prefixes) != len(set(prefixes)):
        raise ValueError(f"pressures: two channels map to the same parameter: {press!r}")
    if temperature is not None and temperature not in TEMP_CHANNELS:
        raise ValueError(f"temperature must be one of {TEMP_CHANNELS} or null, got {temperature!r}")
    if rr_source not in ("co2", "impedance"):
        raise ValueError(f"rr_source must be 'co2' or 'impedance', got {rr_source!r}")

    targets = [_Target("ecg", "hr", "hr", 1.0)]
    if rr_source == "impedance":
        targets.append(_Target("ecg", "imp_rr", "rr", 1.0))
    for ch in PRESSURE_CHANNELS:
        prefix = press.get(ch)
        if prefix:
            targets += [_Target(ch, s, f"{prefix}_{s}", 0.01) for s in ("sys", "dia", "mean")]
    targets += [_Target("nibp", s, f"nibp_{s}", 0.01) for s in ("sys", "dia", "mean")]
    if temperature:
        targets.append(_Target(temperature, "temp", "temp", 0.01))
    targets += [_Target("spo2", "spo2", "spo2", 0.01), _Target("spo2", "pr", "pr", 1.0)]
    if rr_source == "co2":
        targets.append(_Target("co2", "rr", "rr", 1.0))
    used = {(t.group, t.field) for t in targets} | {("co2", "et"), ("co2", "amb_press")}
    unmapped = [(g, f) for g, fields in BASIC_GROUPS for f in fields if (g, f) not in used]
    return targets, unmapped


register(
    DriverSpec(
        name="s5",
        transport="serial",
        parser=S5Parser,
        default_baud=19200,
        serial_options={"parity": "E", "bytesize": 8, "stopbits": 1, "rtscts": True},
        options=S5Options,
        description="GE Datex-Ohmeda S/5 computer interface: displayed values, basic physiological class",
    )
)
