"""Hub configuration: schema, defaults from ``config/hub.yaml``, validation on load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from teleicu.paths import CONFIG_DIR
from wire.vocabulary import PARAMETERS

DEFAULT_FILE = CONFIG_DIR / "hub.yaml"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class HubConfig:
    staleness_s: dict[str, float]
    min_tick_ms: int = 25
    max_tick_ms: int = 1000
    max_clock_ahead_s: float = 300
    max_inflight_frames: int = 2000
    max_frames_per_s: float = 2000
    max_bytes_per_s: float = 8 * 1024 * 1024
    allowed_agents: frozenset[str] | None = None
    gap_s: float = 30

    def staleness_ms(self) -> np.ndarray:
        """Per-column staleness limits in ms, in vocabulary column order."""
        return np.array([self.staleness_s[p.key] * 1000.0 for p in PARAMETERS])


def load_hub_config(path: Path | None = None) -> HubConfig:
    path = path or DEFAULT_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read hub config: {exc}") from None
    return parse_hub_config(raw, str(path))


def parse_hub_config(raw: Any, where: str = "hub config") -> HubConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping at top level")
    known = {"staleness_s", "max_frames_per_s", "max_bytes_per_s", "allowed_agents", "gap_s", "min_tick_ms", "max_tick_ms", "max_clock_ahead_s", "max_inflight_frames"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    stale = raw.get("staleness_s") or {}
    missing = [p.key for p in PARAMETERS if p.key not in stale]
    extra = sorted(set(stale) - {p.key for p in PARAMETERS})
    if missing or extra:
        raise ConfigError(f"{where}: staleness_s must list exactly the vocabulary; missing {missing}, unknown {extra}")
    for k, v in stale.items():
        if not isinstance(v, (int, float)) or v <= 0:
            raise ConfigError(f"{where}: staleness_s.{k} must be a positive number of seconds, got {v!r}")
    allowed = raw.get("allowed_agents")
    if allowed is not None and (not isinstance(allowed, list) or not all(isinstance(a, str) and a for a in allowed)):
        raise ConfigError(f"{where}: allowed_agents must be null or a list of agent ids")
    for k in ("max_frames_per_s", "max_bytes_per_s", "gap_s"):
        if k in raw and (not isinstance(raw[k], (int, float)) or raw[k] <= 0):
            raise ConfigError(f"{where}: {k} must be a positive number")
    cfg = HubConfig(
        staleness_s={k: float(v) for k, v in stale.items()},
        allowed_agents=None if allowed is None else frozenset(allowed),
        **{k: raw[k] for k in ("min_tick_ms", "max_tick_ms", "max_clock_ahead_s", "max_inflight_frames",
                               "max_frames_per_s", "max_bytes_per_s", "gap_s") if k in raw},
    )  # fmt: skip
    if not 1 <= cfg.min_tick_ms <= cfg.max_tick_ms:
        raise ConfigError(f"{where}: need 1 <= min_tick_ms <= max_tick_ms")
    if cfg.max_inflight_frames < 1:
        raise ConfigError(f"{where}: max_inflight_frames must be >= 1")
    return cfg
