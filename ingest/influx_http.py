"""HTTP to InfluxDB: gzip line-protocol writes, InfluxQL queries, and what each response means.

``classify_write`` is the pure part: it turns a write's HTTP status and body into
an outcome the store acts on (written, retry later, rejected as poison, too large).
``InfluxHttp`` is the thin httpx layer: one connection pool, auth by token
(``Authorization: Token ...``) or user/password (HTTP Basic, which InfluxDB 1.x
and the 2.x/3.x v1-compatibility API both accept).

Retryable: connection errors, timeouts, 5xx, 429, and 401/403/404 (wrong
credentials or a missing database are configuration faults an operator fixes;
dropping data because of them would lose it, so the store holds it and pushes
back instead). Poison: any other 4xx, typically 400 for a field type conflict or
points outside the retention policy. InfluxDB 1.x still writes the good lines of
a rejected request and says how many it dropped (``partial write: ... dropped=N``).
"""

from __future__ import annotations

import asyncio
import gzip
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx

from ingest.influx_config import InfluxConfig

_DROPPED = re.compile(r"dropped=(\d+)")
MAX_ERROR_TEXT = 2000  # bytes of an error body kept for logs


class Outcome(Enum):
    WRITTEN = "written"
    RETRY = "retry"
    REJECTED = "rejected"  # poison: will never be accepted
    TOO_LARGE = "too_large"  # split the request and send the halves


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    status: int | None
    detail: str = ""
    dropped: int | None = None  # lines the server says it dropped (partial write), when it says so

    @property
    def partial(self) -> bool:
        """InfluxDB wrote the other lines and counted the ones it dropped (no parse error hiding more)."""
        return self.dropped is not None and self.dropped > 0 and "unable to parse" not in self.detail


def classify_write(status: int, body: str) -> WriteResult:
    detail = body[:MAX_ERROR_TEXT]
    if status in (200, 204):
        return WriteResult(Outcome.WRITTEN, status)
    if status >= 500 or status in (401, 403, 404, 408, 429):
        return WriteResult(Outcome.RETRY, status, detail)
    if status == 413:
        return WriteResult(Outcome.TOO_LARGE, status, detail)
    m = _DROPPED.search(body)
    dropped = int(m.group(1)) if m and "partial write" in body else None
    return WriteResult(Outcome.REJECTED, status, detail, dropped)


class QueryError(RuntimeError):
    """InfluxDB could not run a query (the message is the server's)."""


class InfluxHttp:
    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        headers = {"User-Agent": "teleicu-hub"}
        auth: httpx.BasicAuth | None = None
        if cfg.token:
            headers["Authorization"] = f"Token {cfg.token}"
        elif cfg.username is not None:
            auth = httpx.BasicAuth(cfg.username, cfg.password or "")
        self._client = httpx.AsyncClient(
            base_url=cfg.base_url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(cfg.timeout_s),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        )
        if cfg.api == "v2":
            self._write_path = "/api/v2/write"
            self._write_params = {"org": cfg.org, "bucket": cfg.db, "precision": "ms"}
        else:
            self._write_path = "/write"
            self._write_params = {"db": cfg.db, "precision": "ms"}
            if cfg.write_rp:
                self._write_params["rp"] = cfg.write_rp

    async def aclose(self) -> None:
        await self._client.aclose()

    async def compress(self, body: bytes) -> bytes:
        if self.cfg.gzip_level == 0:
            return body
        if len(body) < 64 * 1024:
            return gzip.compress(body, self.cfg.gzip_level, mtime=0)
        return await asyncio.to_thread(gzip.compress, body, self.cfg.gzip_level, mtime=0)

    async def write(self, payload: bytes) -> WriteResult:
        """POST one (already compressed) body. Transport faults come back as RETRY, never as exceptions."""
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.cfg.gzip_level:
            headers["Content-Encoding"] = "gzip"
        try:
            resp = await self._client.post(self._write_path, params=self._write_params, content=payload, headers=headers)
        except httpx.HTTPError as exc:  # connection refused/reset, timeouts, broken responses
            return WriteResult(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}")
        return classify_write(resp.status_code, resp.text)

    async def query(self, q: str, *, db: bool = True, write: bool = False) -> list[dict[str, Any]]:
        """Run InfluxQL (statements separated by ';', one round trip); returns ``results``.

        A statement error raises ``QueryError``; transport errors raise ``httpx.HTTPError``.
        """
        data = {"q": q, "epoch": "ms"}
        if db:
            data["db"] = self.cfg.db
        if write or not q.lstrip().upper().startswith(("SELECT", "SHOW")):
            resp = await self._client.post("/query", data=data)
        else:
            resp = await self._client.get("/query", params=data)
        if resp.status_code != 200:
            raise QueryError(f"HTTP {resp.status_code}: {resp.text[:MAX_ERROR_TEXT]}")
        results = resp.json().get("results", [])
        for r in results:
            if "error" in r:
                raise QueryError(r["error"])
        return results

    async def ping(self) -> bool:
        try:
            return (await self._client.get("/ping")).status_code in (200, 204)
        except httpx.HTTPError:
            return False
