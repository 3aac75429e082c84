"""ingest.event_loop: the hub runs on uvloop, and once started its heap is frozen out of the collector's way."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from ingest.event_loop import GC_THRESHOLDS, run


def test_the_hub_loop_is_uvloop() -> None:
    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run(which()).startswith("uvloop")


def test_settling_freezes_the_start_up_heap_and_raises_the_thresholds() -> None:
    # in a child process: freezing the test runner's own heap would outlive this test
    code = ("import gc; from ingest.event_loop import settle_after_start; before = gc.get_freeze_count(); "
            "settle_after_start(); print(before, gc.get_freeze_count(), *gc.get_threshold())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    before, frozen, *thresholds = map(int, out)
    assert before == 0 and frozen > 10_000
    assert tuple(thresholds) == GC_THRESHOLDS
