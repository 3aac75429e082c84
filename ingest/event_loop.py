"""How the hub's process runs its event loop: on uvloop when it is installed, with the garbage collector tuned.

``teleicu hub`` used ``asyncio.run``, which always makes the standard loop, so
uvicorn's choice of uvloop never applied. ``run`` makes a uvloop loop when the
package is there (``uvicorn[standard]`` brings it) and the standard one when not.

``settle_after_start`` is called once the hub has started: everything made so
far (modules, configuration, score tables, the census) is frozen out of the
collector's sight (``gc.freeze``), and the youngest generation is collected less
often. Most of the hub's garbage is freed by reference counting; at 2,000 beds
the collector's full passes over the start-up heap paused the loop for about
50 ms every 1.4 s (issue 19's profile).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: (generation 0, 1, 2) thresholds once started; Python's defaults are (700, 10, 10)
GC_THRESHOLDS = (20_000, 20, 20)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed, else None (the standard loop)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def settle_after_start() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
