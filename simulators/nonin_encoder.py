"""Nonin OEM III data format 2, the oximeter's side: packets of 25 five-byte frames.

Byte facts are in ``shared/clinical/devices.md``; the reading side is the
``nonin`` driver (``edge_agent.drivers.nonin``), written independently.

* ``encode_frame`` and ``encode_packet`` (HR, SpO2 and the extended values of
  frames 9-23 from the same numbers; reserved frames carry 0);
* ``NoninEmitter``, the simulated oximeter (a ``serial_monitor.Emitter``): 75
  frames a second, 15 per 200 ms tick, values from the patient's latest 1 Hz
  reading and a pleth wave that pulses at the heart rate. While the scenario's
  probe is off it sends what the oximeter sends then: status ``0x40`` (sensor
  disconnected), HR 511 and SpO2 127 ("no value"), a flat pleth.

A packet's values are those of the latest reading when its first frame is sent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from simulators.serial_monitor import TICKS_PER_S, Reading

FRAMES_PER_S = 75
PACKET_FRAMES = 25
FRAMES_PER_TICK = FRAMES_PER_S // TICKS_PER_S  # 15
STATUS_BIT7 = 0x80
SYNC = 0x01
SENSOR_DISCONNECTED = 0x40
ARTEFACT = 0x20
SENSOR_ALARM = 0x08
HR_MISSING = 511
SPO2_MISSING = 127
FIRMWARE = 0x2A


def encode_frame(status: int, pleth: int, data: int) -> bytes:
    """``0x01, status | 0x80, pleth, data, checksum``."""
    body = bytes((0x01, (status | STATUS_BIT7) & 0xFF, pleth & 0xFF, data & 0xFF))
    return body + bytes((sum(body) % 256,))


def packet_data(hr: int | None, spo2: int | None, firmware: int = FIRMWARE) -> list[int]:
    """The data byte of each of the 25 frames (``None`` -> the "no value" codes)."""
    h = HR_MISSING if hr is None else int(hr)
    s = SPO2_MISSING if spo2 is None else int(spo2)
    if not 0 <= h <= HR_MISSING or not 0 <= s <= SPO2_MISSING:
        raise ValueError(f"HR {h} or SpO2 {s} does not fit format 2")
    msb, lsb = (h >> 7) & 0x03, h & 0x7F
    data = [0] * PACKET_FRAMES
    data[0], data[1], data[2], data[3] = msb, lsb, s, firmware & 0x7F
    data[8] = data[9] = data[10] = s  # SpO2-D, SpO2 fast, SpO2 beat-to-beat
    data[13], data[14] = msb, lsb  # E-HR
    data[15] = data[16] = s  # E-SpO2, E-SpO2-D
    data[19], data[20] = msb, lsb  # HR-D
    data[21], data[22] = msb, lsb  # E-HR-D
    return data


def encode_packet(
    hr: int | None,
    spo2: int | None,
    *,
    status: int = 0,
    pleth: Sequence[int] | None = None,
    firmware: int = FIRMWARE,
) -> list[bytes]:
    """25 frames; ``status`` bits go in every frame, the sync bit in the first."""
    pl = list(pleth) if pleth is not None else [0] * PACKET_FRAMES
    if len(pl) != PACKET_FRAMES:
        raise ValueError("a packet has 25 pleth samples")
    data = packet_data(hr, spo2, firmware)
    return [encode_frame(status | (SYNC if i == 0 else 0), pl[i], data[i]) for i in range(PACKET_FRAMES)]


class NoninEmitter:
    """A simulated Nonin OEM III in format 2: a pure streamer, 3 packets a second."""

    protocol = "nonin"
    baud = 9600
    wants_ecg = False
    listens = False
    protect = 0

    def __init__(self) -> None:
        self._hr: int | None = None
        self._spo2: int | None = None
        self._probe_off = False
        self._phase = 0.0  # cardiac cycles, for the pleth
        self._packet: list[bytes] = []
        self.packets_sent = 0

    def start(self, start_ms: int) -> None:
        pass

    def receive(self, data: bytes, now_ms: int) -> None:
        pass

    def edge_options(self) -> dict[str, Any]:
        return {}

    def frames(self, k: int, now_ms: int, reading: Reading | None, ecg: np.ndarray | None) -> list[bytes]:
        if reading is not None:
            v = reading.values
            self._hr = int(v["hr"]) if v.get("hr") is not None else None
            self._spo2 = int(v["spo2"]) if v.get("spo2") is not None else None
            self._probe_off = reading.probe_off
        out: list[bytes] = []
        for f in range(k * FRAMES_PER_TICK, (k + 1) * FRAMES_PER_TICK):
            if f % PACKET_FRAMES == 0:
                self._packet = self._next_packet()
            out.append(self._packet[f % PACKET_FRAMES])
        return out

    def _next_packet(self) -> list[bytes]:
        self.packets_sent += 1
        if self._probe_off:
            return encode_packet(None, None, status=SENSOR_DISCONNECTED)
        beats_per_frame = (self._hr or 60) / 60.0 / FRAMES_PER_S
        pleth = []
        for _ in range(PACKET_FRAMES):
            x = self._phase % 1.0  # a fast upstroke, a slower fall with a dicrotic notch
            shape = math.sin(math.pi * x / 0.3) if x < 0.3 else 0.6 * math.exp(-(x - 0.3) * 4) + 0.1 * math.sin(2 * math.pi * x)
            pleth.append(max(0, min(255, int(128 + 100 * shape))))
            self._phase += beats_per_frame
        hr = None if self._hr is None else min(self._hr, HR_MISSING - 1)
        spo2 = None if self._spo2 is None else min(self._spo2, 100)
        return encode_packet(hr, spo2, pleth=pleth)
