"""The edge's video sessions: one WebRTC peer connection per viewer, the edge always offering.

``Publisher`` consumes the hub's signals (``watch``, ``answer``, ``candidate``,
``talk``, ``hangup``; ``wire.video_signal``) and emits its own through the
``send`` callback (``offer``, ``state``, ``camera``, ``hangup``); it never
touches a socket, so a test can wire it straight to a viewer's peer
connection. On ``watch`` it takes a subscriber of the bed's shared source
(``sources``), offers the video send-only and, if the bed allows talk-back, an
audio transceiver receive-only, with the candidates gathered (aiortc does not
trickle). A session ends on the hub's ``hangup``, when its connection fails or
closes (ICE consent freshness notices a vanished viewer in about 30 s), when
the viewer has not connected within ``CONNECT_TIMEOUT_S``, or when the bed's
camera stops; the viewer hears ``state failed`` and ``hangup`` with the reason.

VP8's bitrate is a module setting in aiortc (``aiortc.codecs.vpx``): each
encoder starts at ``DEFAULT_BITRATE`` and the viewer's bandwidth estimate
(REMB) moves it between ``MIN_BITRATE`` and ``MAX_BITRATE``. ``apply_bitrate``
sets the start and the ceiling to the highest ``bitrate_kbps`` configured, so a
gateway never sends more than its cameras are configured for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.codecs import vpx
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from edge_agent.config import CameraConfig
from edge_agent.video.sources import BedSources, CameraUnavailable
from edge_agent.video.talkback import Talkback
from wire.video_signal import Signal

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 45.0  # from watch to a connected peer; generous for TURN allocation on a slow uplink
ICE_FAILED = "ICE failed: no route to the viewer"
ICE_SCHEMES = ("stun:", "turn:", "turns:")


def apply_bitrate(cameras: Iterable[CameraConfig]) -> int:
    """Set aiortc's VP8 start and ceiling bitrate to the highest configured camera's; returns it in bit/s."""
    bitrate = max((cam.bitrate_kbps for cam in cameras), default=500) * 1000
    vpx.DEFAULT_BITRATE = bitrate
    vpx.MAX_BITRATE = bitrate
    vpx.MIN_BITRATE = min(vpx.MIN_BITRATE, bitrate)
    return bitrate


def ice_servers(raw: tuple[dict[str, Any], ...]) -> list[RTCIceServer]:
    """The watch message's servers as aiortc's, keeping only STUN and TURN URLs (anything else would fail gathering)."""
    out = []
    for server in raw:
        urls = server.get("urls")
        urls = [urls] if isinstance(urls, str) else [u for u in urls or () if isinstance(u, str)]
        urls = [u for u in urls if u.startswith(ICE_SCHEMES)]
        if not urls:
            continue
        username, credential = server.get("username"), server.get("credential")
        out.append(RTCIceServer(urls=urls, username=username if isinstance(username, str) else None,
                                credential=credential if isinstance(credential, str) else None))  # fmt: skip
    return out


@dataclass(eq=False)
class Session:
    id: str
    bed: str
    pc: RTCPeerConnection | None = None
    track: MediaStreamTrack | None = None
    talkback: Talkback | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    live: bool = False
    ended: bool = False
    started: float = field(default_factory=time.monotonic)


class Publisher:
    """Sessions by id; use as ``async with Publisher(...) as pub`` (its tasks live in a TaskGroup)."""

    def __init__(self, cameras: Iterable[CameraConfig], send: Callable[[Signal], None], *, max_sessions: int = 8,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:  # fmt: skip
        self.cameras = {cam.bed: cam for cam in cameras}
        self.send = send
        self.max_sessions = max_sessions
        self.connect_timeout_s = connect_timeout_s
        self.sessions: dict[str, Session] = {}
        self.sources = BedSources(self.cameras, self._camera)
        self.ended: dict[str, str] = {}  # session -> why it ended (the last few hundred, for tests and logs)
        self._tg: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> Publisher:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.close_all("the edge is stopping")
        finally:
            tg, self._tg = self._tg, None
            assert tg is not None
            await tg.__aexit__(*exc)

    def hello(self) -> Signal:
        return Signal("hello", cameras=tuple((bed, cam.talkback) for bed, cam in self.cameras.items()))

    # --- signals in ------------------------------------------------------------------------------

    async def handle(self, sig: Signal) -> None:
        """One signal from the hub. Never raises for a bad or late message (it is logged); CancelledError passes."""
        if sig.type == "watch":
            self._watch(sig)
            return
        sess = self.sessions.get(sig.session)
        if sess is None:
            log.debug("%s for unknown or ended session %s ignored", sig.type, sig.session)
            return
        try:
            if sig.type == "answer":
                if sess.pc is None or sess.pc.signalingState != "have-local-offer":
                    log.warning("session %s: answer out of turn ignored", sess.id)
                    return
                await sess.pc.setRemoteDescription(RTCSessionDescription(sdp=sig.sdp, type="answer"))
            elif sig.type == "candidate":
                await self._candidate(sess, sig)
            elif sig.type == "talk":
                if sess.talkback is not None:
                    sess.talkback.set_talking(sig.on)
                else:
                    log.info("session %s: talk ignored (no talk-back for bed %s)", sess.id, sess.bed)
            elif sig.type == "hangup":
                await self.end(sess, sig.reason or "the viewer hung up", notify=False)
            else:
                log.warning("session %s: %s is not for the edge, ignored", sess.id, sig.type)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a malformed SDP or candidate fails this session, never the link
            log.warning("session %s: %s refused: %s", sess.id, sig.type, exc)
            await self.end(sess, f"bad {sig.type} from the viewer: {exc}"[:200])

    async def _candidate(self, sess: Session, sig: Signal) -> None:
        if not sig.candidate or sess.pc is None:
            return  # end of candidates, or a candidate before the offer: aiortc needs no signal for either
        line = sig.candidate
        if line.startswith("a="):
            line = line[2:]
        try:
            cand = candidate_from_sdp(line.split(":", 1)[1] if line.startswith("candidate:") else line)
        except (ValueError, IndexError) as exc:
            log.info("session %s: unreadable candidate ignored: %s", sess.id, exc)
            return
        cand.sdpMid, cand.sdpMLineIndex = sig.sdp_mid, sig.sdp_mline_index
        if cand.sdpMid is None and cand.sdpMLineIndex is None:
            cand.sdpMLineIndex = 0
        await sess.pc.addIceCandidate(cand)

    def _watch(self, sig: Signal) -> None:
        old = self.sessions.get(sig.session)
        if old is not None:
            self._spawn(old, self.end(old, "the viewer asked again", notify=False), "replace")
            self.sessions.pop(sig.session, None)
        sess = Session(sig.session, sig.bed)
        if sig.bed not in self.cameras:
            self._refuse(sess, f"no camera for bed {sig.bed} on this gateway")
            return
        if len(self.sessions) >= self.max_sessions:
            self._refuse(sess, f"too many viewers: this gateway serves at most {self.max_sessions} at once")
            return
        self.sessions[sess.id] = sess
        self.send(Signal("state", session=sess.id, state="connecting"))
        self._spawn(sess, self._start(sess, sig), "start")

    def _refuse(self, sess: Session, reason: str) -> None:
        log.info("session %s (bed %s) refused: %s", sess.id, sess.bed, reason)
        self.send(Signal("state", session=sess.id, state="failed", reason=reason))
        self.send(Signal("hangup", session=sess.id, reason=reason))
        self._note_end(sess.id, reason)

    async def _start(self, sess: Session, sig: Signal) -> None:
        cam = self.cameras[sess.bed]
        try:
            track = await self.sources.acquire(sess.bed)
        except CameraUnavailable as exc:
            await self.end(sess, exc.reason)
            return
        if sess.ended:  # hung up while the camera opened
            self.sources.release(sess.bed, track)
            return
        sess.track = track
        pc = sess.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers(sig.ice_servers)))
        pc.on("connectionstatechange", lambda: self._state_changed(sess))
        pc.on("track", lambda remote: self._remote_track(sess, remote))
        video = pc.addTransceiver(track, direction="sendonly")
        codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() in ("video/vp8", "video/rtx")]
        video.setCodecPreferences(codecs)
        if cam.talkback:
            sess.talkback = Talkback(sess.id, sess.bed, cam.talkback_output)
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate first
        if sess.ended:
            return
        self.send(Signal("offer", session=sess.id, sdp=pc.localDescription.sdp))
        self._spawn(sess, self._watchdog(sess), "watchdog")

    async def _watchdog(self, sess: Session) -> None:
        await asyncio.sleep(self.connect_timeout_s)
        if not sess.live and not sess.ended:
            await self.end(sess, f"the viewer did not connect within {self.connect_timeout_s:.0f} s")

    def _remote_track(self, sess: Session, remote: MediaStreamTrack) -> None:
        if remote.kind != "audio" or sess.talkback is None or sess.ended:
            return  # the edge receives nothing else; aiortc discards what nobody reads
        self._spawn(sess, sess.talkback.run(remote), "talkback")

    def _state_changed(self, sess: Session) -> None:
        if sess.ended or sess.pc is None:
            return
        state = sess.pc.connectionState
        if state == "connected" and not sess.live:
            sess.live = True
            log.info("session %s (bed %s) live after %.1f s", sess.id, sess.bed, time.monotonic() - sess.started)
            self.send(Signal("state", session=sess.id, state="live"))
        elif state in ("failed", "closed"):
            reason = ICE_FAILED if state == "failed" or not sess.live else "the viewer closed the connection"
            self._spawn(sess, self.end(sess, reason), "end")

    # --- ending ----------------------------------------------------------------------------------

    async def end(self, sess: Session, reason: str, *, notify: bool = True) -> None:
        """End a session once: tell the viewer (``state failed`` and ``hangup``) unless the hub ended it, close the
        peer connection, stop its tasks and give up its share of the camera."""
        if sess.ended:
            return
        sess.ended = True
        if self.sessions.get(sess.id) is sess:
            del self.sessions[sess.id]
        log.info("session %s (bed %s) ended: %s", sess.id, sess.bed, reason)
        if notify:
            self.send(Signal("state", session=sess.id, state="failed", reason=reason[:200]))
            self.send(Signal("hangup", session=sess.id, reason=reason[:200]))
        self._note_end(sess.id, reason)
        me = asyncio.current_task()
        for task in list(sess.tasks):
            if task is not me:
                task.cancel()
        if sess.track is not None:
            self.sources.release(sess.bed, sess.track)
        if sess.pc is not None:
            with contextlib.suppress(Exception):  # closing a half-built connection may complain; it is closed
                await sess.pc.close()

    def _note_end(self, session: str, reason: str) -> None:
        self.ended[session] = reason
        while len(self.ended) > 256:
            del self.ended[next(iter(self.ended))]

    async def close_all(self, reason: str) -> None:
        """End every session (the link to the hub dropped, or the agent stops): the hub tells the viewers."""
        for sess in list(self.sessions.values()):
            await self.end(sess, reason, notify=False)
        self.sources.close_all(reason)

    # --- camera events and tasks -----------------------------------------------------------------

    def _camera(self, bed: str, running: bool, reason: str) -> None:
        self.send(Signal("camera", bed=bed, running=running, reason=reason[:200]))
        if not running:
            for sess in [s for s in self.sessions.values() if s.bed == bed]:
                self._spawn(sess, self.end(sess, f"camera stopped: {reason}"), "end")

    def _spawn(self, sess: Session, coro: Coroutine[Any, Any, None], what: str) -> None:
        if self._tg is None:
            coro.close()
            raise RuntimeError("Publisher used outside 'async with'")
        task = self._tg.create_task(self._guarded(sess, coro, what), name=f"video-{what}-{sess.id}")
        sess.tasks.add(task)
        task.add_done_callback(sess.tasks.discard)

    async def _guarded(self, sess: Session, coro: Coroutine[Any, Any, None], what: str) -> None:
        """A session's task: its failure ends that session, never the others (CancelledError passes)."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("session %s (bed %s): %s failed", sess.id, sess.bed, what)
            await self.end(sess, f"the edge could not {what} the session: {exc}"[:200])
