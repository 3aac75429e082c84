"""``teleicu ehr`` as its own process on a real socket: clients added and resources counted by the command line,
the records bridge's own sink writing a whole ICU stay into it, twenty clients writing one resource at once."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from ehr_resources import observation
from fhir_stay import CTX, whole_stay
from support import free_port

from records_bridge.bridge.fhir_sink import FhirSink
from records_bridge.fhir import writes_for
from records_bridge.services.ehr.store import count_by_type

pytestmark = pytest.mark.integration


def teleicu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "teleicu", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(base URL, writer secret, reader secret) of ``teleicu ehr serve`` on a free port."""
    made = teleicu("ehr", "clients", "add", "bridge", "--role", "writer", "--db", db_url, "--secret-file", str(tmp_path / "w.secret"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "w.secret").stat().st_mode & 0o777 == 0o600
    writer = (tmp_path / "w.secret").read_text().strip()
    shown = teleicu("ehr", "clients", "add", "console", "--role", "reader", "--db", db_url)
    assert shown.returncode == 0 and shown.stdout.startswith("ehr_"), shown.stderr
    reader = shown.stdout.strip()
    again = teleicu("ehr", "clients", "add", "console", "--role", "reader", "--db", db_url)
    assert again.returncode == 1 and "exists" in again.stderr

    port = free_port()
    log = open(tmp_path / "ehr.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "teleicu", "ehr", "serve", "--db", db_url, "--port", str(port), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "ehr.log").read_text()
            assert time.monotonic() < deadline, "teleicu ehr serve did not come up"
            time.sleep(0.1)
        yield f"{base}/fhir", writer, reader
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_the_bridge_writes_a_whole_stay_exactly_once(served: tuple[str, str, str], db_url: str) -> None:
    base, writer, reader = served
    events = whole_stay()

    async def deliver() -> int:
        sink = FhirSink(base, writer, CTX)
        try:
            for event in events:
                await sink.handle(event)
                await sink.handle(event)  # each event twice: the bridge resends after a lost answer
            return sink.writes
        finally:
            await sink.close()

    sent = asyncio.run(deliver())
    writes = [w for e in events for w in writes_for(e, CTX)]
    assert sent == 2 * len(writes)
    expected: dict[str, int] = {}
    for path in {w.path for w in writes}:
        expected[path.split("/")[0]] = expected.get(path.split("/")[0], 0) + 1
    assert count_by_type(db_url) == expected
    counted = teleicu("ehr", "count", "--db", db_url)
    assert counted.returncode == 0 and json.loads(counted.stdout) == expected
    r = httpx.get(f"{base}/Observation", params={"_count": "2"}, headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 200 and r.json()["total"] == expected["Observation"] and len(r.json()["entry"]) == 2


def test_twenty_clients_writing_one_resource(served: tuple[str, str, str], db_url: str) -> None:
    base, writer, _ = served
    start = threading.Barrier(20)
    headers = {"Authorization": f"Bearer {writer}", "Content-Type": "application/fhir+json"}

    def put(i: int) -> int:
        with httpx.Client(timeout=30) as http:
            start.wait()
            return http.put(f"{base}/Observation/busy", json=observation("busy", value=i), headers=headers).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(put, range(20)))
    assert sorted(statuses) == [200] * 19 + [201]
    got = httpx.get(f"{base}/Observation/busy", headers=headers).json()
    assert got["meta"]["versionId"] == "20"
    assert count_by_type(db_url) == {"Observation": 1}


def test_an_oversized_body_is_refused_over_a_real_socket(served: tuple[str, str, str]) -> None:
    base, writer, _ = served
    body = json.dumps(observation("big") | {"note": [{"text": "x" * (9 * 1024 * 1024)}]}).encode()
    r = httpx.put(f"{base}/Observation/big", content=body, timeout=30,
                  headers={"Authorization": f"Bearer {writer}", "Content-Type": "application/fhir+json"})  # fmt: skip
    assert r.status_code == 413 and r.json()["resourceType"] == "OperationOutcome"


def test_served_over_tls_the_bridge_verifies_the_ehr_and_plain_http_is_not_answered(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA(organization_name="teleicu test hospital")
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "ehr.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "ehr.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    db = f"sqlite+pysqlite:///{tmp_path / 'ehr.sqlite3'}"
    assert teleicu("ehr", "clients", "add", "bridge", "--role", "writer", "--db", db, "--secret-file", str(tmp_path / "w.secret")).returncode == 0
    lone = teleicu("ehr", "serve", "--db", db, "--tls-cert", str(tmp_path / "ehr.pem"))
    assert lone.returncode == 2 and "go together" in lone.stderr
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "teleicu", "ehr", "serve", "--db", db, "--port", str(port), "--log-level", "warning",
                             "--tls-cert", str(tmp_path / "ehr.pem"), "--tls-key", str(tmp_path / "ehr.key")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"https://127.0.0.1:{port}"
    trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", verify=trusted, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "teleicu ehr serve (TLS) did not come up"
                time.sleep(0.1)
        with pytest.raises(httpx.HTTPError):  # a client that does not trust the hospital's CA gets nothing
            httpx.get(f"{base}/healthz", timeout=5)
        with pytest.raises(httpx.HTTPError):  # nor does plain HTTP
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)

        async def deliver() -> int:
            sink = FhirSink(f"{base}/fhir", (tmp_path / "w.secret").read_text().strip(), CTX, verify=trusted)
            try:
                for event in whole_stay()[:1]:
                    await sink.handle(event)
                return sink.writes
            finally:
                await sink.close()

        assert asyncio.run(deliver()) > 0
        assert sum(count_by_type(db).values()) > 0
    finally:
        proc.terminate()
        proc.wait(10)
