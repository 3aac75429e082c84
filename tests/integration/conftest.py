"""Fixtures shared by the integration tests: a private ``influxd`` per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from influx_support import Influxd, start_influxd


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    server = start_influxd(tmp_path_factory.mktemp("influx"))
    try:
        yield server
    finally:
        server.stop()
