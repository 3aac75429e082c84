"""The hub's HTTP and WebSocket routes, one router per resource; ``ingest.app`` assembles them.

Every route reaches the hub through one dependency, ``HubDep`` (the ``Hub`` the
app was built with), which is also where authentication and roles plug in:
a router adds its guard once, in its own ``APIRouter(dependencies=...)``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from ingest.hub import Hub


def get_hub(conn: HTTPConnection) -> Hub:
    """The hub of the app serving this request or WebSocket."""
    return conn.app.state.hub


HubDep = Annotated[Hub, Depends(get_hub)]


def time_range(hub: Hub, since: int | None, until: int | None, default_ms: int) -> tuple[int, int]:
    """``[since, until]`` in ms with the usual defaults: until now, since ``default_ms`` before until."""
    until = hub.clock() if until is None else until
    return (until - default_ms if since is None else since), until
