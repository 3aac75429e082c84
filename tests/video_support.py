"""A console viewer in the test process: a real aiortc peer connection that answers the edge's offer.

``Loopback`` wires a ``Publisher`` to viewers without a hub: whatever the
publisher sends lands in the addressed viewer's inbox (``camera`` signals in
``loopback.cameras``), and a viewer's answer, candidates, talk and hangup go
straight to ``publisher.handle``. Media flows over real ICE on loopback.
"""

from __future__ import annotations

import asyncio
import fractions
import math
from collections.abc import Callable

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from edge_agent.video.publisher import Publisher
from edge_agent.video.test_pattern import PatternUnreadable, read_back
from wire.video_signal import Signal, decode_signal, encode_signal

WAIT_S = 20.0


class SineTrack(AudioStreamTrack):
    """A microphone saying a 440 Hz tone at half scale, 20 ms frames of 48 kHz mono s16."""

    def __init__(self, hz: float = 440.0, amplitude: float = 0.5) -> None:
        super().__init__()
        self.hz, self.amplitude = hz, amplitude
        self._sent = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        rate, n = 48_000, 960
        if hasattr(self, "_timestamp"):
            self._timestamp += n
            wait = self._start + self._timestamp / rate - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
        else:
            self._start = asyncio.get_running_loop().time()
            self._timestamp = 0
        t = (np.arange(n) + self._sent) / rate
        self._sent += n
        samples = (self.amplitude * 32767 * np.sin(2 * math.pi * self.hz * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, self._timestamp, fractions.Fraction(1, rate)
        return frame


class Viewer:
    """One console viewer of one session."""

    def __init__(self, loop: Loopback, session: str, bed: str, *, microphone: MediaStreamTrack | None = None) -> None:
        self.loop, self.session, self.bed = loop, session, bed
        self.inbox: asyncio.Queue[Signal] = asyncio.Queue()
        self.states: list[Signal] = []
        self.pc = RTCPeerConnection()
        self.microphone = microphone
        self.video: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        self.offer_sdp = ""
        self.answer_sdp = ""

        @self.pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and not self.video.done():
                self.video.set_result(track)

    async def watch(self) -> None:
        await self.loop.publisher.handle(Signal("watch", session=self.session, bed=self.bed))

    async def next_signal(self, *types: str) -> Signal:
        """The next message for this viewer of one of ``types`` (states are kept in ``states`` as they pass)."""
        async with asyncio.timeout(WAIT_S):
            while True:
                sig = await self.inbox.get()
                if sig.type == "state":
                    self.states.append(sig)
                if sig.type in types:
                    return sig

    async def answer(self, *, trickle: bool = False) -> None:
        """Wait for the offer and answer it, the microphone on the audio line if there is one; ``trickle`` sends the
        candidates in ``candidate`` messages after the answer, as a browser does, then an end-of-candidates."""
        offer = await self.next_signal("offer", "hangup")
        if offer.type == "hangup":
            raise AssertionError(f"hung up instead of offering: {offer.reason}")
        self.offer_sdp = offer.sdp
        await self.pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        if self.microphone is not None and "m=audio" in offer.sdp:  # a browser has no audio line to put it on otherwise
            self.pc.addTrack(self.microphone)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.answer_sdp = self.pc.localDescription.sdp
        if not trickle:
            await self.send(Signal("answer", session=self.session, sdp=self.answer_sdp))
            return
        kept, candidates, mid, index = [], [], None, -1
        for line in self.answer_sdp.splitlines():
            if line.startswith("m="):
                index += 1
            elif line.startswith("a=mid:"):
                mid = line[len("a=mid:") :]
            if line.startswith("a=candidate:"):
                candidates.append((line[2:], mid, index))
            elif not line.startswith("a=end-of-candidates"):
                kept.append(line)
        assert candidates, "the viewer gathered no candidates"
        await self.send(Signal("answer", session=self.session, sdp="\r\n".join(kept) + "\r\n"))
        for line, m, i in candidates:
            await self.send(Signal("candidate", session=self.session, candidate=line, sdp_mid=m, sdp_mline_index=i))
        await self.send(Signal("candidate", session=self.session, candidate="", sdp_mid=mid, sdp_mline_index=0))

    async def live(self) -> None:
        await self.until_state("live")

    async def until_state(self, state: str) -> Signal:
        for sig in self.states:
            if sig.state == state:
                return sig
        while True:
            sig = await self.next_signal("state")
            if sig.state == state:
                return sig

    async def frame(self) -> VideoFrame:
        async with asyncio.timeout(WAIT_S):
            track = await self.video
            frame = await track.recv()
        assert isinstance(frame, VideoFrame)
        return frame

    async def pattern(self, tries: int = 5) -> tuple[str, int]:
        """(bed, t_ms) from the next frame the test pattern reads on; VP8 under rate control can deliver a frame
        with a stroke missing, which ``read_back`` refuses rather than misreads, so a few are allowed."""
        errors = []
        for _ in range(tries):
            try:
                return read_back((await self.frame()).to_ndarray(format="rgb24"))
            except PatternUnreadable as exc:
                errors.append(str(exc))
        raise AssertionError(f"{tries} frames in a row unreadable: {errors}")

    async def send(self, sig: Signal) -> None:
        # through the codec, as the hub would relay it
        await self.loop.publisher.handle(decode_signal(encode_signal(sig)))

    async def close(self) -> None:
        await self.pc.close()


class Loopback:
    """The hub's relaying, in process: publisher signals to viewers' inboxes, camera signals to ``cameras``."""

    def __init__(self) -> None:
        self.viewers: dict[str, Viewer] = {}
        self.cameras: list[Signal] = []
        self.camera_changed = asyncio.Event()
        self.publisher: Publisher

    def send(self, sig: Signal) -> None:
        sig = decode_signal(encode_signal(sig))  # every message must survive the wire codec
        if sig.type == "camera":
            self.cameras.append(sig)
            self.camera_changed.set()
        elif sig.session in self.viewers:
            self.viewers[sig.session].inbox.put_nowait(sig)

    def viewer(self, session: str, bed: str, **kw: object) -> Viewer:
        v = Viewer(self, session, bed, **kw)  # type: ignore[arg-type]
        self.viewers[session] = v
        return v

    async def camera_signals(self, n: int) -> list[Signal]:
        async with asyncio.timeout(WAIT_S):
            while len(self.cameras) < n:
                self.camera_changed.clear()
                await self.camera_changed.wait()
        return self.cameras


async def wait_for(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll ``predicate`` on the loop (no sleeping thread) until it holds or ``timeout`` passes."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
