"""Simulated bedside monitors speaking TSP/1 on pseudo-terminals, driven by one asyncio task.

Each ``SerialMonitor`` owns a pty pair. The slave side is the "serial port" an
edge agent opens (``.port``, e.g. ``/dev/pts/7``); it is set to raw mode and kept
open by the monitor so the pty outlives any reader. The monitor writes to the
master side without blocking: when nobody reads and the pty buffer is full
(EAGAIN) or the line is gone (EIO), the bytes are dropped and counted, as on a
real RS-232 line.

``run_monitors`` drives any number of monitors from a single task on a 200 ms
tick: every tick a 50-sample ECG segment (250 Hz) per monitor with waveforms,
every fifth tick one numerics frame per monitor. Device times are wall-clock ms
(``time.time_ns() // 1_000_000``) so end-to-end latency can be measured:
numerics carry the time they are sent, a waveform segment the time of its first
sample on an exact 4 ms grid (its last sample is "now").
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
import tty
from collections.abc import Callable, Sequence
from typing import Self

from simulators.physiology import ECG_LEAD, ECG_RATE_HZ, ECG_SCALE_MV, Physiology
from simulators.scenarios import Scenario, get_scenario
from simulators.tsp_encoder import encode_numerics, encode_status, encode_wave
from wire.vocabulary import Flag

log = logging.getLogger(__name__)

TICK_S = 0.2
TICKS_PER_S = 5
SAMPLES_PER_TICK = ECG_RATE_HZ // TICKS_PER_S  # 50
SAMPLE_MS = 1000 // ECG_RATE_HZ  # 4
STATUS_REPEAT_S = 10  # a standing probe_off status is re-sent this often
NIBP_KEYS = ("nibp_sys", "nibp_dia", "nibp_mean")
MAX_CATCH_UP_TICKS = TICKS_PER_S  # further behind than this, ticks are skipped


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class SerialMonitor:
    """One simulated monitor for one bed. ``open()`` creates the pty; ``tick()`` emits."""

    def __init__(
        self,
        bed: str,
        scenario: str | Scenario,
        seed: int | Sequence[int],
        *,
        device_id: str | None = None,
        waveforms: bool = True,
        nibp_interval_s: float = 60.0,
    ) -> None:
        self.bed = bed
        self.device_id = device_id or f"sim-{bed}"
        self.scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self.physiology = Physiology(seed, self.scenario.vitals, nibp_interval_s=nibp_interval_s)
        self.waveforms = waveforms
        self.port = ""
        self._master: int | None = None
        self._slave: int | None = None
        self._start_ms = 0
        self._probe_off = False
        self._last_nibp: dict[str, float | None] = {}
        self._last_nibp_ms = 0
        self._last_status_s = -STATUS_REPEAT_S
        self.frames_sent = 0
        self.bytes_sent = 0
        self.bytes_dropped = 0

    # -- pty ------------------------------------------------------------------

    def open(self) -> str:
        """Create the pty pair; returns the slave path that readers open."""
        if self._master is not None:
            return self.port
        master, slave = os.openpty()
        try:
            tty.setraw(slave)  # no echo, no CR/LF translation, 8-bit clean
            os.set_blocking(master, False)
            self.port = os.ttyname(slave)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave
        return self.port

    def close(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- emission -------------------------------------------------------------

    def start(self, start_ms: int) -> None:
        """Set device time zero: sample ``i`` of the ECG is at ``start_ms + 4 * i``."""
        self._start_ms = start_ms

    def frames_for_tick(self, k: int, now_ms: int) -> bytes:
        """The bytes this monitor sends at tick ``k`` (``k * 0.2`` s after start)."""
        t_s = k / TICKS_PER_S
        if self.scenario.silent(t_s):
            return b""
        out: list[bytes] = []
        if self.waveforms and k >= 1:
            samples = self.physiology.ecg(SAMPLES_PER_TICK)
            t_first = self._start_ms + (k - 1) * SAMPLES_PER_TICK * SAMPLE_MS
            out.append(encode_wave(t_first, ECG_LEAD, ECG_RATE_HZ, ECG_SCALE_MV, samples))
        if k % TICKS_PER_S == 0:
            second = k // TICKS_PER_S
            values: dict[str, float | None] = {}
            while self.physiology.t_s <= second:  # catch up if ticks were skipped
                values = dict(self.physiology.step())
            flags: dict[str, int] = {}
            probe_off = self.scenario.spo2_probe_off(t_s)
            if probe_off:
                values["spo2"] = None
                flags["spo2"] = Flag.PROBE_OFF
            if second == 0 or probe_off != self._probe_off or (probe_off and second - self._last_status_s >= STATUS_REPEAT_S):
                out.append(encode_status(now_ms, "probe_off" if probe_off else "ok", "spo2"))
                self._last_status_s = second
                self._probe_off = probe_off
            # Like a real monitor's display, every frame repeats the last cuff reading,
            # stamped with the time that cycle was measured.
            nibp = {k: values[k] for k in NIBP_KEYS if k in values}
            if nibp:
                self._last_nibp, self._last_nibp_ms = nibp, now_ms
            values.update(self._last_nibp)
            measured = dict.fromkeys(self._last_nibp, self._last_nibp_ms) if not nibp else None
            out.append(encode_numerics(now_ms, values, flags, measured))
        self.frames_sent += len(out)
        return b"".join(out)

    def tick(self, k: int, now_ms: int) -> int:
        """Emit tick ``k``; returns the bytes the pty accepted (the rest is dropped and counted)."""
        data = self.frames_for_tick(k, now_ms)
        if not data:
            return 0
        if self._master is None:
            self.bytes_dropped += len(data)
            return 0
        try:
            n = os.write(self._master, data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EAGAIN):
                raise
            n = 0
        self.bytes_sent += n
        self.bytes_dropped += len(data) - n
        return n

    async def run(self, duration_s: float | None = None) -> None:
        """Drive only this monitor (``run_monitors`` drives many with one task)."""
        await run_monitors([self], duration_s=duration_s)


async def run_monitors(
    monitors: Sequence[SerialMonitor],
    *,
    duration_s: float | None = None,
    clock_ms: Callable[[], int] = wall_ms,
) -> None:
    """Tick every monitor every 200 ms from this one task, until cancelled or ``duration_s``.

    Opens monitors that are not open yet; does not close them (their owner does).
    If the loop falls behind it catches up to ``MAX_CATCH_UP_TICKS`` ticks, then
    skips ahead (numerics keep their 1 Hz physiology; the ECG has a gap).
    """
    for m in monitors:
        m.open()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    start_ms = clock_ms()
    for m in monitors:
        m.start(start_ms)
    k = 0
    skipped = 0
    while duration_s is None or k * TICK_S <= duration_s:
        delay = t0 + k * TICK_S - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)  # late: still let other tasks and signal handlers run
        if -delay > MAX_CATCH_UP_TICKS * TICK_S:
            behind = int(-delay / TICK_S)
            skipped += behind
            k += behind
            log.warning("simulator %d ticks behind; skipped them (%d in all)", behind, skipped)
            continue
        now_ms = clock_ms()
        for m in monitors:
            m.tick(k, now_ms)
        k += 1
