"""Shared fixtures: a real hub process on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import chromium  # noqa: F401 - a fixture for the browser tests
from support import HubProcess, start_hub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    h = start_hub(tmp_path)
    try:
        yield h
    finally:
        h.stop()
