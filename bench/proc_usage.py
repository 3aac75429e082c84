"""What a process costs, read from /proc (Linux): CPU seconds (of it alone, with its descendants or per thread),
resident memory, how busy the whole machine was, and the demo's children by role.

Shared by the benchmarks that run real processes (``ingest_latency``, ``soak``,
``parsers_mqtt``, ``video_system``, ``hub_load``), so each reads /proc the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int | str) -> float:
    """User plus system CPU time the process (or ``"pid/task/tid"``, one thread) has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def descendants(pid: int) -> list[int]:
    """The process's children, their children and so on, alive now."""
    parent: dict[int, int] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            parent[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:  # gone meanwhile
            continue
    out, todo = [], [pid]
    while todo:
        of = todo.pop()
        kids = [child for child, ppid in parent.items() if ppid == of]
        out += kids
        todo += kids
    return out


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of the process and its live descendants (a worker pool's processes, for example)."""
    total = cpu_s(pid)
    for child in descendants(pid):
        try:
            total += cpu_s(child)
        except OSError:  # it exited meanwhile
            continue
    return total


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of each of the process's threads so far (thread id -> seconds)."""
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = cpu_s(f"{pid}/task/{tid}")
        except OSError:  # ended meanwhile
            continue
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far, from /proc/stat: how loaded the whole machine was in a window."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is ``directory`` (a benchmark's own temporary one: what it started there)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/cwd").resolve() == directory.resolve():
                out.append(int(pid))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return out


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
