"""Bedside video end to end: ``teleicu hub`` with coturn beside it, ``teleicu edge`` with test-pattern cameras, and
aiortc viewers that signal only through the hub. What a viewer decodes is read back from the burned-in pattern."""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from support import HubProcess, get_json, wait_until
from video_support import SineTrack
from video_system_support import EdgeProcess, Viewer, coturn, start_camera_edge, video_hub  # noqa: F401 - coturn: fixture

from edge_agent.video.test_pattern import PatternUnreadable, read_back
from ingest.video.coturn import Coturn

pytestmark = pytest.mark.integration


def camera(hub: HubProcess, bed: str) -> dict:
    return get_json(f"{hub.base}/api/beds/{bed}/video")


async def beds_seen(viewer: Viewer, n: int = 5) -> list[tuple[str, int]]:
    """The bed id and time read back from ``n`` decoded frames (frames caught mid-change are skipped)."""
    out: list[tuple[str, int]] = []
    unreadable = 0
    try:
        async with asyncio.timeout(30):
            while len(out) < n:
                frame = await viewer.frames.get()
                try:
                    out.append(read_back(frame))
                except PatternUnreadable:
                    unreadable += 1
    except TimeoutError:
        raise AssertionError(f"{viewer.bed}: {len(out)} frames read back, {unreadable} unreadable in 30 s; {await viewer.diagnosis()}") from None
    return out


def edge_with_cameras(hub: HubProcess, tmp: Path, cameras: list[dict]) -> EdgeProcess:
    edge = start_camera_edge(hub, tmp, "cam-A", "A", cameras)
    try:
        wait_until(lambda: edge.proc.poll() is not None or all(camera(hub, c["bed"])["camera"] for c in cameras),
                   "the edge's video link to the hub", timeout=30)  # fmt: skip
        assert edge.proc.poll() is None, edge.log.read_text()[-3000:]
    except BaseException:
        edge.stop()
        raise
    return edge


@pytest.fixture
def hub_and_turn(tmp_path: Path, coturn: Coturn):  # type: ignore[no-untyped-def]  # noqa: F811
    hub = video_hub(tmp_path, coturn)
    try:
        yield hub, coturn
    finally:
        hub.stop()


def test_viewers_see_the_bed_they_asked_for_and_share_one_source(hub_and_turn, tmp_path: Path) -> None:
    hub, _ = hub_and_turn
    edge = edge_with_cameras(hub, tmp_path, [{"bed": "A-01", "source": "testpattern"}, {"bed": "A-02", "source": "testpattern"}])

    async def scenario() -> None:
        async def sees(v: Viewer, bed: str) -> None:
            seen = await beds_seen(v)
            assert {b for b, _ in seen} == {bed}
            now = time.time() * 1000
            assert all(now - 5000 < t <= now for _, t in seen), (seen, now)  # the burned-in time is live, not replayed

        first = await Viewer(hub, "A-01").open()
        second = await Viewer(hub, "A-01", as_="teleicu-nurse").open()
        await sees(first, "A-01")
        await sees(second, "A-01")
        status = camera(hub, "A-01")
        assert (status["running"], status["viewers"]) == (True, 2)
        await first.hang_up()
        await sees(second, "A-01")  # the other viewer goes on
        await second.hang_up()
        other = await Viewer(hub, "A-02", as_="nurse-a").open()
        await sees(other, "A-02")
        await other.hang_up()

    try:
        asyncio.run(scenario())
        wait_until(lambda: not camera(hub, "A-01")["running"] and not camera(hub, "A-02")["running"], "the cameras to stop", timeout=15)
    finally:
        stats = edge.stop()
    # one source per bed: A-01 opened once for two viewers, and closed once when the last left
    assert stats["video"]["in_watch"] == 3 and stats["video"]["out_camera"] == 4, stats["video"]


def test_relay_only_media_goes_through_coturn(hub_and_turn, tmp_path: Path) -> None:
    hub, turn = hub_and_turn
    edge = edge_with_cameras(hub, tmp_path, [{"bed": "A-01", "source": "testpattern"}])

    async def scenario() -> None:
        v = await Viewer(hub, "A-01", relay_only=True).open()
        assert {b for b, _ in await beds_seen(v)} == {"A-01"}
        assert v.session is not None and any("username" in s for s in v.session.ice_servers)
        mine = [line for line in v.pc.localDescription.sdp.splitlines() if line.startswith("a=candidate:")]
        assert mine and all(" typ relay " in line for line in mine), mine  # no other path was even offered
        await v.hang_up()

    try:
        asyncio.run(scenario())
    finally:
        edge.stop()
    log = turn.log.read_text()
    assert ":intensivist>" in log and "ALLOCATE processed, success" in log, log[-3000:]  # its short-lived credential


def test_a_viewer_that_vanishes_is_cleaned_up_and_the_camera_stops(hub_and_turn, tmp_path: Path) -> None:
    hub, _ = hub_and_turn
    edge = edge_with_cameras(hub, tmp_path, [{"bed": "A-01", "source": "testpattern"}])

    async def scenario() -> None:
        v = await Viewer(hub, "A-01").open()
        await beds_seen(v, 2)
        v.ws.transport.abort()  # gone without a word: no hang-up, no close frame, its peer connection left open
        await v.ended.wait()
        t0 = time.monotonic()
        await asyncio.to_thread(wait_until, lambda: not camera(hub, "A-01")["running"], "the camera to stop", 35)
        assert time.monotonic() - t0 < 30  # within the ICE consent timeout
        await v.pc.close()

    try:
        asyncio.run(scenario())
    finally:
        stats = edge.stop()
    assert stats["video"]["in_hangup"] == 1


def test_a_camera_that_fails_to_open_is_reported_with_its_reason(hub_and_turn, tmp_path: Path) -> None:
    hub, _ = hub_and_turn
    edge = edge_with_cameras(hub, tmp_path, [{"bed": "A-01", "source": "v4l2:/dev/video-teleicu-missing"}])

    async def scenario() -> None:
        v = await Viewer(hub, "A-01").open()
        await asyncio.wait_for(v.ended.wait(), 30)
        failed = [s for s in v.states if s.type == "state" and s.state == "failed"]
        assert failed and failed[0].reason.startswith("camera not found: /dev/video-teleicu-missing"), v.states

    try:
        asyncio.run(scenario())
    finally:
        edge.stop()
    assert not camera(hub, "A-01")["running"]


def test_talk_back_through_the_hub_plays_at_the_bedside(hub_and_turn, tmp_path: Path) -> None:
    hub, _ = hub_and_turn
    out = tmp_path / "talk.wav"
    edge = edge_with_cameras(hub, tmp_path, [{"bed": "A-01", "source": "testpattern", "talkback_output": f"wav:{out}"}])

    async def scenario() -> None:
        v = await Viewer(hub, "A-01", talk_track=SineTrack()).open()
        await beds_seen(v, 2)
        assert v.session is not None and v.session.talkback
        await v.talk(True)
        await asyncio.sleep(2.0)  # speak for two seconds
        await v.talk(False)
        await v.hang_up()

    try:
        asyncio.run(scenario())
        wait_until(lambda: not camera(hub, "A-01")["running"], "the session to end", timeout=15)
    finally:
        edge.stop()
    files = sorted(tmp_path.glob("talk-*.wav"))
    assert len(files) == 1, files
    with wave.open(str(files[0])) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(float) / 32768
        seconds = w.getnframes() / w.getframerate()
    assert seconds > 1.0 and np.sqrt(np.mean(pcm**2)) > 0.1, (seconds, np.sqrt(np.mean(pcm**2)))
    talks = [e for e in get_json(f"{hub.base}/api/audit?target=bed:A-01", as_="admin")["entries"] if e["action"] == "video.talk"]
    assert len(talks) == 1 and talks[0]["actor"] == "intensivist"
