"""The map page (``/map``), its configuration, its scripts and styles, the vendored libraries and the state outlines.

The page's shell, scripts, styles and the outline file are public (they hold no registry data); everything the page
shows comes from the API and needs sign-in (the page's own form, ``session``). The page's Content-Security-Policy is
the hub's; with a tile URL configured its ``img-src`` also allows that tile server, and nothing else.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, JSONResponse, Response

from ingest.security_headers import CSP
from records_bridge.services.facility import policy
from records_bridge.services.facility.problems import Problem
from records_bridge.services.facility.session import signed_in

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_OUTLINES = STATIC / "vendor" / "india-states" / "india-states.geojson"
MEDIA = {".js": "text/javascript", ".css": "text/css", ".geojson": "application/geo+json", ".png": "image/png", ".svg": "image/svg+xml"}

pages = APIRouter()


def static_files() -> dict[str, Path]:
    """Every file the page may load, by its path under /static/facility/ (nothing else is served from the directory)."""
    return {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file() and p.suffix in MEDIA}


def check_tile_url(url: str) -> str:
    """A tile URL template (``https://host/{z}/{x}/{y}.png``); ValueError if it is not one."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not all(k in url for k in ("{z}", "{x}", "{y}")):
        raise ValueError("a tile URL is http(s)://host/.../{z}/{x}/{y}.png")
    return url


def tile_source(url: str) -> str:
    """The CSP source of a tile URL: its origin, a ``{s}`` subdomain as ``*``."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"


@pages.get("/")
async def home() -> Response:
    return Response(status_code=307, headers={"Location": "/map"})


@pages.get("/map")
async def map_page(request: Request) -> Response:
    headers = {"Cache-Control": "no-store"}
    tile_url = request.app.state.tile_url
    if tile_url:
        headers["Content-Security-Policy"] = CSP.replace("img-src 'self' data:", f"img-src 'self' data: {tile_source(tile_url)}")
    return FileResponse(STATIC / "map.html", media_type="text/html", headers=headers)


@pages.get("/map/config.json")
async def map_config(request: Request) -> JSONResponse:
    """What the page needs before it asks for facilities: the tile URL (or none), the stale age."""
    await signed_in(request, policy.READERS)
    state = request.app.state
    return JSONResponse({"tile_url": state.tile_url, "tile_attribution": state.tile_attribution, "stale_after_s": state.stale_after_ms / 1000,
                         "outlines": "/map/outlines.geojson"})  # fmt: skip


@pages.get("/map/outlines.geojson")
async def outlines(request: Request) -> Response:
    return FileResponse(request.app.state.outlines, media_type="application/geo+json", headers={"Cache-Control": "max-age=3600"})


@pages.get("/static/facility/{name:path}")
async def static_file(request: Request, name: str) -> Response:
    path = request.app.state.static_files.get(name)
    if path is None:
        raise Problem(404, f"no file {name[:60]!r}", reason="not_found")
    return FileResponse(path, media_type=MEDIA[path.suffix], headers={"Cache-Control": "no-cache"})
