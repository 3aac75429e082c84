"""Serial protocol groups (tsp, s5, nonin): the simulators.base contract, device entries, options and noise."""

from __future__ import annotations

import asyncio
import importlib
import os

import pytest

from edge_agent.config import parse_edge_config
from simulators import serial_sim
from simulators.base import SimBed

BEDS = [SimBed("A-01", "stable", 11), SimBed("A-02", "probe_off", 12, waveforms=False)]


@pytest.mark.parametrize(("protocol", "baud"), [("tsp", 115200), ("s5", 19200), ("nonin", 9600)])
def test_thin_modules_by_name_and_device_entries(protocol: str, baud: int) -> None:
    module = importlib.import_module(f"simulators.{protocol}_sim")
    group = module.create(BEDS, ward="A")
    assert isinstance(group, serial_sim.SerialDevices) and group.protocol == protocol

    async def main() -> list[dict]:
        await group.start()
        try:
            return group.edge_devices()
        finally:
            await group.close()

    entries = asyncio.run(main())
    assert [e["bed"] for e in entries] == ["A-01", "A-02"]
    assert all(e["driver"] == protocol and e["baud"] == baud and e["port"].startswith("/dev/pts/") for e in entries)
    assert [e["scenario"] for e in entries] == ["stable", "probe_off"]
    assert ("options" in entries[0]) == (protocol == "s5")
    cfg = parse_edge_config({"agent": {"id": "e", "ward": "A"}, "hub": {"url": "ws://h/ws/edge", "secret_file": "edge.secret"}, "devices": entries})
    assert [d.driver for d in cfg.devices] == [protocol] * 2
    assert all(m._master is None for m in group.monitors)


def test_s5_options_reach_the_monitors_and_the_edge_entries() -> None:
    group = serial_sim.create(BEDS, ward="A", protocol="s5", dri_level=7, probe_off_mask=0x10000, tx_interval_s=2,
                              edge_options={"retry_s": 1.5})  # fmt: skip
    em = group.monitors[0].emitter
    assert em.dri_level == 7 and em.probe_off_mask == 0x10000  # type: ignore[attr-defined]
    assert em.edge_options() == {"tx_interval_s": 2, "retry_s": 1.5, "probe_off_mask": 0x10000}


def test_unknown_options_and_protocols_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown options"):
        serial_sim.create(BEDS, ward="A", protocol="nonin", dri_level=7)
    with pytest.raises(ValueError, match="unknown serial protocol"):
        serial_sim.create(BEDS, ward="A", protocol="hl7")
    with pytest.raises(ValueError, match="noise"):
        serial_sim.create(BEDS, ward="A", noise=2.0)


def test_noise_is_seeded_per_bed_and_counted() -> None:
    group = serial_sim.create(BEDS, ward="A", protocol="nonin", noise=0.2)

    async def main() -> dict[str, int]:
        await group.start()
        try:
            await asyncio.wait_for(group.run(duration_s=0.6), 10)
            return group.stats()
        finally:
            await group.close()

    stats = asyncio.run(main())
    assert stats["monitors"] == 2 and stats["frames_sent"] >= 2 * 15 * 3  # ticks at 0, 0.2 and 0.4 s at least
    assert sum(v for k, v in stats.items() if k.startswith("noise_")) > 5
    assert all(not os.path.exists(m.port) or m._master is None for m in group.monitors)
