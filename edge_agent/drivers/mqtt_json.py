"""Driver ``mqtt_json``: teleicu's MQTT topic and JSON payload schema, as a sans-I/O parser.

The MQTT transport (``edge_agent.transports.mqtt``) subscribes to
``MqttJsonParser.topic_filters`` at QoS 1 and hands every message to
``feed_message(topic, payload)``; this module only turns (topic, bytes) into
events. The schema, with copy-paste ``mosquitto_pub`` examples, is documented
for hospitals in ``mqtt_json.md`` beside this file; the summary:

Topics (``<prefix>`` is the device's ``topic_prefix``, default ``teleicu``)
==========================================================================

``<prefix>/<bed>/vitals``
    numerics for one bed. ``<bed>`` is the device's bed id, mapped to ours by
    the ``beds`` of the gateway YAML. Payload, a JSON object::

        {"t": 1732600000000, "device": "mon-7",
         "values": {"hr": 82, "spo2": null},
         "flags": {"spo2": ["probe_off"]}}

    ``values`` (required): vocabulary keys (``wire.vocabulary.PARAMETERS``)
    to a JSON number, or ``null`` for "no value" (reported with the
    ``invalid`` flag unless ``flags`` says why). A key outside the vocabulary
    is kept as sent: an ``UnmappedObservation`` (system ``mqtt_json``, the key
    as its code, the JSON value as text), stored and listed by the hub, never
    scored. ``flags`` (optional): a key
    of ``values`` to a list of flag names: ``probe_off``, ``leads_off``,
    ``artefact``, ``invalid``. ``t`` (optional): device time of every value,
    integer ms since the Unix epoch (UTC); the edge's receive time when
    absent. ``device`` (optional): the sending device's id (1-64 characters);
    the configured device id when absent.

``<prefix>/<bed>/status``
    a device status for one bed: ``{"status": "probe_off", "detail": "spo2",
    "t": ..., "device": ...}``; ``status`` (required) is a lowercase token
    (``[a-z][a-z0-9_]{0,31}``), ``detail`` free text up to 256 characters.

``<prefix>/<device>/presence``
    the device's presence: ``online`` or ``offline`` (the bare word), or
    ``{"state": "offline", "beds": ["bed07"]}``. Devices publish ``online``
    retained when they connect and set ``offline`` retained as their MQTT
    last will. It becomes a ``DeviceStatus`` ``ok`` / ``disconnected`` (detail
    ``presence``, as other drivers name the subject of a condition)
    for each bed named in ``beds`` and each bed the device was seen sending
    for (``device`` of its vitals and status messages); a device that names no
    beds and was never seen has no bed to report to, so nothing is emitted.

An empty payload on any of these topics (how MQTT deletes a retained message)
is ignored: no event, no error.

Error handling
==============

``feed_message`` never raises. A message, or the part of one that cannot be
used, becomes a ``ParseError``; the good values of a message are kept when
another is bad. ``discarded`` is the payload size when the whole message is
thrown away and 0 when only part of it is.

=================  ===========================================================
code               meaning (whole message discarded unless marked *part*)
=================  ===========================================================
``oversized``      payload above ``MAX_PAYLOAD`` (64 KiB) or topic above
                   ``MAX_TOPIC`` characters
``bad_topic``      topic is not ``<prefix>/<id>/vitals|status|presence``
``unknown_bed``    ``<bed>`` of the topic is not in the device's ``beds``
``bad_json``       payload is not UTF-8 JSON text, repeats a key, nests
                   too deep, or (vitals, status) is not a JSON object
``bad_time``       ``t`` is not an integer of ms in ``[0, 10**15)``
``bad_field``      ``values``/``status`` missing or ill-typed, ``device`` or
                   ``detail`` not a string of the allowed length, or (*part*)
                   an unknown top-level member, which is ignored
``bad_value``      (*part*) a value that is not a finite number or ``null``
``bad_flags``      (*part*) ``flags`` entry not a list of known flag names, or
                   for a key not in ``values``; that value is dropped
``bad_presence``   presence payload not ``online``/``offline`` in either form
                   (or a ``beds`` entry not a known bed: *part*)
``more_errors``    (*part*) more than ``MAX_ERRORS_PER_MESSAGE`` problems in
                   one message; the rest are summarised in this one event
``no_topic``       ``feed()`` was called with bytes: MQTT needs the topic
=================  ===========================================================
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from edge_agent.drivers import register
from edge_agent.drivers.base import DriverSpec
from edge_agent.events import DeviceStatus, DriverEvent, ParseError
from wire.codec import MAX_ID_LEN, clip
from wire.messages import Observation, UnmappedObservation
from wire.vocabulary import BY_KEY, FLAG_NAMES, HUB_DERIVED, Flag
from wire.clock import wall_ms

DEFAULT_PREFIX = "teleicu"
KINDS = ("vitals", "status", "presence")
MAX_PAYLOAD = 64 * 1024  # bytes
MAX_TOPIC = 1024  # characters
MAX_ERRORS_PER_MESSAGE = 16
MAX_DETAIL = 256  # characters of a status detail
MAX_DEVICES = 4096  # devices remembered for presence (oldest forgotten first)
MAX_TIME_MS = 10**15  # exclusive; year 33658
UNMAPPED_SYSTEM = "mqtt_json"  # coding system of a ``values`` key outside the vocabulary (an UnmappedObservation)

FLAG_BITS: dict[str, int] = {name: bit for bit, name in FLAG_NAMES.items()}
_STATUS = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PRESENCE = {"online": "ok", "offline": "disconnected"}
_VITALS_MEMBERS = frozenset({"t", "device", "values", "flags"})
_STATUS_MEMBERS = frozenset({"t", "device", "status", "detail"})
_PRESENCE_MEMBERS = frozenset({"state", "beds"})


_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = _REPR.maxother = 64


def _short(v: Any, n: int = 32) -> str:
    """A bounded repr for error details (cheap even for a large or deeply nested value)."""
    text = _REPR.repr(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` object hook: a key given twice makes the message ambiguous, so it is refused."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {_short(key)} given twice")
        out[key] = value
    return out


def valid_level(text: str) -> bool:
    """Whether ``text`` may be one topic level: non-empty, no ``/``, ``+``, ``#`` or NUL."""
    return bool(text) and not any(c in text for c in "/+#\x00")


def check_prefix(prefix: str) -> str:
    """Validate a topic prefix (one or more levels, no wildcards); returns it or raises ValueError."""
    if not isinstance(prefix, str) or not 0 < len(prefix) <= 256 or not all(valid_level(p) for p in prefix.split("/")):
        raise ValueError(f"topic_prefix must be 1-256 characters of non-empty levels without '+', '#' or NUL, got {prefix!r}")
    return prefix


class _Message:
    """Per-message error collection with the ``MAX_ERRORS_PER_MESSAGE`` cap."""

    __slots__ = ("errors", "events", "extra")

    def __init__(self) -> None:
        self.events: list[DriverEvent] = []
        self.errors = 0
        self.extra = 0

    def error(self, code: str, detail: str, discarded: int = 0) -> None:
        self.errors += 1
        if self.errors <= MAX_ERRORS_PER_MESSAGE:
            self.events.append(ParseError(code=code, detail=detail, discarded=discarded))
        else:
            self.extra += 1

    def finish(self) -> list[DriverEvent]:
        if self.extra:
            self.events.append(ParseError(code="more_errors", detail=f"{self.extra} more problems in this message"))
        return self.events


class MqttJsonParser:
    """Sans-I/O parser of teleicu's MQTT JSON schema for one broker subscription.

    ``beds`` maps the bed ids used in topics to our bed ids; ``device`` is the
    configured device id (used when a message names none). Only the last
    message is ever held; the device-to-beds memory for presence is bounded by
    ``MAX_DEVICES``.
    """

    def __init__(
        self,
        beds: Mapping[str, str],
        device: str,
        topic_prefix: str = DEFAULT_PREFIX,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        bad = [b for b in beds if not valid_level(b)]
        if bad:
            raise ValueError(f"bed ids used in MQTT topics must be one topic level (no '/', '+', '#'): {bad[:5]}")
        self.beds = dict(beds)
        self.device = device
        self.topic_prefix = check_prefix(topic_prefix)
        self._clock_ms = clock_ms
        self._head = topic_prefix + "/"
        #: device id -> our bed ids it was seen sending for (bounded, oldest device forgotten first)
        self.device_beds: dict[str, set[str]] = {}
        #: ParseError counts by code, messages seen, payload bytes thrown away
        self.errors: Counter[str] = Counter()
        self.messages = 0
        self.discarded_bytes = 0

    @property
    def topic_filters(self) -> tuple[str, ...]:
        """What the transport subscribes to."""
        return tuple(f"{self.topic_prefix}/+/{kind}" for kind in KINDS)

    # -- the Parser protocol ----------------------------------------------------

    def feed(self, data: bytes) -> list[DriverEvent]:
        """Unused by MQTT (a message needs its topic): bytes are refused with ``no_topic``."""
        if not data:
            return []
        return self._count([ParseError(code="no_topic", detail="mqtt_json takes messages: call feed_message(topic, payload)", discarded=len(data))])

    def bytes_to_send(self) -> bytes:
        return b""  # the driver never publishes

    # -- messages -----------------------------------------------------------------

    def feed_message(self, topic: str, payload: bytes) -> list[DriverEvent]:
        """The events of one MQTT message; never raises."""
        self.messages += 1
        msg = _Message()
        self._message(topic, bytes(payload), msg)
        return self._count(msg.finish())

    def _count(self, events: list[DriverEvent]) -> list[DriverEvent]:
        for ev in events:
            if isinstance(ev, ParseError):
                self.errors[ev.code] += 1
                self.discarded_bytes += ev.discarded
        return events

    def _message(self, topic: str, payload: bytes, msg: _Message) -> None:
        size = len(payload)
        if not isinstance(topic, str) or len(topic) > MAX_TOPIC:
            msg.error("oversized" if isinstance(topic, str) else "bad_topic", f"topic longer than {MAX_TOPIC} characters", size)
            return
        if size > MAX_PAYLOAD:
            msg.error("oversized", f"payload of {size} bytes is over the {MAX_PAYLOAD}-byte limit", size)
            return
        if not topic.startswith(self._head):
            msg.error("bad_topic", f"topic {_short(topic, 80)} is not under {self._head!r}", size)
            return
        ident, slash, kind = topic[len(self._head) :].partition("/")
        if not slash or kind not in KINDS or not valid_level(ident):
            msg.error("bad_topic", f"topic {_short(topic, 80)} is not {self._head}<id>/vitals|status|presence", size)
            return
        if not payload:
            return  # a retained message being deleted (MQTT's zero-length publish): nothing to report
        if kind == "presence":
            self._presence(ident, payload, msg)
            return
        bed = self.beds.get(ident)
        if bed is None:
            msg.error("unknown_bed", f"bed {_short(ident)} is not in this device's beds", size)
            return
        doc = self._json_object(payload, msg)
        if doc is None:
            return
        if kind == "vitals":
            self._vitals(bed, doc, size, msg)
        else:
            self._status(bed, doc, size, msg)

    def _json(self, payload: bytes, msg: _Message) -> tuple[bool, Any]:
        try:
            return True, json.loads(payload.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except UnicodeDecodeError:
            msg.error("bad_json", "payload is not UTF-8", len(payload))
        except RecursionError:
            msg.error("bad_json", "payload nests too deep", len(payload))
        except ValueError as exc:  # JSONDecodeError, duplicate keys, over-long integers
            msg.error("bad_json", f"payload is not JSON: {str(exc)[:80]}", len(payload))
        return False, None

    def _json_object(self, payload: bytes, msg: _Message) -> dict[str, Any] | None:
        ok, doc = self._json(payload, msg)
        if ok and not isinstance(doc, dict):
            msg.error("bad_json", f"payload must be a JSON object, not {type(doc).__name__}", len(payload))
            return None
        return doc if ok else None

    @staticmethod
    def _unknown_members(doc: dict[str, Any], members: frozenset[str], msg: _Message) -> None:
        for key in doc:
            if key not in members:
                msg.error("bad_field", f"unknown member {_short(key)} ignored (allowed: {', '.join(sorted(members))})")

    def _header(self, doc: dict[str, Any], t_rx: int, size: int, msg: _Message) -> tuple[int, str] | None:
        """Device time and device of a vitals or status message; None if the message must be discarded."""
        t = doc.get("t", t_rx)
        if type(t) is not int or not 0 <= t < MAX_TIME_MS:
            msg.error("bad_time", f"t must be integer ms since the epoch, got {_short(t)}", size)
            return None
        device = doc.get("device", self.device)
        if not isinstance(device, str) or not 0 < len(device) <= MAX_ID_LEN or any(ch < " " for ch in device):
            msg.error("bad_field", f"device must be a string of 1-{MAX_ID_LEN} printable characters, got {_short(device)}", size)
            return None
        return t, device

    def _remember(self, device: str, bed: str) -> None:
        beds = self.device_beds.get(device)
        if beds is None:
            if len(self.device_beds) >= MAX_DEVICES:
                del self.device_beds[next(iter(self.device_beds))]
            beds = self.device_beds[device] = set()
        beds.add(bed)

    def _vitals(self, bed: str, doc: dict[str, Any], size: int, msg: _Message) -> None:
        self._unknown_members(doc, _VITALS_MEMBERS, msg)
        values = doc.get("values")
        if not isinstance(values, dict):
            msg.error("bad_field", f"'values' must be an object of parameter keys, got {_short(values)}", size)
            return
        flags_doc = doc.get("flags", {})
        if not isinstance(flags_doc, dict):
            msg.error("bad_flags", f"'flags' must be an object, got {_short(flags_doc)} (flags ignored)")
            flags_doc = {}
        t_rx = self._clock_ms()
        header = self._header(doc, t_rx, size, msg)
        if header is None:
            return
        t_dev, device = header
        flags: dict[str, int] = {}
        for key, names in flags_doc.items():
            if key not in values:
                msg.error("bad_flags", f"flags for {_short(key)}, which is not in 'values' (give it as null)")
                continue
            bits = self._flag_bits(names)
            if bits is None:
                msg.error("bad_flags", f"{_short(key)}: flags must be a list of {', '.join(FLAG_BITS)}, got {_short(names, 60)}")
                flags[key] = -1  # the value is dropped: its flags are unknown
            else:
                flags[key] = bits
        self._remember(device, bed)
        for key, raw in values.items():
            if not key:
                msg.error("bad_field", "an empty key in 'values' names nothing: its value is dropped")
                continue
            if key in HUB_DERIVED:
                msg.error("bad_field", f"{_short(key)} is computed by the hub from the waveforms; a device may not send it: dropped")
                continue
            if key not in BY_KEY:  # kept as sent, for the hub to store and list; never scored
                text = json.dumps(raw, ensure_ascii=False)  # the payload's depth is bounded; clipped below
                msg.events.append(UnmappedObservation(bed=bed, device=device, system=clip(UNMAPPED_SYSTEM, "system"),
                                                      code=clip(key, "code"), name="", value=clip(text, "value"), unit="",
                                                      status="", t_dev=t_dev, t_rx=t_rx))  # fmt: skip
                continue
            bits = flags.get(key, 0)
            if bits < 0:
                continue
            value: float | None
            if raw is None:
                value = None
                bits = bits or Flag.INVALID
            elif type(raw) is int or type(raw) is float:
                try:
                    value = float(raw)
                except OverflowError:
                    value = math.inf
                if not math.isfinite(value):
                    msg.error("bad_value", f"{key}: value {_short(raw)} is not a finite number")
                    continue
            else:
                msg.error("bad_value", f"{key}: value {_short(raw)} is not a number or null")
                continue
            msg.events.append(Observation(bed=bed, param=key, value=value, t_dev=t_dev, t_rx=t_rx, device=device, flags=int(bits)))

    @staticmethod
    def _flag_bits(names: Any) -> int | None:
        if not isinstance(names, list) or not names:
            return None
        bits = 0
        for name in names:
            if not isinstance(name, str) or name not in FLAG_BITS:
                return None
            bits |= FLAG_BITS[name]
        return bits

    def _status(self, bed: str, doc: dict[str, Any], size: int, msg: _Message) -> None:
        self._unknown_members(doc, _STATUS_MEMBERS, msg)
        status = doc.get("status")
        if not isinstance(status, str) or not _STATUS.fullmatch(status):
            msg.error("bad_field", f"status must be a lowercase token like 'probe_off', got {_short(status)}", size)
            return
        detail = doc.get("detail", "")
        if not isinstance(detail, str) or len(detail) > MAX_DETAIL:
            msg.error("bad_field", f"detail must be a string of at most {MAX_DETAIL} characters, got {_short(detail)}", size)
            return
        header = self._header(doc, self._clock_ms(), size, msg)
        if header is None:
            return
        t_dev, device = header
        self._remember(device, bed)
        msg.events.append(DeviceStatus(bed=bed, device=device, status=status, t_dev=t_dev, detail=detail))

    def _presence(self, device: str, payload: bytes, msg: _Message) -> None:
        size = len(payload)
        if len(device) > MAX_ID_LEN:
            msg.error("bad_topic", f"device id in the presence topic is over {MAX_ID_LEN} characters", size)
            return
        word = payload.strip()
        named: list[str] = []
        if word in (b"online", b"offline"):
            state = word.decode()
        else:
            ok, doc = self._json(payload, msg)
            if not ok:
                return
            state = doc.get("state") if isinstance(doc, dict) else None
            if not isinstance(state, str) or state not in _PRESENCE:
                msg.error("bad_presence", f"presence must be 'online', 'offline' or {{\"state\": ..., \"beds\": [...]}}, got {_short(doc, 60)}", size)
                return
            for key in doc:
                if key not in _PRESENCE_MEMBERS:
                    msg.error("bad_field", f"unknown member {_short(key)} ignored (allowed: beds, state)")
            listed = doc.get("beds", [])
            if not isinstance(listed, list):
                msg.error("bad_presence", f"'beds' must be a list of bed ids, got {_short(listed)}")
                listed = []
            for b in listed:
                if not isinstance(b, str):
                    msg.error("bad_presence", f"'beds' entry {_short(b)} is not a string")
                elif b not in self.beds:
                    msg.error("unknown_bed", f"bed {_short(b)} in 'beds' is not in this device's beds")
                else:
                    named.append(self.beds[b])
        t = self._clock_ms()
        for bed in named:
            self._remember(device, bed)
        for bed in sorted(self.device_beds.get(device, ())):
            msg.events.append(DeviceStatus(bed=bed, device=device, status=_PRESENCE[state], t_dev=t, detail="presence"))


register(
    DriverSpec(
        name="mqtt_json",
        transport="mqtt",
        parser=MqttJsonParser,
        multi_bed=True,
        description="teleicu's MQTT topic and JSON payload schema (vitals, status, retained presence with last will)",
    )
)
