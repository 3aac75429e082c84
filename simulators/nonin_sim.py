"""Simulated Nonin OEM III format 2 monitors on pty pairs: ``serial_sim.create`` with ``protocol="nonin"``.

The ward finds a protocol's simulator by module name (``simulators.<protocol>_sim``);
see ``simulators.serial_sim`` for the options.
"""

from __future__ import annotations

from typing import Any

from simulators.base import SimBed
from simulators.serial_sim import SerialDevices
from simulators.serial_sim import create as _create


def create(beds: list[SimBed], *, ward: str, **options: Any) -> SerialDevices:
    return _create(beds, ward=ward, protocol="nonin", **options)
