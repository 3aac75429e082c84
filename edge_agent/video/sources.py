"""One shared camera per bed: opened for the first viewer, fanned out to every viewer, stopped after the last.

A bed's ``source`` (``edge_agent.config.CameraConfig``) is the test pattern, a
V4L2 device or an IP camera URL, opened with aiortc's ``MediaPlayer`` (off the
event loop: an RTSP camera may take seconds to answer). A camera that cannot be
opened raises ``CameraUnavailable`` with a reason a clinician can read. Every
viewer gets its own ``MediaRelay`` subscriber of the one source; when the last
viewer leaves, the source is stopped (the camera is off when nobody watches:
privacy, and the ward's bandwidth).

Every viewer's encoder receives the same frame object, each in its own thread.
A frame not already in the encoders' format (I420) would be converted by each
of them through the swscale context PyAV caches on the frame itself, and two
threads using one swscale context at once can stall one of them for good (a
viewer left "live" with a frozen picture, seen under load). So the source
converts each frame once, in one worker thread, before any viewer sees it; the
viewers' encoders then only read it. ``on_camera(bed, running, reason)`` hears
every open and close, including a camera that stops sending on its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from aiortc.contrib.media import MediaPlayer, MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

from edge_agent.config import CameraConfig
from edge_agent.video.test_pattern import TestPatternTrack

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 15.0
ENCODER_FORMAT = "yuv420p"  # what aiortc's VP8 encoder takes without converting


class CameraUnavailable(Exception):
    """A bed's camera could not be opened; ``reason`` says why, in words for the console."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def redact(url: str) -> str:
    """A camera URL without its password, fit for a log line or the console."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _open_player(cam: CameraConfig) -> MediaPlayer:
    """Blocking: open the camera's container (V4L2 device or URL); ``CameraUnavailable`` if it cannot be."""
    if cam.source.startswith("v4l2:"):
        path = cam.source[len("v4l2:") :]
        if not os.path.exists(path):
            raise CameraUnavailable(f"camera not found: {path} does not exist")
        options = {"video_size": f"{cam.width}x{cam.height}", "framerate": str(cam.fps)}
        where, fmt = path, "v4l2"
    else:
        options = {"rtsp_transport": "tcp"} if cam.source.startswith(("rtsp://", "rtsps://")) else {}
        where, fmt = cam.source, None
    try:
        player = MediaPlayer(where, format=fmt, options=options, timeout=int(OPEN_TIMEOUT_S))
    except Exception as exc:  # PyAV raises its own error types for every way a device or stream fails
        what = "camera not readable" if fmt == "v4l2" else "camera unreachable"
        raise CameraUnavailable(f"{what}: {redact(where)}: {exc}") from None
    if player.video is None:
        raise CameraUnavailable(f"camera sends no video: {redact(where)}")
    return player


class SourceTrack(MediaStreamTrack):
    """A bed's source as the relay reads it: ends promptly when stopped (a device read may never return), and
    reports a camera that ends on its own through ``on_end``."""

    kind = "video"

    def __init__(self, inner: MediaStreamTrack, on_end: Callable[[str], None]) -> None:
        super().__init__()
        self.inner = inner
        self._on_end = on_end
        self._stopped = asyncio.Event()
        self._reformatter = VideoReformatter()  # used by one conversion at a time: the relay reads frames one by one

    async def recv(self) -> Frame | Packet:
        if self.readyState != "live":
            raise MediaStreamError
        frame = asyncio.ensure_future(self.inner.recv())
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait((frame, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not frame.done():
                frame.cancel()
        if self._stopped.is_set() or frame.cancelled():
            raise MediaStreamError
        try:
            got = frame.result()
        except MediaStreamError:
            if self.readyState == "live":
                self._on_end("camera stopped sending")
            raise
        if isinstance(got, VideoFrame) and got.format.name != ENCODER_FORMAT:
            got = await asyncio.to_thread(self._reformatter.reformat, got, format=ENCODER_FORMAT)
        return got

    def stop(self) -> None:
        self._stopped.set()
        self.inner.stop()
        super().stop()


@dataclass
class _Bed:
    source: SourceTrack
    relay: MediaRelay
    viewers: set[MediaStreamTrack] = field(default_factory=set)


class BedSources:
    """The open sources, one per bed, with their viewers."""

    def __init__(self, cameras: dict[str, CameraConfig], on_camera: Callable[[str, bool, str], None]) -> None:
        self.cameras = cameras
        self.on_camera = on_camera
        self._beds: dict[str, _Bed] = {}
        self._locks: dict[str, asyncio.Lock] = {bed: asyncio.Lock() for bed in cameras}
        self.opened = 0  # sources opened since start (a test counts them)

    def running(self, bed: str) -> bool:
        return bed in self._beds

    def viewers(self, bed: str) -> int:
        entry = self._beds.get(bed)
        return len(entry.viewers) if entry else 0

    async def acquire(self, bed: str) -> MediaStreamTrack:
        """A new viewer's track of the bed's source, opening the source if nobody watches yet."""
        cam = self.cameras[bed]
        async with self._locks[bed]:
            entry = self._beds.get(bed)
            if entry is None:
                inner = await self._open(cam)
                entry = _Bed(SourceTrack(inner, lambda reason: self._ended(bed, reason)), MediaRelay())
                self._beds[bed] = entry
                self.opened += 1
                log.info("camera of bed %s running (%s)", bed, cam.source if cam.source == "testpattern" else redact(cam.source))
                self.on_camera(bed, True, "")
            viewer = entry.relay.subscribe(entry.source, buffered=False)
            entry.viewers.add(viewer)
            return viewer

    async def _open(self, cam: CameraConfig) -> MediaStreamTrack:
        if cam.source == "testpattern":
            return TestPatternTrack(cam.bed, cam.width, cam.height, cam.fps)
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S + 5):
                player = await asyncio.to_thread(_open_player, cam)
        except TimeoutError:
            raise CameraUnavailable(f"camera unreachable: {redact(cam.source)}: no answer in {OPEN_TIMEOUT_S:.0f} s") from None
        assert player.video is not None
        return player.video

    def release(self, bed: str, viewer: MediaStreamTrack) -> None:
        """A viewer left: stop its track, and the source when it was the last."""
        viewer.stop()
        entry = self._beds.get(bed)
        if entry is None or viewer not in entry.viewers:
            return
        entry.viewers.discard(viewer)
        if not entry.viewers:
            self._close(bed, "nobody is watching")

    def _ended(self, bed: str, reason: str) -> None:
        log.warning("camera of bed %s: %s", bed, reason)
        self._close(bed, reason)

    def _close(self, bed: str, reason: str) -> None:
        entry = self._beds.pop(bed, None)
        if entry is None:
            return
        for viewer in list(entry.viewers):
            viewer.stop()
        entry.source.stop()
        log.info("camera of bed %s stopped: %s", bed, reason)
        self.on_camera(bed, False, reason)

    def close_all(self, reason: str) -> None:
        for bed in list(self._beds):
            self._close(bed, reason)
