"""The hub file's ``jetstream:`` section: this hub is a worker that owns wards and consumes their frames from NATS.

Off unless the section is given (``jetstream: null``, the default: edge frames
come in over the WebSocket only). Example::

    jetstream:
      servers: ["nats://nats-1.icu.example:4222", "nats://nats-2.icu.example:4222"]
      user: hub                                 # with password_file, or token_file alone
      password_file: /etc/teleicu/nats-hub.secret
      ca_file: /etc/teleicu/nats-ca.pem         # for tls:// servers signed by the hospital's CA
      subject_prefix: teleicu.frames            # frames are <prefix>.<ward>.<agent> (wire/jetstream_contract.py)
      console_prefix: teleicu.console           # consoles' messages between workers (ingest/console_relay_contract.py)
      status_prefix: teleicu.status             # agents' device and spool reports, core NATS (as the edge's)
      stream: {name: TELEICU_FRAMES, replicas: 3, max_age_s: 86400}   # wire/jetstream_stream.py: every key
      wards: all                                # or [ICU1, ICU2]: the wards this worker may own
      worker_id: hub-a                          # default <hostname>-<pid>
      lease_bucket: teleicu_ward_leases         # the JetStream KV bucket holding who owns each ward
      lease_ttl_s: 10                           # a dead worker's wards are free this long after its last renewal
      ack_wait_s: 30                            # a frame not acknowledged this long is delivered again
      max_ack_pending: 1000                     # per ward: frames delivered and not yet acknowledged
      fetch_batch: 100                          # frames asked for in one pull
      balance: false                            # true: wards spread over the live workers (rendezvous hashing)

``wards: all`` means every ward that has a registered agent (``teleicu agents
add``), read from the state store as agents are added. The servers and the
credentials are the same settings as the edge agent's
(``wire.nats_connection.NatsSettings``: required, a hub never connects to NATS
anonymously); the secret files are read when the hub starts (``credentials``),
so a missing one stops ``teleicu hub`` with one line naming the key. The
stream is provisioned by the workers from ``stream`` (``ensure_stream``, the
same settings an edge agent may create it with).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from ingest.console_relay_contract import DEFAULT_CONSOLE_PREFIX
from wire.config import ConfigError
from wire.jetstream_contract import DEFAULT_PREFIX, DEFAULT_STATUS_PREFIX, check_prefix, overlaps, token
from wire.jetstream_stream import StreamSettings
from wire.nats_connection import NatsCredentials, NatsSettings, read_credentials

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _name(what: str):  # type: ignore[no-untyped-def]
    def check(name: str) -> str:
        if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
            raise ValueError(f"{what} {name!r}: use 1-64 of A-Z a-z 0-9 - _")
        return name

    return check


def _prefix(prefix: str) -> str:
    check_prefix(prefix)  # JetStreamContractError is a ValueError: named under the key
    return prefix


def _wards(wards: list[str] | Literal["all"]) -> list[str] | Literal["all"]:
    if wards == "all":
        return wards
    if not wards:
        raise ValueError("give the wards this worker may own, or all")
    for w in wards:
        token(w, "ward")
    if len(set(wards)) != len(wards):
        raise ValueError(f"a ward is listed twice: {wards}")
    return wards


class JetStreamSettings(NatsSettings):
    """The hub's ``jetstream:`` section: the connection (``NatsSettings``), the stream, and this worker's wards."""

    subject_prefix: Annotated[str, AfterValidator(_prefix)] = DEFAULT_PREFIX
    console_prefix: Annotated[str, AfterValidator(_prefix)] = DEFAULT_CONSOLE_PREFIX
    status_prefix: Annotated[str, AfterValidator(_prefix)] = DEFAULT_STATUS_PREFIX
    stream: StreamSettings = StreamSettings()
    wards: Annotated[list[str] | Literal["all"], AfterValidator(_wards)] = "all"
    worker_id: Annotated[str, AfterValidator(_name("worker_id"))] | None = None
    lease_bucket: Annotated[str, AfterValidator(_name("lease_bucket"))] = "teleicu_ward_leases"
    lease_ttl_s: Annotated[float, Field(ge=3, le=300)] = 10
    ack_wait_s: Annotated[float, Field(ge=1, le=3600)] = 30
    max_ack_pending: Annotated[int, Field(ge=1, le=100_000)] = 1000
    fetch_batch: Annotated[int, Field(ge=1, le=10_000)] = 100
    balance: bool = False  # spread wards over the live workers (ingest.ward_leases); off: the first worker up takes all it may

    @field_validator("stream", mode="before")
    @classmethod
    def _stream_may_be_empty(cls, raw: Any) -> Any:
        return {} if raw is None else raw

    @model_validator(mode="after")
    def _checks(self) -> JetStreamSettings:
        if self.fetch_batch > self.max_ack_pending:
            raise ValueError(f"fetch_batch {self.fetch_batch} must not exceed max_ack_pending {self.max_ack_pending}")
        for key, prefix in (("console_prefix", self.console_prefix), ("status_prefix", self.status_prefix)):
            if overlaps(prefix, self.subject_prefix):
                raise ValueError(f"{key} {prefix} and subject_prefix {self.subject_prefix} overlap: "
                                 "the frames stream would capture those messages")  # fmt: skip
        if overlaps(self.console_prefix, self.status_prefix):
            raise ValueError(f"console_prefix {self.console_prefix} and status_prefix {self.status_prefix} overlap")
        return self

    def credentials(self, source: Path = Path("hub config")) -> NatsCredentials:
        """Read the secret file the section names (relative paths from ``source``'s directory); ``ConfigError``
        naming the key when it cannot be used."""
        return read_credentials(source, "jetstream", self)


__all__ = ["ConfigError", "JetStreamSettings", "NatsCredentials"]
