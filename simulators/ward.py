"""A simulated ward: N monitors on ptys, their edge-agent config, and the ``teleicu sim`` CLI.

``run_ward`` creates one ``SerialMonitor`` per bed (scenarios from
``assign_scenarios``), writes the edge agent's YAML config for their ports
atomically (temp file, then rename, so a watcher never reads half a file), and
drives them until cancelled or ``duration_s``. ``ward_main(argv)`` is the
command line behind ``teleicu sim``; it stops cleanly on SIGINT/SIGTERM.

The config it writes::

    agent: {id: "edge-A", ward: "A"}
    hub: {url: "ws://127.0.0.1:8080/ws/edge"}
    devices:
      - {bed: "A-01", id: "sim-A-01", driver: tsp, port: "/dev/pts/7", baud: 115200, scenario: sepsis}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from simulators.scenarios import assign_scenarios
from simulators.serial_monitor import SerialMonitor, run_monitors

log = logging.getLogger(__name__)

DEFAULT_HUB = "ws://127.0.0.1:8080/ws/edge"
BAUD = 115200
STATS_EVERY_S = 60.0


def bed_names(prefix: str, n_beds: int) -> list[str]:
    width = max(2, len(str(n_beds)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n_beds + 1)]


def edge_config_text(ward: str, hub_url: str, monitors: Sequence[SerialMonitor]) -> str:
    """The edge agent YAML for these monitors (strings JSON-quoted, which YAML reads as is)."""
    q = json.dumps
    lines = [
        f"agent: {{id: {q('edge-' + ward)}, ward: {q(ward)}}}",
        f"hub: {{url: {q(hub_url)}}}",
        "devices:",
    ]
    for m in monitors:
        lines.append(
            f"  - {{bed: {q(m.bed)}, id: {q(m.device_id)}, driver: tsp, port: {q(m.port)}, "
            f"baud: {BAUD}, scenario: {m.scenario.name}}}"
        )
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _raise_fd_limit(needed: int) -> None:
    """Each monitor holds two descriptors; lift the soft limit towards the hard one if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _log_stats(monitors: Sequence[SerialMonitor]) -> None:
    while True:
        await asyncio.sleep(STATS_EVERY_S)
        log.info(
            "ward: %d frames sent, %d bytes sent, %d bytes dropped (no reader / buffer full)",
            sum(m.frames_sent for m in monitors),
            sum(m.bytes_sent for m in monitors),
            sum(m.bytes_dropped for m in monitors),
        )


def make_monitors(
    ward: str,
    n_beds: int,
    seed: int,
    *,
    bed_prefix: str | None = None,
    waveforms: bool | int = True,
    nibp_interval_s: float = 60.0,
) -> list[SerialMonitor]:
    """Monitors for a ward (not yet opened). ``waveforms``: all, none, or the first N beds."""
    scenarios = assign_scenarios(n_beds, seed)
    prefix = bed_prefix if bed_prefix is not None else f"{ward}-"
    n_wave = n_beds if waveforms is True else 0 if waveforms is False else max(0, int(waveforms))
    return [
        SerialMonitor(
            bed,
            scenario,
            (seed, i),
            device_id=f"sim-{bed}",
            waveforms=i < n_wave,
            nibp_interval_s=nibp_interval_s,
        )
        for i, (bed, scenario) in enumerate(zip(bed_names(prefix, n_beds), scenarios, strict=True))
    ]


async def run_ward(
    ward: str,
    n_beds: int,
    seed: int,
    *,
    bed_prefix: str | None = None,
    edge_config_path: Path | None = None,
    hub_url: str = DEFAULT_HUB,
    waveforms: bool | int = True,
    nibp_interval_s: float = 60.0,
    duration_s: float | None = None,
) -> list[SerialMonitor]:
    """Run a ward of simulated monitors until cancelled or ``duration_s``; returns them (closed)."""
    monitors = make_monitors(
        ward, n_beds, seed, bed_prefix=bed_prefix, waveforms=waveforms, nibp_interval_s=nibp_interval_s
    )
    _raise_fd_limit(2 * n_beds + 64)
    try:
        for m in monitors:
            m.open()
        if edge_config_path is not None:
            write_atomically(edge_config_path, edge_config_text(ward, hub_url, monitors))
            log.info("ward %s: edge config written to %s", ward, edge_config_path)
        log.info(
            "ward %s: %d monitors (%d with ECG) on %s .. %s",
            ward,
            len(monitors),
            sum(m.waveforms for m in monitors),
            monitors[0].port if monitors else "-",
            monitors[-1].port if monitors else "-",
        )
        stats = asyncio.create_task(_log_stats(monitors))
        try:
            await run_monitors(monitors, duration_s=duration_s)
        finally:
            stats.cancel()
            await asyncio.gather(stats, return_exceptions=True)  # an outer cancel still propagates
    finally:
        for m in monitors:
            m.close()
    return monitors


def _waveforms_arg(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="teleicu sim", description="Simulated bedside monitors speaking TSP/1 on pty serial ports.")
    ap.add_argument("--ward", default="A", help="ward name (default A)")
    ap.add_argument("--beds", type=int, default=8, help="number of beds (default 8)")
    ap.add_argument("--seed", type=int, default=1, help="seed: same seed, same patients (default 1)")
    ap.add_argument("--bed-prefix", default=None, help="bed name prefix (default '<ward>-', giving A-01, A-02...)")
    ap.add_argument("--edge-config", type=Path, default=None, metavar="PATH", help="write an edge agent YAML config for these ports")
    ap.add_argument("--hub", default=DEFAULT_HUB, metavar="URL", help=f"hub URL for the edge config (default {DEFAULT_HUB})")
    ap.add_argument("--waveforms", type=_waveforms_arg, default=None, metavar="N", help="how many beds send ECG (default all)")
    ap.add_argument("--nibp-interval", type=float, default=60.0, metavar="S", help="NIBP cuff cycle in seconds (default 60)")
    ap.add_argument("--duration", type=float, default=None, metavar="S", help="stop after this many seconds (default: run until stopped)")
    ap.add_argument("--log-level", default="INFO")
    return ap


async def _amain(args: argparse.Namespace) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await run_ward(
            args.ward,
            args.beds,
            args.seed,
            bed_prefix=args.bed_prefix,
            edge_config_path=args.edge_config,
            hub_url=args.hub,
            waveforms=True if args.waveforms is None else args.waveforms,
            nibp_interval_s=args.nibp_interval,
            duration_s=args.duration,
        )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def ward_main(argv: Sequence[str] | None = None) -> int:
    """``teleicu sim``: run a ward until SIGINT/SIGTERM or ``--duration``; returns the exit code."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.beds < 1:
        print("teleicu sim: --beds must be at least 1", file=sys.stderr)
        return 2
    if args.nibp_interval <= 0:
        print("teleicu sim: --nibp-interval must be positive", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_amain(args))
    except asyncio.CancelledError:  # stopped by a signal: a clean exit
        log.info("ward %s: stopped", args.ward)
    except KeyboardInterrupt:
        log.info("ward %s: interrupted", args.ward)
    return 0


if __name__ == "__main__":
    sys.exit(ward_main())
