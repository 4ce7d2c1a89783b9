"""Shared fixtures: real services, started for real.

The embedded ClickHouse runs as its own process (``wiki-events clickhouse``), exactly
as users run it; tests talk to it over HTTP with real clients. One chDB engine lives
in one process, so a test that needs a fresh or restarted server starts its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from wiki_events.up import clickhouse_command

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
RAW = SHARED_DATA / "recentchange" / "2024-08-22_yearfunla-wikimedia-stream-monitor_raw.ndjson"

READONLY_USER = ("dashboard", "dash-secret")
USERS_TOML = f"""
[users.default]
password = ""

[users.{READONLY_USER[0]}]
password = "{READONLY_USER[1]}"
readonly = 1

[users.loader]
password = "load-secret"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClickHouseProcess:
    """A ``wiki-events clickhouse`` subprocess on a data folder."""

    def __init__(self, data: Path, port: int | None = None, users: Path | None = None) -> None:
        self.data = data
        self.port = port or free_port()
        self.users = users
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"{data.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return clickhouse_command(self.data, self.port, self.users)

    def start(self, timeout: float = 60.0) -> ClickHouseProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKHOUSE_")}
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


@pytest.fixture(scope="session")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.toml"
    path.write_text(USERS_TOML)
    return path


@pytest.fixture(scope="session")
def clickhouse(
    tmp_path_factory: pytest.TempPathFactory, users_file: Path
) -> Iterator[ClickHouseProcess]:
    """One embedded ClickHouse for the session, with a read-only and a loader user."""
    server = ClickHouseProcess(tmp_path_factory.mktemp("ch") / "data", users=users_file).start()
    yield server
    server.stop()


@pytest.fixture
def ch_client(clickhouse: ClickHouseProcess):  # type: ignore[no-untyped-def]
    import clickhouse_connect

    client = clickhouse_connect.get_client(host="127.0.0.1", port=clickhouse.port)
    yield client
    client.close()


def pytest_setup_options():  # type: ignore[no-untyped-def]
    """Chromium for dash[testing]'s browser tests: headless, no sandbox, no network."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1500,2200",
    ):
        options.add_argument(arg)
    return options


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A vhost of its own on the real broker, so tests never see each other's queues."""
    vhost = f"wiki-test-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=120)
