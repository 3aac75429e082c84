"""The frames stream's settings: validation, and what nats-py is asked to create (no server needed)."""

from __future__ import annotations

import pytest
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType

from wire.config import ConfigError, validate
from wire.jetstream_stream import StreamSettings, stream_config, stream_differences
from wire.nats_connection import NatsCredentials, NatsSettings, connect_options


def test_defaults_make_a_durable_r1_stream_capturing_every_ward() -> None:
    cfg = stream_config(StreamSettings())
    assert cfg.name == "TELEICU_FRAMES" and cfg.subjects == ["teleicu.frames.>"]
    assert cfg.storage is StorageType.FILE and cfg.discard is DiscardPolicy.NEW and cfg.retention is RetentionPolicy.LIMITS
    assert cfg.num_replicas == 1 and cfg.max_bytes == -1 and cfg.duplicate_window == 120.0
    wire_form = cfg.as_dict()  # what goes to the server: durations in nanoseconds
    assert wire_form["max_age"] == 86_400 * 10**9 and wire_form["duplicate_window"] == 120 * 10**9


def test_settings_reach_the_stream_config() -> None:
    s = validate(StreamSettings, {"name": "F_1", "replicas": 3, "max_age_s": 600, "duplicate_window_s": 30,
                                  "max_bytes": 10_000_000, "retention": "workqueue"}, "t")  # fmt: skip
    cfg = stream_config(s, "site.frames")
    assert (cfg.name, cfg.num_replicas, cfg.max_age, cfg.duplicate_window, cfg.max_bytes) == ("F_1", 3, 600, 30, 10_000_000)
    assert cfg.subjects == ["site.frames.>"] and cfg.retention is RetentionPolicy.WORK_QUEUE


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "TELEICU.FRAMES"}, "stream name 'TELEICU.FRAMES' cannot be a NATS subject token"),
        ({"replicas": 7}, "replicas: must be at most 5"),
        ({"replicas": 0}, "replicas: must be at least 1"),
        ({"storage": "memory"}, "storage: must be 'file'"),
        ({"max_age_s": 60, "duplicate_window_s": 120}, "duplicate_window_s: must not exceed max_age_s (60), not 120"),
        ({"max_bytes": 0}, "max_bytes: must be at least 1"),
        ({"retention": "forever"}, "retention: must be 'limits', 'interest' or 'workqueue'"),
        ({"replica": 3}, "unknown keys ['replica']"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(StreamSettings, raw, "hub.yaml")
    assert message in str(info.value), str(info.value)


def test_differences_name_each_changed_key() -> None:
    have = stream_config(StreamSettings())
    want = stream_config(StreamSettings(replicas=3, max_age_s=3600.0))
    assert stream_differences(have, want) == ["max_age_s: 86400.0 -> 3600.0", "replicas: 1 -> 3"]
    assert stream_differences(have, stream_config(StreamSettings())) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"servers": []}, "servers: must be a non-empty list"),
        ({"servers": ["http://n1:4222"], "token_file": "t"}, "must be a nats://host:port or tls://host:port URL"),
        ({"servers": ["nats://edge:pw@n1:4222"], "token_file": "t"}, "must not carry credentials (nats://...@n1:4222)"),
        ({"servers": ["nats://n1:4222"]}, "credentials are required: missing user with password_file, or token_file"),
        ({"servers": ["nats://n1:4222"], "user": "edge-A"}, "credentials are required: missing password_file"),
        ({"servers": ["nats://n1:4222"], "user": "a", "password_file": "p", "token_file": "t"}, "not both"),
    ],
)
def test_connection_settings_require_credentials_and_nats_urls(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(NatsSettings, raw, "edge-A.yaml")
    assert message in str(info.value), str(info.value)
    assert "pw" not in str(info.value)


def test_connect_options_carry_the_credentials_and_bounded_reconnects() -> None:
    from pydantic import SecretStr

    s = NatsSettings(servers=["nats://n1:4222", "nats://n2:4222"], user="edge-A", password_file="p")
    opts = connect_options(s, NatsCredentials(user="edge-A", password=SecretStr("x" * 24)), name="edge-A")
    assert opts["user"] == "edge-A" and opts["password"] == "x" * 24 and "token" not in opts and "tls" not in opts
    assert opts["servers"] == ["nats://n1:4222", "nats://n2:4222"] and opts["max_reconnect_attempts"] > 0
    assert "x" * 24 not in repr(NatsCredentials(user="edge-A", password=SecretStr("x" * 24)))
    with pytest.raises(ValueError):
        NatsCredentials(user="edge-A")
