"""The async test runner's deadline: an overrun fails with the tasks' stacks, and a task that ignores its
cancellation fails the test by name instead of hanging the run."""

from __future__ import annotations

import asyncio
import time

import pytest
from async_deadline import run_with_deadline


async def sleeps_in_a_named_place() -> None:
    await asyncio.sleep(30)


async def ignores_cancellation() -> None:
    while True:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass  # the defect under test: a loop that swallows its cancellation


def test_a_result_is_returned() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert run_with_deadline(answer(), 5) == 42


def test_an_overrun_fails_with_where_the_test_was() -> None:
    with pytest.raises(AssertionError, match=r"overran its 0.5 s deadline(?s:.*)sleeps_in_a_named_place"):
        run_with_deadline(sleeps_in_a_named_place(), 0.5)


def test_a_task_that_ignores_cancellation_fails_the_test_instead_of_hanging_it() -> None:
    async def the_test() -> None:
        helper = asyncio.create_task(ignores_cancellation())
        try:
            await asyncio.sleep(30)
        finally:
            helper.cancel()
            await helper  # never ends

    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=r"ignores cancellation(?s:.*)ignores_cancellation"):
        run_with_deadline(the_test(), 0.5, cleanup_s=1.0)
    assert time.monotonic() - t0 < 10
