"""TLS for the hub's listeners (HTTPS and WSS through uvicorn, HL7 over MLLP): the settings and the server context."""

from __future__ import annotations

import ssl
from typing import Annotated

from pydantic import Field

from wire.config import ConfigModel


class TlsSettings(ConfigModel):
    """TLS for the hub itself: its certificate chain and key (PEM files); with ``client_ca``, every client must also
    present a certificate that CA signed (mutual TLS; edge agents still present their secrets)."""

    cert: Annotated[str, Field(min_length=1)]
    key: Annotated[str, Field(min_length=1)]
    client_ca: str | None = None


def tls_server_context(tls: TlsSettings) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or later) from the hub's TLS settings; with ``client_ca``, clients must show a certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls.cert, tls.key)
    if tls.client_ca is not None:
        ctx.load_verify_locations(tls.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
