"""Simulated bedside monitors on pseudo-terminals, one protocol strategy each, driven by one asyncio task.

Each ``SerialMonitor`` owns a pty pair, a patient (``physiology.Physiology``
following a ``scenarios.Scenario``) and an ``Emitter``: the protocol strategy
that turns the patient's readings into the bytes a real monitor sends (TSP/1
here, S/5 in ``simulators.s5_encoder``, Nonin in ``simulators.nonin_encoder``).
The slave side of the pty is the "serial port" an edge agent opens (``.port``,
e.g. ``/dev/pts/7``); it is set to raw mode and kept open by the monitor so the
pty outlives any reader. The monitor writes to the master side without
blocking: when nobody reads and the pty buffer is full (EAGAIN) or the line is
gone (EIO), the bytes are dropped and counted, as on a real RS-232 line. A
monitor whose emitter ``listens`` also reads what the edge writes (requests)
from the master side each tick.

``run_monitors`` drives any number of monitors from a single task on a 200 ms
tick. Every fifth tick the patient advances one second and the emitter gets a
``Reading``; what it sends when is the emitter's business (TSP: a 50-sample ECG
segment and a 25-sample pleth segment every tick and numerics every second). Device times are wall-clock ms
(``time.time_ns() // 1_000_000``) so end-to-end latency can be measured.

``LineNoise`` injects seeded line faults into the frames an emitter produces,
at most one per frame: a corrupted byte (a checksum error), a dropped run of
bytes, an inserted byte, or a burst of garbage on the line before the frame.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import tty
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import numpy as np

from simulators.physiology import ECG_LEAD, ECG_RATE_HZ, ECG_SCALE_MV, PLETH_LEAD, PLETH_RATE_HZ, PLETH_SCALE, Physiology
from simulators.scenarios import Scenario, get_scenario
from simulators.tsp_encoder import encode_numerics, encode_status, encode_wave
from wire.vocabulary import Flag
from wire.clock import wall_ms

log = logging.getLogger(__name__)

TICK_S = 0.2
TICKS_PER_S = 5
SAMPLES_PER_TICK = ECG_RATE_HZ // TICKS_PER_S  # 50
PLETH_PER_TICK = PLETH_RATE_HZ // TICKS_PER_S  # 25
SAMPLE_MS = 1000 // ECG_RATE_HZ  # 4
STATUS_REPEAT_S = 10  # a standing probe_off status is re-sent this often
NIBP_KEYS = ("nibp_sys", "nibp_dia", "nibp_mean")
MAX_CATCH_UP_TICKS = TICKS_PER_S  # further behind than this, ticks are skipped
READ_SIZE = 4096  # bytes read from the edge per tick (requests are small)


@dataclass(frozen=True, slots=True)
class Reading:
    """What the patient's monitor measures in one whole second.

    ``values`` is ``Physiology.step()``: hr, spo2, rr, temp, etco2, o2, acvpu,
    and nibp_* only in the second a cuff reading completes. ``probe_off``: the
    scenario's SpO2 probe is off (the emitter decides how its protocol says so).
    """

    second: int
    values: dict[str, float]
    probe_off: bool


class Emitter(Protocol):
    """A protocol strategy: readings in, frames out (and, for a polled protocol, requests in)."""

    protocol: str  # the edge driver that reads it
    baud: int
    wants_ecg: bool  # ask the monitor for ECG samples each tick (only when the bed has waveforms)
    # An emitter may also set ``wants_pleth = True``: it is then called with a fifth argument, the
    # tick's pleth samples (``PLETH_PER_TICK``, the same span as the ECG); without it, with four.
    listens: bool  # read what the edge writes
    protect: int  # bytes at each end of a frame that LineNoise leaves alone (frame flags)

    def start(self, start_ms: int) -> None: ...

    def frames(self, k: int, now_ms: int, reading: Reading | None, ecg: np.ndarray | None) -> list[bytes]:
        """Complete frames to send at tick ``k``; ``reading`` on whole seconds, ``ecg`` when wanted."""

    def receive(self, data: bytes, now_ms: int) -> None:
        """Bytes the edge wrote to the monitor."""

    def edge_options(self) -> dict[str, Any]:
        """``options:`` for the edge agent's device entry (empty: driver defaults)."""


class TspEmitter:
    """TSP/1 (``simulators.tsp_encoder``): ECG and pleth every tick, numerics and status every second."""

    protocol = "tsp"
    baud = 115200
    wants_ecg = True
    wants_pleth = True
    listens = False
    protect = 0

    def __init__(self) -> None:
        self._start_ms = 0
        self._probe_off = False
        self._last_nibp: dict[str, float | None] = {}
        self._last_nibp_ms = 0
        self._last_status_s = -STATUS_REPEAT_S

    def start(self, start_ms: int) -> None:
        self._start_ms = start_ms

    def frames(
        self, k: int, now_ms: int, reading: Reading | None, ecg: np.ndarray | None, pleth: np.ndarray | None = None
    ) -> list[bytes]:
        out: list[bytes] = []
        t_first = self._start_ms + (k - 1) * SAMPLES_PER_TICK * SAMPLE_MS
        if ecg is not None:
            out.append(encode_wave(t_first, ECG_LEAD, ECG_RATE_HZ, ECG_SCALE_MV, ecg))
        if pleth is not None:
            out.append(encode_wave(t_first, PLETH_LEAD, PLETH_RATE_HZ, PLETH_SCALE, pleth))
        if reading is not None:
            second = reading.second
            values: dict[str, float | None] = dict(reading.values)
            flags: dict[str, int] = {}
            probe_off = reading.probe_off
            if probe_off:
                values["spo2"] = None
                flags["spo2"] = Flag.PROBE_OFF
            if second == 0 or probe_off != self._probe_off or (probe_off and second - self._last_status_s >= STATUS_REPEAT_S):
                out.append(encode_status(now_ms, "probe_off" if probe_off else "ok", "spo2"))
                self._last_status_s = second
                self._probe_off = probe_off
            # Like a real monitor's display, every frame repeats the last cuff reading,
            # stamped with the time that cycle was measured.
            nibp = {key: values[key] for key in NIBP_KEYS if key in values}
            if nibp:
                self._last_nibp, self._last_nibp_ms = nibp, now_ms
            values.update(self._last_nibp)
            measured = dict.fromkeys(self._last_nibp, self._last_nibp_ms) if not nibp else None
            out.append(encode_numerics(now_ms, values, flags, measured))
        return out

    def receive(self, data: bytes, now_ms: int) -> None:
        pass

    def edge_options(self) -> dict[str, Any]:
        return {}


class LineNoise:
    """Seeded line faults, at most one per frame, so every fault stays detectable by one checksum.

    ``rate`` is the chance that a frame gets a fault; ``kinds`` the faults drawn
    from: ``corrupt`` (one byte changed: a checksum error), ``drop`` (a run of
    1-8 bytes lost), ``insert`` (one random byte added), ``garbage`` (1-16
    random bytes on the line before the frame). The ``protect`` bytes at each
    end of a frame (its flags) are never touched. ``counts`` tallies the faults.
    """

    KINDS = ("corrupt", "drop", "insert", "garbage")

    def __init__(self, rate: float, seed: int | Sequence[int] = 0, kinds: Sequence[str] = KINDS) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"noise rate must be within 0..1, got {rate!r}")
        unknown = set(kinds) - set(self.KINDS)
        if unknown or not kinds:
            raise ValueError(f"noise kinds must be some of {self.KINDS}, got {list(kinds)!r}")
        self.rate = float(rate)
        self.kinds = tuple(kinds)
        self._rng = np.random.default_rng(np.random.SeedSequence(seed))
        self.counts: Counter[str] = Counter()

    def apply(self, frames: Sequence[bytes], protect: int = 0) -> list[bytes]:
        if self.rate == 0.0:
            return list(frames)
        out: list[bytes] = []
        rng = self._rng
        for f in frames:
            if rng.random() >= self.rate or len(f) <= 2 * protect:
                out.append(f)
                continue
            kind = self.kinds[int(rng.integers(len(self.kinds)))]
            lo, hi = protect, len(f) - protect  # the bytes a fault may touch: f[lo:hi]
            b = bytearray(f)
            if kind == "corrupt":
                i = int(rng.integers(lo, hi))
                b[i] ^= int(rng.integers(1, 256))
            elif kind == "drop":
                i = int(rng.integers(lo, hi))
                n = int(rng.integers(1, 9))
                del b[i : min(hi, i + n)]
            elif kind == "insert":
                i = int(rng.integers(lo, hi + 1))
                b[i:i] = bytes((int(rng.integers(256)),))
            else:
                b[0:0] = rng.integers(0, 256, int(rng.integers(1, 17)), dtype=np.uint8).tobytes()
            self.counts[kind] += 1
            out.append(bytes(b))
        return out


class SerialMonitor:
    """One simulated monitor for one bed. ``open()`` creates the pty; ``tick()`` emits.

    ``emitter`` is the protocol strategy (default TSP/1); ``noise`` optional line faults.
    """

    def __init__(
        self,
        bed: str,
        scenario: str | Scenario,
        seed: int | Sequence[int],
        *,
        device_id: str | None = None,
        waveforms: bool = True,
        nibp_interval_s: float = 60.0,
        emitter: Emitter | None = None,
        noise: LineNoise | None = None,
    ) -> None:
        self.bed = bed
        self.device_id = device_id or f"sim-{bed}"
        self.scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self.physiology = Physiology(seed, self.scenario.vitals, nibp_interval_s=nibp_interval_s)
        self.waveforms = waveforms
        self.emitter: Emitter = emitter if emitter is not None else TspEmitter()
        self.noise = noise
        self.port = ""
        self._master: int | None = None
        self._slave: int | None = None
        self.frames_sent = 0
        self.bytes_sent = 0
        self.bytes_dropped = 0
        self.bytes_received = 0

    @property
    def protocol(self) -> str:
        return self.emitter.protocol

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
        self.emitter.start(start_ms)

    def frame_list(self, k: int, now_ms: int) -> list[bytes]:
        """The frames this monitor sends at tick ``k`` (``k * 0.2`` s after start), noise applied."""
        t_s = k / TICKS_PER_S
        if self.scenario.silent(t_s):
            return []
        ecg = self.physiology.ecg(SAMPLES_PER_TICK) if self.waveforms and self.emitter.wants_ecg and k >= 1 else None
        pleth = self.physiology.pleth(PLETH_PER_TICK) if ecg is not None and getattr(self.emitter, "wants_pleth", False) else None
        reading = None
        if k % TICKS_PER_S == 0:
            second = k // TICKS_PER_S
            values: dict[str, float] = {}
            while self.physiology.t_s <= second:  # catch up if ticks were skipped
                values = self.physiology.step()
            reading = Reading(second, values, self.scenario.spo2_probe_off(t_s))
        if pleth is None:
            frames = self.emitter.frames(k, now_ms, reading, ecg)
        else:
            frames = self.emitter.frames(k, now_ms, reading, ecg, pleth)
        if self.noise is not None:
            frames = self.noise.apply(frames, self.emitter.protect)
        self.frames_sent += len(frames)
        return frames

    def frames_for_tick(self, k: int, now_ms: int) -> bytes:
        """The bytes this monitor sends at tick ``k``."""
        return b"".join(self.frame_list(k, now_ms))

    def poll_input(self, now_ms: int) -> int:
        """Hand what the edge wrote since the last tick to the emitter; returns the bytes read."""
        if self._master is None:
            return 0
        got = 0
        for _ in range(4):  # bounded per tick
            try:
                data = os.read(self._master, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.EAGAIN):
                    raise
                break  # EIO: nobody has the port open
            if not data:
                break
            got += len(data)
            self.emitter.receive(data, now_ms)
        self.bytes_received += got
        return got

    def tick(self, k: int, now_ms: int) -> int:
        """Emit tick ``k``; returns the bytes the pty accepted (the rest is dropped and counted)."""
        if self.emitter.listens:
            self.poll_input(now_ms)
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
