"""Test helpers: free ports, polling with deadlines, real hub processes on real sockets, and signing in to them.

Every hub a test starts has one user per role (``USERS``, password ``PASSWORD``),
created in its state file before it starts, as an admin would with ``teleicu
users add``. ``get_json`` and ``post_json`` sign in to the hub a URL names and
send the session's bearer token: as the intensivist unless ``as_`` names
another test user; ``as_=None`` sends no credentials at all.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PASSWORD = "correct horse battery staple"
#: test user -> (role, wards); each hub a test starts has them all
USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "intensivist": ("intensivist", ()),
    "teleicu-nurse": ("teleicu_nurse", ()),
    "nurse-a": ("ward_nurse", ("A",)),
    "nurse-b": ("ward_nurse", ("B",)),
    "admin": ("admin", ()),
    "viewer": ("viewer", ()),
    "records-bridge": ("records", ()),
}
DISPLAY = {u: f"Test {u}" for u in USERS}
_tokens: dict[tuple[str, str], str] = {}  # (origin, user) -> access token


def seed_users(state: Path | str) -> None:
    """Add the test users to a hub's state (a SQLite file or a PostgreSQL URL; those it already has are kept)."""
    from ingest.auth import accounts
    from teleicu.admin import change, open_state
    from wire.clock import wall_ms

    conn = open_state(state)
    try:
        for user, (role, wards) in USERS.items():
            if accounts.get_user(conn, user) is None:
                change(conn, "user.add", f"user:{user}", {"role": role}, lambda c, u=user, r=role, w=wards:
                       accounts.add_user(c, u, DISPLAY[u], r, w, PASSWORD, wall_ms()), actor="test")  # fmt: skip
    finally:
        conn.close()


def origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def sign_in(base: str, user: str, password: str = PASSWORD) -> tuple[int, dict]:
    """POST /api/auth/login as a client would; (status, body)."""
    req = urllib.request.Request(f"{base}/api/auth/login", data=json.dumps({"username": user, "password": password}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")  # fmt: skip
    return _send(req, 10)


def token(base: str, user: str = "intensivist", *, fresh: bool = False) -> str:
    key = (origin(base), user)
    if fresh or key not in _tokens:
        status, body = sign_in(origin(base), user)
        assert status == 200, f"signing in as {user} at {base}: {status} {body}"
        _tokens[key] = body["access_token"]
    return _tokens[key]


def auth_headers(url: str, as_: str | None) -> dict[str, str]:
    return {} if as_ is None else {"Authorization": f"Bearer {token(url, as_)}"}


_trust: dict[str, ssl.SSLContext] = {}  # origin -> the TLS context the tests' clients use for a hub serving HTTPS


def _send(req: urllib.request.Request, timeout: float) -> tuple[int, dict]:
    """(status, body): the JSON body, or ``{"detail": text}`` when the answer is not JSON (a page, metrics)."""
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=_trust.get(origin(req.full_url))) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read()
    try:
        return status, json.loads(text or b"null")
    except ValueError:
        return status, {"detail": text.decode(errors="replace")}


def _authorised(url: str, as_: str | None, make: Callable[[dict[str, str]], urllib.request.Request], timeout: float) -> tuple[int, dict | str]:
    """Send with the user's token; once more with a fresh session if the hub no longer knows the old one (a new hub)."""
    status, body = _send(make(auth_headers(url, as_)), timeout)
    if status == 401 and as_ is not None:
        token(url, as_, fresh=True)
        status, body = _send(make(auth_headers(url, as_)), timeout)
    return status, body


def get_json(url: str, timeout: float = 5, as_: str | None = "intensivist", headers: dict[str, str] | None = None) -> dict:
    status, body = _authorised(url, as_, lambda h: urllib.request.Request(url, headers={**h, **(headers or {})}), timeout)
    if status != 200:
        raise urllib.error.HTTPError(url, status, f"{status}: {body}", None, None)  # type: ignore[arg-type]
    return body  # type: ignore[return-value]


def get_text(url: str, timeout: float = 5, as_: str | None = "intensivist") -> str:
    req = urllib.request.Request(url, headers=auth_headers(url, as_))
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read().decode()


def post_json(url: str, body: dict | None, timeout: float = 5, method: str = "POST", as_: str | None = "intensivist",
              headers: dict[str, str] | None = None) -> tuple[int, dict]:  # fmt: skip
    data = None if body is None else json.dumps(body).encode()

    def make(h: dict[str, str]) -> urllib.request.Request:
        return urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **h, **(headers or {})}, method=method)

    return _authorised(url, as_, make, timeout)  # type: ignore[return-value]


def teleicu(*args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``teleicu ARGS`` as an operator would; its exit status, stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "teleicu", *args], input=stdin, capture_output=True, text=True, timeout=timeout)


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
    db: Path  # the embedded store file (samples, and the state unless ``state_url`` puts it elsewhere)
    log: Path
    state_url: str | None = None  # ``--state``: the hub's state in PostgreSQL
    secrets: dict[str, str] = field(default_factory=dict)  # agent -> its secret, once registered
    tls: ssl.SSLContext | None = None  # a hub serving HTTPS and WSS: how the tests' clients trust it

    def agent_auth(self, agent: str, ward: str, beds: tuple[str, ...] | list[str]) -> dict[str, str]:
        """The credentials of an edge agent registered (once) for ``beds``: headers for its WebSocket upgrade."""
        if agent not in self.secrets:
            self.secrets[agent] = register_agent(self.state, agent, ward, beds, self.db.parent / f"{agent}.secret")
        return agent_headers(agent, self.secrets[agent])

    @property
    def state(self) -> str:
        """Where the hub's state is: the PostgreSQL URL, or the store file's path."""
        return self.state_url or str(self.db)

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def edge_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ws/edge"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def register_agent(state: Path | str, agent: str, ward: str, beds: tuple[str, ...] | list[str], secret_file: Path) -> str:
    """Issue an agent its secret for these beds (as ``teleicu agents add`` does), into ``secret_file``; returns it."""
    from teleicu.demo_accounts import register_agent as issue

    issue(state, agent, ward, tuple(beds), secret_file)
    return secret_file.read_text().strip()


def agent_headers(agent: str, secret: str) -> dict[str, str]:
    """The upgrade request's credentials of an edge agent (HTTP Basic: its id and secret)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{agent}:{secret}".encode()).decode()}


WORKED_11 = {"rr": 18, "spo2": 90, "o2": 1, "nibp_sys": 100, "hr": 100, "acvpu": 2, "temp": 36.5}  # NEWS2 11: an alarm


def feed_news2_alarm(hub: HubProcess, ward: str, bed: str, agent: str = "") -> None:
    """One frame for ``bed`` as ``agent`` (default ``edge-<ward>``; registered here for ``bed`` if new), scoring NEWS2 11;
    returns once it is stored."""
    from websockets.sync.client import connect

    from wire.codec import decode_hub, encode_edge
    from wire.messages import Ack, Hello, ObsFrame, Observation

    agent = agent or f"edge-{ward}"
    t = time.time_ns() // 1_000_000
    tls = {"ssl": hub.tls} if hub.tls else {}
    with connect(hub.edge_url, additional_headers=hub.agent_auth(agent, ward, (bed,)), **tls) as ws:
        ws.send(encode_edge(Hello(agent, 1, ward, (bed,))).decode())
        decode_hub(ws.recv(timeout=10))
        ws.send(encode_edge(ObsFrame(1, tuple(Observation(bed, k, v, t, t, "m") for k, v in WORKED_11.items()))).decode())
        while not isinstance(decode_hub(ws.recv(timeout=10)), Ack):
            pass


def console_connect(hub: HubProcess, as_: str | None = "intensivist", query: str = "", **kw):  # type: ignore[no-untyped-def]
    """A console's live feed (``/ws/console``) on a real socket, signed in as ``as_`` (a bearer token)."""
    from websockets.sync.client import connect

    headers = auth_headers(hub.base, as_)
    return connect(f"ws://127.0.0.1:{hub.port}/ws/console{query}", additional_headers=headers, **kw)


def start_hub(tmp: Path, port: int | None = None, db: Path | None = None, extra: tuple[str, ...] = (),
              tls: ssl.SSLContext | None = None, state: str | None = None) -> HubProcess:  # fmt: skip
    """``teleicu hub`` on ``port``, once it answers /healthz; ``tls``: it serves HTTPS (its config says so), and this
    is how clients trust it; ``state``: a PostgreSQL URL for its state (``--state``)."""
    port = port or free_port()
    db = db or tmp / "store.sqlite3"
    seed_users(state or db)
    if state:
        extra = ("--state", state, *extra)
    log = tmp / f"hub-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "teleicu", "hub", "--port", str(port), "--db", str(db), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    hub = HubProcess(proc, port, db, log, tls=tls, state_url=state)
    if tls is not None:
        _trust[origin(hub.base)] = tls
    try:
        wait_until(lambda: proc.poll() is not None or get_json(hub.base + "/healthz", as_=None)["ok"], "the hub to answer /healthz")
        if proc.poll() is not None:
            raise AssertionError(f"hub exited with {proc.returncode}: {log.read_text()[-2000:]}")
    except BaseException:
        hub.stop()
        raise
    return hub


@contextmanager
def serving(app: object, what: str) -> Iterator[str]:
    """An ASGI ``app`` under uvicorn in a thread on a free loopback port; yields its base URL, then stops it."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, name=f"{what}-uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), f"the {what} to start", timeout=30)
        assert thread.is_alive(), f"the {what}'s server stopped while starting"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        if thread.is_alive():
            server.force_exit = True
            thread.join(10)


def starve(pid: int, seconds: float, stopped_s: float = 0.4, running_s: float = 0.1) -> None:
    """Overload a process for real: stop it (SIGSTOP) ``stopped_s`` of every ``stopped_s + running_s`` for
    ``seconds``, then leave it running. The sleeps are the fault's schedule, not a wait for a condition."""
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            os.kill(pid, signal.SIGSTOP)
            time.sleep(stopped_s)
            os.kill(pid, signal.SIGCONT)
            time.sleep(running_s)
    finally:
        os.kill(pid, signal.SIGCONT)
