"""Bytes <-> video signalling messages, for the hub's two video WebSockets.

Video never passes through the hub: the edge's camera publisher and the console
negotiate a WebRTC peer connection with messages the hub relays, and the media
flows peer to peer or through the TURN relay beside the hub. Two sockets carry
the messages, both JSON text frames with a ``type``:

* ``/ws/video?bed=A-01`` between a console viewer and the hub (one socket per
  viewer of one bed; the hub names the session);
* ``/ws/edge/video`` between an edge agent and the hub (one socket per agent,
  every session of every bed it serves, each message naming its ``session``).

=================  =========  ======================================================================
type               direction  fields
=================  =========  ======================================================================
``hello``          edge→hub   ``cameras``: [{``bed``, ``talkback``: bool}] the agent can publish
``session``        hub→viewer ``session``, ``bed``, ``ice_servers``, ``talkback``: bool
``watch``          hub→edge   ``session``, ``bed``, ``ice_servers``: a viewer wants the bed's video
``offer``          edge→hub→viewer  ``session``, ``sdp``: the edge offers (video send, audio receive)
``answer``         viewer→hub→edge  ``session``, ``sdp``
``candidate``      both ways  ``session``, ``candidate`` (a=candidate line, "" = end), ``sdpMid``,
                              ``sdpMLineIndex``
``talk``           viewer→hub→edge  ``session``, ``on``: bool: push-to-talk pressed or released
``state``          edge→hub→viewer  ``session``, ``state`` (connecting | live | reconnecting |
                              failed), ``reason``
``camera``         edge→hub   ``bed``, ``running``: bool, ``reason``: the bed's one shared source
                              opened or closed
``hangup``         any        ``session``, ``reason``: the session is over
=================  =========  ======================================================================

A viewer's messages need no ``session`` (its socket is one session); the hub
fills it in before relaying. ``ice_servers`` are RTCIceServer dictionaries
(``urls``, ``username``, ``credential``). Every decoder takes bytes, returns a
``Signal`` or raises ``SignalError``; a frame is at most ``MAX_SIGNAL_BYTES``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_SIGNAL_BYTES = 64 * 1024  # an SDP offer with every candidate is a few KiB
MAX_CAMERAS = 256  # beds one agent may announce
MAX_TEXT = 200  # reasons, bed and session ids

STATES = ("connecting", "live", "reconnecting", "failed")
TYPES = ("hello", "session", "watch", "offer", "answer", "candidate", "talk", "state", "camera", "hangup")


class SignalError(ValueError):
    """A signalling frame that cannot be used: too large, not JSON, an unknown type, a missing or bad field."""


@dataclass(frozen=True, slots=True)
class Signal:
    type: str
    session: str = ""
    bed: str = ""
    sdp: str = ""
    candidate: str = ""
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None
    on: bool = False
    state: str = ""
    reason: str = ""
    running: bool = False
    talkback: bool = False
    ice_servers: tuple[dict[str, Any], ...] = ()
    cameras: tuple[tuple[str, bool], ...] = ()  # hello: (bed, talk-back allowed)
    extra: dict[str, Any] = field(default_factory=dict)  # nothing is read from it; kept for logs

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.session:
            out["session"] = self.session
        if self.type in ("session", "watch", "camera") or (self.bed and self.type != "hello"):
            out["bed"] = self.bed
        if self.type in ("offer", "answer"):
            out["sdp"] = self.sdp
        if self.type == "candidate":
            out.update(candidate=self.candidate, sdpMid=self.sdp_mid, sdpMLineIndex=self.sdp_mline_index)
        if self.type == "talk":
            out["on"] = self.on
        if self.type == "state":
            out["state"] = self.state
        if self.type in ("state", "camera", "hangup") and self.reason:
            out["reason"] = self.reason
        if self.type == "camera":
            out["running"] = self.running
        if self.type == "session":
            out["talkback"] = self.talkback
        if self.type in ("session", "watch"):
            out["ice_servers"] = list(self.ice_servers)
        if self.type == "hello":
            out["cameras"] = [{"bed": b, "talkback": t} for b, t in self.cameras]
        return out


def encode_signal(sig: Signal) -> str:
    return json.dumps(sig.to_json(), separators=(",", ":"))


def _text(d: dict[str, Any], key: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    v = d.get(key, None)
    if v is None and not required:
        return ""
    if not isinstance(v, str) or (required and not v):
        raise SignalError(f"{key}: a non-empty string is required")
    if len(v) > limit:
        raise SignalError(f"{key}: longer than {limit} characters")
    return v


def _flag(d: dict[str, Any], key: str) -> bool:
    v = d.get(key, False)
    if not isinstance(v, bool):
        raise SignalError(f"{key}: true or false")
    return v


def _ice_servers(v: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(v, list) or len(v) > 8:
        raise SignalError("ice_servers: a list of at most 8 servers")
    out = []
    for s in v:
        if not isinstance(s, dict) or not isinstance(s.get("urls"), (str, list)):
            raise SignalError("ice_servers: each server needs urls")
        out.append(s)
    return tuple(out)


def decode_signal(data: bytes | str, *, session_required: bool = True) -> Signal:
    """One signalling frame; ``session_required=False`` on a viewer's socket, where the socket is the session."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_SIGNAL_BYTES:
        raise SignalError(f"frame of {len(raw)} bytes, over the {MAX_SIGNAL_BYTES}-byte limit")
    try:
        d = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SignalError(f"not JSON: {exc}") from None
    if not isinstance(d, dict):
        raise SignalError("not a JSON object")
    kind = d.get("type")
    if kind not in TYPES:
        raise SignalError(f"unknown type {str(kind)[:40]!r}")
    needs_session = kind not in ("hello", "camera") and session_required
    session = _text(d, "session", required=needs_session)
    if kind == "hello":
        cams = d.get("cameras")
        if not isinstance(cams, list) or len(cams) > MAX_CAMERAS:
            raise SignalError(f"cameras: a list of at most {MAX_CAMERAS}")
        pairs = []
        for c in cams:
            if not isinstance(c, dict):
                raise SignalError("cameras: each is an object with bed and talkback")
            pairs.append((_text(c, "bed"), _flag(c, "talkback")))
        return Signal("hello", cameras=tuple(pairs))
    if kind in ("offer", "answer"):
        sdp = _text(d, "sdp", limit=MAX_SIGNAL_BYTES)
        if not sdp.startswith("v=0"):
            raise SignalError("sdp: not a session description (it must start with v=0)")
        return Signal(kind, session=session, sdp=sdp)
    if kind == "candidate":
        cand = _text(d, "candidate", required=False, limit=2000)
        mid = d.get("sdpMid")
        idx = d.get("sdpMLineIndex")
        if mid is not None and (not isinstance(mid, str) or len(mid) > 64):
            raise SignalError("sdpMid: a short string or null")
        if idx is not None and (not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < 64):
            raise SignalError("sdpMLineIndex: a small whole number or null")
        return Signal("candidate", session=session, candidate=cand, sdp_mid=mid, sdp_mline_index=idx)
    if kind == "talk":
        return Signal("talk", session=session, on=_flag(d, "on"))
    if kind == "state":
        state = d.get("state")
        if state not in STATES:
            raise SignalError(f"state: one of {', '.join(STATES)}")
        return Signal("state", session=session, state=state, reason=_text(d, "reason", required=False))
    if kind == "camera":
        return Signal("camera", bed=_text(d, "bed"), running=_flag(d, "running"), reason=_text(d, "reason", required=False))
    if kind in ("session", "watch"):
        return Signal(kind, session=session, bed=_text(d, "bed"), talkback=_flag(d, "talkback"),
                      ice_servers=_ice_servers(d.get("ice_servers", [])))  # fmt: skip
    return Signal("hangup", session=session, reason=_text(d, "reason", required=False))
