"""Live waveform chunks to the consoles watching a bed (``/ws/waves``): bounded, never holding up ingest.

A bed detail page watches one bed. Each accepted chunk of that bed is encoded
once and offered to each watcher's bounded queue; a watcher whose queue is
full loses that chunk (counted, and seen on the page as a gap in the trace)
rather than making the hub buffer for it. Chunks of beds nobody watches cost a
dictionary look-up.

Each chunk is one binary WebSocket message, little-endian:

    offset  size  field
    0       1     version (1)
    1       1     length L of the lead key (wire.vocabulary.LEADS), UTF-8
    2       L     lead
    2+L     8     t_first: device time of the first sample, ms since the epoch (float64)
    10+L    2     rate_hz (uint16)
    12+L    4     scale: value = sample * scale, in the lead's unit (float32)
    16+L    4     n: number of samples (uint32)
    20+L    2n    samples (int16)
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from wire.messages import WaveChunk

VERSION = 1
MAX_WATCHERS_PER_BED = 16  # consoles that may watch one bed's waveforms at once
QUEUE_CHUNKS = 64  # per watcher: at 4 chunks a second per lead, several seconds of slack
MAX_MESSAGE_BYTES = 1 << 20  # decode_chunk refuses anything larger
_HEAD = struct.Struct("<dHfI")


def encode_chunk(w: WaveChunk) -> bytes:
    """One chunk as the message above."""
    lead = w.lead.encode()
    return bytes((VERSION, len(lead))) + lead + _HEAD.pack(float(w.t_first), w.rate_hz, w.scale, len(w.samples)) + \
        struct.pack(f"<{len(w.samples)}h", *w.samples)


def decode_chunk(data: bytes) -> tuple[str, int, int, float, tuple[int, ...]]:
    """(lead, t_first, rate_hz, scale, samples) of one message (for tests and tools); ``ValueError`` when malformed."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError(f"waveform message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    if len(data) < 2 or data[0] != VERSION:
        raise ValueError("not a version-1 waveform message")
    n_lead = data[1]
    head_end = 2 + n_lead + _HEAD.size
    if len(data) < head_end:
        raise ValueError("waveform message shorter than its header")
    lead = data[2 : 2 + n_lead].decode()
    t_first, rate, scale, n = _HEAD.unpack_from(data, 2 + n_lead)
    if len(data) != head_end + 2 * n:
        raise ValueError(f"waveform message holds {len(data) - head_end} sample bytes, its header says {2 * n}")
    return lead, int(t_first), rate, scale, struct.unpack_from(f"<{n}h", data, head_end)


class WatchRefused(Exception):
    """Too many consoles already watch this bed."""


@dataclass(eq=False)
class Watcher:
    bed: str
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(maxsize=QUEUE_CHUNKS))


class WaveFeed:
    def __init__(self) -> None:
        self._watchers: dict[str, set[Watcher]] = {}
        self.counters: Counter[str] = Counter()
        # on a JetStream worker (ingest.wave_relay): beds whose chunks consoles on other workers want, and where they go
        self.relayed: set[str] = set()
        self.outlet: Callable[[str, bytes], None] | None = None

    def watch(self, bed: str) -> Watcher:
        watchers = self._watchers.setdefault(bed, set())
        if len(watchers) >= MAX_WATCHERS_PER_BED:
            raise WatchRefused(f"{MAX_WATCHERS_PER_BED} consoles already watch bed {bed}'s waveforms")
        w = Watcher(bed)
        watchers.add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        watchers = self._watchers.get(w.bed)
        if watchers is not None:
            watchers.discard(w)
            if not watchers:
                del self._watchers[w.bed]

    def publish(self, chunk: WaveChunk) -> None:
        """A chunk the hub accepted: to this hub's watchers of its bed, and to the outlet when others want it."""
        out = self.outlet if chunk.bed in self.relayed else None
        if chunk.bed not in self._watchers and out is None:
            return
        data = encode_chunk(chunk)
        self.deliver(chunk.bed, data)
        if out is not None:
            out(chunk.bed, data)

    def deliver(self, bed: str, data: bytes) -> None:
        """An encoded chunk to this hub's watchers of ``bed`` (its own, or one relayed from the bed's ward's owner)."""
        for w in self._watchers.get(bed, ()):
            try:
                w.queue.put_nowait(data)
                self.counters["wave_chunks_to_consoles"] += 1
            except asyncio.QueueFull:
                self.counters["wave_chunks_console_full"] += 1

    @property
    def watching(self) -> int:
        return sum(len(ws) for ws in self._watchers.values())
