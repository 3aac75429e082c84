"""The hub's HTTP and WebSocket routes, one router per resource; ``ingest.app`` assembles them.

Every route reaches the hub through one dependency, ``HubDep`` (the ``Hub`` the
app was built with), which is also where authentication and roles plug in:
a router adds its guard once, in its own ``APIRouter(dependencies=...)``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel
from starlette.requests import HTTPConnection

from ingest.hub import Hub


def get_hub(conn: HTTPConnection) -> Hub:
    """The hub of the app serving this request or WebSocket."""
    return conn.app.state.hub


HubDep = Annotated[Hub, Depends(get_hub)]


MAX_EPOCH_MS = 253_402_300_799_999  # the last millisecond of the year 9999: every time a store can hold


def epoch_ms(description: str) -> Any:
    """An optional time query parameter, in ms since the epoch, bounded to what the stores can hold."""
    return Query(None, ge=0, le=MAX_EPOCH_MS, description=description)


def time_range(hub: Hub, since: int | None, until: int | None, default_ms: int) -> tuple[int, int]:
    """``[since, until]`` in ms with the usual defaults: until now, since ``default_ms`` before until."""
    until = hub.clock() if until is None else until
    return (until - default_ms if since is None else since), until


class Problem(BaseModel):
    """What the hub says when it refuses a request: why, in words."""

    detail: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route may answer, so clients (and schemathesis) know them all."""
    meaning = {
        400: "a body that is not JSON, or a request the hub cannot carry out (a limit outside the policy, a time range backwards)",
        401: "not signed in (no session, an unknown, expired or revoked one)",
        403: "signed in, but this role may not do this, or not in this ward",
        404: "no such bed, alarm or agent (or not one this user may see)",
        409: "not possible in the current state (an alarm already resolved, an agent still connected)",
        429: "too many attempts from this address; wait a minute",
        503: "the hub's store is unavailable (a full disk, say), or the hub worker owning the ward did not answer; try again shortly",
    }
    return {code: {"model": Problem, "description": meaning[code]} for code in codes}


GUARDED = errors(401, 403, 503)  # every route behind a session (which may need the store to be read)
