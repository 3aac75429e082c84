"""Talk-back: the console's voice played at the bedside while push-to-talk is held, and measured.

One ``Talkback`` per session whose bed allows it consumes the audio track the
viewer sends. Frames arriving while push-to-talk is off are read and
discarded (nothing is played, nothing builds up); while it is on they are
measured (RMS of the samples, full scale = 1.0) and passed to the output:

* ``default``: the gateway's sound output (PulseAudio, else ALSA) through
  aiortc's ``MediaRecorder``; if there is none, the error is logged once and
  the audio is still measured;
* ``wav:/path/file.wav``: ``/path/file-<session>.wav``, one file per session
  (never overwriting an earlier one), holding only what was said;
* ``none``: measured only.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from pathlib import Path

import numpy as np
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

log = logging.getLogger(__name__)

QUEUE_FRAMES = 25  # 0.5 s of 20 ms frames between the receiver and the output; beyond it the oldest is dropped
_complained: set[str] = set()  # outputs whose failure was logged already (once per process)


def rms(frame: AudioFrame) -> float:
    """Root mean square of a frame's samples, 1.0 = full scale (integer or float sample formats)."""
    samples = frame.to_ndarray()
    if samples.size == 0:
        return 0.0
    if np.issubdtype(samples.dtype, np.integer):
        scale = float(np.iinfo(samples.dtype).max) + 1.0
        x = samples.astype(np.float64) / scale
    else:
        x = samples.astype(np.float64)
    return math.sqrt(float(np.mean(x * x)))


def wav_path(output: str, session: str) -> Path:
    """``wav:/dir/name.wav`` -> ``/dir/name-<session>.wav``, with ``-2``, ``-3``... rather than overwrite a file."""
    base = Path(output[len("wav:") :])
    tag = re.sub(r"[^A-Za-z0-9_-]", "_", session)[:64] or "session"
    path = base.with_name(f"{base.stem}-{tag}{base.suffix}")
    n = 2
    while path.exists():
        path = base.with_name(f"{base.stem}-{tag}-{n}{base.suffix}")
        n += 1
    return path


class _Spoken(MediaStreamTrack):
    """What was said, as a track for ``MediaRecorder``: only the frames let through, renumbered without gaps."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[AudioFrame | None] = asyncio.Queue(QUEUE_FRAMES)
        self._samples = 0
        self.dropped = 0

    def put(self, frame: AudioFrame) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(frame)

    async def recv(self) -> AudioFrame:
        frame = await self.queue.get()
        if frame is None or self.readyState != "live":
            raise MediaStreamError
        frame.pts = self._samples
        self._samples += frame.samples
        return frame

    def stop(self) -> None:
        super().stop()
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class Talkback:
    """Consume one session's received audio: gate it with push-to-talk, measure it, play or record it."""

    def __init__(self, session: str, bed: str, output: str) -> None:
        self.session, self.bed, self.output = session, bed, output
        self.talking = False
        self.frames = 0  # every frame received
        self.frames_talk = 0  # received while push-to-talk was on (measured, played)
        self.frames_discarded = 0
        self.rms_last = 0.0
        self.rms_peak = 0.0
        self._sum_sq = 0.0
        self.heard = asyncio.Event()  # set when a frame above silence arrives with talk on (tests wait on it)
        self._spoken: _Spoken | None = None
        self._recorder: MediaRecorder | None = None
        self.path: Path | None = None

    @property
    def rms_mean(self) -> float:
        """RMS over every frame heard with talk on."""
        return math.sqrt(self._sum_sq / self.frames_talk) if self.frames_talk else 0.0

    def set_talking(self, on: bool) -> None:
        if on != self.talking:
            log.info("talk-back to bed %s (session %s) %s", self.bed, self.session, "on" if on else "off")
        self.talking = on

    async def run(self, track: MediaStreamTrack) -> None:
        """Read the track until it ends; returns quietly then. Cancelled when the session closes."""
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                self.frames += 1
                if not self.talking or not isinstance(frame, AudioFrame):
                    self.frames_discarded += 1
                    continue
                await self._heard(frame)
        finally:
            await self._close_output()

    async def _heard(self, frame: AudioFrame) -> None:
        level = rms(frame)
        self.frames_talk += 1
        self.rms_last = level
        self.rms_peak = max(self.rms_peak, level)
        self._sum_sq += level * level
        if level > 0.01:
            self.heard.set()
        if self.output == "none":
            return
        if self._spoken is None and self.output not in _complained:
            await self._open_output()
        if self._spoken is not None:
            self._spoken.put(frame)

    async def _open_output(self) -> None:
        spoken = _Spoken()
        try:
            if self.output == "default":
                recorder = self._sound_card()
            else:
                self.path = wav_path(self.output, self.session)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                recorder = MediaRecorder(str(self.path), format="wav")
            recorder.addTrack(spoken)
            await recorder.start()
        except Exception as exc:  # PyAV's errors for a missing device or an unwritable file
            if self.output == "default":
                _complained.add(self.output)  # the same for every session: say it once
            log.error("talk-back output %s for bed %s cannot be opened (%s): the audio is measured but not played",
                      self.output, self.bed, exc)  # fmt: skip
            if self.output != "default":
                self.output = "none"
            return
        self._spoken, self._recorder = spoken, recorder

    @staticmethod
    def _sound_card() -> MediaRecorder:
        errors = []
        for fmt in ("pulse", "alsa"):
            try:
                return MediaRecorder("default", format=fmt)
            except Exception as exc:  # noqa: PERF203 - two tries
                errors.append(f"{fmt}: {exc}")
        raise OSError("; ".join(errors))

    async def _close_output(self) -> None:
        spoken, recorder = self._spoken, self._recorder
        self._spoken = self._recorder = None
        if spoken is not None:
            spoken.stop()
        if recorder is not None:
            try:
                await recorder.stop()
            except Exception as exc:  # closing a file or device must not hide why the session ended
                log.warning("talk-back output of bed %s did not close cleanly: %s", self.bed, exc)
