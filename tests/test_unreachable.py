"""Messages a user reads when something is down: one plain line naming what, where, why
and what to run (issue 15 item 17)."""

from __future__ import annotations

import logging
import queue
import socket
import subprocess
import sys
import threading

import httpx
import pytest

from reader.stream import Options, Stats, _HttpFollower
from wiki_core.unreachable import cause, sentence, without_password

from .helpers.paths import ROOT
from .helpers.ports import free_port


def _wrapped(inner: BaseException) -> Exception:
    """An error wrapped the way client libraries wrap a socket error."""
    try:
        try:
            raise inner
        except OSError as exc:
            raise RuntimeError("Max retries exceeded with url: /?query_id=x") from exc
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "does not resolve"),
        (TimeoutError("timed out"), "no answer in time"),
        (OSError(113, "No route to host"), "no route"),
    ],
)
def test_cause_digs_through_wrappers(inner: BaseException, expected: str) -> None:
    assert expected in cause(_wrapped(inner))


def test_cause_of_an_unknown_error_names_it() -> None:
    assert cause(ValueError("odd thing\nsecond line")) == "ValueError: odd thing"


def test_sentence_hides_the_password() -> None:
    text = sentence(
        "ClickHouse",
        "http://admin:s3cret@db:8123/x",
        ConnectionRefusedError(111, "Connection refused"),
        "start it",
    )
    assert "s3cret" not in text
    assert text.startswith("ClickHouse is not answering at http://admin:***@db:8123/x (")
    assert text.endswith("): start it")
    assert without_password("http://db:8123/") == "http://db:8123/"


def test_status_with_everything_down_says_so_in_plain_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dead = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "CLICKHOUSE_URL": f"http://default:pw@127.0.0.1:{dead}/",
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{dead}/",
        "WIKI_EVENTS_DATA": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "wiki_events", "status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    out = done.stdout.splitlines()
    assert any(
        line.startswith("FAIL clickhouse  ClickHouse is not answering at http://default:***@")
        and "connection refused" in line
        and "wiki-events clickhouse" in line
        for line in out
    ), out
    assert any("RabbitMQ is not answering" in line and "AMQP_URL" in line for line in out), out
    # nothing after the report: no client library's retry warnings or reprs
    assert done.stderr == "", done.stderr
    assert "HTTPConnectionPool" not in done.stdout and "Max retries" not in done.stdout


def test_reader_offline_names_the_url_and_the_replay_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "https://stream.example.invalid/v2/stream/recentchange"
    tries = []
    stop = threading.Event()

    def offline(request: httpx.Request) -> httpx.Response:
        tries.append(request)
        if len(tries) == 4:  # the fourth failure comes while stopping: not said
            stop.set()
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    follower = _HttpFollower(
        Options(url=url, max_backoff=0.01),
        None,
        queue.Queue(),
        Stats(),
        stop,
        transport=httpx.MockTransport(offline),
    )
    with caplog.at_level(logging.WARNING, logger="reader"):
        follower.run()
    said = [r.getMessage() for r in caplog.records if r.name == "reader"]
    assert len(tries) == 4 and len(said) == 3
    assert all(
        f"cannot reach the stream at {url} (the host name does not resolve" in s for s in said
    )
    assert sum("--replay" in s for s in said) == 1 and "--replay" in said[0]
