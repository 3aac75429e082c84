"""Browser tests run Debian's Chromium through Playwright: where it is, and how it is started.

The console's Content-Security-Policy forbids eval, and Playwright evaluates a
``wait_for_function`` given as a bare expression through eval: give it a
function (``"() => ..."``), which it sends as source.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
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


def read_demo_credentials(path: Path) -> dict[str, tuple[str, str]]:
    """``demo-credentials.txt`` as {username: (password, role)}."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            user, password, role, *_ = line.split()
            out[user] = (password, role)
    return out


def sign_in_through_the_page(page, base: str, user: str, password: str) -> None:  # type: ignore[no-untyped-def]
    """Open the console as a clinician would: sent to the sign-in page, type name and password, back to the console."""
    page.goto(base + "/")
    page.wait_for_url("**/login?next=*", timeout=15_000)
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#signin-button")
    page.wait_for_url(base + "/", timeout=15_000)
    page.wait_for_selector("#user-name:not(:empty)", timeout=15_000)  # who is signed in, as the hub says
