"""Deduplication of edge frames: the tracker lives in ``wire.dedup`` (hub-side protocol state, beside the session).

Kept so the hub and its tests import it from where they always have.
"""

from wire.dedup import MAX_AHEAD, Key, SeqTracker

__all__ = ["MAX_AHEAD", "Key", "SeqTracker"]
