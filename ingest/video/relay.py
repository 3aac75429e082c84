"""The video signalling relay: which edge serves which bed's camera, who watches, and what goes where.

No I/O here. Each connected edge agent and each viewer has a bounded outbox
(``asyncio.Queue`` of ``Signal``) that its socket's task drains; the relay
only decides. A viewer opens a session for one bed: the relay refuses it with
a reason a clinician can act on (no gateway connected for the bed, the bed has
no camera, the viewer cap reached), or names it, hands both ends short-lived
TURN credentials and asks the edge to offer. After that it forwards the
answer, trickled candidates and push-to-talk to the edge, and the offer,
candidates and states back to the viewer, each only within its own session.

Whatever ends a session (hang-up from either end, a failed state, the
viewer's socket closing, the edge's socket closing) ends it once: the other
end is told, and the view (and any talk-back) is audit-logged with who, which
bed, and from when to when. A start entry is written when the session opens,
so a view is on record even if the hub dies during it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.auth.audit_log import AuditEntry
from ingest.video.turn_credentials import TurnCredentials
from wire.video_signal import Signal

log = logging.getLogger(__name__)

OUTBOX = 64  # signalling messages waiting for one socket; a peer that lets more pile up is stuck, and is dropped


class VideoRefused(Exception):
    """A viewer cannot have the bed's video; ``reason`` says why, in words for the console."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class EdgeLink:
    agent: str
    cameras: dict[str, bool]  # bed -> talk-back allowed
    outbox: asyncio.Queue[Signal] = field(default_factory=lambda: asyncio.Queue(OUTBOX))
    running: dict[str, str] = field(default_factory=dict)  # bed -> "" while its camera runs, else why it stopped
    dropped: bool = False  # its outbox overflowed: the socket task closes it


@dataclass(eq=False)
class ViewerSession:
    id: str
    bed: str
    who: str
    source: str
    started: int
    link: EdgeLink
    talkback: bool  # this viewer may talk to this bed
    outbox: asyncio.Queue[Signal] = field(default_factory=lambda: asyncio.Queue(OUTBOX))
    talk_since: int | None = None
    live_at: int | None = None
    ended: str | None = None  # why it ended, once it has


class VideoRelay:
    def __init__(self, credentials: TurnCredentials, max_viewers_per_bed: int, audit: Callable[[AuditEntry], None],
                 clock: Callable[[], int]) -> None:  # fmt: skip
        self.credentials = credentials
        self.max_viewers = max_viewers_per_bed
        self.audit = audit
        self.clock = clock  # ms since the epoch
        self.links: dict[str, EdgeLink] = {}  # agent -> its live signalling link
        self.by_bed: dict[str, EdgeLink] = {}
        self.sessions: dict[str, ViewerSession] = {}
        self._serial = itertools.count(1)

    # --- edges -----------------------------------------------------------------------------------

    def edge_up(self, agent: str, registered: tuple[str, ...], hello: Signal) -> EdgeLink:
        """An agent's link said hello. Only beds registered to the agent are taken; a previous link of the same
        agent is replaced (its sessions end)."""
        old = self.links.get(agent)
        if old is not None:
            self.edge_down(old, "the camera gateway reconnected")
        allowed = set(registered)
        cameras = {bed: talk for bed, talk in hello.cameras if bed in allowed}
        for bed, _ in hello.cameras:
            if bed not in allowed:
                log.warning("agent %s announced a camera for bed %s, which is not registered to it: ignored", agent, bed)
        link = EdgeLink(agent, cameras)
        self.links[agent] = link
        for bed in cameras:
            self.by_bed[bed] = link
        return link

    def edge_down(self, link: EdgeLink, reason: str = "edge offline: the camera gateway disconnected") -> None:
        if self.links.get(link.agent) is link:
            del self.links[link.agent]
        for bed in link.cameras:
            if self.by_bed.get(bed) is link:
                del self.by_bed[bed]
        for s in [s for s in self.sessions.values() if s.link is link]:
            self._end(s, reason, tell_edge=False, failed=True)

    def from_edge(self, link: EdgeLink, sig: Signal) -> None:
        if sig.type == "camera":
            if sig.bed in link.cameras:
                link.running[sig.bed] = "" if sig.running else (sig.reason or "stopped")
            return
        s = self.sessions.get(sig.session)
        if s is None or s.link is not link:
            return  # a session that ended meanwhile, or not this edge's: nothing to forward
        if sig.type in ("offer", "candidate"):
            self._to_viewer(s, sig)
        elif sig.type == "state":
            if sig.state == "live" and s.live_at is None:
                s.live_at = self.clock()
            if sig.state == "failed":
                self._end(s, sig.reason or "the camera gateway could not start the video", tell_edge=True, failed=True)
            else:
                self._to_viewer(s, sig)
        elif sig.type == "hangup":
            self._end(s, sig.reason or "the camera gateway ended the video", tell_edge=False, failed=True)

    # --- viewers ---------------------------------------------------------------------------------

    def open(self, bed: str, who: str, source: str, may_talk: bool) -> ViewerSession:
        link = self.by_bed.get(bed)
        if link is None:
            raise VideoRefused(f"edge offline: no camera gateway is connected for bed {bed}")
        watching = sum(1 for s in self.sessions.values() if s.bed == bed)
        if watching >= self.max_viewers:
            raise VideoRefused(f"viewer cap: {watching} people already watch bed {bed}, the most allowed at once")
        now = self.clock()
        sid = f"v{next(self._serial)}-{secrets.token_hex(6)}"
        s = ViewerSession(sid, bed, who, source, now, link, talkback=may_talk and link.cameras[bed])
        self.sessions[sid] = s
        self.audit(AuditEntry(now, who, "video.view_started", f"bed:{bed}", {"session": sid}, source))
        now_s = now / 1000
        self._put(s.outbox, Signal("session", session=sid, bed=bed, talkback=s.talkback,
                                   ice_servers=tuple(self.credentials.ice_servers(who, now_s))))  # fmt: skip
        self._put(s.outbox, Signal("state", session=sid, state="connecting"))
        self._to_edge(s, Signal("watch", session=sid, bed=bed, talkback=s.talkback,
                                ice_servers=tuple(self.credentials.ice_servers(f"agent-{link.agent}", now_s))))  # fmt: skip
        return s

    def from_viewer(self, s: ViewerSession, sig: Signal) -> None:
        if s.ended is not None:
            return
        if sig.type in ("answer", "candidate"):
            self._to_edge(s, Signal(sig.type, session=s.id, sdp=sig.sdp, candidate=sig.candidate, sdp_mid=sig.sdp_mid,
                                    sdp_mline_index=sig.sdp_mline_index))  # fmt: skip
        elif sig.type == "talk":
            if sig.on and not s.talkback:
                self._put(s.outbox, Signal("state", session=s.id, state="live" if s.live_at else "connecting",
                                           reason="talk-back is off for this bed or not allowed for your role"))  # fmt: skip
                return
            self._talk(s, sig.on)
        elif sig.type == "hangup":
            self._end(s, "the viewer closed the video", tell_viewer=False)

    def viewer_gone(self, s: ViewerSession, reason: str = "the viewer's connection closed") -> None:
        self._end(s, reason, tell_viewer=False)

    # --- inside --------------------------------------------------------------------------------

    def _talk(self, s: ViewerSession, on: bool) -> None:
        if on == (s.talk_since is not None):
            return
        if on:
            s.talk_since = self.clock()
        else:
            self._talk_ended(s)
        self._to_edge(s, Signal("talk", session=s.id, on=on))

    def _talk_ended(self, s: ViewerSession) -> None:
        assert s.talk_since is not None
        now = self.clock()
        self.audit(AuditEntry(now, s.who, "video.talk", f"bed:{s.bed}", {"session": s.id, "from": s.talk_since, "to": now},
                              s.source))  # fmt: skip
        s.talk_since = None

    def _end(self, s: ViewerSession, reason: str, *, tell_edge: bool = True, tell_viewer: bool = True, failed: bool = False) -> None:
        if s.ended is not None:
            return
        if s.talk_since is not None:  # the hang-up below ends the talk at the edge too
            self._talk_ended(s)
        s.ended = reason
        self.sessions.pop(s.id, None)
        now = self.clock()
        self.audit(AuditEntry(now, s.who, "video.view", f"bed:{s.bed}",
                              {"session": s.id, "from": s.started, "to": now, "live_from": s.live_at, "ended": reason[:120]},
                              s.source))  # fmt: skip
        if tell_edge:
            self._to_edge(s, Signal("hangup", session=s.id, reason=reason[:200]))
        if tell_viewer:
            if failed:
                self._put(s.outbox, Signal("state", session=s.id, state="failed", reason=reason[:200]))
            self._put(s.outbox, Signal("hangup", session=s.id, reason=reason[:200]))

    def _to_viewer(self, s: ViewerSession, sig: Signal) -> None:
        if not self._put(s.outbox, sig):
            self._end(s, "the viewer does not keep up with signalling", tell_viewer=False)

    def _to_edge(self, s: ViewerSession, sig: Signal) -> None:
        if not self._put(s.link.outbox, sig):
            s.link.dropped = True
            log.warning("agent %s does not keep up with video signalling: dropping its link", s.link.agent)

    @staticmethod
    def _put(q: asyncio.Queue[Signal], sig: Signal) -> bool:
        with contextlib.suppress(asyncio.QueueFull):
            q.put_nowait(sig)
            return True
        return False

    def status(self, bed: str) -> dict[str, object]:
        """What the console shows before opening a bed's video: whether it has a camera, whether it runs, how many watch."""
        link = self.by_bed.get(bed)
        why = link.running.get(bed) if link is not None else None  # "" while running; None: never started
        return {"bed": bed, "camera": link is not None, "running": why == "", "stopped_because": why or None,
                "talkback": bool(link and link.cameras.get(bed)),
                "viewers": sum(1 for s in self.sessions.values() if s.bed == bed)}  # fmt: skip
