"""The contract between a simulated ward and the simulated devices of one protocol.

A protocol's simulator module ``simulators/<protocol>_sim.py`` exposes::

    def create(beds: list[SimBed], *, ward: str, **options) -> SimulatedDevices

The ward (``simulators.ward``) gives each protocol its share of the beds, asks
each group for the device entries of the edge agent's YAML, writes that file,
and runs every group until cancelled or the duration ends. Every group draws
its patients from ``simulators.physiology`` and ``simulators.scenarios``, so
the same seed gives the same patients whatever protocol carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class SimBed:
    bed: str  # our bed id, e.g. "A-01"
    scenario: str  # a key of simulators.scenarios.SCENARIOS
    seed: int
    waveforms: bool = True
    nibp_interval_s: float = 60.0


class SimulatedDevices(Protocol):
    """A group of simulated devices speaking one protocol."""

    async def start(self) -> None:
        """Open ptys / sockets / broker sessions, so ``edge_devices`` can name them."""

    def edge_devices(self) -> list[dict[str, Any]]:
        """Device entries for the edge agent's YAML (``devices:`` list), one or more per group."""

    async def run(self, duration_s: float | None = None) -> None:
        """Emit until cancelled or ``duration_s``; re-raise ``CancelledError``."""

    async def close(self) -> None: ...

    def stats(self) -> dict[str, int]: ...
