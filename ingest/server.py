"""Run the hub under uvicorn: ``teleicu hub``.

Transport limits: uvicorn closes a connection whose single WebSocket message
exceeds ``WS_HARD_LIMIT`` (4 MiB, close code 1009); below that, the codec's
own limits (256 KiB text, 64 KiB binary) reject a frame with an error message
and keep the connection open.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

import uvicorn

from alerts.policy import load_policy
from ingest.app import create_app
from ingest.hub import Hub
from ingest.hub_config import load_hub_config
from ingest.store_url import open_store

WS_HARD_LIMIT = 4 * 1024 * 1024


def build_server(
    host: str, port: int, store: str, config: Path | None = None, log_level: str = "warning", alarms: Path | None = None
) -> uvicorn.Server:
    hub = Hub(load_hub_config(config), open_store(store), policy=load_policy(alarms))
    app = create_app(hub)
    cfg = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws="websockets-sansio",
        ws_max_size=WS_HARD_LIMIT,
        ws_ping_interval=10,
        ws_ping_timeout=20,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(cfg)


def hub_main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s hub %(levelname)s %(name)s: %(message)s")
    server = build_server(args.host, args.port, args.store or str(args.db), args.config, args.log_level, args.alarms)
    print(f"teleicu hub on http://{args.host}:{args.port}/  (edge: ws://{args.host}:{args.port}/ws/edge)", flush=True)
    asyncio.run(server.serve())
    return 0
