"""The agent's video signalling socket against a stand-in hub on a real socket: hello, auth, relaying, reconnects."""

from __future__ import annotations

import asyncio
import base64

import pytest
from pydantic import SecretStr
from websockets.exceptions import ConnectionClosed
from websockets.asyncio.server import ServerConnection, serve

from edge_agent.config import CameraConfig, UplinkConfig
from edge_agent.video.signalling_link import SignallingLink
from wire.video_signal import Signal, decode_signal, encode_signal

pytestmark = pytest.mark.integration


def test_hello_watch_offer_and_reconnect_closing_sessions() -> None:
    async def scenario() -> None:
        seen: list[tuple[str, str | None]] = []
        inbox: asyncio.Queue[Signal | None] = asyncio.Queue()
        conns: list[ServerConnection] = []

        async def hub(ws: ServerConnection) -> None:
            seen.append((ws.request.path, ws.request.headers.get("Authorization")))
            conns.append(ws)
            try:
                async for raw in ws:
                    await inbox.put(decode_signal(raw))
            except ConnectionClosed:
                pass
            finally:
                await inbox.put(None)

        async with serve(hub, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            cfg = UplinkConfig(url=f"ws://127.0.0.1:{port}/ws/edge", secret=SecretStr("s" * 24), backoff_initial_s=0.05, backoff_max_s=0.2)
            link = SignallingLink(cfg, "edge-A", [CameraConfig("A-01", "testpattern", talkback=False)])
            task = asyncio.create_task(link.run())
            try:
                async with asyncio.timeout(20):
                    hello = await inbox.get()
                    assert hello is not None and hello.type == "hello" and hello.cameras == (("A-01", False),)
                    token = base64.b64encode(b"edge-A:" + b"s" * 24).decode()
                    assert seen == [("/ws/edge/video", f"Basic {token}")]
                    await conns[0].send("not json")  # refused, the link stays
                    await conns[0].send(encode_signal(Signal("watch", session="v1", bed="A-01")))
                    got = {s.type: s for s in [await inbox.get() for _ in range(3)] if s}
                    assert got["state"].state == "connecting" and got["state"].session == "v1"
                    assert got["camera"].bed == "A-01" and got["camera"].running
                    assert got["offer"].session == "v1" and got["offer"].sdp.startswith("v=0")
                    assert link.counters["signals_refused"] == 1
                    await conns[0].close()  # the hub goes away: the session is closed, the link comes back
                    while await inbox.get() is not None:
                        pass
                    hello2 = await inbox.get()
                    assert hello2 is not None and hello2.type == "hello" and len(seen) == 2
                    assert link.publisher is not None and link.publisher.sessions == {}
                    assert not link.publisher.sources.running("A-01")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
