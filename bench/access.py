"""Credentials for benchmarks that start a hub by hand: demo users and agent secrets, made as ``teleicu demo`` makes them.

The hub is benchmarked as it runs in a hospital, authentication included: its
consoles sign in and its agents present their secrets.
"""

from __future__ import annotations

import base64
from pathlib import Path

from teleicu.demo import SignedIn
from teleicu.demo_accounts import create_users, demo_users, register_agent


def signed_in_console(state: Path, base: str, tmp: Path) -> SignedIn:
    """Create the demo users in the hub's state file; a client signed in as the intensivist (sees every ward)."""
    users = demo_users("A")
    create_users(state, users, tmp / "credentials.txt")
    return SignedIn(base, users[0].username, users[0].password)


def agent_secret(state: Path, agent: str, ward: str, beds: tuple[str, ...], tmp: Path) -> str:
    secret_file = tmp / f"{agent}.secret"
    register_agent(state, agent, ward, beds, secret_file)
    return secret_file.read_text().strip()


def basic_auth(agent: str, secret: str) -> dict[str, str]:
    """An agent's credentials on its WebSocket upgrade request."""
    return {"Authorization": "Basic " + base64.b64encode(f"{agent}:{secret}".encode()).decode()}


def bearer(client: SignedIn) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token()}"}
