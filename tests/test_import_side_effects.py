"""Importing teleicu reads no configuration: every module of every package imports with YAML files out of reach.

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
for top in ("wire", "alerts", "edge_agent", "simulators", "console", "ingest", "teleicu"):
    package = importlib.import_module(top)
    names.append(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if info.name.endswith("__main__"):
            continue  # runs the command line
        importlib.import_module(info.name)
        names.append(info.name)
print(len(names))
"""


def test_no_module_reads_configuration_at_import() -> None:
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.strip()) > 60  # every module was imported
