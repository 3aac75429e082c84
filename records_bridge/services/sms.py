"""The lighter services' SMS gateway: a pluggable way to text a patient (one-time codes, queue reminders).

``SmsGateway`` is the interface: ``send(to, text)`` returns a message id or
raises ``SmsError``. The default, ``LogGateway``, sends nothing: it appends one
JSON line per message to a file (and the service log), which is what a
hospital without an SMS contract, the demo and the tests use; a test reads the
code back from that file. ``HttpGateway`` posts to an SMS provider's HTTP API
(a URL and a bearer token from configuration). Phone numbers are Indian mobile
numbers (+91 and ten digits); anything else is refused before it is sent.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Protocol

import httpx

log = logging.getLogger(__name__)

MOBILE = re.compile(r"^\+91[6-9][0-9]{9}$")
MAX_TEXT = 480  # three SMS segments


class SmsError(RuntimeError):
    """A message that was not sent: a bad number, a text too long, or the gateway refused or failed."""


def normalise_mobile(number: str) -> str:
    """``+91XXXXXXXXXX`` from the ways people write an Indian mobile number; ``SmsError`` otherwise."""
    digits = re.sub(r"[\s\-()]", "", number)
    if digits.startswith("0") and len(digits) == 11:
        digits = digits[1:]
    if len(digits) == 10:
        digits = "+91" + digits
    elif digits.startswith("91") and len(digits) == 12:
        digits = "+" + digits
    if not MOBILE.match(digits):
        raise SmsError(f"not an Indian mobile number: {number[:20]!r}")
    return digits


class SmsGateway(Protocol):
    def send(self, to: str, text: str) -> str: ...


def _checked(to: str, text: str) -> str:
    if not text or len(text) > MAX_TEXT:
        raise SmsError(f"a message must be 1 to {MAX_TEXT} characters")
    return normalise_mobile(to)


class LogGateway:
    """Writes each message as a JSON line to ``path`` (and logs that it did, without the text)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, to: str, text: str) -> str:
        number = _checked(to, text)
        msg_id = uuid.uuid4().hex
        line = json.dumps({"id": msg_id, "at": int(time.time() * 1000), "to": number, "text": text}, ensure_ascii=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        log.info("SMS %s to %s written to %s (log gateway: nothing was sent)", msg_id, number[:-4] + "XXXX", self.path)
        return msg_id

    def sent(self) -> list[dict]:
        """Every message written so far (for tests and the demo)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]


class HttpGateway:
    """POSTs ``{"to", "text"}`` as JSON to a provider's URL with a bearer token; a non-2xx answer is an ``SmsError``."""

    def __init__(self, url: str, token: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self._token = token
        self.timeout_s = timeout_s

    def send(self, to: str, text: str) -> str:
        number = _checked(to, text)
        try:
            r = httpx.post(self.url, json={"to": number, "text": text}, headers={"Authorization": f"Bearer {self._token}"},
                           timeout=self.timeout_s)  # fmt: skip
        except httpx.HTTPError as exc:
            raise SmsError(f"the SMS gateway did not answer: {exc}") from None
        if not 200 <= r.status_code < 300:
            raise SmsError(f"the SMS gateway refused the message: HTTP {r.status_code}")
        try:
            return str(r.json().get("id", "")) or uuid.uuid4().hex
        except ValueError:
            return uuid.uuid4().hex
