"""The embedded ClickHouse as its own process (``wiki-events clickhouse``), exactly as
users run it; tests and benchmarks talk to it over HTTP with real clients. One chDB
engine lives in one process, so a test that needs a fresh or restarted server starts its
own."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from wiki_events.up import clickhouse_command

from .paths import ROOT
from .ports import free_port

READONLY_USER = ("dashboard", "dash-secret")
# The session server's users, in ClickHouse's own users-file format: the passwordless
# admin `default`; `dashboard`, read-only (readonly = 1: the engine refuses its writes)
# with every grant, so readonly itself is what stops it; `loader`, a writable user with
# every grant (the security tests' "admin" with a password). Per-table grants are tested
# with the production users (tests/test_access.py).
USERS_XML = f"""<clickhouse>
  <profiles>
    <!-- the admins may use expressions in Values data (README: Security) -->
    <default>
      <input_format_values_interpret_expressions>1</input_format_values_interpret_expressions>
    </default>
    <reader><readonly>1</readonly></reader>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
    </default>
    <{READONLY_USER[0]}>
      <password>{READONLY_USER[1]}</password>
      <networks><ip>::/0</ip></networks>
      <profile>reader</profile>
      <quota>default</quota>
    </{READONLY_USER[0]}>
    <loader>
      <password>load-secret</password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </loader>
  </users>
  <quotas><default/></quotas>
</clickhouse>
"""


class ClickHouseProcess:
    """A ``wiki-events clickhouse`` subprocess on a data folder."""

    def __init__(
        self,
        data: Path,
        port: int | None = None,
        users: Path | None = None,
        users_d: Path | None = None,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.data = data
        self.host = host  # another address: its clients on this machine then come from it
        self.port = port or free_port()
        self.users = users
        self.users_d = users_d
        self.env = env or {}  # beside the test's own environment (the users' passwords)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"{data.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        command = clickhouse_command(self.data, self.port, self.users, self.users_d)
        return command + (["--host", self.host] if self.host != "127.0.0.1" else [])

    def start(self, timeout: float = 60.0) -> ClickHouseProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKHOUSE_")}
        env.update(self.env)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log, env=env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"clickhouse exited {self.proc.returncode}: {self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).text == "Ok.\n":
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"clickhouse did not answer /ping in {timeout}s: {self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.proc = None
        return rc
