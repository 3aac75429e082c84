"""Simulated serial monitors of one protocol (TSP/1, S/5 or Nonin) on pty pairs: the ``simulators.base`` group.

``create(beds, ward=..., protocol="tsp" | "s5" | "nonin", noise=0.0, **options)``
gives one ``serial_monitor.SerialMonitor`` per bed with that protocol's
emitter, all driven by one task (``serial_monitor.run_monitors``), and one
``driver: <protocol>`` entry per bed for the edge agent's YAML (``port``,
``baud``, ``scenario``, and ``options`` when the driver needs some).
``simulators.tsp_sim``, ``s5_sim`` and ``nonin_sim`` are this with the protocol
filled in, so a ward finds every protocol's simulator by module name.

``noise`` is the chance that a frame gets one seeded line fault
(``serial_monitor.LineNoise``: corrupted byte, dropped bytes, inserted byte,
garbage before the frame). Options by protocol:

``s5``
    ``dri_level`` (the one DRI level the simulated monitors answer, default
    0x09), ``probe_off_mask`` (SpO2 status bits set while the probe is off,
    default 0), ``tx_interval_s`` (the interval the edge asks for, default 1),
    ``edge_options`` (more ``options:`` for the edge's ``s5`` entries).
``tsp``, ``nonin``
    none.

Nonin beds carry SpO2 and pulse rate only; S/5 beds carry no ``o2`` or
``acvpu`` (neither protocol has them): their NEWS2 stays incomplete.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simulators.base import SimBed
from simulators.nonin_encoder import NoninEmitter
from simulators.s5_encoder import S5Emitter
from simulators.serial_monitor import Emitter, LineNoise, SerialMonitor, TspEmitter, run_monitors

PROTOCOLS = ("tsp", "s5", "nonin")
_OPTIONS: dict[str, frozenset[str]] = {
    "tsp": frozenset(),
    "nonin": frozenset(),
    "s5": frozenset({"dri_level", "probe_off_mask", "tx_interval_s", "edge_options"}),
}


def make_emitter(protocol: str, **options: Any) -> Emitter:
    """A fresh protocol strategy for one monitor (options checked by ``create``)."""
    if protocol == "tsp":
        return TspEmitter()
    if protocol == "nonin":
        return NoninEmitter()
    if protocol == "s5":
        edge: dict[str, Any] = {"tx_interval_s": int(options.get("tx_interval_s", 1))}
        edge.update(options.get("edge_options") or {})
        return S5Emitter(
            dri_level=int(options.get("dri_level", 0x09)),
            probe_off_mask=int(options.get("probe_off_mask", 0)),
            edge=edge,
        )
    raise ValueError(f"unknown serial protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


class SerialDevices:
    """A group of simulated serial monitors of one protocol (``simulators.base.SimulatedDevices``)."""

    def __init__(self, ward: str, protocol: str, monitors: Sequence[SerialMonitor]) -> None:
        self.ward = ward
        self.protocol = protocol
        self.monitors = list(monitors)

    async def start(self) -> None:
        for m in self.monitors:
            m.open()

    def edge_devices(self) -> list[dict[str, Any]]:
        out = []
        for m in self.monitors:
            entry: dict[str, Any] = {
                "bed": m.bed,
                "id": m.device_id,
                "driver": m.emitter.protocol,
                "port": m.port,
                "baud": m.emitter.baud,
                "scenario": m.scenario.name,
            }
            options = m.emitter.edge_options()
            if options:
                entry["options"] = options
            out.append(entry)
        return out

    async def run(self, duration_s: float | None = None) -> None:
        await run_monitors(self.monitors, duration_s=duration_s)

    async def close(self) -> None:
        for m in self.monitors:
            m.close()

    def stats(self) -> dict[str, int]:
        out = {
            "monitors": len(self.monitors),
            "frames_sent": sum(m.frames_sent for m in self.monitors),
            "bytes_sent": sum(m.bytes_sent for m in self.monitors),
            "bytes_dropped": sum(m.bytes_dropped for m in self.monitors),
            "bytes_received": sum(m.bytes_received for m in self.monitors),
        }
        for m in self.monitors:
            if m.noise is not None:
                for kind, n in m.noise.counts.items():
                    out[f"noise_{kind}"] = out.get(f"noise_{kind}", 0) + n
            if isinstance(m.emitter, S5Emitter):
                for what, n in m.emitter.requests.items():
                    out[f"requests_{what}"] = out.get(f"requests_{what}", 0) + n
        return out


def create(
    beds: list[SimBed],
    *,
    ward: str,
    protocol: str = "tsp",
    noise: float = 0.0,
    **options: Any,
) -> SerialDevices:
    """Simulated ``protocol`` monitors for ``beds`` (``simulators.base`` contract); see the module docstring."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown serial protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    unknown = set(options) - _OPTIONS[protocol]
    if unknown:
        known = ", ".join(sorted(_OPTIONS[protocol])) or "none"
        raise TypeError(f"{protocol}_sim.create: unknown options {sorted(unknown)}; known: {known}")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be within 0..1 (chance of a fault per frame), got {noise!r}")
    monitors = [
        SerialMonitor(
            b.bed,
            b.scenario,
            b.seed,
            device_id=f"sim-{b.bed}",
            waveforms=b.waveforms,
            nibp_interval_s=b.nibp_interval_s,
            emitter=make_emitter(protocol, **options),
            noise=LineNoise(noise, seed=(b.seed, 0x401)) if noise > 0 else None,
        )
        for b in beds
    ]
    return SerialDevices(ward, protocol, monitors)

