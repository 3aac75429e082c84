"""Importing teleicu reads no configuration, and the edge role loads without the hub's web stack.

Configuration is loaded by the command line and handed down (``teleicu.config_files``);
a module that read a file at import would break an installed wheel whose files
are elsewhere, and would fix a value its caller should choose.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import builtins, importlib, io, pkgutil, sys

real_open = io.open

def no_config(file, *args, **kwargs):
    if str(file).endswith((".yaml", ".yml")):
        raise AssertionError(f"a configuration file was read at import: {file}")
    return real_open(file, *args, **kwargs)

io.open = builtins.open = no_config
names = []
for top in ("wire", "alerts", "edge_agent", "simulators", "console", "ingest", "records_bridge", "teleicu"):
    package = importlib.import_module(top)
    names.append(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if info.name.endswith("__main__"):
            continue  # runs the command line
        if ".migrations" in info.name:
            continue  # Alembic's scripts, run by Alembic inside a migration, not imported
        importlib.import_module(info.name)
        names.append(info.name)
print(len(names))
"""


def test_no_module_reads_configuration_at_import() -> None:
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.strip()) > 60  # every module was imported


EDGE_SCRIPT = r"""
import sys
for name in ("fastapi", "starlette", "uvicorn", "httpx"):
    sys.modules[name] = None  # as on a gateway installed with teleicu[edge]: importing them fails
import pkgutil, importlib
import edge_agent, edge_agent.agent, edge_agent.config
from teleicu.cli import build_parser
for info in pkgutil.walk_packages(edge_agent.__path__, "edge_agent."):
    importlib.import_module(info.name)
cfg = edge_agent.config.parse_edge_config({
    "agent": {"id": "edge-A", "ward": "A"}, "hub": {"url": "ws://127.0.0.1:9/ws/edge", "secret_file": "edge.secret"},
    "devices": [{"id": "m", "driver": "s5", "bed": "A-01", "port": "/dev/null", "options": {"tx_interval_s": 1}}],
})
build_parser().parse_args(["edge", "--config", "edge.yaml"])
print(cfg.devices[0].driver)
"""


def test_the_edge_role_needs_no_hub_stack() -> None:
    """An edge gateway (``teleicu[edge]``) loads and checks its configuration without FastAPI, uvicorn or httpx."""
    r = subprocess.run([sys.executable, "-c", EDGE_SCRIPT], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "s5"
