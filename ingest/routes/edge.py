"""The edge agents' WebSocket (``/ws/edge``); the protocol itself is in ``ingest.edge_endpoint``."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from ingest.edge_endpoint import serve_edge
from ingest.routes import HubDep

router = APIRouter(tags=["edge"])


@router.websocket("/ws/edge")
async def edge_ws(hub: HubDep, ws: WebSocket) -> None:
    await serve_edge(hub, ws)
