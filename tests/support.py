"""Test helpers: free ports, polling with deadlines, and real hub processes on real sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5) -> dict:
    return json.loads(get_text(url, timeout))


def get_text(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


def post_json(url: str, body: dict, timeout: float = 5, method: str = "POST") -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_until(pred, what: str, timeout: float = 30, interval: float = 0.05, give_up_on: type[BaseException] | None = None):
    """Poll ``pred`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds.

    Exceptions from ``pred`` count as "not yet" (the last one is reported), except ``give_up_on``,
    which ends the wait at once (say, the process being waited for has died).
    """
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = pred()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last one
            if give_up_on is not None and isinstance(exc, give_up_on):
                raise
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last_exc!r})")


def wait_alarm(base: str, kind: str, what: str, timeout: float = 60) -> list[dict]:
    """Wait until the hub at ``base`` has an open alarm of ``kind``; returns the open ones."""
    return wait_until(lambda: get_json(f"{base}/api/alerts?kind={kind}")["alerts"], what, timeout=timeout, interval=0.5)


def wait_alarm_cleared(base: str, kind: str, what: str, timeout: float = 60) -> None:
    wait_until(lambda: not get_json(f"{base}/api/alerts?kind={kind}")["alerts"], what, timeout=timeout, interval=0.5)


def wait_audit_resolved(base: str, alert_id: int, timeout: float = 30) -> list[dict]:
    """The alarm's audit trail once it ends in ``resolved`` (the hub writes it a moment after the event)."""
    return wait_until(lambda: (h := get_json(f"{base}/api/alerts/{alert_id}/history")["events"]) and h[-1]["event"] == "resolved" and h,
                      f"the resolution of alarm {alert_id} in its audit trail", timeout=timeout)  # fmt: skip


@dataclass
class HubProcess:
    proc: subprocess.Popen
    port: int
    db: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def edge_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/edge"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_hub(tmp: Path, port: int | None = None, db: Path | None = None, extra: tuple[str, ...] = ()) -> HubProcess:
    port = port or free_port()
    db = db or tmp / "store.sqlite3"
    log = tmp / f"hub-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "teleicu", "hub", "--port", str(port), "--db", str(db), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    hub = HubProcess(proc, port, db, log)
    try:
        wait_until(lambda: proc.poll() is not None or get_json(hub.base + "/healthz")["ok"], "the hub to answer /healthz")
        if proc.poll() is not None:
            raise AssertionError(f"hub exited with {proc.returncode}: {log.read_text()[-2000:]}")
    except BaseException:
        hub.stop()
        raise
    return hub
