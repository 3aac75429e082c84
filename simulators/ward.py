"""A simulated ward: beds spread over device protocols, their edge-agent config, and the ``teleicu sim`` CLI.

``run_ward`` gives every bed a scenario (``scenarios.assign_scenarios``) and a
protocol (round-robin over ``protocols``, in bed order), asks each protocol's
simulator module ``simulators.<protocol>_sim`` for a device group
(``create(beds, ward=..., **options)``, the ``simulators.base`` contract),
starts the groups, writes the edge agent's YAML with every group's device
entries atomically (temp file, then rename, so a watcher never reads half a
file), and runs the groups until cancelled or ``duration_s``.
``ward_main(argv)`` is the command line behind ``teleicu sim``; it stops
cleanly on SIGINT/SIGTERM.

Next to the YAML it writes ``<edge-config>.scenarios.json``, ``{bed:
scenario}`` for every bed, *before* the YAML (so it exists once the YAML does):
multi-bed devices (HL7 gateways, MQTT) list ``beds:``, not one ``bed:`` with a
``scenario``, and the edge config refuses unknown top-level keys.

The YAML it writes::

    agent: {id: "edge-A", ward: "A"}
    hub: {url: "ws://127.0.0.1:8080/ws/edge"}
    devices:
      - {bed: "A-01", id: "sim-A-01", driver: "tsp", port: "/dev/pts/7", baud: 115200, scenario: "sepsis"}
      - {bed: "A-02", id: "sim-A-02", driver: "s5", port: "/dev/pts/8", baud: 19200, scenario: "stable", options: {...}}
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import resource
import signal
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import yaml

from simulators.base import SimBed, SimulatedDevices
from simulators.scenarios import assign_scenarios
from simulators.serial_monitor import SerialMonitor
from simulators import serial_sim
from simulators.serial_sim import PROTOCOLS as SERIAL_PROTOCOLS
from simulators.serial_sim import SerialDevices
from wire.atomic_file import write_atomically

log = logging.getLogger(__name__)

DEFAULT_HUB = "ws://127.0.0.1:8080/ws/edge"
BAUD = 115200  # TSP/1
STATS_EVERY_S = 60.0
KNOWN_PROTOCOLS = ("tsp", "s5", "nonin", "hl7", "mqtt")


class WardError(ValueError):
    """A ward that cannot be set up as asked (unknown protocol, missing simulator module, bad option)."""


def bed_names(prefix: str, n_beds: int) -> list[str]:
    width = max(2, len(str(n_beds)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n_beds + 1)]


def bed_seed(seed: int, i: int) -> int:
    """The patient seed of bed ``i``: same ward seed, same patients, whatever protocol carries them."""
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


def make_beds(
    ward: str,
    n_beds: int,
    seed: int,
    *,
    bed_prefix: str | None = None,
    waveforms: bool | int = True,
    nibp_interval_s: float = 60.0,
) -> list[SimBed]:
    """The ward's beds: names, scenarios (seeded demo mix), seeds. ``waveforms``: all, none, or the first N beds."""
    scenarios = assign_scenarios(n_beds, seed)
    prefix = bed_prefix if bed_prefix is not None else f"{ward}-"
    n_wave = n_beds if waveforms is True else 0 if waveforms is False else max(0, int(waveforms))
    return [
        SimBed(bed, scenario, bed_seed(seed, i), waveforms=i < n_wave, nibp_interval_s=nibp_interval_s)
        for i, (bed, scenario) in enumerate(zip(bed_names(prefix, n_beds), scenarios, strict=True))
    ]


def assign_protocols(n_beds: int, protocols: Sequence[str]) -> list[str]:
    """Round-robin, in bed order: bed i speaks ``protocols[i % len(protocols)]``."""
    if not protocols:
        raise WardError("at least one protocol is needed")
    return [protocols[i % len(protocols)] for i in range(n_beds)]


def make_monitors(
    ward: str,
    n_beds: int,
    seed: int,
    *,
    bed_prefix: str | None = None,
    waveforms: bool | int = True,
    nibp_interval_s: float = 60.0,
    protocol: str = "tsp",
) -> list[SerialMonitor]:
    """Serial monitors (not yet opened) for every bed of a one-protocol ward."""
    beds = make_beds(ward, n_beds, seed, bed_prefix=bed_prefix, waveforms=waveforms, nibp_interval_s=nibp_interval_s)
    return serial_sim.create(beds, ward=ward, protocol=protocol).monitors  # one place builds a bed's monitor


def load_simulator(protocol: str) -> ModuleType:
    """``simulators.<protocol>_sim``, or a ``WardError`` saying what is missing."""
    name = f"simulators.{protocol}_sim"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            raise WardError(f"protocol {protocol!r} has no simulator: module {name} (simulators/{protocol}_sim.py) is missing") from None
        raise WardError(f"cannot load {name}: {exc}") from None
    except ImportError as exc:
        raise WardError(f"cannot load {name}: {exc}") from None
    if not callable(getattr(module, "create", None)):
        raise WardError(f"{name} has no create(beds, *, ward, **options) function")
    return module


def _device_entry(d: Mapping[str, Any] | SerialMonitor) -> Mapping[str, Any]:
    if isinstance(d, SerialMonitor):
        return SerialDevices("", d.protocol, [d]).edge_devices()[0]
    return d


def edge_config_text(ward: str, hub_url: str, devices: Sequence[Mapping[str, Any] | SerialMonitor],
                     secret_file: str = "", cameras: Sequence[str] = ()) -> str:  # fmt: skip
    """The edge agent YAML for these device entries (or monitors); values JSON-quoted, which YAML reads as is.
    ``secret_file``: where the agent's secret will be (default ``edge-<ward>.secret`` beside the config);
    ``cameras``: beds given the simulator's test-pattern camera (it runs only while someone watches)."""
    q = json.dumps
    lines = [
        f"agent: {{id: {q('edge-' + ward)}, ward: {q(ward)}}}",
        f"hub: {{url: {q(hub_url)}, secret_file: {q(secret_file or f'edge-{ward}.secret')}}}",
        "devices:",
    ]
    for d in devices:
        lines.append("  - {" + ", ".join(f"{k}: {q(v)}" for k, v in _device_entry(d).items()) + "}")
    if cameras:
        lines.append("cameras:")
        lines += [f"  - {{bed: {q(bed)}, source: testpattern}}" for bed in cameras]
    return "\n".join(lines) + "\n"


def scenarios_path(edge_config_path: Path) -> Path:
    """The sidecar ``{bed: scenario}`` file next to an edge config."""
    return edge_config_path.with_name(edge_config_path.name + ".scenarios.json")


def _raise_fd_limit(needed: int) -> None:
    """Each serial monitor holds two descriptors; lift the soft limit towards the hard one if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _log_stats(groups: Sequence[SimulatedDevices]) -> None:
    while True:
        await asyncio.sleep(STATS_EVERY_S)
        total: Counter[str] = Counter()
        for g in groups:
            total.update(g.stats())
        log.info("ward: %s", ", ".join(f"{k} {v}" for k, v in sorted(total.items())))


def create_groups(
    ward: str,
    beds: Sequence[SimBed],
    protocols: Sequence[str],
    *,
    noise: float = 0.0,
    protocol_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[SimulatedDevices]:
    """One device group per protocol that has beds, from ``simulators.<protocol>_sim.create``."""
    if len(set(protocols)) != len(protocols):
        raise WardError(f"a protocol is listed twice: {','.join(protocols)}")
    options = {p: dict(o) for p, o in (protocol_options or {}).items()}
    stray = set(options) - set(protocols)
    if stray:
        raise WardError(f"options given for protocols not in the ward: {sorted(stray)}")
    modules = {p: load_simulator(p) for p in protocols}
    assigned = assign_protocols(len(beds), protocols)
    groups: list[SimulatedDevices] = []
    for p in protocols:
        mine = [b for b, q in zip(beds, assigned, strict=True) if q == p]
        if not mine:
            continue
        kwargs = dict(options.get(p, {}))
        if p in SERIAL_PROTOCOLS and noise:
            kwargs["noise"] = noise
        elif noise:
            log.warning("ward %s: --noise applies to serial protocols only, not %s", ward, p)
        try:
            groups.append(modules[p].create(mine, ward=ward, **kwargs))
        except (TypeError, ValueError) as exc:
            raise WardError(f"{p}: {exc}") from None
    return groups


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
    protocols: Sequence[str] = ("tsp",),
    noise: float = 0.0,
    protocol_options: Mapping[str, Mapping[str, Any]] | None = None,
    cameras: int = 0,
) -> list[SimulatedDevices]:
    """Run a ward of simulated devices until cancelled or ``duration_s``; returns the groups (closed)."""
    beds = make_beds(ward, n_beds, seed, bed_prefix=bed_prefix, waveforms=waveforms, nibp_interval_s=nibp_interval_s)
    groups = create_groups(ward, beds, protocols, noise=noise, protocol_options=protocol_options)
    _raise_fd_limit(2 * n_beds + 64)
    started: list[SimulatedDevices] = []
    try:
        for g in groups:
            started.append(g)
            await g.start()
        devices = [d for g in groups for d in g.edge_devices()]
        if edge_config_path is not None:
            write_atomically(scenarios_path(edge_config_path), json.dumps({b.bed: b.scenario for b in beds}, indent=1) + "\n")
            text = edge_config_text(ward, hub_url, devices, cameras=[b.bed for b in beds[:cameras]])
            yaml.safe_load(text)  # what we write must read back
            write_atomically(edge_config_path, text)
            log.info("ward %s: edge config written to %s", ward, edge_config_path)
        by_protocol = Counter(assign_protocols(len(beds), protocols))
        log.info(
            "ward %s: %d beds (%s), %d edge devices, noise %g",
            ward,
            len(beds),
            ", ".join(f"{p} {by_protocol[p]}" for p in protocols if by_protocol[p]),
            len(devices),
            noise,
        )
        stats = asyncio.create_task(_log_stats(groups))
        try:
            async with asyncio.TaskGroup() as tg:
                for g in groups:
                    tg.create_task(g.run(duration_s))
        finally:
            stats.cancel()
            await asyncio.gather(stats, return_exceptions=True)  # an outer cancel still propagates
    finally:
        for g in reversed(started):
            try:
                await g.close()
            except Exception:
                log.exception("ward %s: closing a device group failed", ward)
    return groups


def _waveforms_arg(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def _protocols_arg(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one protocol")
    bad = [p for p in names if not p.isidentifier()]
    if bad:
        raise argparse.ArgumentTypeError(f"not a protocol name: {', '.join(bad)}")
    return names


def _noise_arg(text: str) -> float:
    x = float(text)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError("must be within 0..1")
    return x


def _sim_option_arg(text: str) -> tuple[str, str, Any]:
    key, eq, value = text.partition("=")
    proto, dot, name = key.partition(".")
    if not (eq and dot and proto and name):
        raise argparse.ArgumentTypeError(f"expected PROTOCOL.KEY=VALUE, got {text!r}")
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        parsed = value
    return proto, name, parsed


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="teleicu sim", description="Simulated bedside devices: serial monitors on ptys, HL7 and MQTT.")
    ap.add_argument("--ward", default="A", help="ward name (default A)")
    ap.add_argument("--beds", type=int, default=8, help="number of beds (default 8)")
    ap.add_argument("--seed", type=int, default=1, help="seed: same seed, same patients (default 1)")
    ap.add_argument("--bed-prefix", default=None, help="bed name prefix (default '<ward>-', giving A-01, A-02...)")
    ap.add_argument("--edge-config", type=Path, default=None, metavar="PATH", help="write an edge agent YAML config for these devices")
    ap.add_argument("--hub", default=DEFAULT_HUB, metavar="URL", help=f"hub URL for the edge config (default {DEFAULT_HUB})")
    ap.add_argument("--waveforms", type=_waveforms_arg, default=None, metavar="N", help="how many beds send ECG (default all; TSP only)")
    ap.add_argument("--nibp-interval", type=float, default=60.0, metavar="S", help="NIBP cuff cycle in seconds (default 60)")
    ap.add_argument("--duration", type=float, default=None, metavar="S", help="stop after this many seconds (default: run until stopped)")
    ap.add_argument(
        "--protocols",
        type=_protocols_arg,
        default=["tsp"],
        metavar="LIST",
        help=f"comma list of device protocols, beds assigned round-robin ({','.join(KNOWN_PROTOCOLS)}; default tsp)",
    )
    ap.add_argument("--cameras", type=int, default=0, metavar="N",
                    help="give the first N beds a test-pattern camera in the edge config (bed id and time burned in; default 0)")
    ap.add_argument("--noise", type=_noise_arg, default=0.0, metavar="P", help="serial line noise: chance of a fault per frame (default 0)")
    ap.add_argument(
        "--sim-option",
        type=_sim_option_arg,
        action="append",
        default=[],
        metavar="PROTO.KEY=VALUE",
        help="an option for one protocol's simulator, e.g. s5.dri_level=7, mqtt.broker=mqtt://host:1883 or "
        "mqtt.record=PATH (every MQTT vitals sample produced, as JSON lines) (repeatable)",
    )
    ap.add_argument("--log-level", default="INFO")
    return ap


async def _amain(args: argparse.Namespace) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    options: dict[str, dict[str, Any]] = {}
    for proto, key, value in args.sim_option:
        options.setdefault(proto, {})[key] = value
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
            protocols=args.protocols,
            noise=args.noise,
            protocol_options=options,
            cameras=args.cameras,
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
    except WardError as exc:
        print(f"teleicu sim: {exc}", file=sys.stderr)
        return 2
    except asyncio.CancelledError:  # stopped by a signal: a clean exit
        log.info("ward %s: stopped", args.ward)
    except KeyboardInterrupt:
        log.info("ward %s: interrupted", args.ward)
    return 0


if __name__ == "__main__":
    sys.exit(ward_main())
