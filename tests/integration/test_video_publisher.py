"""The edge's video publisher against real aiortc viewers on loopback: frames, shared sources, hang-up, talk-back."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import aioice.ice
import pytest
from video_support import Loopback, SineTrack, wait_for

from edge_agent.config import CameraConfig
from edge_agent.video.publisher import Publisher
from wire.video_signal import Signal

pytestmark = pytest.mark.integration

CAMERAS = [
    CameraConfig("A-01", "testpattern", talkback_output="none"),
    CameraConfig("A-02", "testpattern", talkback=False),
    CameraConfig("A-03", "v4l2:/dev/video-teleicu-missing"),
]


def run(scenario: Callable[[Loopback, Publisher], Awaitable[None]], cameras: list[CameraConfig] = CAMERAS, **kw: object) -> None:
    async def main() -> None:
        loop = Loopback()
        async with Publisher(cameras, loop.send, **kw) as pub:  # type: ignore[arg-type]
            loop.publisher = pub
            try:
                await scenario(loop, pub)
            finally:
                for v in loop.viewers.values():
                    await v.close()

    asyncio.run(main())


def test_a_viewer_sees_the_bed_live() -> None:
    async def scenario(loop: Loopback, pub: Publisher) -> None:
        v = loop.viewer("s1", "A-01")
        await v.watch()
        await v.answer(trickle=True)  # candidates as a browser sends them
        await v.live()
        assert [s.state for s in v.states] == ["connecting", "live"]
        assert "m=video" in v.offer_sdp and "VP8" in v.offer_sdp and "a=sendonly" in v.offer_sdp
        for _ in range(5):
            bed, t_ms = await v.pattern()
            assert bed == "A-01" and abs(time.time() * 1000 - t_ms) < 2000

    run(scenario)


def test_two_viewers_share_one_source_and_the_last_to_leave_stops_it() -> None:
    async def scenario(loop: Loopback, pub: Publisher) -> None:
        a, b = loop.viewer("s1", "A-01"), loop.viewer("s2", "A-01")
        for v in (a, b):
            await v.watch()
            await v.answer()
            await v.live()
            assert (await v.pattern())[0] == "A-01"
        assert pub.sources.opened == 1 and pub.sources.viewers("A-01") == 2
        assert [(c.bed, c.running) for c in loop.cameras] == [("A-01", True)]
        await a.send(Signal("hangup", session="s1", reason="closed the tab"))
        assert (await b.pattern())[0] == "A-01"  # the other viewer goes on
        assert pub.sources.running("A-01") and len(loop.cameras) == 1
        await b.send(Signal("hangup", session="s2"))
        cams = await loop.camera_signals(2)
        assert [(c.bed, c.running) for c in cams] == [("A-01", True), ("A-01", False)]
        assert not pub.sources.running("A-01") and pub.sessions == {}
        # watched again: the source opens again
        c = loop.viewer("s3", "A-01")
        await c.watch()
        await c.answer()
        await c.live()
        assert pub.sources.opened == 2 and [x.running for x in await loop.camera_signals(3)] == [True, False, True]

    run(scenario)


def test_a_missing_camera_fails_the_session_with_a_reason() -> None:
    async def scenario(loop: Loopback, pub: Publisher) -> None:
        v = loop.viewer("s1", "A-03")
        await v.watch()
        failed = await v.until_state("failed")
        assert failed.reason == "camera not found: /dev/video-teleicu-missing does not exist"
        assert (await v.next_signal("hangup")).reason == failed.reason
        assert pub.sessions == {} and not loop.cameras

    run(scenario)


def test_unknown_bed_and_too_many_viewers_are_refused() -> None:
    async def scenario(loop: Loopback, pub: Publisher) -> None:
        x = loop.viewer("x", "B-99")
        await x.watch()
        assert "no camera for bed B-99" in (await x.until_state("failed")).reason
        a, b = loop.viewer("s1", "A-01"), loop.viewer("s2", "A-02")
        await a.watch()
        await a.answer()
        await b.watch()
        assert "at most 1" in (await b.until_state("failed")).reason
        await a.live()

    run(scenario, max_sessions=1)


def test_a_viewer_that_goes_away_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The viewer vanishes without a hangup message: ICE consent freshness fails (every 5 s, 6 misses: ~30 s; here
    every 0.3 s, so ~2 s), and the edge ends the session and stops the camera."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.3)

    async def scenario(loop: Loopback, pub: Publisher) -> None:
        v = loop.viewer("s1", "A-01")
        await v.watch()
        await v.answer()
        await v.live()
        await v.pc.close()
        failed = await v.until_state("failed")
        assert failed.reason in ("ICE failed: no route to the viewer", "the viewer closed the connection")
        assert (await v.next_signal("hangup")).reason == failed.reason
        assert [c.running for c in await loop.camera_signals(2)] == [True, False]

    run(scenario)


def test_a_viewer_that_never_answers_is_timed_out() -> None:
    async def scenario(loop: Loopback, pub: Publisher) -> None:
        v = loop.viewer("s1", "A-01")
        await v.watch()
        await v.next_signal("offer")
        assert "did not connect within" in (await v.until_state("failed")).reason
        assert not pub.sources.running("A-01")

    run(scenario, connect_timeout_s=1.0)


def test_talkback_is_heard_only_while_talk_is_on() -> None:
    async def scenario(loop: Loopback, pub: Publisher) -> None:
        v = loop.viewer("s1", "A-01", microphone=SineTrack())
        await v.watch()
        await v.answer()
        await v.live()
        assert "m=audio" in v.offer_sdp and "a=recvonly" in v.offer_sdp
        tb = pub.sessions["s1"].talkback
        assert tb is not None
        await wait_for(lambda: tb.frames >= 25)  # arriving, but push-to-talk is off: discarded, not measured
        assert tb.frames_talk == 0 and tb.frames_discarded >= 25 and tb.rms_peak == 0.0
        await v.send(Signal("talk", session="s1", on=True))
        await wait_for(lambda: tb.frames_talk >= 50)
        assert tb.rms_mean > 0.15, tb.rms_mean  # a half-scale sine is 0.35 RMS; silence would be ~0
        await v.send(Signal("talk", session="s1", on=False))
        heard = tb.frames_talk
        before = tb.frames
        await wait_for(lambda: tb.frames >= before + 25)
        assert tb.frames_talk <= heard + 2  # frames already in flight when the button was released

    run(scenario)


def test_silence_measures_as_silence() -> None:
    """Able to fail the other way: a silent microphone must not look like speech."""

    async def scenario(loop: Loopback, pub: Publisher) -> None:
        v = loop.viewer("s1", "A-01", microphone=SineTrack(amplitude=0.0))
        await v.watch()
        await v.answer()
        await v.live()
        await v.send(Signal("talk", session="s1", on=True))
        tb = pub.sessions["s1"].talkback
        assert tb is not None
        await wait_for(lambda: tb.frames_talk >= 25)
        assert tb.rms_peak < 0.01

    run(scenario)


def test_no_talkback_no_audio_line() -> None:
    async def scenario(loop: Loopback, pub: Publisher) -> None:
        v = loop.viewer("s1", "A-02", microphone=SineTrack())
        await v.watch()
        await v.answer()
        await v.live()
        assert "m=audio" not in v.offer_sdp and "m=audio" not in v.answer_sdp
        sess = pub.sessions["s1"]
        assert sess.talkback is None and sess.pc is not None
        assert [t.kind for t in sess.pc.getTransceivers()] == ["video"]
        await v.send(Signal("talk", session="s1", on=True))  # ignored
        assert (await v.pattern())[0] == "A-02"

    run(scenario)


def test_an_answer_adding_audio_is_refused() -> None:
    """A viewer cannot put an audio line the edge did not offer into its answer (talk-back off for the bed)."""

    async def scenario(loop: Loopback, pub: Publisher) -> None:
        donor = loop.viewer("d", "A-01", microphone=SineTrack())  # a talk-back bed's answer has an audio section
        await donor.watch()
        await donor.answer()
        audio = donor.answer_sdp[donor.answer_sdp.index("m=audio") :]
        v = loop.viewer("s1", "A-02")
        await v.watch()
        offer = await v.next_signal("offer")
        from aiortc import RTCSessionDescription

        await v.pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        await v.pc.setLocalDescription(await v.pc.createAnswer())
        await v.send(Signal("answer", session="s1", sdp=v.pc.localDescription.sdp + audio))
        failed = await v.until_state("failed")
        assert failed.reason.startswith("bad answer from the viewer")
        assert "s1" not in pub.sessions

    run(scenario)


def test_talkback_to_a_wav_file_per_session(tmp_path: Path) -> None:
    cams = [CameraConfig("A-01", "testpattern", talkback_output=f"wav:{tmp_path}/talk.wav")]
    (tmp_path / "talk-s1.wav").write_bytes(b"an earlier file")

    async def scenario(loop: Loopback, pub: Publisher) -> None:
        v = loop.viewer("s1", "A-01", microphone=SineTrack())
        await v.watch()
        await v.answer()
        await v.live()
        await v.send(Signal("talk", session="s1", on=True))
        tb = pub.sessions["s1"].talkback
        assert tb is not None
        await wait_for(lambda: tb.frames_talk >= 50)
        await v.send(Signal("hangup", session="s1"))
        await wait_for(lambda: tb._recorder is None)

    run(scenario, cams)
    assert (tmp_path / "talk-s1.wav").read_bytes() == b"an earlier file"  # never overwritten
    with wave.open(str(tmp_path / "talk-s1-2.wav")) as w:
        assert w.getnframes() >= 48_000 * 0.9 and w.getsampwidth() == 2  # about a second of speech, nothing else
