"""Short-lived TURN credentials by the TURN REST API's shared-secret scheme (coturn's ``use-auth-secret``).

The hub and coturn share one secret. For each session the hub makes a user name
``<expiry, Unix seconds>:<who>`` and its password, the base64 of
HMAC-SHA1(secret, user name). coturn recomputes the password from the name and
refuses it after the expiry, so nothing is stored and a leaked credential dies
on its own (draft-uberti-behave-turn-rest-00; coturn's README.turnserver).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from pydantic import SecretStr


def turn_password(secret: str, username: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


class TurnCredentials:
    """Makes the ``ice_servers`` list a session's two ends are given."""

    def __init__(self, turn_urls: list[str], secret: SecretStr | None, ttl_s: int, stun_urls: list[str] | None = None) -> None:
        self.turn_urls = list(turn_urls)
        self._secret = secret
        self.ttl_s = ttl_s
        self.stun_urls = list(stun_urls or [])

    def ice_servers(self, who: str, now_s: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.stun_urls:
            out.append({"urls": self.stun_urls})
        if self.turn_urls and self._secret is not None:
            username = f"{int(now_s) + self.ttl_s}:{who.replace(':', '_')[:64]}"
            out.append({"urls": self.turn_urls, "username": username,
                        "credential": turn_password(self._secret.get_secret_value(), username)})  # fmt: skip
        return out
