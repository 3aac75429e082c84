"""Run the hub under uvicorn: ``teleicu hub``.

Transport limits: uvicorn closes a connection whose single WebSocket message
exceeds ``WS_HARD_LIMIT`` (4 MiB, close code 1009); below that, the codec's
own limits (256 KiB text, 64 KiB binary) reject a frame with an error message
and keep the connection open.

The hub is handed its configuration (hub settings, alarm policy, score tables)
already loaded: ``teleicu hub`` loads it from its files or the packaged defaults.
With ``tls`` in the hub file uvicorn serves HTTPS and WSS (TLS 1.2 or later),
and with ``tls.client_ca`` it requires a client certificate from that CA.

The store is opened before the port is bound, so a store that cannot be opened
(unwritable path, full disk, InfluxDB refusing) ends ``teleicu hub`` at once
with one clear line and exit status 2. A hub core that fails later shuts the
server down with exit status 1, for the service manager to restart it.
The process runs on uvloop, with the garbage collector tuned once the hub has
started (``ingest.event_loop``).
"""

from __future__ import annotations

import argparse
import logging
import ssl
from pathlib import Path

import uvicorn

from alerts.policy import AlarmPolicy
from alerts.score_tables import ScoreTables
from ingest.app import create_app
from ingest.event_loop import run, settle_after_start
from ingest.hub import Hub
from ingest.hub_config import HubConfig
from ingest.stores import open_stores
from ingest.stores.base import StoreError
from wire.config import ConfigError

log = logging.getLogger(__name__)

WS_HARD_LIMIT = 4 * 1024 * 1024


class HubServer:
    """The hub and its uvicorn server; ``failure`` is set if the hub core stopped with an error."""

    def __init__(self, hub: Hub, server_config: dict) -> None:
        self.hub = hub
        self.failure: BaseException | None = None
        self.server = uvicorn.Server(uvicorn.Config(create_app(hub, self._core_failed), **server_config))

    def _core_failed(self, exc: BaseException) -> None:
        self.failure = exc
        self.server.should_exit = True

    async def serve(self, banner: str = "") -> int:
        try:
            await self.hub.start()  # open the store before listening: a bad store fails here, clearly
        except StoreError as exc:
            log.critical("cannot start: %s", exc)
            return 2
        settle_after_start()
        if banner:
            print(banner, flush=True)
        await self.server.serve()
        return 1 if self.failure is not None else 0


def build_server(
    host: str, port: int, store: str, cfg: HubConfig, policy: AlarmPolicy, tables: ScoreTables, log_level: str = "warning",
    data_dir: Path = Path("var"), state: str | None = None,
) -> HubServer:  # fmt: skip
    hub = Hub(cfg, open_stores(store, data_dir, state), policy=policy, tables=tables)
    tls: dict[str, object] = {}
    if cfg.tls is not None:
        tls = {"ssl_certfile": cfg.tls.cert, "ssl_keyfile": cfg.tls.key}
        if cfg.tls.client_ca is not None:
            tls |= {"ssl_ca_certs": cfg.tls.client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return HubServer(hub, dict(
        **tls,
        host=host,
        port=port,
        log_level=log_level,
        ws="websockets-sansio",
        ws_max_size=WS_HARD_LIMIT,
        ws_ping_interval=10,
        ws_ping_timeout=20,
        lifespan="on",
        timeout_graceful_shutdown=5,
    ))


def hub_main(args: argparse.Namespace, cfg: HubConfig, policy: AlarmPolicy, tables: ScoreTables) -> int:
    """``teleicu hub``: the options in ``args`` (host, port, store, data directory, log level), the configuration loaded."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s hub %(levelname)s %(name)s: %(message)s")
    store = args.store or str(args.db or args.data_dir / "teleicu.sqlite3")
    try:
        server = build_server(args.host, args.port, store, cfg, policy, tables, args.log_level, args.data_dir, args.state)
    except ConfigError as exc:  # a store URL, or a secret file the hub file names (StoreUrlError is one)
        log.critical("cannot start: %s", exc)
        return 2
    http, ws = ("https", "wss") if cfg.tls is not None else ("http", "ws")
    return run(server.serve(f"teleicu hub on {http}://{args.host}:{args.port}/  (edge: {ws}://{args.host}:{args.port}/ws/edge)"))
