"""The video system tests' parts: coturn on loopback, a hub whose file names it, ``teleicu edge`` with test-pattern
cameras, and an aiortc viewer that signals only through the hub, as the console does (``video_support`` has the
hub-less loopback viewer of the publisher's own tests)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from config_support import default_raw
from support import HubProcess, auth_headers, start_hub, wait_until

from ingest.video.coturn import Coturn, start_coturn
from wire.video_signal import Signal, decode_signal, encode_signal


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """coturn on loopback with a fresh secret; fails (never skips) where turnserver is missing."""
    for _ in range(5):
        port = random.randint(20000, 29999)
        low = random.randint(50000, 59000)
        turn = start_coturn(tmp_path / f"coturn-{port}", port=port, relay_ports=(low, low + 200))
        wait_until(turn.listening, "coturn to listen", timeout=10)
        if turn.proc.poll() is None:
            break
    else:
        raise AssertionError(f"coturn would not start: {turn.log.read_text()[-2000:]}")
    try:
        yield turn
    finally:
        turn.stop()


def video_hub(tmp: Path, turn: Coturn | None, **video: object) -> HubProcess:
    section: dict[str, object] = dict(video)
    if turn is not None:
        section["turn"] = {"urls": [turn.url], "secret_file": str(turn.secret_file)}
    path = tmp / "hub-video.yaml"
    path.write_text(yaml.safe_dump(default_raw("hub.yaml") | {"video": section}))
    return start_hub(tmp, extra=("--config", str(path)))


@dataclass
class EdgeProcess:
    proc: subprocess.Popen
    config: Path
    log: Path
    stats: Path

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return json.loads(self.stats.read_text()) if self.stats.exists() else {}


def start_camera_edge(hub: HubProcess, tmp: Path, agent: str, ward: str, cameras: list[dict]) -> EdgeProcess:
    """``teleicu edge`` with no monitors, only the cameras given (each a ``cameras:`` entry of the edge file)."""
    beds = [c["bed"] for c in cameras]
    hub.agent_auth(agent, ward, beds)  # registers the agent and its beds, writes its secret
    cfg = {"agent": {"id": agent, "ward": ward},
           "hub": {"url": f"ws://127.0.0.1:{hub.port}/ws/edge", "secret_file": str(hub.db.parent / f"{agent}.secret")},
           "uplink": {"spool": str(tmp / f"{agent}.spool.sqlite3")},
           "devices": [], "cameras": cameras}  # fmt: skip
    path = tmp / f"{agent}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    log = tmp / f"{agent}.log"
    stats = tmp / f"{agent}.stats.json"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "teleicu", "edge", "--config", str(path), "--stats-file", str(stats),
                                 "--log-level", "info"], stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip
    return EdgeProcess(proc, path, log, stats)


@dataclass
class Viewer:
    """An aiortc peer that signals only through the hub's ``/ws/video``, as the console page does."""

    hub: HubProcess
    bed: str
    as_: str = "intensivist"
    relay_only: bool = False
    talk_track: object | None = None  # an audio track to send as talk-back
    states: list[Signal] = field(default_factory=list)
    frames: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=240))
    session: Signal | None = None
    ws: object = None
    pc: object = None
    task: asyncio.Task | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    readers: set[asyncio.Task] = field(default_factory=set)  # kept referenced while they run
    decoded: int = 0

    async def open(self) -> Viewer:
        from websockets.asyncio.client import connect

        self.ws = await connect(f"ws://127.0.0.1:{self.hub.port}/ws/video?bed={self.bed}",
                                additional_headers=auth_headers(self.hub.base, self.as_), open_timeout=10)  # fmt: skip
        self.task = asyncio.create_task(self._signalling())
        return self

    async def _signalling(self) -> None:
        from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
        from aiortc.rtcconfiguration import RTCIceTransportPolicy
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                sig = decode_signal(raw, session_required=False)
                if sig.type == "session":
                    self.session = sig
                    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential")) for s in sig.ice_servers]
                    policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
                    self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))

                    @self.pc.on("track")
                    def on_track(track) -> None:  # type: ignore[no-untyped-def]
                        if track.kind == "video":
                            reader = asyncio.ensure_future(self._read(track))
                            self.readers.add(reader)
                            reader.add_done_callback(self.readers.discard)
                elif sig.type == "offer":
                    await self.pc.setRemoteDescription(RTCSessionDescription(sig.sdp, "offer"))
                    if self.talk_track is not None:
                        for t in self.pc.getTransceivers():
                            if t.kind == "audio":
                                t.direction = "sendonly"
                                t.sender.replaceTrack(self.talk_track)
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    await self.ws.send(encode_signal(Signal("answer", sdp=self.pc.localDescription.sdp)))
                elif sig.type in ("state", "hangup"):
                    self.states.append(sig)
        except ConnectionClosed:
            pass
        finally:
            self.ended.set()

    async def _read(self, track) -> None:  # type: ignore[no-untyped-def]
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.decoded += 1
            if self.frames.full():
                self.frames.get_nowait()
            self.frames.put_nowait(frame.to_ndarray(format="rgb24"))

    async def diagnosis(self) -> str:
        """What this viewer's connection got, for a failure message: its states and its inbound RTP counts."""
        parts = [f"hub/edge states {[(s.type, s.state, s.reason) for s in self.states]}", f"{self.decoded} frames decoded",
                 f"{len(self.readers)} readers running"]
        if self.pc is not None:
            parts.append(f"pc {self.pc.connectionState}/{self.pc.iceConnectionState}")
            with contextlib.suppress(Exception):  # stats of a closing connection may be gone; this is only a diagnosis
                for stat in (await self.pc.getStats()).values():
                    if stat.type == "inbound-rtp":
                        parts.append(f"inbound {stat.kind}: {stat.packetsReceived} packets, {stat.packetsLost} lost")
        return "; ".join(parts)

    async def talk(self, on: bool) -> None:
        await self.ws.send(json.dumps({"type": "talk", "on": on}))

    async def hang_up(self) -> None:
        await self.ws.send(json.dumps({"type": "hangup"}))
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        if self.pc is not None:
            await self.pc.close()
        if self.task is not None:
            await self.task
