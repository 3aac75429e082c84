"""The bed-state matrix: latest value, device time and flags of every parameter of every bed.

Rows are beds (added as they appear), columns follow ``wire.vocabulary.PARAMETERS``.
Scores are computed over these arrays in one vectorised pass; ``inputs_at`` gives
the matrix with stale entries masked to NaN, which is what scores must see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wire.messages import Observation
from wire.vocabulary import COLUMN, PARAMETERS, flag_names

N_PARAMS = len(PARAMETERS)


@dataclass(slots=True)
class BedInfo:
    bed: str
    ward: str = ""
    agent: str = ""
    spo2_scale: int = 1
    last_rx: int | None = None  # hub receive time of the latest data, ms


@dataclass
class BedState:
    """Latest values per (bed, parameter). Grows by doubling; never shrinks."""

    capacity: int = 64
    beds: list[BedInfo] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    charted_by: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) -> who charted the value held

    def __post_init__(self) -> None:
        self.value = np.full((self.capacity, N_PARAMS), np.nan)
        self.t_dev = np.zeros((self.capacity, N_PARAMS), dtype=np.int64)
        self.flags = np.zeros((self.capacity, N_PARAMS), dtype=np.int16)
        self.scale2 = np.zeros(self.capacity, dtype=bool)

    @property
    def n(self) -> int:
        return len(self.beds)

    def row(self, bed: str, *, ward: str = "", agent: str = "") -> int:
        """Row of ``bed``, adding it if new. Ward and agent are filled in when known."""
        i = self.index.get(bed)
        if i is None:
            i = len(self.beds)
            if i == self.capacity:
                self._grow()
            self.beds.append(BedInfo(bed=bed, ward=ward, agent=agent))
            self.index[bed] = i
        info = self.beds[i]
        if ward and not info.ward:
            info.ward = ward
        if agent:
            info.agent = agent
        return i

    def _grow(self) -> None:
        cap = self.capacity * 2
        for name, fill in (("value", np.nan), ("t_dev", 0), ("flags", 0)):
            old = getattr(self, name)
            new = np.full((cap, N_PARAMS), fill, dtype=old.dtype)
            new[: self.capacity] = old
            setattr(self, name, new)
        scale2 = np.zeros(cap, dtype=bool)
        scale2[: self.capacity] = self.scale2
        self.scale2 = scale2
        self.capacity = cap

    def apply(self, obs: Observation, *, t_hub: int, agent: str = "", charted_by: str | None = None, derived: bool = False) -> int | None:
        """Record one screened observation. Returns the bed row, or None if it was older than what we hold.

        An older device time never overwrites a newer one (replays and backfill
        land in the store, not in the live picture). A value a nurse charted
        (``charted_by``) is kept with her name, and does not count as the bed's
        monitor being heard from (``last_rx``), nor does a value the hub ``derived`` from a waveform.
        """
        i = self.row(obs.bed, agent=agent)
        j = COLUMN[obs.param]
        if obs.t_dev < self.t_dev[i, j]:
            return None
        self.value[i, j] = np.nan if obs.value is None else obs.value
        self.t_dev[i, j] = obs.t_dev
        self.flags[i, j] = obs.flags
        if charted_by is None:
            self.charted_by.pop((i, j), None)
            if not derived:
                self.beds[i].last_rx = t_hub
        else:
            self.charted_by[(i, j)] = charted_by
        return i

    def move_charted(self, from_bed: str, to_bed: str | None) -> None:
        """The patient left ``from_bed``: the values nurses charted for her go with her to ``to_bed`` (unless it holds
        newer ones), or, when she left the unit, are forgotten, so the bed's next patient never inherits them."""
        i = self.index.get(from_bed)
        if i is None:
            return
        k = self.row(to_bed) if to_bed is not None else None
        for (row, j), by in list(self.charted_by.items()):
            if row != i:
                continue
            if k is not None and self.t_dev[i, j] > self.t_dev[k, j]:
                self.value[k, j], self.t_dev[k, j], self.flags[k, j] = self.value[i, j], self.t_dev[i, j], self.flags[i, j]
                self.charted_by[(k, j)] = by
            self.value[i, j], self.t_dev[i, j], self.flags[i, j] = np.nan, 0, 0
            del self.charted_by[(i, j)]

    def charted_of(self, bed: str) -> list[tuple[str, float, int, str]]:
        """(parameter, value, device time, who charted it) of each value nurses charted that ``bed`` holds now."""
        i = self.index.get(bed)
        if i is None:
            return []
        return [(PARAMETERS[j].key, float(self.value[i, j]), int(self.t_dev[i, j]), by)
                for (row, j), by in self.charted_by.items() if row == i and self.value[i, j] == self.value[i, j]]  # fmt: skip

    def set_scale(self, bed: str, scale: int) -> None:
        if scale not in (1, 2):
            raise ValueError("spo2_scale must be 1 or 2")
        i = self.row(bed)
        self.beds[i].spo2_scale = scale
        self.scale2[i] = scale == 2

    def inputs_at(self, now_ms: int, staleness_ms: np.ndarray) -> np.ndarray:
        """Values with stale, never-seen and flagged entries set to NaN, shape (n, N_PARAMS)."""
        n = self.n
        v = self.value[:n].copy()
        age = now_ms - self.t_dev[:n]
        v[(age > staleness_ms) | (self.t_dev[:n] == 0) | (self.flags[:n] != 0)] = np.nan
        return v

    def vitals_of(self, i: int, now_ms: int) -> dict[str, dict]:
        """JSON-ready latest vitals of one bed (every parameter ever seen)."""
        out: dict[str, dict] = {}
        times, values, flags = self.t_dev[i].tolist(), self.value[i].tolist(), self.flags[i].tolist()
        for p, t, v, f in zip(PARAMETERS, times, values, flags, strict=True):
            if t == 0:
                continue
            out[p.key] = {
                "value": None if v != v else v,  # NaN -> null
                "t": t,
                "age_s": round((now_ms - t) / 1000.0, 1),
                "flags": flag_names(f) if f else [],
            }
            by = self.charted_by.get((i, COLUMN[p.key]))
            if by is not None:
                out[p.key]["charted_by"] = by
        return out
