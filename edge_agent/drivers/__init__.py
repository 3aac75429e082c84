"""Registry of device drivers, by the name used in an edge agent's YAML.

A driver named ``x`` lives in ``edge_agent/drivers/x.py`` and registers its
``DriverSpec`` there; it is imported the first time a configuration names it.
Adding a driver is adding that one module (with its README section and golden
tests beside it): nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil

from edge_agent.drivers.base import DriverSpec

_REGISTRY: dict[str, DriverSpec] = {}
_NOT_DRIVERS = {"base"}


def register(spec: DriverSpec) -> DriverSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"driver {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_DRIVERS and not m.name.startswith("_"))


def get_driver(name: str) -> DriverSpec:
    if name not in _REGISTRY:
        if name not in available():
            raise KeyError(f"unknown driver {name!r}; known: {', '.join(available())}")
        importlib.import_module(f"edge_agent.drivers.{name}")
        if name not in _REGISTRY:
            raise KeyError(f"module edge_agent.drivers.{name} does not register a driver named {name!r}")
    return _REGISTRY[name]
