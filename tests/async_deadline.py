"""Running an async test on its own event loop with a deadline that cannot turn into a hang.

``asyncio.run(asyncio.wait_for(test(), N))`` fails a test that overruns, but only
once the cancelled test has finished unwinding: a task that ignores its
cancellation (a client library that lost it, a retry loop that swallowed it)
then hangs the run until pytest-timeout kills it, with no word about where.
``async_test(deadline_s)`` instead fails the test at its deadline with every
task's stack as it was, and if the test has not stopped ``CLEANUP_S`` after
being cancelled it fails naming the tasks that ignored the cancellation (a
defect in the code under test, not a slow machine), and closes the loop.

``eventually`` is the one wait on a condition inside such a test: it polls
without blocking the loop and fails, naming what it waited for, at its deadline.
"""

from __future__ import annotations

import asyncio
import functools
import io
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

CLEANUP_S = 15.0

T = TypeVar("T")


def async_test(deadline_s: float) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., T]]:
    """Decorator: run the async test function on a fresh event loop, failing it after ``deadline_s``."""

    def decorate(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            return run_with_deadline(fn(*args, **kwargs), deadline_s)  # type: ignore[arg-type]

        return wrapper

    return decorate


def run_with_deadline(coro: Coroutine[Any, Any, T], deadline_s: float, cleanup_s: float = CLEANUP_S) -> T:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # as asyncio.run does
    stuck = False
    try:
        main = loop.create_task(coro, name="the test")
        loop.run_until_complete(asyncio.wait({main}, timeout=deadline_s))
        if main.done():
            return main.result()
        where = task_stacks(loop)
        main.cancel()
        loop.run_until_complete(asyncio.wait({main}, timeout=cleanup_s))
        if not main.done():
            stuck = True
            raise AssertionError(
                f"the test overran its {deadline_s:g} s deadline and was still running {cleanup_s:g} s after being "
                f"cancelled: a task ignores cancellation. Its tasks now:\n{task_stacks(loop)}"
            )
        raise AssertionError(f"the test overran its {deadline_s:g} s deadline. Its tasks then:\n{where}")
    finally:
        _close(loop, stuck, cleanup_s)


def task_stacks(loop: asyncio.AbstractEventLoop) -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks(loop):
        task.print_stack(limit=12, file=out)
    return out.getvalue()


def _close(loop: asyncio.AbstractEventLoop, stuck: bool, cleanup_s: float) -> None:
    """Cancel what is left and close the loop; bounded, so a task that ignores cancellation cannot hang the run."""
    try:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=min(1.0, cleanup_s) if stuck else cleanup_s))
        loop.run_until_complete(loop.shutdown_asyncgens())
        if not stuck:
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def eventually(cond: Callable[[], T], what: str, timeout: float, interval: float = 0.02) -> T:
    """Poll ``cond`` until it returns something true and return that; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
    return value
