"""The demo's people and gateways: one user per role and a secret per edge agent, made as an admin would make them.

``teleicu demo`` never switches security off: it creates these accounts in the
hub's state file through the same functions as ``teleicu users add`` and
``teleicu agents add`` (audited, passwords hashed, secrets hashed), writes the
passwords to a file only the demo's user can read, and signs in like anyone.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from ingest.auth import accounts
from teleicu.admin import change, open_state, write_secret_file
from wire.atomic_file import write_atomically
from wire.clock import wall_ms


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    password: str
    role: str
    display_name: str
    wards: tuple[str, ...] = ()


def demo_users(first_ward: str) -> list[DemoUser]:
    def pw() -> str:
        return secrets.token_urlsafe(15)  # 20 characters, fresh every run

    return [
        DemoUser("intensivist", pw(), "intensivist", "Dr Asha Rao (intensivist)"),
        DemoUser("teleicu-nurse", pw(), "teleicu_nurse", "Nurse Meena (tele-ICU)"),
        DemoUser(f"nurse-{first_ward.lower()}", pw(), "ward_nurse", f"Nurse Joseph (ward {first_ward})", (first_ward,)),
        DemoUser("admin", pw(), "admin", "Hospital IT (admin)"),
        DemoUser("viewer", pw(), "viewer", "Programme office (viewer)"),
        DemoUser("records-bridge", pw(), "records", "Records bridge (service account)"),
    ]


def create_users(state: Path | str, users: list[DemoUser], credentials: Path) -> None:
    """Add the users (skipping any the file already has) and write who they are to ``credentials`` (mode 0600)."""
    conn = open_state(state)
    try:
        for u in users:
            if accounts.get_user(conn, u.username) is not None:
                change(conn, "user.password", f"user:{u.username}", None,
                       lambda c, u=u: accounts.set_password(c, u.username, u.password, wall_ms()), actor="demo")  # fmt: skip
                continue
            change(conn, "user.add", f"user:{u.username}", {"role": u.role, "wards": list(u.wards)},
                   lambda c, u=u: accounts.add_user(c, u.username, u.display_name, u.role, u.wards, u.password, wall_ms()),
                   actor="demo")  # fmt: skip
    finally:
        conn.close()
    lines = ["# teleicu demo accounts (this run only). Sign in at the console with one of these:"]
    lines += [f"{u.username:<16} {u.password}   {u.role}{' of ward ' + ', '.join(u.wards) if u.wards else ''}" for u in users]
    write_atomically(credentials, "\n".join(lines) + "\n", 0o600)  # whole: a test or a script may be waiting for it


def register_agent(state: Path | str, agent: str, ward: str, beds: tuple[str, ...], secret_file: Path) -> None:
    """Issue the agent a secret (revoking an earlier one of a reused data directory) into ``secret_file``."""
    conn = open_state(state)
    try:
        old = accounts.get_agent(conn, agent)
        if old is not None and old.revoked_at is None:
            change(conn, "agent.revoke", f"agent:{agent}", {"why": "demo restarted"}, lambda c: accounts.revoke_agent(c, agent, wall_ms()),
                   actor="demo")  # fmt: skip
        secret = change(conn, "agent.add", f"agent:{agent}", {"ward": ward, "beds": list(beds)},
                        lambda c: accounts.add_agent(c, agent, ward, beds, wall_ms()), actor="demo")  # fmt: skip
    finally:
        conn.close()
    write_secret_file(secret_file, secret)


def register_simulated_ward(state: Path | str, edge_config: Path) -> tuple[str, dict[str, str]]:
    """Register the agent of an edge config that ``teleicu sim`` wrote, for the beds it simulates, writing the secret
    where that config looks for it; returns the agent's id and the simulated beds ``{bed: scenario}``."""
    from simulators.ward import scenarios_path  # the simulator's own sidecar file: one place for its name

    raw = yaml.safe_load(edge_config.read_text())
    beds: dict[str, str] = json.loads(scenarios_path(edge_config).read_text())
    agent, ward = raw["agent"]["id"], raw["agent"]["ward"]
    register_agent(state, agent, ward, tuple(beds), edge_config.parent / raw["hub"]["secret_file"])
    return agent, beds
