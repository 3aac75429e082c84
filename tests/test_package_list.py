"""Every Python package of the project is in pyproject's package list, so a wheel carries it (a forgotten one only
shows when the installed wheel imports it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = ("wire", "alerts", "edge_agent", "simulators", "console", "ingest", "records_bridge", "teleicu")


def test_every_package_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in TOP for p in (ROOT / top).rglob("__init__.py")}
    assert found - listed == set(), f"packages a wheel would leave out: {sorted(found - listed)}"
