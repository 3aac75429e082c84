"""The schema of the hub's ADT receiver settings (an ``adt:`` section for the hub's configuration).

``AdtSettings`` is checked like every teleicu configuration model (unknown keys
refused, each problem named); ``AdtListener.from_settings`` builds the listener
from it. Example::

    adt:
      host: 0.0.0.0                  # default 127.0.0.1: only this machine
      port: 2575                     # the HIS's ADT outbound interface connects here
      allow_from: [10.20.0.15/32]    # the HIS or interface engine; default loopback only
      tls: {cert: hub.pem, key: hub.key, client_ca: hospital-ca.pem}   # MLLP over TLS (optional)
      facility: SMS-JAIPUR-ICU       # our MSH-4 in the ACKs
      timezone: Asia/Kolkata         # for HL7 times sent without an offset
      beds:                          # PV1-3 point of care^room^bed as the HIS sends it -> our bed id
        "MICU^^01": ICU1-01
        "MICU^^02": ICU1-02
      dispositions:                  # the site's own PV1-36 codes, besides HL7 table 0112's
        DAMA: left_against_advice
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, Field

from ingest.adt.parser import DEFAULT_FACILITY, MAX_MAX_MESSAGE, MAX_MESSAGE, MIN_MAX_MESSAGE
from ingest.tls import TlsSettings
from wire.config import ConfigModel
from wire.hl7v2 import parse_timezone
from wire.outbox_events import Outcome

DEFAULT_PORT = 2575  # the port IANA registered for HL7 over MLLP
MAX_CONNECTIONS = 4
IDLE_TIMEOUT_S = 300.0
REMEMBERED = 4096
LOOPBACK = ("127.0.0.1/32", "::1/128")


def _timezone(spec: str) -> str:
    parse_timezone(spec)  # raises ValueError naming the problem
    return spec


def _networks(nets: list[str]) -> list[str]:
    for net in nets:
        ipaddress.ip_network(net, strict=False)  # raises ValueError naming the text
    return nets


def _beds(beds: dict[str, str]) -> dict[str, str]:
    if not beds:
        raise ValueError("beds must map at least one PV1-3 location to a bed id")
    empty = [k for k, v in beds.items() if not k or not v]
    if empty:
        raise ValueError(f"beds: locations and bed ids must not be empty ({empty!r})")
    return beds


class AdtSettings(ConfigModel):
    """Where the ADT listener listens and how it reads the HIS's messages."""

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_PORT
    allow_from: Annotated[list[str], AfterValidator(_networks)] = list(LOOPBACK)  # peer addresses (CIDR) let in
    tls: TlsSettings | None = None
    beds: Annotated[dict[str, str], AfterValidator(_beds)]
    facility: Annotated[str, Field(min_length=1, max_length=60)] = DEFAULT_FACILITY
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    max_message: Annotated[int, Field(ge=MIN_MAX_MESSAGE, le=MAX_MAX_MESSAGE)] = MAX_MESSAGE
    dispositions: dict[Annotated[str, Field(min_length=1)], Outcome] = {}
    max_connections: Annotated[int, Field(ge=1)] = MAX_CONNECTIONS
    idle_timeout_s: Annotated[float, Field(gt=0)] = IDLE_TIMEOUT_S
    remembered: Annotated[int, Field(ge=0)] = REMEMBERED  # accepted messages remembered, to answer a re-send
