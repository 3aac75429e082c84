"""The packaged default configuration for tests, loaded once through the command line's own loader.

The code under test is handed its configuration, as ``teleicu`` hands it; these
are the files it would hand by default (``teleicu.config_files``).
"""

from __future__ import annotations

import functools
from typing import Any

import yaml

from alerts.policy import AlarmPolicy
from alerts.score_tables import ScoreTables
from ingest.hub_config import HubConfig
from teleicu import config_files


@functools.cache
def score_tables() -> ScoreTables:
    return config_files.score_tables()


@functools.cache
def alarm_policy() -> AlarmPolicy:
    return config_files.alarm_policy()


@functools.cache
def hub_config() -> HubConfig:
    return config_files.hub_config()


def default_text(name: str) -> str:
    """A packaged default file's text, e.g. ``default_text("alarms.yaml")``."""
    return config_files.default_file(name).read_text(encoding="utf-8")


def default_raw(name: str) -> Any:
    """A packaged default YAML file, parsed (a fresh copy to change)."""
    return yaml.safe_load(default_text(name))
