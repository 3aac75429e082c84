"""Shared fixtures: a real hub process on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import chromium  # noqa: F401 - a fixture for the browser tests
from nats_cluster import local_nats, nats_cluster, nats_single  # noqa: F401 - fixtures for the JetStream tests
from state_db_support import KINDS, hub_state
from support import HubProcess, start_hub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    h = start_hub(tmp_path)
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def module_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub for a whole test module: the lighter services' API tests sign their staff in against it."""
    h = start_hub(tmp_path_factory.mktemp("hub"))
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(params=KINDS)
def hub_each_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubProcess]:
    """A hub with its state in the SQLite store file, then one with it in PostgreSQL (``--state``)."""
    with hub_state(request.param, tmp_path) as url:
        h = start_hub(tmp_path, state=url)
        try:
            yield h
        finally:
            h.stop()
