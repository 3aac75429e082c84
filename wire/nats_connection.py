"""How a teleicu process reaches NATS: the servers, its credentials, and nats-py's connect options.

Shared by the edge agent's JetStream uplink and the hub workers. Credentials
are required: a user with a ``password_file``, or a ``token_file`` (each file
holds one machine-made secret, read by ``wire.config.read_secret`` and kept
as a ``SecretStr``). Credentials written into a server URL are refused, so a
secret never sits in a configuration file or a log line.

Reconnection is split in two: nats-py moves between the cluster's servers
itself (``RECONNECT_ATTEMPTS`` tries per server, ``RECONNECT_WAIT_S`` apart),
which covers the loss of one node; when every server has failed the client
closes, and the caller retries with its own exponential backoff
(``wire.backoff``), so an outage of the whole cluster is not met by every
client in step.

``connect_budget_s`` is how long that can take at most. Callers bound
``nats.connect`` with it, and give up on a client that has been reconnecting
for longer: nats-py can hang for ever after a failed TLS handshake (its
``_close`` waits on a stream whose transport the handshake took over,
nats-io/nats.py#718), and a bound is cheaper than trusting every failure path.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, model_validator

from wire.config import ConfigError, ConfigModel, Expect, Problem, read_secret

RECONNECT_ATTEMPTS = 3
RECONNECT_WAIT_S = 0.5
CONNECT_TIMEOUT_S = 2.0
SCHEMES = ("nats", "tls")


def _server_url(url: str) -> str:
    """The URL as given, or ``ValueError``; an error never repeats what stands before an ``@`` (it may be a secret)."""
    shown = url if "@" not in url else url.split("://", 1)[0] + "://...@" + url.rsplit("@", 1)[1]
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"must be a nats:// or tls:// URL, not {shown!r} ({'bad port' if '@' in url else exc})") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"must not carry credentials ({shown}): use user and password_file, or token_file")
    if parts.scheme not in SCHEMES or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"must be a nats://host:port or tls://host:port URL, not {shown!r}")
    return url


ServerUrl = Annotated[str, AfterValidator(_server_url), Expect("a nats:// or tls:// URL")]


class NatsSettings(ConfigModel):
    """A NATS connection as configured: servers and where the credentials are (paths relative to the config file)."""

    servers: Annotated[list[ServerUrl], Field(min_length=1, max_length=16)]
    user: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^\S+$")] | None = None
    password_file: Annotated[str, Field(min_length=1)] | None = None
    token_file: Annotated[str, Field(min_length=1)] | None = None
    ca_file: str | None = None  # for tls:// servers signed by the hospital's own CA (default: the system's CAs)

    @model_validator(mode="after")
    def _credentials(self) -> NatsSettings:
        if self.token_file is not None:
            if self.user is not None or self.password_file is not None:
                raise Problem("give either user with password_file, or token_file, not both", "token_file")
        elif self.user is None or self.password_file is None:
            missing = "password_file" if self.user is not None else "user" if self.password_file is not None else "user with password_file, or token_file"
            raise Problem(f"credentials are required: missing {missing}")
        return self

    @property
    def tls(self) -> bool:
        return any(url.startswith("tls://") for url in self.servers)


@dataclass(frozen=True, slots=True)
class NatsCredentials:
    """What the process presents to NATS, read from the files ``NatsSettings`` names."""

    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None

    def __post_init__(self) -> None:
        if (self.token is None) == (self.user is None or self.password is None):
            raise ValueError("NATS credentials are a user with a password, or a token")


def read_credentials(config: Path, section: str, settings: NatsSettings, error: type[ConfigError] = ConfigError) -> NatsCredentials:
    """The credentials ``settings`` name, read from files relative to the configuration file ``config``;
    ``error`` naming ``section``'s key when a file cannot be read or holds no secret."""
    if settings.token_file is not None:
        return NatsCredentials(token=read_secret(config, f"{section}.token_file", config.parent / settings.token_file, error))
    assert settings.password_file is not None  # the model's validator
    password = read_secret(config, f"{section}.password_file", config.parent / settings.password_file, error)
    return NatsCredentials(user=settings.user, password=password)


ErrorCallback = Callable[[Exception], Awaitable[None]]


def connect_budget_s(settings: NatsSettings) -> float:
    """The longest nats-py should take to connect, or to reconnect, to one of ``settings.servers`` before giving up."""
    return len(settings.servers) * RECONNECT_ATTEMPTS * (CONNECT_TIMEOUT_S + RECONNECT_WAIT_S) + 2.0


def connect_options(settings: NatsSettings, credentials: NatsCredentials, *, name: str, ca_file: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect``: servers, credentials, TLS, and the reconnection policy above
    (callbacks are the caller's to add). ``ca_file`` overrides ``settings.ca_file`` (resolved against the config file)."""
    options: dict[str, Any] = {
        "servers": list(settings.servers),
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": RECONNECT_ATTEMPTS,
        "reconnect_time_wait": RECONNECT_WAIT_S,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "dont_randomize": False,
    }
    if credentials.token is not None:
        options["token"] = credentials.token.get_secret_value()
    else:
        assert credentials.password is not None
        options["user"] = credentials.user
        options["password"] = credentials.password.get_secret_value()
    if settings.tls:
        options["tls"] = ssl.create_default_context(cafile=ca_file or settings.ca_file)
    return options
