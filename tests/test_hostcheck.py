"""deploy/hostcheck.py, the server's own check of what the containers cannot see (issue 21,
item 7): HTTPS as a visitor reaches it, the certificate's end, the root disk.

Real parts: the script on the machine's own python3 with the standard library only
(``-I -S``: no site-packages at all), an HTTPS server on 127.0.0.1 with a certificate from
a throw-away CA that the script trusts the way the server's system store is extended
(``SSL_CERT_FILE``), the system's resolver for ``localhost``, a webhook on 127.0.0.1, the
.env written by deploy/envfile.py. Also: the systemd units cloud-init installs.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .helpers.cloud_init import SAMPLE, render_user_data
from .helpers.envfile import ENVFILE
from .helpers.paths import ROOT
from .helpers.ports import free_port
from .helpers.webhook import SECRET, Receiver

SCRIPT = ROOT / "deploy" / "hostcheck.py"
SYSTEMD = ROOT / "deploy" / "systemd"
PYTHON = "/usr/bin/python3"  # the server's own python3, as the unit runs it


# -- a throw-away CA and an HTTPS site ------------------------------------------------------


@dataclass
class CA:
    folder: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> Path:
        return self.folder / "ca.pem"

    def issue(self, name: str, days: float, dns: str | None = None) -> Path:
        """A certificate for ``dns`` (default: ``name``) ending in ``days`` (negative: ended)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns or name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=400))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns or name)]), False)
            .sign(self.key, hashes.SHA256())
        )
        path = self.folder / f"{name}-{days}.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + cert.public_bytes(serialization.Encoding.PEM)
        )
        return path


def make_ca(folder: Path, name: str = "wiki-events test CA") -> CA:
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=500))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    ca = CA(folder, key, cert)
    ca.pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca


class Site:
    """``https://localhost:PORT/`` answering 401 as Caddy's basic auth does."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._server: ThreadingHTTPServer | None = None

    def start(self, chain: Path) -> Site:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="restricted"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class Host:
    """The server's side: its .env on the volume, the check's state, a root disk."""

    root: Path
    ca: CA
    port: int
    hook: Receiver

    @property
    def state(self) -> Path:
        return self.root / "state" / "hostcheck.json"

    def write_env(self, **values: str) -> None:
        settings = {
            "DOMAIN": "localhost",
            "HTTPS_PORT": str(self.port),
            "ALERT_WEBHOOK_URL": self.hook.url(),
            "ROOT_DISK_ALERT_PERCENT": "100",
            **values,
        }
        (self.root / ".env").write_text(ENVFILE.render(settings))

    def check(self, after: int = 1) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [PYTHON, "-I", "-S", str(SCRIPT), "--env", str(self.root / ".env")]
            + ["--state", str(self.state), "--disk", str(self.root), "--after", str(after)],
            env={"SSL_CERT_FILE": str(self.ca.pem), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert SECRET not in done.stdout + done.stderr  # the webhook's URL is a secret
        return done


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    hook = Receiver().start()
    server = Host(tmp_path, make_ca(tmp_path / "ca"), free_port(), hook)
    server.write_env()
    yield server
    server.hook.stop()  # the one the test left running


def test_a_certificate_near_its_end_is_alerted_once_and_its_renewal_too(host: Host) -> None:
    site = Site(host.port).start(host.ca.issue("localhost", days=5))
    try:
        done = host.check()
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"https://localhost:{host.port}/: answers" in done.stdout
        [said] = host.hook.bodies()
        assert said.startswith("wiki-events: the certificate of localhost ends in 5 days (")
        assert "Caddy renews 30 days before the end, so renewal is failing" in said
        assert host.check().returncode == 1 and len(host.hook.bodies()) == 1  # said once
    finally:
        site.stop()
    site = Site(host.port).start(host.ca.issue("localhost", days=89))
    try:
        assert host.check().returncode == 0
        assert host.hook.bodies()[1].startswith(
            "wiki-events: the certificate of localhost was renewed: ends "
        )
        assert host.check().returncode == 0 and len(host.hook.bodies()) == 2
    finally:
        site.stop()


def test_https_unreachable_is_alerted_after_two_checks_and_its_return(host: Host) -> None:
    """A closed port: one failed check is a restart, two in a row an outage."""
    first = host.check(after=2)
    assert first.returncode == 1 and host.hook.bodies() == []
    assert f"connection refused on port {host.port} (1 check(s) in a row)" in first.stdout
    assert host.check(after=2).returncode == 1
    assert host.hook.bodies() == [
        f"wiki-events: https://localhost:{host.port}/ is unreachable from the server itself: "
        f"connection refused on port {host.port}; see `docker compose ps caddy` and `docker "
        "compose logs --tail 100 caddy` in /opt/wiki-events (deploy.md, section 2)"
    ]
    host.check(after=2)
    assert len(host.hook.bodies()) == 1
    site = Site(host.port).start(host.ca.issue("localhost", days=60))
    try:
        assert host.check(after=2).returncode == 0
    finally:
        site.stop()
    assert host.hook.bodies()[1:] == [f"wiki-events: https://localhost:{host.port}/ answers again"]


@pytest.mark.parametrize(
    ("issued", "refused"),
    [
        (
            {"dns": "wiki.example.org"},
            "Hostname mismatch, certificate is not valid for 'localhost'",
        ),
        ({"days": -1}, "certificate has expired"),
        ({"ca": "another CA"}, "unable to get local issuer certificate"),
    ],
    ids=["wrong-name", "expired", "untrusted"],
)
def test_a_certificate_the_visitor_would_refuse_is_alerted(
    host: Host, tmp_path: Path, issued: dict[str, Any], refused: str
) -> None:
    ca = make_ca(tmp_path / "other-ca", issued["ca"]) if "ca" in issued else host.ca
    chain = ca.issue("localhost", days=issued.get("days", 60), dns=issued.get("dns"))
    site = Site(host.port).start(chain)
    try:
        done = host.check()
    finally:
        site.stop()
    assert done.returncode == 1
    [said] = host.hook.bodies()
    assert said.startswith(
        f"wiki-events: https://localhost:{host.port}/ is unreachable from the server itself: "
        "its certificate is refused ("
    )
    assert refused in said, said


def test_the_root_disk_is_alerted_above_its_percent_and_when_back(host: Host) -> None:
    host.write_env(ROOT_DISK_ALERT_PERCENT="0")
    site = Site(host.port).start(host.ca.issue("localhost", days=60))
    try:
        assert host.check().returncode == 1
        [said] = host.hook.bodies()
        assert said.startswith(f"wiki-events: the server's root disk ({host.root}) is ")
        assert "% full (alert at 0%): Docker's images, containers and logs live there; " in said
        host.write_env(ROOT_DISK_ALERT_PERCENT="100")
        assert host.check().returncode == 0
    finally:
        site.stop()
    assert host.hook.bodies()[1].startswith(
        f"wiki-events: the server's root disk ({host.root}) is back to "
    )


@pytest.mark.slow  # the run with the webhook down waits its retries (2 s, 5 s)
def test_an_alert_the_webhook_did_not_take_is_sent_at_the_next_run(host: Host) -> None:
    host.hook.stop()  # the webhook is down for this run
    host.write_env(ROOT_DISK_ALERT_PERCENT="0", ALERT_WEBHOOK_FORMAT="json")
    site = Site(host.port).start(host.ca.issue("localhost", days=60))
    try:
        down = host.check()
        assert "alert to the webhook failed: URLError: ConnectionRefusedError" in down.stdout
        assert len(json.loads(host.state.read_text())["pending"]) == 1
        host.hook = Receiver(host.hook.port).start()
        host.check()
    finally:
        site.stop()
    [sent] = host.hook.got
    assert sent.content_type == "application/json"
    assert json.loads(sent.body)["text"].startswith("wiki-events: the server's root disk (")
    assert json.loads(host.state.read_text())["pending"] == []


# -- installed by cloud-init ---------------------------------------------------------------


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def test_cloud_init_installs_the_timer_that_runs_the_check_on_the_volumes_env() -> None:
    service, timer = unit("wiki-events-hostcheck.service"), unit("wiki-events-hostcheck.timer")
    command = service["Service"]["ExecStart"].split()
    assert command[:2] == ["/usr/bin/python3", "/opt/wiki-events/deploy/hostcheck.py"]
    assert command[2:] == [
        "--env",
        "/mnt/wiki-events/.env",
        "--state",
        "/var/lib/wiki-events/hostcheck.json",
    ]
    assert service["Service"]["StateDirectory"] == "wiki-events"
    assert service["Service"]["SuccessExitStatus"] == "1"  # a problem found is no failure
    assert service["Unit"]["RequiresMountsFor"] == "/mnt/wiki-events"
    assert timer["Timer"]["OnUnitActiveSec"] == "5min"
    assert timer["Install"]["WantedBy"] == "timers.target"
    runcmd = [
        " ".join(map(str, item)) if isinstance(item, list) else item
        for item in yaml.safe_load(render_user_data(SAMPLE))["runcmd"]
    ]
    copy = next(line for line in runcmd if line.startswith("cp "))
    for name in ("wiki-events-hostcheck.service", "wiki-events-hostcheck.timer"):
        assert f"/opt/wiki-events/deploy/systemd/{name}" in copy.split()
    enable = runcmd.index("systemctl enable --now wiki-events-hostcheck.timer")
    assert runcmd.index(copy) < enable < runcmd.index("systemctl enable --now wiki-events.service")
