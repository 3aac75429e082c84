"""The hub file's ``video:`` section: viewer cap, ICE servers, and the TURN relay's shared secret.

Example::

    video:
      max_viewers_per_bed: 4
      credential_ttl_s: 3600
      stun_urls: ["stun:turn.hospital.example:3478"]
      turn:
        urls: ["turn:turn.hospital.example:3478?transport=udp", "turns:turn.hospital.example:5349?transport=tcp"]
        secret_file: /etc/teleicu/turn.secret   # coturn's static-auth-secret (use-auth-secret)

Without ``turn``, media can only flow peer to peer (a LAN, or the demo on one
machine); a district hospital behind NAT needs the relay (docs/video.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr

from wire.config import ConfigError, ConfigModel, read_secret

ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


def _ice_urls(urls: list[str]) -> list[str]:
    for u in urls:
        if not u.startswith(ICE_SCHEMES):
            raise ValueError(f"{u!r} is not a STUN or TURN URL (stun:, stuns:, turn:, turns:)")
    return urls


IceUrls = Annotated[list[str], Field(max_length=4), AfterValidator(_ice_urls)]


class TurnSettings(ConfigModel):
    urls: Annotated[IceUrls, Field(min_length=1)]
    secret_file: Annotated[str, Field(min_length=1)]

    def secret(self) -> SecretStr:
        """coturn's ``static-auth-secret``, read from ``secret_file`` (``ConfigError`` naming the key if unusable)."""
        return read_secret(Path("hub config"), "video.turn.secret_file", Path(self.secret_file))


class VideoSettings(ConfigModel):
    max_viewers_per_bed: Annotated[int, Field(ge=1, le=16)] = 4
    credential_ttl_s: Annotated[int, Field(ge=60, le=86400)] = 3600
    stun_urls: IceUrls = []
    turn: TurnSettings | None = None


__all__ = ["ConfigError", "TurnSettings", "VideoSettings"]
