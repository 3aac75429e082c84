"""A bed's video panel in Debian's Chromium: a real hub, ``teleicu edge`` with a test-pattern camera, and a browser
with a fake microphone. The intensivist opens the video, sees frames advance, holds "Hold to talk" and is heard at
the bedside (the edge's talk-back recording has sound), closes the panel, and the camera stops."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from browser_support import launched_chromium, screenshot, sign_in_through_the_page
from support import PASSWORD, feed_news2_alarm, get_json, wait_until
from video_system_support import start_camera_edge, video_hub

pytestmark = pytest.mark.integration

FAKE_MEDIA = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required")


def rms_of(path: Path) -> tuple[float, float]:
    """(seconds, RMS) of a recorded talk-back file."""
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(float) / 32768
        return w.getnframes() / w.getframerate(), float(np.sqrt(np.mean(pcm**2))) if pcm.size else 0.0


def test_the_video_panel_shows_live_frames_talks_to_the_bedside_and_stops_the_camera_when_closed(tmp_path: Path) -> None:
    hub = video_hub(tmp_path, None)
    talk = tmp_path / "talk.wav"
    edge = start_camera_edge(hub, tmp_path, "cam-A", "A", [{"bed": "A-01", "source": "testpattern", "talkback_output": f"wav:{talk}"}])
    camera = lambda: get_json(f"{hub.base}/api/beds/A-01/video")  # noqa: E731
    try:
        feed_news2_alarm(hub, "A", "A-01")  # the bed on the census
        wait_until(lambda: camera()["camera"], "the camera gateway's link")
        with launched_chromium(*FAKE_MEDIA) as browser:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            sign_in_through_the_page(page, hub.base, "intensivist", PASSWORD, "/bed/A-01")
            page.wait_for_selector("#video-panel .video-open:not([disabled])", timeout=15_000)
            assert "Video starts only when you open it" in page.text_content(".video-state")
            assert not camera()["running"]  # nothing streams until someone opens the panel

            page.click(".video-open")
            page.wait_for_function("() => document.querySelector('#video-panel').dataset.video === 'live'", timeout=20_000)
            page.wait_for_function("() => document.querySelector('.video-view').videoWidth > 0", timeout=15_000)
            assert page.evaluate("() => document.querySelector('.video-view').videoWidth") == 640
            frames = "() => document.querySelector('.video-view').getVideoPlaybackQuality().totalVideoFrames"
            first = page.evaluate(frames)
            page.wait_for_function(f"(n) => ({frames})() > n + 10", arg=first, timeout=10_000)  # frames advance
            assert page.text_content(".video-state") == "Live"
            assert camera()["running"] and camera()["viewers"] == 1
            screenshot(page, "bed-video-1600x1000")

            # push-to-talk: held for a while, the bedside hears the (fake) microphone
            talk_button = page.locator(".video-talk")
            assert talk_button.is_visible()
            talk_button.hover()
            page.mouse.down()
            page.wait_for_function("() => document.querySelector('.video-talk').getAttribute('aria-pressed') === 'true'")
            wait_until(lambda: any(tmp_path.glob("talk-*.wav")), "the bedside to start playing the talk", timeout=20)
            held_at = page.evaluate(frames)
            page.wait_for_function(f"(n) => ({frames})() > n + 30", arg=held_at, timeout=10_000)  # talk for ~2 s of video
            page.mouse.up()
            page.wait_for_function("() => document.querySelector('.video-talk').getAttribute('aria-pressed') === 'false'")

            page.click(".video-open")  # "Close video"
            wait_until(lambda: not camera()["running"], "the camera to stop after the panel closed", timeout=15)
            assert page.text_content(".video-state") in ("Video closed.", "Camera ready. Video starts only when you open it.")
            assert not errors, errors
        recorded = sorted(tmp_path.glob("talk-*.wav"))
        assert len(recorded) == 1
        seconds, rms = rms_of(recorded[0])
        assert seconds > 1.0 and rms > 0.005, (seconds, rms)  # Chromium's fake microphone beeps; silence would be ~0
        talks = [e for e in get_json(f"{hub.base}/api/audit?target=bed:A-01", as_="admin")["entries"] if e["action"] == "video.talk"]
        assert len(talks) == 1 and talks[0]["actor"] == "intensivist"
    finally:
        edge.stop()
        hub.stop()
