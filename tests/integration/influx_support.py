"""A real ``influxd`` (Debian's InfluxDB 1.x) for tests and benchmarks: free ports, temp dirs, restartable.

``start_influxd(tmp)`` writes a config whose every listener (HTTP API and the
RPC/backup service) binds a free 127.0.0.1 port and whose meta, data and WAL
directories live under ``tmp``, starts ``influxd -config FILE`` and waits for
``/ping``. ``kill()`` ends the process for real (SIGKILL, no flush) and
``start()`` brings it back on the same ports with the same data, which is how
the outage tests take InfluxDB away. A missing ``influxd`` fails the test with
the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from support import HubProcess, free_port, get_json, seed_users, wait_until

INSTALL_HINT = "run `bash scripts/install_influxdb.sh` (Debian package `influxdb`)"

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  index-version = "inmem"

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = true
  check-interval = "30m0s"

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false
  unix-socket-enabled = false
  max-body-size = 25000000

[logging]
  level = "warn"
  suppress-logo = true

[ifql]
  enabled = false

[continuous_queries]
  enabled = true
  log-enabled = false
  run-interval = "1s"
"""


class InfluxdMissing(AssertionError):
    pass


def influxd_binary() -> str:
    path = shutil.which("influxd")
    if path is None:
        raise InfluxdMissing(f"influxd is not installed: {INSTALL_HINT}")
    return path


class InfluxdExited(AssertionError):
    pass


@dataclass
class Influxd:
    """One influxd process with its own ports and directories; restartable in place."""

    root: Path
    http_port: int
    rpc_port: int
    proc: subprocess.Popen | None = None
    starts: int = field(default=0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def store_url(self, db: str, **options: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"influxdb://127.0.0.1:{self.http_port}/{db}" + (f"?{query}" if query else "")

    @property
    def config_path(self) -> Path:
        return self.root / "influxdb.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "influxd.log"

    def start(self, timeout: float = 60) -> None:
        binary = influxd_binary()
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("influxd is already running")
        self.config_path.write_text(_CONFIG.format(root=self.root, http_port=self.http_port, rpc_port=self.rpc_port))
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([binary, "-config", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        proc = self.proc

        def answers() -> bool:
            if proc.poll() is not None:
                raise InfluxdExited(f"influxd exited with {proc.returncode}: {self.log_tail()}")
            return httpx.get(f"{self.url}/ping", timeout=1).status_code == 204

        try:
            wait_until(answers, f"influxd to answer /ping at {self.url}", timeout=timeout, give_up_on=InfluxdExited)
        except AssertionError:
            self.kill()
            raise AssertionError(f"influxd did not answer /ping within {timeout} s: {self.log_tail()}") from None

    def kill(self) -> None:
        """End the process at once (SIGKILL): no flush, no goodbye, like a crash or a pulled plug."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    # --- reading back, for assertions ------------------------------------------------

    def query(self, q: str, db: str | None = None, **params: str) -> list[dict]:
        """Run InfluxQL; returns the ``results`` list. Statement errors raise AssertionError."""
        args = {"q": q, "epoch": "ms", **params}
        if db:
            args["db"] = db
        resp = httpx.post(f"{self.url}/query", data=args, timeout=60)
        resp.raise_for_status()
        results = resp.json()["results"]
        for r in results:
            if "error" in r:
                raise AssertionError(f"InfluxQL error for {q!r}: {r['error']}")
        return results

    def rows(self, q: str, db: str) -> list[dict]:
        """Every row of every series of a one-statement query, as dicts (tags merged in)."""
        out: list[dict] = []
        for series in self.query(q, db)[0].get("series", []):
            tags = series.get("tags", {})
            for values in series["values"]:
                out.append({**tags, **dict(zip(series["columns"], values, strict=True))})
        return out


def start_influxd(tmp: Path) -> Influxd:
    influxd_binary()
    root = tmp / "influxd"
    root.mkdir(parents=True, exist_ok=True)
    server = Influxd(root=root, http_port=free_port(), rpc_port=free_port())
    server.start()
    return server


def start_hub_on_influx(tmp: Path, store_url: str, state: Path) -> HubProcess:
    """A real ``teleicu hub`` process whose store is ``store_url`` (an influxdb:// URL)."""
    port = free_port()
    seed_users(state)
    log = tmp / f"hub-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "teleicu", "hub", "--port", str(port), "--store", store_url],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    hub = HubProcess(proc, port, state, log)
    try:
        wait_until(lambda: proc.poll() is not None or get_json(hub.base + "/healthz", as_=None)["ok"], "the hub to answer /healthz", timeout=60)
        if proc.poll() is not None:
            raise AssertionError(f"hub exited with {proc.returncode}: {log.read_text()[-3000:]}")
    except BaseException:
        hub.stop()
        raise
    return hub
