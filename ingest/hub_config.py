"""Hub configuration: the schema of a hub file (``config/hub.yaml``), validated when loaded.

Nothing is loaded at import: ``teleicu hub`` loads the file (or the packaged
default) and hands the ``HubConfig`` to the hub. A file that cannot be used
raises ``HubConfigError`` (a ``wire.config.ConfigError``) naming the file, the
key and the problem.
"""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from ingest.adt.settings import AdtSettings
from ingest.jetstream_settings import JetStreamSettings
from ingest.tls import TlsSettings
from ingest.video.settings import VideoSettings
from wire.config import ConfigError, ConfigModel, check_keys, load, validate
from wire.vocabulary import PARAMETERS

Positive = Annotated[float, Field(gt=0)]


class HubConfigError(ConfigError):
    """A hub configuration that cannot be used."""


class HubConfig(ConfigModel):
    staleness_s: dict[str, Positive]  # exactly the vocabulary: a value older than this counts as missing
    min_tick_ms: Annotated[int, Field(ge=1)] = 25
    max_tick_ms: int = 1000
    max_clock_ahead_s: float = 300
    max_inflight_frames: Annotated[int, Field(ge=1)] = 2000
    store_stall_s: Annotated[float, Field(gt=0, le=10)] = 8.0  # an edge reader waits this long for the store, then holds
    max_frames_per_s: Positive = 2000
    max_bytes_per_s: Positive = 8 * 1024 * 1024
    tls: TlsSettings | None = None  # None: plain HTTP (behind a TLS-terminating reverse proxy, or on loopback)
    gap_s: Positive = 30
    adt: AdtSettings | None = None  # HL7 ADT from the hospital information system (ingest/adt/hl7_adt.md); None: API only
    video: VideoSettings = VideoSettings()  # bedside video: viewer cap, STUN/TURN (docs/video.md)
    waveform_analysis: bool = True  # ECG and pleth quality every 2 s (ingest/waveform_quality.py); off: alarms as numbers alone
    jetstream: JetStreamSettings | None = None  # a hub worker consuming its wards' frames from NATS JetStream (docs/jetstream-workers.md)

    @field_validator("staleness_s", mode="before")
    @classmethod
    def _whole_vocabulary(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            check_keys(raw, tuple(p.key for p in PARAMETERS))
        return raw

    @model_validator(mode="after")
    def _ticks(self) -> HubConfig:
        if not self.min_tick_ms <= self.max_tick_ms:
            raise ValueError(f"need 1 <= min_tick_ms <= max_tick_ms, not {self.min_tick_ms} and {self.max_tick_ms}")
        return self

    def staleness_ms(self) -> np.ndarray:
        """Per-column staleness limits in ms, in vocabulary column order."""
        return np.array([self.staleness_s[p.key] * 1000.0 for p in PARAMETERS])


def load_hub_config(path: Path | Traversable) -> HubConfig:
    """Read and validate a hub configuration file."""
    return load(HubConfig, path, "hub config", HubConfigError)


def parse_hub_config(raw: Any, where: str = "hub config") -> HubConfig:
    """Validate an already-parsed hub configuration; ``where`` names it in error messages."""
    return validate(HubConfig, raw, where, HubConfigError)
