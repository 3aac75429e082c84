"""The hub file's ``jetstream:`` section: off by default, credentials required, each problem named under its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.hub_config import HubConfigError, parse_hub_config
from ingest.jetstream_settings import JetStreamSettings
from wire.config import ConfigError

SECRET = "s3cret-made-by-a-machine-0123456789"
HUB_YAML = Path(__file__).resolve().parents[2] / "config" / "hub.yaml"  # this checkout's default hub file


def default_raw(_name: str) -> Any:
    return yaml.safe_load(HUB_YAML.read_text(encoding="utf-8"))


def hub_with(section: Any) -> Any:
    return parse_hub_config(default_raw("hub.yaml") | {"jetstream": section}, "hub.yaml")


def problems(section: Any) -> str:
    with pytest.raises(HubConfigError) as info:
        hub_with(section)
    return str(info.value)


def test_the_packaged_hub_file_has_no_jetstream_worker() -> None:
    assert parse_hub_config(default_raw("hub.yaml")).jetstream is None


def test_a_worker_with_a_token_file_gets_every_default(tmp_path: Path) -> None:
    token = tmp_path / "nats.token"
    token.write_text(SECRET + "\n")
    js = hub_with({"servers": ["nats://127.0.0.1:4222"], "token_file": str(token)}).jetstream
    assert isinstance(js, JetStreamSettings)
    assert (js.subject_prefix, js.stream.name, js.stream.replicas, js.wards, js.lease_ttl_s, js.ack_wait_s) == (
        "teleicu.frames", "TELEICU_FRAMES", 1, "all", 10, 30)
    creds = js.credentials()
    assert creds.token is not None and (creds.token.get_secret_value(), creds.user, creds.password) == (SECRET, None, None)


def test_user_and_password_file_are_read_together(tmp_path: Path) -> None:
    secret = tmp_path / "hub.secret"
    secret.write_text(SECRET)
    js = hub_with({"servers": ["tls://nats.icu.example:4222"], "user": "hub", "password_file": str(secret), "wards": ["ICU1", "ICU-2"]}).jetstream
    assert js is not None and js.wards == ["ICU1", "ICU-2"]
    creds = js.credentials()
    assert creds.password is not None and (creds.user, creds.password.get_secret_value()) == ("hub", SECRET)


def test_no_credentials_or_both_kinds_or_half_a_pair_are_refused() -> None:
    anonymous = problems({"servers": ["nats://127.0.0.1:4222"]})
    assert "hub.yaml: jetstream" in anonymous and "credentials are required" in anonymous
    both = problems({"servers": ["nats://h:4222"], "user": "hub", "password_file": "p", "token_file": "t"})
    assert "not both" in both
    assert "missing password_file" in problems({"servers": ["nats://h:4222"], "user": "hub"})


@pytest.mark.parametrize(("change", "named", "says"), [
    ({"servers": ["http://h:4222"]}, "jetstream.servers", "nats://host:port"),
    ({"servers": ["nats://hub:s3cret@h:4222"]}, "jetstream.servers", "must not carry credentials"),
    ({"servers": []}, "jetstream.servers", ""),
    ({"subject_prefix": "teleicu.*"}, "jetstream.subject_prefix", "dot-separated tokens"),
    ({"wards": ["ICU 1"]}, "jetstream.wards", "cannot be a NATS subject token"),
    ({"wards": ["A", "A"]}, "jetstream.wards", "listed twice"),
    ({"wards": []}, "jetstream.wards", "or all"),
    ({"stream": {"name": "FRAMES.X"}}, "jetstream.stream.name", "stream name"),
    ({"stream": {"replicas": 7}}, "jetstream.stream.replicas", ""),
    ({"lease_ttl_s": 1}, "jetstream.lease_ttl_s", "must be at least 3"),
    ({"fetch_batch": 500, "max_ack_pending": 100}, "jetstream", "must not exceed max_ack_pending"),
    ({"max_ack_pending": 0}, "jetstream.max_ack_pending", ""),
    ({"ack_wait": 30}, "jetstream", "ack_wait"),
    ({"console_prefix": "teleicu.frames.console"}, "jetstream", "overlap"),
    ({"console_prefix": "teleicu", "subject_prefix": "teleicu.frames"}, "jetstream", "overlap"),
    ({"console_prefix": "console.>"}, "jetstream.console_prefix", "dot-separated tokens"),
    ({"status_prefix": "teleicu.frames"}, "jetstream", "overlap"),
    ({"status_prefix": "teleicu.console.status"}, "jetstream", "overlap"),
])  # fmt: skip
def test_each_bad_key_is_named(change: dict, named: str, says: str) -> None:
    text = problems({"servers": ["nats://127.0.0.1:4222"], "token_file": "/x"} | change)
    assert named in text and says in text, text


def test_a_secret_file_that_cannot_be_read_is_named_when_the_worker_starts(tmp_path: Path) -> None:
    js = hub_with({"servers": ["nats://127.0.0.1:4222"], "token_file": str(tmp_path / "missing.token")}).jetstream
    assert js is not None
    with pytest.raises(ConfigError, match="jetstream.token_file: cannot read"):
        js.credentials()


@pytest.mark.parametrize("url", ["nats://bob:s3cret@h:4222", "nats://bob:s3cret@h:xx", "http://bob:s3cret@h:4222", "tls://:s3cret@h"])
def test_a_server_url_with_a_secret_is_refused_without_repeating_the_secret(url: str) -> None:
    text = problems({"servers": [url], "token_file": "/x"})
    assert "jetstream.servers" in text and "s3cret" not in text and "bob" not in text, text
