"""Driver ``nonin``: Nonin OEM III pulse oximeter, serial data format 2, sans-I/O.

The oximeter streams, unasked, 75 five-byte frames a second::

    0x01, status, pleth, data, checksum      checksum = sum of the first four mod 256

grouped in packets of 25 frames (three a second). The status byte always has
bit 7 set; bit 0 marks the first frame of a packet. The data byte of frames
1-2 is the heart rate (``((MSB & 0x03) << 7) | (LSB & 0x7F)``, 511 = no value),
of frame 3 the SpO2 (``& 0x7F``, 127 = no value). Facts from
``shared/clinical/devices.md``; mapping, status handling and a sample device
entry in ``edge_agent/drivers/nonin.md``.

Synchronisation: a packet is accepted only when all 25 frames start with
``0x01``, have status bit 7 set and a right checksum, and bit 0 is set in the
first frame and in no other. Anything else throws the packet in progress away
and the parser hunts, byte by byte, for the next frame-1; so a lost, added or
changed byte costs the packets it touches and never shifts values into the
wrong place.

Reporting: every ``report_every`` accepted packets (default 3, i.e. about once
a second), and at once when the sensor condition changes:

* ``pr`` (pulse rate: an oximeter's "HR"; ``hr_key`` to change) and ``spo2``;
* sensor disconnected (``0x40`` in any frame of the packet): both without a
  value, flagged ``probe_off``; artefact (``0x20``): values kept, flagged
  ``artefact``; sensor alarm (``0x08``): no value, flagged ``invalid``; a
  missing value (HR 511, SpO2 127) with no such bit: no value, ``invalid``;
* a ``DeviceStatus`` when the condition changes (``probe_off``,
  ``sensor_alarm``, ``artefact`` or ``ok``; detail ``spo2``).

The protocol carries no clock: device time is the receive time. Nonin is a pure
streamer: ``bytes_to_send()`` is always empty.

Errors (``ParseError.code``): ``framing`` (bytes outside a packet while hunting:
one event per run, at the next frame-1 or every ``MAX_GARBAGE`` bytes),
``checksum`` (a frame of a packet in progress fails its checksum), ``sync``
(a frame of a packet in progress lacks the ``0x01``/bit-7 markers or has the
frame-1 bit in the wrong place), ``implausible`` (HR or SpO2 outside the
vocabulary's range; reported without a value, ``invalid``). ``discarded``
counts bytes thrown away; events do not depend on how the stream is chunked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field

from edge_agent.drivers import register
from edge_agent.drivers.base import DriverSpec, ErrorAccounting, parser_options
from edge_agent.events import DeviceStatus, DriverEvent
from wire.messages import Observation
from wire.vocabulary import BY_KEY, Flag
from wire.clock import wall_ms
from wire.config import ConfigModel

FRAME_LEN = 5
PACKET_FRAMES = 25
START = 0x01
STATUS_ALWAYS = 0x80
STATUS_SYNC = 0x01
SENSOR_DISCONNECTED = 0x40
ARTEFACT = 0x20
SENSOR_ALARM = 0x08
HR_MISSING = 511
SPO2_MISSING = 127
MAX_GARBAGE = 4096  # a long run of bytes outside packets is reported in pieces of this size


def frame_ok(b: bytes | bytearray, i: int) -> bool:
    """Bytes ``i..i+4`` form a frame: start byte, status bit 7, checksum."""
    return b[i] == START and b[i + 1] & STATUS_ALWAYS != 0 and (b[i] + b[i + 1] + b[i + 2] + b[i + 3]) & 0xFF == b[i + 4]


class NoninOptions(ConfigModel):
    """``options:`` of a ``nonin`` device entry."""

    report_every: Annotated[int, Field(ge=1, le=75)] = 3  # packets between reports (a packet is 1/3 s)
    hr_key: Literal["pr", "hr"] = "pr"  # vocabulary key of the oximeter's heart rate


class NoninParser(ErrorAccounting):
    """Sans-I/O Nonin format-2 parser for one oximeter on one bed; ``options`` as in ``NoninOptions``."""

    GARBAGE_DETAIL = "bytes outside a packet"
    GARBAGE_CHUNK = MAX_GARBAGE

    def __init__(self, bed: str, device: str, *, clock_ms: Callable[[], int] = wall_ms, **options: Any) -> None:
        opts = parser_options(NoninOptions, options, "nonin")
        self.bed = bed
        self.device = device
        self.report_every = opts.report_every
        self.hr_key = opts.hr_key
        self._clock_ms = clock_ms
        self._buf = bytearray()  # bytes not yet examined (fewer than a frame after each feed)
        self._frames: list[tuple[int, int]] = []  # (status, data) of the packet in progress
        self._garbage = 0  # bytes skipped while hunting, not yet reported
        self._since_report = 0
        self._condition: str | None = None
        #: ParseError counts by code, bytes discarded, packets accepted
        self.errors: Counter[str] = Counter()
        self.discarded_bytes = 0
        self.packets = 0
        self.firmware: int | None = None

    @property
    def buffered(self) -> int:
        """Bytes held between feeds: fewer than one frame, plus the packet in progress (at most 24 frames)."""
        return len(self._buf) + FRAME_LEN * len(self._frames)

    def bytes_to_send(self) -> bytes:
        return b""

    def feed(self, data: bytes) -> list[DriverEvent]:
        events: list[DriverEvent] = []
        buf = self._buf
        buf += data
        i, n = 0, len(buf)
        while n - i >= FRAME_LEN:
            if not self._frames:  # hunting for a frame-1
                if frame_ok(buf, i) and buf[i + 1] & STATUS_SYNC:
                    self._flush_garbage(events)
                    self._frames.append((buf[i + 1], buf[i + 3]))
                    i += FRAME_LEN
                    continue
                j = buf.find(b"\x01", i + 1, n - FRAME_LEN + 1)
                step = (j if j >= 0 else n - FRAME_LEN + 1) - i
                self._add_garbage(step, events)
                i += step
                continue
            if not frame_ok(buf, i):
                code = "checksum" if buf[i] == START and buf[i + 1] & STATUS_ALWAYS else "sync"
                self._lose_packet(events, code, f"frame {len(self._frames) + 1} of a packet is not a valid frame")
                continue  # hunt again from this very byte
            status = buf[i + 1]
            if status & STATUS_SYNC:
                self._lose_packet(events, "sync", f"packet cut short: frame-1 marker at frame {len(self._frames) + 1}")
                continue  # this frame starts the next packet
            self._frames.append((status, buf[i + 3]))
            i += FRAME_LEN
            if len(self._frames) == PACKET_FRAMES:
                self._packet(events)
        del buf[:i]
        return events

    # -- stream helpers ------------------------------------------------------------

    def _lose_packet(self, events: list[DriverEvent], code: str, detail: str) -> None:
        self._error(events, code, detail, FRAME_LEN * len(self._frames))
        self._frames.clear()

    # -- packets -------------------------------------------------------------------

    def _packet(self, events: list[DriverEvent]) -> None:
        frames = self._frames
        self._frames = []
        self.packets += 1
        status_any = 0
        for status, _ in frames:
            status_any |= status
        data = [d for _, d in frames]
        self.firmware = data[3]
        hr = ((data[0] & 0x03) << 7) | (data[1] & 0x7F)
        spo2 = data[2] & 0x7F

        if status_any & SENSOR_DISCONNECTED:
            condition, flags = "probe_off", int(Flag.PROBE_OFF)
        elif status_any & SENSOR_ALARM:
            condition, flags = "sensor_alarm", int(Flag.INVALID)
        elif status_any & ARTEFACT:
            condition, flags = "artefact", int(Flag.ARTEFACT)
        else:
            condition, flags = "ok", 0
        changed = condition != self._condition
        self._since_report += 1
        if not changed and self._since_report < self.report_every:
            return
        self._since_report = 0
        t = self._clock_ms()
        if changed:
            events.append(DeviceStatus(self.bed, self.device, condition, t, "spo2"))
            self._condition = condition
        keep_value = condition in ("ok", "artefact")
        for key, value, missing in ((self.hr_key, hr, HR_MISSING), ("spo2", spo2, SPO2_MISSING)):
            if not keep_value:
                events.append(Observation(self.bed, key, None, t, t, self.device, flags))
            elif value == missing:
                events.append(Observation(self.bed, key, None, t, t, self.device, flags | Flag.INVALID))
            elif not BY_KEY[key].lo <= value <= BY_KEY[key].hi:
                self._error(events, "implausible", f"{key}: {value} outside {BY_KEY[key].lo:g}..{BY_KEY[key].hi:g}", 0)
                events.append(Observation(self.bed, key, None, t, t, self.device, flags | Flag.INVALID))
            else:
                events.append(Observation(self.bed, key, float(value), t, t, self.device, flags))


register(
    DriverSpec(
        name="nonin",
        transport="serial",
        parser=NoninParser,
        default_baud=9600,
        serial_options={"parity": "N", "bytesize": 8, "stopbits": 1},
        options=NoninOptions,
        description="Nonin OEM III pulse oximeter, data format 2 (HR and SpO2 from 25-frame packets)",
    )
)
