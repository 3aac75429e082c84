"""The JetStream stream that holds edge frames, as configured: its settings, nats-py's ``StreamConfig``, ``ensure_stream``.

The edge agent (``edge_agent.jetstream_uplink``) and the hub workers
(``ingest.jetstream_worker``) read the same ``StreamSettings`` from their
configuration and call ``ensure_stream``: it creates the stream when it is
missing and, with ``update=True`` (the hub's workers, which own it), brings an
existing stream to the configured settings. The edge passes ``update=False``:
many agents, possibly on different versions of their configuration, must not
fight over the stream's settings, so an agent only creates a missing stream
and warns about one that differs.

Choices made here rather than in configuration:

* storage is always ``file``: the edge deletes a frame from its spool on the
  stream's publish acknowledgement, so that acknowledgement must mean "on disk"
  (a memory stream would make it a promise a restart breaks);
* discard policy ``new``: a full stream (``max_bytes``) refuses new frames
  rather than deleting old ones nobody has consumed yet, so the edge keeps them
  in its spool and retries; ``max_age`` still expires frames older than it;
* the subjects are the contract's (``wire.jetstream_contract.stream_subjects``).
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Literal

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, BadRequestError, NotFoundError
from pydantic import AfterValidator, Field, model_validator

from wire.config import ConfigModel, Expect, Problem
from wire.jetstream_contract import DEFAULT_PREFIX, stream_subjects, token

log = logging.getLogger(__name__)

DEFAULT_STREAM = "TELEICU_FRAMES"
MAX_REPLICAS = 5  # NATS's own limit


class StreamSettingsError(RuntimeError):
    """The stream exists with settings it cannot be brought to (NATS refused the update)."""


def _stream_name(name: str) -> str:
    try:
        return token(name, "stream name")
    except ValueError as exc:
        raise ValueError(str(exc)) from None


class StreamSettings(ConfigModel):
    """A ``stream:`` section: the frames stream's name and limits (every key has a default)."""

    name: Annotated[str, AfterValidator(_stream_name), Expect("a stream name of A-Z a-z 0-9 - _")] = DEFAULT_STREAM
    replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS)] = 1  # 1 on one machine, 3 in production
    max_age_s: Annotated[float, Field(gt=0)] = 24 * 3600.0  # frames older than this are expired, consumed or not
    duplicate_window_s: Annotated[float, Field(gt=0)] = 120.0  # a re-sent Nats-Msg-Id within this is acknowledged, not stored
    max_bytes: Annotated[int, Field(ge=1)] | None = None  # None: no limit but max_age; when full, publishes are refused
    storage: Literal["file"] = "file"  # the only choice: see the module docstring
    retention: Literal["limits", "interest", "workqueue"] = "limits"

    @model_validator(mode="after")
    def _window_within_age(self) -> StreamSettings:
        if self.duplicate_window_s > self.max_age_s:
            raise Problem(f"must not exceed max_age_s ({self.max_age_s:g}), not {self.duplicate_window_s:g}", "duplicate_window_s")
        return self


_RETENTION = {"limits": RetentionPolicy.LIMITS, "interest": RetentionPolicy.INTEREST, "workqueue": RetentionPolicy.WORK_QUEUE}


def stream_config(settings: StreamSettings, prefix: str = DEFAULT_PREFIX) -> StreamConfig:
    """nats-py's ``StreamConfig`` for ``settings``, capturing the frames of every ward and agent under ``prefix``."""
    return StreamConfig(
        name=settings.name,
        subjects=stream_subjects(prefix),
        retention=_RETENTION[settings.retention],
        max_age=settings.max_age_s,
        duplicate_window=settings.duplicate_window_s,
        max_bytes=settings.max_bytes if settings.max_bytes is not None else -1,
        discard=DiscardPolicy.NEW,
        storage=StorageType.FILE,
        num_replicas=settings.replicas,
    )


def _seconds(value: float | None) -> float:
    return round(value or 0.0, 3)


def stream_differences(have: StreamConfig, want: StreamConfig) -> list[str]:
    """What differs between a stream's settings as NATS reports them and those wanted, one ``key: have -> want`` each."""
    pairs: list[tuple[str, object, object]] = [
        ("subjects", sorted(have.subjects or []), sorted(want.subjects or [])),
        ("retention", have.retention, want.retention),
        ("max_age_s", _seconds(have.max_age), _seconds(want.max_age)),
        ("duplicate_window_s", _seconds(have.duplicate_window), _seconds(want.duplicate_window)),
        ("max_bytes", have.max_bytes if have.max_bytes is not None else -1, want.max_bytes if want.max_bytes is not None else -1),
        ("discard", have.discard, want.discard),
        ("storage", have.storage, want.storage),
        ("replicas", have.num_replicas or 1, want.num_replicas or 1),
    ]
    out = []
    for key, a, b in pairs:
        same = math.isclose(a, b, abs_tol=1e-3) if isinstance(a, float) and isinstance(b, float) else a == b
        if not same:
            out.append(f"{key}: {_show(a)} -> {_show(b)}")
    return out


def _show(value: object) -> str:
    return str(value.value) if hasattr(value, "value") else str(value)


async def ensure_stream(js: JetStreamContext, settings: StreamSettings, prefix: str = DEFAULT_PREFIX, *,
                        update: bool = True) -> StreamInfo:  # fmt: skip
    """The frames stream, created if missing; with ``update`` an existing one is brought to ``settings``, without
    it an existing one that differs is left as it is, with a warning. ``StreamSettingsError`` if NATS refuses the
    settings (a storage change, more replicas than servers); other NATS errors (unreachable, no JetStream,
    permissions) propagate as nats-py raises them."""
    want = stream_config(settings, prefix)
    try:
        info = await js.stream_info(settings.name)
    except NotFoundError:
        try:
            info = await js.add_stream(want)
            log.info("created JetStream stream %s (%s, R%d)", settings.name, ", ".join(want.subjects or []), settings.replicas)
            return info
        except BadRequestError:  # created meanwhile by another agent or worker, maybe with other settings
            info = await js.stream_info(settings.name)
        except APIError as exc:
            raise StreamSettingsError(f"stream {settings.name}: NATS refused to create it: {exc.description}") from exc
    differences = stream_differences(info.config, want)
    if not differences:
        return info
    if not update:
        log.warning("JetStream stream %s differs from this configuration (%s); left as it is", settings.name, "; ".join(differences))
        return info
    try:
        info = await js.update_stream(want)
    except APIError as exc:
        raise StreamSettingsError(f"stream {settings.name}: NATS refused to change {'; '.join(differences)}: {exc.description}") from exc
    log.info("updated JetStream stream %s: %s", settings.name, "; ".join(differences))
    return info
