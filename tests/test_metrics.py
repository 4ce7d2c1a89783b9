"""The reader's and the loader's Prometheus endpoints (METRICS_PORT / --metrics-port):
their counters as scraped, from the running commands."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from loader.bronze import migrate
from reader.stream import Stats
from wiki_core.config import clickhouse_client
from wiki_core.metrics import SLOTS, serve

from .helpers.clickhouse import ClickHouseProcess
from .helpers.metrics import scrape
from .helpers.paths import ROOT
from .helpers.ports import free_port
from .helpers.rabbitmq import publish
from .helpers.recorded import looped_events


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


@pytest.mark.slow
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
    assert f"cannot serve metrics on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def _status(url: str) -> int | str:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError as exc:
        return type(exc).__name__


def test_the_endpoint_listens_on_loopback_unless_told(command_env: dict[str, str]) -> None:
    """By default 127.0.0.1 alone (not 127.0.0.2, another loopback address: so not every
    interface); METRICS_HOST moves it. Checked on the reader's command, with RabbitMQ
    down (a closed port): the endpoint serves while the reader retries, and SIGTERM ends
    both."""
    stats = Stats(received=1)
    port = free_port()
    server = serve(port, stats.metrics)
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert _status(f"http://127.0.0.1:{port}/metrics") == 200
        assert _status(f"http://127.0.0.2:{port}/metrics") == "ConnectError"
    finally:
        server.shutdown()
        server.server_close()
    port = free_port()
    env = {
        **command_env,
        "METRICS_HOST": "127.0.0.2",
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F",
        "STREAM_URL": f"http://127.0.0.1:{free_port()}/v2/stream/recentchange",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "wiki_events", "stream", "--metrics-port", str(port)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while _status(f"http://127.0.0.2:{port}/metrics") != 200:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        assert _status(f"http://127.0.0.1:{port}/metrics") == "ConnectError"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert f"Prometheus metrics on 127.0.0.2:{port}/metrics" in err


def test_half_sent_requests_cannot_hold_the_endpoint() -> None:
    """300 connections that send half a request: at most SLOTS are served at once (the
    rest closed at once), a silent one is dropped after the read timeout, one that
    trickles a byte at a time after the deadline; then a scrape is answered."""
    stats = Stats(received=3)
    port = free_port()
    threads_before = threading.active_count()
    server = serve(port, stats.metrics, read_timeout=1.0, deadline=2.0)
    trickler = socket.create_connection(("127.0.0.1", port))
    held = [trickler]
    try:
        for _ in range(300):
            conn = socket.create_connection(("127.0.0.1", port))
            conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # no blank line: unfinished
            held.append(conn)
        time.sleep(0.3)
        # the server's thread, and per connection served: its thread and its deadline's
        assert threading.active_count() - threads_before <= 1 + 2 * SLOTS
        started = time.monotonic()
        while True:  # the trickler sends a byte every 0.5 s: no read ever times out
            try:
                trickler.sendall(b"G")
            except OSError:
                break
            assert time.monotonic() - started < 5, "the trickler was never cut"
            time.sleep(0.5)
        deadline = time.monotonic() + 5
        while _status(f"http://127.0.0.1:{port}/metrics") != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert (
            "wiki_reader_events_received_total 3.0"
            in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        )
        assert threading.active_count() - threads_before <= 1 + 2 * SLOTS
    finally:
        for conn in held:
            conn.close()
        server.shutdown()
        server.server_close()
