"""Globally unique, time-ordered identifiers: UUIDv7 (RFC 9562) as canonical strings.

Alarm ids (and later outbox events) are minted by whichever hub process raises
them; with UUIDv7 two hubs never mint the same id, and ids still sort by the
millisecond they were made, so "newest first" stays an ordering by id.
"""

from __future__ import annotations

import os
import threading
import uuid

from wire.clock import wall_ms

_lock = threading.Lock()
_last_ms = 0
_seq = 0  # 12-bit counter within one millisecond (rand_a), so ids made in the same ms keep their order


def new_id(now_ms: int | None = None) -> str:
    """A new UUIDv7: 48-bit Unix ms, version 7, a 12-bit in-ms counter, variant, 62 random bits."""
    global _last_ms, _seq
    with _lock:
        ms = wall_ms() if now_ms is None else now_ms
        if ms <= _last_ms:  # same millisecond (or the clock stepped back): keep increasing
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFF:  # 4,096 ids in one ms: borrow the next millisecond
                ms, _seq = ms + 1, 0
        else:
            _seq = 0
        _last_ms = ms
        seq = _seq
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    return str(uuid.UUID(int=value))
