"""What a console message looks like on NATS between hub workers, with no I/O: subjects, headers, snapshot replies.

With JetStream workers (``ingest.jetstream_worker``) each ward is served by the
one worker that holds its lease, but a clinician's console may be connected to
any of them. The worker that owns a ward publishes the ward's console messages
(the same JSON text a local console is sent) on core NATS, and every worker
relays what its consoles may see (``ingest.console_relay``). Subjects, under a
prefix that must not overlap the frames stream's:

* ``<prefix>.live.<ward>``: a ward's bed updates and alarm events, published by
  its owner; ``Teleicu-Worker`` names the publisher (a worker does not relay its
  own messages back to itself), and an alarm event carries ``Teleicu-Alert``
  and ``Teleicu-Event`` so a gateway knows which ward an alarm id belongs to
  without parsing the body;
* ``<prefix>.hub.<worker>``: a worker's own technical alarms (no ward);
* ``<prefix>.snapshot.<ward>`` (request/reply): the ward's beds and open alarms
  now, answered by the owner only (nobody answers for a ward nobody owns);
* ``<prefix>.delivered.<ward>``: alarm ids a console confirmed it shows, for the
  owner's undelivered-alarm check;
* ``<prefix>.act.<ward>`` (request/reply): a clinician acknowledges or silences
  one of the ward's alarms on a console of another worker; the owner acts and
  answers with the alarm, or with the status and reason it refused;
* ``<prefix>.settings.<ward>``: a clinician changed a setting of one of the
  ward's beds (SpO2 scale, alarm limits) on another worker, which stored it in
  the shared state store first; the owner reads the ward's settings again (the
  body is empty: the store, not the message, is the record);
* ``<prefix>.moved.<ward>``: a patient was admitted to, transferred from or to,
  or discharged from one of the ward's beds by another worker, which wrote it to
  the shared state store; the owner reads the census again and, for the bed she
  left, moves her charted values and settings (body ``{"from_bed", "to_bed",
  "to_ward"}``, each may be null).
* ``<prefix>.charted.<ward>``: a nurse on another worker charted a value for a
  patient of the ward; that worker stored it (sample, charted row, outbox, audit)
  and the owner puts it in its live state, where NEWS2 counts it (body
  ``{"bed", "param", "value", "t", "by"}``).
* ``<prefix>.wavewant.<ward>``: a worker with a bed page open on one of the
  ward's beds asks its owner for the bed's live waveforms (body: the bed's name),
  again every few seconds while the page is open;
* ``<prefix>.wave.<ward>``: the owner's chunks of the beds wanted, each the
  message ``/ws/waves`` sends (``ingest.wave_feed``), ``Teleicu-Bed`` naming its bed.

Replies and confirmations are parsed here, with a size limit; anything else is
``RelayContractError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ingest.wave_feed import decode_chunk
from wire.jetstream_contract import check_prefix, token

DEFAULT_CONSOLE_PREFIX = "teleicu.console"
WORKER, ALERT, EVENT, BED = "Teleicu-Worker", "Teleicu-Alert", "Teleicu-Event", "Teleicu-Bed"
MAX_SNAPSHOT_BYTES = 32 * 1024 * 1024  # a ward of 200 beds is well under 1 MiB
MAX_DELIVERED_BYTES = 1024 * 1024
MAX_DELIVERED_IDS = 10_000
MAX_ACT_BYTES = 64 * 1024
MAX_MOVED_BYTES = 4 * 1024
MAX_BED_CHARS = 200
Kind = Literal["live", "hub", "snapshot", "delivered", "act", "settings", "moved", "charted", "wave", "wavewant"]


class RelayContractError(ValueError):
    """A relayed message that breaks this contract: a subject outside it, a reply too large or not its shape."""


def subject(prefix: str, kind: Kind, name: str) -> str:
    """``<prefix>.<kind>.<ward or worker>``; ``JetStreamContractError`` (a ValueError) for a name that is no token."""
    return f"{check_prefix(prefix)}.{kind}.{token(name, 'worker' if kind == 'hub' else 'ward')}"


def wildcard(prefix: str, kind: Kind) -> str:
    """Every ward's (or worker's) subject of one kind."""
    return f"{check_prefix(prefix)}.{kind}.*"


def name_of(prefix: str, kind: Kind, subj: str) -> str:
    """The ward (or worker) a subject of ``kind`` is about."""
    head = f"{prefix}.{kind}."
    rest = subj[len(head) :] if subj.startswith(head) else ""
    if not rest or "." in rest:
        raise RelayContractError(f"subject {subj!r} is not {head}<name>")
    return token(rest, "worker" if kind == "hub" else "ward")


def live_headers(worker: str, msg: dict[str, Any]) -> dict[str, str]:
    """The headers of a live message: its publisher, and for an alarm event its id and event."""
    headers = {WORKER: worker}
    if msg.get("type") == "alert":
        headers[ALERT] = str(msg["alert"]["id"])
        headers[EVENT] = str(msg["event"])
    return headers


@dataclass(frozen=True, slots=True)
class WardSnapshot:
    """One ward's beds and open alarms as its owner sees them now (the console's snapshot shapes)."""

    beds: list[dict[str, Any]]
    alerts: list[dict[str, Any]]

    def encode(self) -> bytes:
        return orjson.dumps({"beds": self.beds, "alerts": self.alerts}, option=orjson.OPT_SERIALIZE_NUMPY)


def _json(data: bytes, limit: int, what: str) -> Any:
    """``data`` as JSON, at most ``limit`` bytes; ``RelayContractError`` naming ``what`` otherwise."""
    if len(data) > limit:
        raise RelayContractError(f"{what}: {len(data)} bytes, over the {limit} limit")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RelayContractError(f"{what}: not JSON ({exc})") from None


def parse_snapshot(data: bytes, ward: str) -> WardSnapshot:
    """A snapshot reply: ``{"beds": [...], "alerts": [...]}`` whose beds and alarms are all of ``ward``."""
    body = _json(data, MAX_SNAPSHOT_BYTES, f"snapshot of ward {ward}")
    if not isinstance(body, dict) or not isinstance(body.get("beds"), list) or not isinstance(body.get("alerts"), list):
        raise RelayContractError(f"snapshot of ward {ward}: expected an object with lists beds and alerts")
    for item in (*body["beds"], *body["alerts"]):
        if not isinstance(item, dict) or item.get("ward") != ward:
            raise RelayContractError(f"snapshot of ward {ward}: an entry of another ward or of no shape")
    return WardSnapshot(body["beds"], body["alerts"])


def encode_delivered(ids: list[str]) -> bytes:
    return orjson.dumps(ids[:MAX_DELIVERED_IDS])


def parse_delivered(data: bytes) -> list[str]:
    """A confirmation: a JSON list of alarm ids (strings)."""
    ids = _json(data, MAX_DELIVERED_BYTES, "delivered confirmation")
    if not isinstance(ids, list) or len(ids) > MAX_DELIVERED_IDS or not all(isinstance(i, str) for i in ids):
        raise RelayContractError(f"delivered confirmation: expected a list of at most {MAX_DELIVERED_IDS} alarm ids")
    return ids


@dataclass(frozen=True, slots=True)
class AlarmAction:
    """Acknowledge or silence one alarm, in the name of the signed-in clinician (checked by the asking worker)."""

    op: Literal["ack", "silence"]
    alert_id: str
    by: str
    reason: str = ""
    seconds: float = 0.0

    def encode(self) -> bytes:
        return orjson.dumps({"op": self.op, "id": self.alert_id, "by": self.by, "reason": self.reason, "seconds": self.seconds})


def parse_action(data: bytes) -> AlarmAction:
    body = _json(data, MAX_ACT_BYTES, "alarm action")
    if not isinstance(body, dict) or body.get("op") not in ("ack", "silence"):
        raise RelayContractError("alarm action: expected an object with op ack or silence")
    fields = (body.get("id"), body.get("by"), body.get("reason"))
    seconds = body.get("seconds")
    if not all(isinstance(f, str) for f in fields) or isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise RelayContractError("alarm action: id, by and reason are text, seconds a number")
    return AlarmAction(body["op"], body["id"], body["by"], body["reason"], float(seconds))


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The owner's answer: the alarm as it is now, or the HTTP status and reason it refused with."""

    alert: dict[str, Any] | None = None
    status: int = 200
    detail: str = ""

    def encode(self) -> bytes:
        return orjson.dumps({"alert": self.alert, "status": self.status, "detail": self.detail})


def parse_result(data: bytes) -> ActionResult:
    body = _json(data, MAX_ACT_BYTES, "alarm action result")
    if not isinstance(body, dict) or not isinstance(body.get("status"), int) or not isinstance(body.get("detail"), str):
        raise RelayContractError("alarm action result: expected an object with status and detail")
    alert = body.get("alert")
    if body["status"] == 200 and not isinstance(alert, dict):
        raise RelayContractError("alarm action result: an action done carries the alarm")
    return ActionResult(alert if isinstance(alert, dict) else None, body["status"], body["detail"])


def encode_moved(from_bed: str | None, to_bed: str | None, to_ward: str | None) -> bytes:
    return orjson.dumps({"from_bed": from_bed, "to_bed": to_bed, "to_ward": to_ward})


def parse_moved(data: bytes) -> tuple[str | None, str | None, str | None]:
    """A patient's move: (the bed she left, the bed she went to, its ward), each None or text; at least one a bed."""
    body = _json(data, MAX_MOVED_BYTES, "patient moved")
    names = (body.get("from_bed"), body.get("to_bed"), body.get("to_ward")) if isinstance(body, dict) else (None, None, None)
    if not any(names[:2]) or not all(n is None or (isinstance(n, str) and 0 < len(n) <= MAX_BED_CHARS) for n in names):
        raise RelayContractError(f"patient moved: expected from_bed, to_bed and to_ward, each null or of at most {MAX_BED_CHARS} characters")
    return names[0], names[1], names[2]


@dataclass(frozen=True, slots=True)
class ChartedValue:
    """A value a nurse charted through another worker (already stored there), for the ward owner's live state."""

    bed: str
    param: str
    value: float
    t: int
    by: str

    def encode(self) -> bytes:
        return orjson.dumps({"bed": self.bed, "param": self.param, "value": self.value, "t": self.t, "by": self.by})


def parse_charted(data: bytes) -> ChartedValue:
    body = _json(data, MAX_MOVED_BYTES, "charted value")
    if not isinstance(body, dict):
        raise RelayContractError("charted value: expected an object")
    texts, value, t = (body.get("bed"), body.get("param"), body.get("by")), body.get("value"), body.get("t")
    if not all(isinstance(x, str) and 0 < len(x) <= MAX_BED_CHARS for x in texts) or isinstance(value, bool) or \
            not isinstance(value, int | float) or isinstance(t, bool) or not isinstance(t, int):  # fmt: skip
        raise RelayContractError("charted value: bed, param and by are text, value a number, t whole milliseconds")
    return ChartedValue(body["bed"], body["param"], float(value), t, body["by"])


def parse_want(data: bytes) -> str:
    """A waveform want: the bed's name (UTF-8, at most ``MAX_BED_CHARS``)."""
    try:
        bed = data.decode() if len(data) <= 4 * MAX_BED_CHARS else ""
    except UnicodeDecodeError:
        bed = ""
    if not bed or len(bed) > MAX_BED_CHARS:
        raise RelayContractError(f"waveform want: expected a bed's name of at most {MAX_BED_CHARS} characters")
    return bed


def check_chunk(data: bytes, bed: str | None) -> str:
    """A relayed waveform chunk: ``bed`` (its header) named and ``data`` a whole ``ingest.wave_feed`` message; returns
    the bed."""
    if not bed or len(bed) > MAX_BED_CHARS:
        raise RelayContractError("waveform chunk: no bed named")
    try:
        decode_chunk(data)  # size-limited
    except (ValueError, UnicodeDecodeError) as exc:
        raise RelayContractError(f"waveform chunk of bed {bed}: {exc}") from None
    return bed
