"""The packaged default configuration, and loading the hub's files: the one place that knows where the defaults are.

The defaults ship as the package ``teleicu.defaults`` (the ``config/`` folder of a
checkout, ``teleicu/defaults/`` in an installed wheel) and are read with
``importlib.resources``, so they are found wherever teleicu is installed.
Nothing is read at import time: each function loads when called, from the file
given or else from the packaged default, and the caller hands the result to
the hub, the alarm engine or the score functions.
"""

from __future__ import annotations

import argparse
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.policy import AlarmPolicy
    from alerts.score_tables import ScoreTables
    from ingest.hub_config import HubConfig

PACKAGE = "teleicu.defaults"
HUB_FILE = "hub.yaml"
ALARMS_FILE = "alarms.yaml"
SCORES_FILE = "scores.yaml"
GRAFANA_DASHBOARD = "grafana/teleicu.json"


def default_file(name: str) -> Traversable:
    """A packaged default file, e.g. ``default_file("scores.yaml")``."""
    resource = files(PACKAGE)
    for part in name.split("/"):
        resource = resource / part
    return resource


def add_hub_arguments(ap: argparse.ArgumentParser) -> None:
    """The hub's configuration files as options (``teleicu hub``; ``teleicu demo`` hands them to its hub)."""
    ap.add_argument("--config", type=Path, default=None, help="hub YAML (default: the packaged config/hub.yaml)")
    ap.add_argument("--alarms", type=Path, default=None, help="alarm policy YAML (default: the packaged config/alarms.yaml)")
    ap.add_argument("--scores", type=Path, default=None, help="score tables YAML (default: the packaged config/scores.yaml)")


def hub_arguments(args: argparse.Namespace) -> list[str]:
    """The options of ``add_hub_arguments`` that were given, as a ``teleicu hub`` command line takes them."""
    given = (("--config", args.config), ("--alarms", args.alarms), ("--scores", args.scores))
    return [word for option, path in given if path is not None for word in (option, str(path))]


def hub_config(path: Path | None = None) -> HubConfig:
    """The hub's settings from ``path``, or the packaged ``hub.yaml``."""
    from ingest.hub_config import load_hub_config

    return load_hub_config(path or default_file(HUB_FILE))


def alarm_policy(path: Path | None = None) -> AlarmPolicy:
    """The alarm policy from ``path``, or the packaged ``alarms.yaml``."""
    from alerts.policy import load_policy

    return load_policy(path or default_file(ALARMS_FILE))


def score_tables(path: Path | None = None) -> ScoreTables:
    """The score tables from ``path``, or the packaged ``scores.yaml``."""
    from alerts.score_tables import load_score_tables

    return load_score_tables(path or default_file(SCORES_FILE))
