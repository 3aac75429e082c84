"""The outbox, read with a cursor: ``GET /api/events?after=<id>``, for the records bridge (role ``records``).

Events come oldest first, at most ``limit``; ``last_id`` is the newest id the
hub has written, so a reader knows how far behind it is. With ``wait_s`` the
request waits up to that long for an event after ``after`` (a long poll), so a
bridge hears of an admission within a fraction of a second without hammering
the hub. The events' types are ``wire.outbox_events``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query

from ingest import outbox
from ingest.auth.guards import EventReader
from ingest.routes import GUARDED, HubDep, errors

router = APIRouter(prefix="/api", tags=["records"], responses=GUARDED)

POLL_S = 0.2


@router.get("/events", responses=errors(503))
async def events(
    hub: HubDep,
    _reader: EventReader,
    after: int = Query(0, ge=0, description="the last event id the reader has handled"),
    limit: int = Query(500, ge=1, le=5000),
    wait_s: float = Query(0, ge=0, le=25, description="wait this long for a new event when there is none"),
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    db = hub.patients.db
    while True:
        found = await db.read_with(lambda c: outbox.read_raw(c, after, limit))
        if found or loop.time() >= deadline:
            break
        await asyncio.sleep(POLL_S)
    last = await db.read_with(outbox.last_id)
    return {"events": found, "last_id": last}
