"""Edge CPU for one live 640x480 15 fps test-pattern stream, and the read-back rate of the frames a viewer receives.

The edge (``Publisher``) runs in this process; the viewer, a real aiortc peer
connection, in a child process (so its decoding is not counted), signalling
over the child's stdin/stdout. Prints process CPU seconds per wall second idle
and while streaming, and how many received frames read back exactly.
Run: ``python bench/video_edge_cpu.py [seconds]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

VIEWER = r"""
import asyncio, json, sys, time
from aiortc import RTCPeerConnection, RTCSessionDescription
from edge_agent.video.test_pattern import read_back, PatternUnreadable
async def main():
    loop = asyncio.get_running_loop()
    offer = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    pc = RTCPeerConnection()
    got = asyncio.get_running_loop().create_future()
    pc.on("track", lambda t: got.done() or got.set_result(t))
    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    print(json.dumps({"sdp": pc.localDescription.sdp}), flush=True)
    track = await got
    ok = bad = 0; end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end:
        f = await track.recv()
        try:
            read_back(f.to_ndarray(format="rgb24")); ok += 1
        except PatternUnreadable:
            bad += 1
    print(json.dumps({"ok": ok, "bad": bad}), flush=True)
    await pc.close()
asyncio.run(main())
"""


async def main(seconds: float) -> None:
    from edge_agent.config import CameraConfig
    from edge_agent.video.publisher import Publisher, apply_bitrate
    from wire.video_signal import Signal

    cams = [CameraConfig("A-01", "testpattern", talkback=False)]
    apply_bitrate(cams)
    out: asyncio.Queue[Signal] = asyncio.Queue()
    async with Publisher(cams, out.put_nowait) as pub:
        c0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        idle = (time.process_time() - c0) / (time.monotonic() - t0)
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", VIEWER, str(seconds + 3), stdin=asyncio.subprocess.PIPE,
                                                     stdout=asyncio.subprocess.PIPE)  # fmt: skip
        assert child.stdin and child.stdout
        await pub.handle(Signal("watch", session="bench", bed="A-01"))
        while (sig := await out.get()).type != "offer":
            pass
        child.stdin.write((json.dumps({"sdp": sig.sdp}) + "\n").encode())
        await child.stdin.drain()
        answer = json.loads(await child.stdout.readline())
        await pub.handle(Signal("answer", session="bench", sdp=answer["sdp"]))
        while not ((sig := await out.get()).type == "state" and sig.state == "live"):
            pass
        await asyncio.sleep(2)  # past the start
        c0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        live = (time.process_time() - c0) / (time.monotonic() - t0)
        result = json.loads(await child.stdout.readline())
        await child.wait()
    print(f"edge CPU idle {idle * 100:.1f} %, one live 640x480 15 fps stream {live * 100:.1f} % of one core "
          f"(per stream {(live - idle) * 100:.1f} %)")
    total = result["ok"] + result["bad"]
    print(f"viewer read back {result['ok']}/{total} frames exactly ({100 * result['ok'] / max(total, 1):.1f} %), "
          f"{total / (seconds + 3):.1f} fps received")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0))
