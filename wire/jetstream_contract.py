"""What an edge frame looks like on NATS JetStream: its subject, message id and headers, with no I/O.

The edge agent and the hub workers both use this module, so the two sides
cannot drift apart (see docs/jetstream.md):

* one subject per ward and agent, ``<prefix>.<ward>.<agent>``; a hub worker
  that owns a ward consumes ``<prefix>.<ward>.>``;
* the payload is exactly what ``wire.codec.encode_edge`` makes of an
  ``ObsFrame`` or ``WaveChunk``, the same bytes as on the WebSocket uplink;
* ``Nats-Msg-Id`` is ``agent:epoch:seq``, the key the hub already
  deduplicates on, so the stream drops a re-sent frame within its duplicate
  window and the hub's watermark drops it after that;
* ``Teleicu-Agent``, ``-Epoch``, ``-Seq`` and ``-Floor`` carry the same
  values as fields, and ``frame_headers``/``parse_frame_headers`` are the only
  place they are written and read. ``Teleicu-Floor`` is the agent's floor
  when it sent the frame (every frame up to it acknowledged or dropped).

An agent's device and spool report (``Status``, unsequenced and informational)
goes on core NATS, not the stream: ``<status prefix>.<ward>.<agent>`` with the
``Teleicu-Agent`` and ``-Epoch`` headers, published on change and every
``status_s``; the worker owning the ward hears it (a report lost is replaced by
the next). The status prefix must not overlap the frames' (``overlaps``).

Ward and agent ids become subject tokens, so they are limited to letters,
digits, ``-`` and ``_`` (NATS reserves ``.``, ``*``, ``>`` and whitespace);
anything else is refused with ``JetStreamContractError`` rather than escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_PREFIX = "teleicu.frames"
DEFAULT_STATUS_PREFIX = "teleicu.status"
MSG_ID = "Nats-Msg-Id"
AGENT, EPOCH, SEQ, FLOOR = "Teleicu-Agent", "Teleicu-Epoch", "Teleicu-Seq", "Teleicu-Floor"
MAX_TOKEN = 64
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,%d}" % MAX_TOKEN)
_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
MAX_INT = 2**63 - 1


class JetStreamContractError(ValueError):
    """An id that cannot be a subject token, or a message whose subject and headers do not agree."""


@dataclass(frozen=True, slots=True)
class FrameKey:
    """Who sent a frame on the stream and where it sits in that agent's sequence."""

    ward: str
    agent: str
    epoch: int
    seq: int
    floor: int

    @property
    def msg_id(self) -> str:
        return msg_id(self.agent, self.epoch, self.seq)


def token(name: str, what: str) -> str:
    """``name`` as a subject token; ``JetStreamContractError`` if it cannot be one."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise JetStreamContractError(f"{what} {name!r} cannot be a NATS subject token: use 1-{MAX_TOKEN} of A-Z a-z 0-9 - _")
    return name


def check_prefix(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix):
        raise JetStreamContractError(f"subject prefix {prefix!r}: dot-separated tokens of A-Z a-z 0-9 - _")
    return prefix


def frame_subject(ward: str, agent: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The subject an agent publishes its frames on."""
    return f"{check_prefix(prefix)}.{token(ward, 'ward')}.{token(agent, 'agent')}"


def ward_filter(ward: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The subject filter of the consumer that reads one ward's frames."""
    return f"{check_prefix(prefix)}.{token(ward, 'ward')}.>"


def stream_subjects(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The subjects the frames stream captures."""
    return [f"{check_prefix(prefix)}.>"]


def overlaps(a: str, b: str) -> bool:
    """Whether one subject prefix lies within the other (a stream on one would capture the other's messages)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def status_subject(ward: str, agent: str, prefix: str = DEFAULT_STATUS_PREFIX) -> str:
    """The subject an agent publishes its status reports on."""
    return f"{check_prefix(prefix)}.{token(ward, 'ward')}.{token(agent, 'agent')}"


def status_filter(ward: str, prefix: str = DEFAULT_STATUS_PREFIX) -> str:
    """Every agent's status reports of one ward."""
    return f"{check_prefix(prefix)}.{token(ward, 'ward')}.*"


def status_headers(agent: str, epoch: int) -> dict[str, str]:
    return {AGENT: agent, EPOCH: str(epoch)}


def parse_status_headers(subject: str, headers: Mapping[str, str] | None, prefix: str = DEFAULT_STATUS_PREFIX) -> tuple[str, str, int]:
    """(ward, agent, epoch) of a status report; ``JetStreamContractError`` when subject and headers disagree."""
    ward, agent = _sender(subject, headers, prefix)
    return ward, agent, _int(headers or {}, EPOCH)


def _sender(subject: str, headers: Mapping[str, str] | None, prefix: str) -> tuple[str, str]:
    """The (ward, agent) of ``<prefix>.<ward>.<agent>``, which the ``Teleicu-Agent`` header must name too."""
    head = check_prefix(prefix) + "."
    if not subject.startswith(head):
        raise JetStreamContractError(f"subject {subject!r} is outside {head}>")
    parts = subject[len(head) :].split(".")
    if len(parts) != 2:
        raise JetStreamContractError(f"subject {subject!r}: expected {head}<ward>.<agent>")
    ward, agent = token(parts[0], "ward"), token(parts[1], "agent")
    if (headers or {}).get(AGENT) != agent:
        raise JetStreamContractError(f"header {AGENT} {(headers or {}).get(AGENT)!r} is not the subject's agent {agent!r}")
    return ward, agent


def msg_id(agent: str, epoch: int, seq: int) -> str:
    return f"{agent}:{epoch}:{seq}"


def frame_headers(key: FrameKey) -> dict[str, str]:
    """The headers published with a frame."""
    return {MSG_ID: key.msg_id, AGENT: key.agent, EPOCH: str(key.epoch), SEQ: str(key.seq), FLOOR: str(key.floor)}


def _int(headers: Mapping[str, str], name: str) -> int:
    raw = headers.get(name)
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_INT:
        raise JetStreamContractError(f"header {name}: {raw!r} is not a non-negative integer")
    return int(raw)


def parse_frame_headers(subject: str, headers: Mapping[str, str] | None, prefix: str = DEFAULT_PREFIX) -> FrameKey:
    """The ``FrameKey`` of a message read from the stream; ``JetStreamContractError`` if the subject, the
    headers and the message id do not tell one consistent story (a frame that lies about its sender is refused)."""
    ward, agent = _sender(subject, headers, prefix)
    h = headers or {}
    epoch, seq, floor = _int(h, EPOCH), _int(h, SEQ), _int(h, FLOOR)
    key = FrameKey(ward, agent, epoch, seq, floor)
    if h.get(MSG_ID) != key.msg_id:
        raise JetStreamContractError(f"header {MSG_ID} {h.get(MSG_ID)!r} is not {key.msg_id!r}")
    return key
