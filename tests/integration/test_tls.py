"""TLS on the hub, with certificates the test makes (trustme): HTTPS and WSS, and mutual TLS for the edge.

- Server TLS: the hub named in its config serves HTTPS and WSS only (plain HTTP
  on its port gets nowhere), at TLS 1.2 or later; a client that does not trust
  the hospital's CA is refused by its own TLS stack; signing in and an edge
  agent's frames work over it.
- Mutual TLS: with ``tls.client_ca`` the hub refuses a client without a
  certificate from that CA, and a real ward (simulated monitors and
  ``teleicu edge`` with ``ca_file``, ``cert_file`` and ``key_file``) streams
  through it with every recorded sample and waveform chunk stored exactly once.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trustme
import yaml
from config_support import default_raw
from support import HubProcess, feed_news2_alarm, get_json, sign_in, start_hub, wait_until
from ward_support import Ward

pytestmark = pytest.mark.integration


class Certificates:
    """A hospital CA with a certificate for the hub (127.0.0.1, localhost) and one for an edge agent, as PEM files."""

    def __init__(self, tmp: Path) -> None:
        self.ca = trustme.CA(organization_name="teleicu test hospital")
        self.ca_file = tmp / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.hub_cert, self.hub_key = self._issue(tmp, "hub", "127.0.0.1", "localhost")
        self.edge_cert, self.edge_key = self._issue(tmp, "edge", "edge-a.icu.example")

    def _issue(self, tmp: Path, name: str, *identities: str) -> tuple[Path, Path]:
        leaf = self.ca.issue_cert(*identities)
        cert, key = tmp / f"{name}.pem", tmp / f"{name}.key"
        leaf.private_key_pem.write_to_path(str(key))
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        return cert, key

    def client_context(self, with_certificate: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if with_certificate:
            ctx.load_cert_chain(str(self.edge_cert), str(self.edge_key))
        return ctx


def tls_hub(tmp: Path, certs: Certificates, mutual: bool) -> HubProcess:
    cfg = default_raw("hub.yaml") | {"tls": {"cert": str(certs.hub_cert), "key": str(certs.hub_key),
                                             "client_ca": str(certs.ca_file) if mutual else None}}  # fmt: skip
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return start_hub(tmp, extra=("--config", str(path)), tls=certs.client_context(with_certificate=mutual))


def test_the_hub_serves_https_and_wss_only_to_clients_that_trust_its_ca(tmp_path: Path) -> None:
    certs = Certificates(tmp_path)
    hub = tls_hub(tmp_path, certs, mutual=False)
    try:
        with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as raw:
            with certs.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()
        with urllib.request.urlopen(f"{hub.base}/healthz", timeout=10, context=certs.client_context()) as resp:
            assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"  # browsers keep to HTTPS from here on
        with pytest.raises(urllib.error.URLError) as untrusted:  # the system's CAs do not know the hospital's
            urllib.request.urlopen(f"{hub.base}/healthz", timeout=10, context=ssl.create_default_context())
        assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP on the TLS port gets no answer
            urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/healthz", timeout=10)
        status, body = sign_in(hub.base, "nurse-a")
        assert status == 200 and body["user"]["wards"] == ["A"]
        feed_news2_alarm(hub, "A", "A-01")  # an agent's secret and frames over WSS
        beds = get_json(f"{hub.base}/api/beds")["beds"]
        assert [b["bed"] for b in beds] == ["A-01"] and beds[0]["news2"]["total"] == 11, beds
    finally:
        hub.stop()


class MutualTlsWard(Ward):
    """The simulated ward, its edge agent told the hospital's CA and its own certificate."""

    certs: Certificates

    def configure(self) -> None:
        super().configure()
        cfg = yaml.safe_load(self.cfg.read_text())
        cfg["hub"] |= {"ca_file": str(self.certs.ca_file), "cert_file": str(self.certs.edge_cert), "key_file": str(self.certs.edge_key)}
        self.cfg.write_text(yaml.safe_dump(cfg))


def test_with_mutual_tls_a_real_ward_streams_everything_and_a_client_without_a_certificate_is_refused(tmp_path: Path) -> None:
    certs = Certificates(tmp_path)
    hub = tls_hub(tmp_path, certs, mutual=True)
    ward = None
    try:
        with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):  # trusted CA, but no certificate
            urllib.request.urlopen(f"{hub.base}/healthz", timeout=10, context=certs.client_context()).read()
        MutualTlsWard.certs = certs
        ward = MutualTlsWard(tmp_path, hub)
        wait_until(lambda: len(ward.stored()) > 200, "samples over mutual TLS", timeout=60, interval=0.5)
        ward.all_stored_exactly_once()
        secret = (tmp_path / "edge-A.secret").read_text().strip()
        assert secret not in (tmp_path / "edge.log").read_text() and secret not in hub.log.read_text()  # never logged
    finally:
        if ward is not None:
            ward.cleanup()
        hub.stop()
