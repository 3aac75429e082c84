"""The EHR's API clients: a name, a role (a writer may write and read, a reader only read) and the hash of a bearer secret.

Secrets are made by ``wire.random_secrets`` (256 random bits, prefix ``ehr_``),
shown once, stored only as their SHA-256, and compared in constant time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from records_bridge.services.ehr.store import clients_table, now_instant
from wire.random_secrets import new_secret, secret_hash, secret_matches

Role = Literal["writer", "reader"]
ROLES: tuple[Role, ...] = ("writer", "reader")
SECRET_PREFIX = "ehr_"


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    role: Role

    @property
    def may_write(self) -> bool:
        return self.role == "writer"


class ClientExists(ValueError):
    pass


def add_client(engine: Engine, name: str, role: Role) -> str:
    """Register ``name`` with a new secret and return the secret (it is not stored and cannot be shown again)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    if not name or not name.isprintable() or name != name.strip():
        raise ValueError(f"not a client name: {name!r}")
    secret = new_secret(prefix=SECRET_PREFIX)
    try:
        with engine.begin() as conn:
            conn.execute(insert(clients_table).values(name=name, role=role, secret_hash=secret_hash(secret), created=now_instant()))
    except IntegrityError:
        raise ClientExists(f"a client named {name!r} exists already") from None
    return secret


def authenticate(engine: Engine, secret: str) -> Client | None:
    """The client whose secret this is; None for any other text."""
    digest = secret_hash(secret)
    with engine.connect() as conn:
        row = conn.execute(select(clients_table.c.name, clients_table.c.role, clients_table.c.secret_hash)
                           .where(clients_table.c.secret_hash == digest)).first()  # fmt: skip
    if row is None or not secret_matches(row.secret_hash, secret):
        return None
    return Client(row.name, row.role)
