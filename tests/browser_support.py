"""Browser tests run Debian's Chromium through Playwright: where it is, and how it is started.

The console's Content-Security-Policy forbids eval, and Playwright evaluates a
``wait_for_function`` given as a bare expression through eval: give it a
function (``"() => ..."``), which it sends as source.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import free_port, get_json, sign_in, wait_until

REPO = Path(__file__).resolve().parents[1]

CHROMIUM = Path("/usr/bin/chromium")
#: where the browser tests keep the screenshots the README and docs/console.md show
SCREENSHOTS = REPO / "docs" / "screenshots"


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Save what the page shows now as ``docs/screenshots/<name>.png``; returns the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; its absence is a failure of the test, never a skip."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: browser tests need Debian's chromium package "
            "(apt-get install chromium); playwright's own browser download is not used"
        )
    return CHROMIUM


@contextmanager
def launched_chromium(*extra_args: str) -> Iterator:  # type: ignore[type-arg]
    """Debian's Chromium under Playwright (with ``extra_args``), closed afterwards; its absence fails the test, never
    skips it."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: browser tests need Debian's chromium package (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield b
        finally:
            b.close()


def read_demo_credentials(path: Path) -> dict[str, tuple[str, str]]:
    """``demo-credentials.txt`` as {username: (password, role)}."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            user, password, role, *_ = line.split()
            out[user] = (password, role)
    return out


def sign_in_through_the_page(page, base: str, user: str, password: str, path: str = "/") -> None:  # type: ignore[no-untyped-def]
    """Open a console page as a clinician would: sent to the sign-in page, type name and password, back to the page."""
    page.goto(base + path)
    page.wait_for_url("**/login?next=*", timeout=15_000)
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#signin-button")
    page.wait_for_url(base + path, timeout=15_000)
    page.wait_for_selector("#user-name:not(:empty)", timeout=15_000)  # who is signed in, as the hub says


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT lets the demo stop its hub, simulators and edge agents (own sessions) in order."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_demo(tmp: Path, beds: int = 8, ward_size: int = 4, seed: int = 7, duration: float = 120,
                 extra: Sequence[str] = ()) -> Iterator[tuple[str, dict]]:
    """A running ``teleicu demo`` (real hub, simulators and edge agents); yields its base URL and accounts, always stops it.
    ``extra``: more ``teleicu demo`` arguments (``--alarms FILE`` ...)."""
    port = free_port()
    log_path = tmp / "demo.log"
    data = tmp / "demo-data"
    cmd = [sys.executable, "-m", "teleicu", "demo", "--beds", str(beds), "--ward-size", str(ward_size), "--seed", str(seed),
           "--port", str(port), "--duration", str(duration), "--data-dir", str(data), *extra]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"teleicu demo exited with {proc.returncode} before answering /healthz:\n{_tail(log_path)}")
            return get_json(base + "/healthz", as_=None)["ok"] and (data / "demo-credentials.txt").exists()

        try:
            wait_until(healthy, "the demo's hub to answer /healthz", timeout=30, interval=0.25)
        except AssertionError:
            pytest.fail(f"teleicu demo did not answer GET {base}/healthz with 200 within 30 s:\n{_tail(log_path)}")
        yield base, read_demo_credentials(data / "demo-credentials.txt")
    finally:
        _stop(proc)


#: axe-core from npm (``npm ci``), handed to a page through DevTools: the page's own policy allows only the hub's scripts
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}});
  return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


class Console:
    """One signed-in page; collects the page's JavaScript errors."""

    def __init__(self, browser, demo, user: str = "intensivist", path: str = "/", viewport=(1600, 1000), init_script: str = ""):
        base, accounts = demo
        self.base, self.accounts, self.errors = base, accounts, []
        self.tokens: dict[str, str] = {}
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        if init_script:
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        sign_in_through_the_page(self.page, base, user, accounts[user][0])
        if path != "/":
            self.page.goto(base + path)
        self.page.wait_for_selector("#conn[data-conn='live']", timeout=30_000)

    def api(self, path: str, user: str = "intensivist") -> dict:
        """GET ``path`` as ``user``, signed in once per console (signing in for every call, a test that polls would
        meet the hub's limit on sign-in attempts per address)."""
        if user not in self.tokens:
            self.tokens[user] = sign_in(self.base, user, self.accounts[user][0])[1]["access_token"]
        return get_json(self.base + path, as_=None, headers={"Authorization": f"Bearer {self.tokens[user]}"})

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"JavaScript errors on the console page: {self.errors}"
