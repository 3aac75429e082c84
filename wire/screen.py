"""Plausibility screening of single observations against the vocabulary.

Used by the hub to reject values no real device can produce (and by an edge
agent that wants to catch a faulty driver early). Screening is per observation:
one bad value is reported and the rest of its frame is kept.
"""

from __future__ import annotations

from wire.messages import Observation
from wire.vocabulary import ALL_FLAGS, BY_KEY, CATEGORICAL, HUB_DERIVED


def screen(obs: Observation) -> str | None:
    """Return ``None`` if the observation is acceptable, else a reason a clinician can read."""
    p = BY_KEY.get(obs.param)
    if p is None:
        return f"unknown parameter {obs.param!r}"
    if obs.param in HUB_DERIVED:
        return f"{obs.param} is computed by the hub from the waveforms; a device may not send it"
    if obs.flags & ~ALL_FLAGS:
        return f"unknown flag bits {obs.flags:#x}"
    if obs.value is None:
        if obs.flags == 0:
            return f"{obs.param}: no value and no status flag saying why"
        return None
    if not p.lo <= obs.value <= p.hi:
        return f"{obs.param}={obs.value:g} {p.ucum} is outside the plausible range [{p.lo:g}, {p.hi:g}]"
    if obs.param in CATEGORICAL and obs.value != int(obs.value):
        return f"{obs.param}={obs.value:g} must be a whole-number code"
    return None
