"""Production's Caddy site for the analysts (deploy/Caddyfile's ``{$DOMAIN}:8443`` block,
taken from the file as it is) run by the real ``caddy`` on this machine, in front of an
embedded ClickHouse: HTTPS from Caddy's internal CA, as the stack test has it. Only what
a machine without compose needs is swapped: the port, the upstream's address (compose's
``clickhouse:8123``) and the docs folder (compose's mount)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from .paths import ROOT
from .ports import free_port

SITE = "{$DOMAIN}:8443 {"


def analysts_site() -> str:
    """deploy/Caddyfile's block for port 8443, to its end (it is the file's last)."""
    text = (ROOT / "deploy" / "Caddyfile").read_text()
    start = text.index(SITE)
    # the comment above it says why; the block runs to the end of the file
    return text[start:]


class Caddy:
    def __init__(self, folder: Path, upstream_host: str, upstream_port: int, docs: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.upstream = f"{upstream_host}:{upstream_port}"
        self.docs = docs
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "caddy.log"

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ca(self) -> Path:
        """Caddy's internal root certificate (what an operator gives the analysts in the
        stack test; a public CA's in production)."""
        return self.folder / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def config(self) -> str:
        site = analysts_site()
        for old, new in (
            (SITE, f"localhost:{self.port} {{"),
            ("clickhouse:8123", self.upstream),
            ("/srv/dbt-docs", str(self.docs)),
        ):
            assert old in site, f"deploy/Caddyfile's analysts' site no longer holds {old!r}"
            site = site.replace(old, new)
        # no admin endpoint, no HTTP port, nothing installed into the system's trust store
        glob = (
            "{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n"
            f"\thttp_port {free_port()}\n\tauto_https disable_redirects\n}}\n\n"
        )
        return glob + site

    def start(self, timeout: float = 60.0) -> Caddy:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "Caddyfile").write_text(self.config())
        env = {
            **os.environ,
            "XDG_DATA_HOME": str(self.folder / "data"),
            "XDG_CONFIG_HOME": str(self.folder / "config"),
            "HOME": str(self.folder),
        }
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "caddy",
                    "run",
                    "--config",
                    str(self.folder / "Caddyfile"),
                    "--adapter",
                    "caddyfile",
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"caddy exited {self.proc.returncode}: {self.log.read_text()}")
            if self.ca.exists():
                try:
                    if (
                        httpx.get(f"{self.url}/ping", verify=str(self.ca), timeout=2).text
                        == "Ok.\n"
                    ):
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"caddy did not serve in {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.proc = None
