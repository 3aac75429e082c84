"""Running coturn (Debian's ``turnserver``) beside the hub: its configuration file, and a child process for the demo
and the tests.

A hospital runs coturn as a service with a configuration like the one
``coturn_config`` writes (docs/video.md shows one for a real network); the
demo and the tests start it on loopback with a fresh secret. The secret goes in
the file (mode 600), never on a command line where ``ps`` would show it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from wire.random_secrets import new_secret

TURNSERVER = "turnserver"


class CoturnUnavailable(RuntimeError):
    """``turnserver`` is not installed, or did not start."""


def coturn_config(*, listen_ip: str, port: int, relay_ip: str, min_port: int, max_port: int, secret: str, realm: str,
                  work_dir: Path, loopback_peers: bool = False, verbose: bool = False) -> str:  # fmt: skip
    lines = [
        f"listening-ip={listen_ip}", f"relay-ip={relay_ip}", f"listening-port={port}",
        f"min-port={min_port}", f"max-port={max_port}",  # the relay's UDP range: open these in the firewall
        "use-auth-secret", f"static-auth-secret={secret}", f"realm={realm}",  # the TURN REST API scheme
        "fingerprint", "no-cli", "no-multicast-peers", "no-tls", "no-dtls",  # media is DTLS-SRTP end to end already
        f"userdb={work_dir / 'turndb'}", f"pidfile={work_dir / 'turnserver.pid'}", "log-file=stdout", "simple-log",
    ]  # fmt: skip
    if loopback_peers:  # only for everything-on-one-machine (the demo, the tests): never on a hospital network
        lines.append("allow-loopback-peers")
    if verbose:  # each allocation and its user in the log
        lines.append("verbose")
    return "\n".join(lines) + "\n"


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Coturn:
    proc: subprocess.Popen
    port: int
    secret: str
    secret_file: Path
    log: Path

    def listening(self) -> bool:
        """Its UDP port is bound (coturn is up), or it has exited (``proc.poll()`` says so)."""
        return self.proc.poll() is not None or not _udp_free(self.port)

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_coturn(work_dir: Path, *, port: int, relay_ports: tuple[int, int], verbose: bool = True) -> Coturn:
    """coturn on 127.0.0.1:``port`` with a fresh secret (also written to ``work_dir/turn.secret`` for the hub file)."""
    exe = shutil.which(TURNSERVER)
    if exe is None:
        raise CoturnUnavailable("turnserver is not installed (Debian: apt-get install coturn)")
    if not _udp_free(port):
        raise CoturnUnavailable(f"UDP port {port} is taken")
    work_dir.mkdir(parents=True, exist_ok=True)
    secret = new_secret()
    secret_file = work_dir / "turn.secret"
    secret_file.write_text(secret + "\n")
    secret_file.chmod(0o600)
    conf = work_dir / "turnserver.conf"
    conf.write_text(coturn_config(listen_ip="127.0.0.1", port=port, relay_ip="127.0.0.1", min_port=relay_ports[0],
                                  max_port=relay_ports[1], secret=secret, realm="teleicu", work_dir=work_dir, loopback_peers=True, verbose=verbose))  # fmt: skip
    conf.chmod(0o600)
    log = work_dir / "turnserver.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Coturn(proc, port, secret, secret_file, log)
