"""Registry of device drivers, by the name used in an edge agent's YAML.

Each driver module registers itself here; adding a driver needs no change
anywhere else than its own module and the import list below.
"""

from __future__ import annotations

import importlib

from edge_agent.drivers.base import DriverSpec

_REGISTRY: dict[str, DriverSpec] = {}
_MODULES = ("edge_agent.drivers.tsp",)


def register(spec: DriverSpec) -> DriverSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"driver {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get_driver(name: str) -> DriverSpec:
    if not _REGISTRY:
        for module in _MODULES:
            importlib.import_module(module)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown driver {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
