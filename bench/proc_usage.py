"""What a process costs, read from /proc (Linux): CPU seconds, resident memory, and the demo's children by role.

Shared by the benchmarks that run real processes (``ingest_latency``, ``soak``,
``parsers_mqtt``), so each reads /proc the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User plus system CPU time the process has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    """Resident set size, MiB."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


def demo_processes(marker: str) -> dict[int, str]:
    """pid -> role ("hub", "edge-A", ...) of a ``teleicu demo``'s children whose command line carries ``marker``
    (the demo's data directory)."""
    out: dict[int, str] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue
        if "teleicu" not in args or not any(marker in a for a in args):
            continue
        if "hub" in args:
            out[int(pid)] = "hub"
        elif "edge" in args:
            out[int(pid)] = "edge-" + Path(args[args.index("--config") + 1]).stem.split("-")[-1]
    return out
