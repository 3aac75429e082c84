"""The display board's live feed: an in-process publish/subscribe of "this facility's board changed".

A change (a call, a recall, a finished token) notifies every open board of the
facility; each board's server-sent event stream then reads the board's state
from the store and sends it whole, so a board that missed a notification
catches up with the next one. Queues are bounded (a slow board skips
intermediate states, never the latest), and so is the number of boards per
facility. One process: several queue processes behind a balancer would need a
shared channel (PostgreSQL LISTEN/NOTIFY), not built here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

KEEPALIVE_S = 15.0
MAX_BOARDS = 200


class TooManyBoards(RuntimeError):
    pass


class BoardFeed:
    def __init__(self, max_boards: int = MAX_BOARDS) -> None:
        self.max_boards = max_boards
        self._boards: dict[str, set[asyncio.Queue[None]]] = {}

    def changed(self, facility_id: str) -> None:
        """Tell the facility's boards to refresh (called on the event loop)."""
        for q in self._boards.get(facility_id, ()):
            if q.empty():
                q.put_nowait(None)

    def boards(self, facility_id: str) -> int:
        return len(self._boards.get(facility_id, ()))

    async def stream(self, facility_id: str, state: Callable[[], Awaitable[dict[str, Any]]],
                     keepalive_s: float = KEEPALIVE_S) -> AsyncIterator[str]:  # fmt: skip
        """Server-sent events: the board's state now, then again after each change; a comment as keep-alive."""
        subscribers = self._boards.setdefault(facility_id, set())
        if len(subscribers) >= self.max_boards:
            raise TooManyBoards(f"{self.max_boards} boards are open for this facility already")
        q: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        subscribers.add(q)
        try:
            yield "retry: 2000\n\n"
            yield _event(await state())
            while True:
                try:
                    async with asyncio.timeout(keepalive_s):  # not wait_for: on 3.11 it can swallow a cancellation
                        await q.get()
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield _event(await state())
        finally:  # a closed connection cancels us here; the CancelledError goes on up
            subscribers.discard(q)
            if not subscribers:
                self._boards.pop(facility_id, None)


def _event(state: dict[str, Any]) -> str:
    return f"event: board\ndata: {json.dumps(state, ensure_ascii=False, separators=(',', ':'))}\n\n"
