"""The reader's and the loader's Prometheus endpoints (METRICS_PORT / --metrics-port):
their counters as scraped, from the running commands."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from loader.bronze import migrate
from reader.stream import Stats
from wiki_core.config import clickhouse_client
from wiki_core.metrics import serve

from .conftest import ROOT, ClickHouseProcess, free_port
from .test_loader import looped_events, publish

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(port: int) -> dict[str, float]:
    """``name{labels}`` → value, from the endpoint's text format."""
    reply = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert reply.status_code == 200
    out = {}
    for line in reply.text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


def poll(
    port: int, ready: Callable[[dict[str, float]], bool], timeout: float = 120
) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    got: dict[str, float] = {}
    while time.monotonic() < deadline:
        try:
            got = scrape(port)
        except httpx.TransportError:
            got = {}
        if got and ready(got):
            return got
        time.sleep(0.3)
    raise AssertionError(f"not ready in {timeout}s: {got}")


@pytest.fixture
def command_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "AMQP_"))}
    env["WIKI_EVENTS_DATA"] = str(tmp_path / "var")
    yield env


def test_a_stage_serves_its_counters_read_when_scraped() -> None:
    stats = Stats(received=7, published=5, canaries=1, quarantined=Counter({"malformed-json": 2}))
    stats.newest_ms = 1_700_000_000_123
    port = free_port()
    server = serve(port, stats.metrics, host="127.0.0.1")
    try:
        got = scrape(port)
        assert got["wiki_reader_events_received_total"] == 7
        assert got["wiki_reader_events_published_total"] == 5
        assert got['wiki_reader_quarantined_total{reason="malformed-json"}'] == 2
        assert got["wiki_reader_newest_event_timestamp_seconds"] == 1_700_000_000.123
        assert got["process_resident_memory_bytes"] > 0  # the process's own, beside ours
        stats.published += 10  # read at scrape time, not copied at start
        assert scrape(port)["wiki_reader_events_published_total"] == 15
    finally:
        server.shutdown()


def test_the_loader_command_counts_what_it_inserted(
    clickhouse: ClickHouseProcess, amqp_url: str, command_env: dict[str, str]
) -> None:
    url = f"{clickhouse.url}/default"
    client = clickhouse_client(url)
    migrate(client)
    before = int(client.command("SELECT count() FROM bronze.wiki_raw"))
    events = looped_events(3000)
    publish(amqp_url, events)
    port = free_port()
    env = {**command_env, "CLICKHOUSE_URL": url, "AMQP_URL": amqp_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wiki_events", "load", "--metrics-port", str(port)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        got = poll(
            port,
            lambda m: (
                m.get("wiki_loader_events_inserted_total", 0)
                + m.get("wiki_loader_duplicates_total", 0)
                >= 3000
            ),
        )
        inserted = got["wiki_loader_events_inserted_total"]
        assert inserted == int(client.command("SELECT count() FROM bronze.wiki_raw")) - before
        assert abs(got["wiki_loader_last_insert_timestamp_seconds"] - time.time()) < 120
        assert got["wiki_loader_batches_total"] >= 1
    finally:
        proc.terminate()
        proc.wait(60)
        client.close()


def test_the_reader_command_counts_its_reconnects_while_offline(
    command_env: dict[str, str],
) -> None:
    port = free_port()
    env = {
        **command_env,
        "METRICS_PORT": str(port),
        "STREAM_URL": f"http://127.0.0.1:{free_port()}/v2/stream/recentchange",
        "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "wiki_events", "stream"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        got = poll(port, lambda m: m.get("wiki_reader_reconnects_total", 0) >= 2, timeout=60)
        assert got["wiki_reader_events_received_total"] == 0
        assert got["wiki_reader_newest_event_timestamp_seconds"] == 0
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert "cannot reach the stream at http://127.0.0.1:" in err
    assert "connection refused" in err and "--replay" in err


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["--metrics-port", "-1"], {}, "-1 is not in the range 0<=x<=65535"),
        (["--metrics-port", "70000"], {}, "70000 is not in the range 0<=x<=65535"),
        ([], {"METRICS_PORT": "abc"}, "METRICS_PORT='abc' is not a whole number"),
        ([], {"METRICS_PORT": "99999"}, "METRICS_PORT=99999 is not a port"),
    ],
)
def test_a_port_that_cannot_be_is_one_line_not_a_traceback(
    args: list[str], env: dict[str, str], said: str, command_env: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wiki_events", "stream", *args],
        cwd=ROOT,
        env={**command_env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode in (1, 2) and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_metrics_port_in_use_is_said_plainly(command_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "wiki_events", "stream", "--metrics-port", str(port)],
            cwd=ROOT,
            env=command_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert f"cannot serve metrics on :{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr
