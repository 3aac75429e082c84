"""MQTT test helpers: the Mosquitto tools, a private ``mosquitto`` a test may stop and restart, edge device entries.

``own_broker`` is a fixture: import it into a test module (``from mqtt_support
import own_broker``) to use it there. A missing ``mosquitto`` fails the test,
never skips it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import free_port, wait_until

from edge_agent.config import DeviceConfig, parse_edge_config


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian: apt install mosquitto mosquitto-clients)")
    return path


def mqtt_device(port: int, prefix: str, client_id: str, beds: list[str] | dict[str, str]) -> DeviceConfig:
    """An ``mqtt_json`` device entry of the edge config, validated as the agent would read it."""
    raw = {
        "agent": {"id": "itest", "ward": "T"},
        "hub": {"url": "ws://127.0.0.1:9/ws/edge", "secret_file": "edge.secret"},
        "devices": [{"id": "mqtt-t", "driver": "mqtt_json", "broker": f"mqtt://127.0.0.1:{port}",
                     "topic_prefix": prefix, "client_id": client_id, "beds": beds}],
    }  # fmt: skip
    return parse_edge_config(raw).devices[0]


class OwnBroker:
    """A private ``mosquitto`` on a free port (persistence in ``tmp``), which a test may stop and restart.

    Persistence is on and saved on SIGTERM, so persistent sessions (subscriptions
    and queued QoS 1 messages) survive ``restart()`` and ``stop()``/``start()``.
    """

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.dir = tmp / f"mosquitto-{self.port}"
        self.dir.mkdir()
        self.conf = self.dir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence true",
                 f"persistence_location {self.dir}/"]  # fmt: skip
        if os.geteuid() == 0:
            lines.append("user root")  # keep write access to the persistence directory
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = self.dir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([tool("mosquitto"), "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: self._accepting() or self.proc.poll() is not None, f"mosquitto on port {self.port}", timeout=20)
        if self.proc.poll() is not None:
            raise AssertionError(f"mosquitto exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")

    def _accepting(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file and exits
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    tool("mosquitto")
    tool("mosquitto_pub")
    broker = OwnBroker(tmp_path)
    try:
        yield broker
    finally:
        broker.stop()
