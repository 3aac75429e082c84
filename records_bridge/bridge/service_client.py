"""JSON calls from the bridge to a lighter service (the health locker, the OPD queue), as the hub's records account.

Each call carries the records account's hub bearer token (the services ask the
hub who it is). Answers are sorted as the EHR sink sorts them: 200/201 are
success; 400, 404 (a patient or queue the service does not know), 409 and 422
mean the service refuses this request as it is, and will again (``Poison``,
parked with its reason); everything else, including no connection, 5xx, 401
(after one fresh sign-in) and 403 (a role the service's policy does not
allow: a set-up fault, fixed by an operator), is ``Retry``.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from records_bridge.bridge.hub_client import HubClient
from records_bridge.bridge.outcomes import Poison, Retry

REFUSED = frozenset({400, 404, 409, 422})


class ServiceClient:
    def __init__(self, name: str, base: str, hub: HubClient, *, verify: ssl.SSLContext | bool = True, timeout_s: float = 30) -> None:
        self.name = name
        self.base = base.rstrip("/")
        self.hub = hub
        self.http = httpx.AsyncClient(timeout=timeout_s, verify=verify)

    async def close(self) -> None:
        await self.http.aclose()

    async def ready(self) -> None:
        """The service answers its ``/healthz``; ``Retry`` if not."""
        try:
            r = await self.http.get(self.base + "/healthz")
        except httpx.HTTPError as exc:
            raise Retry(f"{self.name} unreachable at {self.base}: {exc!r}") from exc
        if r.status_code != 200:
            raise Retry(f"{self.name} at {self.base} answered /healthz with {r.status_code}")

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        for attempt in range(2):
            token = await self.hub.bearer()
            try:
                r = await self.http.request(method, self.base + path, json=body, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                raise Retry(f"{self.name} unreachable: {exc!r}") from exc
            if r.status_code == 401 and attempt == 0:
                self.hub.refused(token)
                continue
            if r.status_code in (200, 201):
                try:
                    out = r.json()
                except ValueError:
                    raise Retry(f"{self.name}'s answer to {method} {path} is not JSON") from None
                if not isinstance(out, dict):
                    raise Retry(f"{self.name}'s answer to {method} {path} is not a JSON object")
                return out
            detail = r.text[:300]
            if r.status_code in REFUSED:
                raise Poison(f"{self.name} refused {method} {path} ({r.status_code}): {detail}")
            raise Retry(f"{self.name} answered {r.status_code} to {method} {path}: {detail}")
        raise Retry(f"{self.name} refuses the records account's session")
