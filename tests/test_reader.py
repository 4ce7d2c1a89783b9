"""The reader against the real RabbitMQ and the emulator over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pika
import pytest

from reader.checkpoint import Checkpoint
from reader.publisher import Publisher
from reader.stream import FatalStreamError, Options, Reader, since_ms
from wiki_core.config import user_agent
from wiki_core.timefmt import iso_ms
from wiki_core.topology import BATCH_CONTENT_TYPE, LOADER_QUEUE, QUARANTINE, decode_batch

from .helpers.paths import RAW, ROOT, SHARED_DATA
from .helpers.ports import free_port
from .helpers.rabbitmq import rabbitmqctl
from .helpers.signals import sigterm_when


def file_ids(path: Path) -> set[str]:
    return {json.loads(line)["meta"]["id"] for line in path.read_text().splitlines() if line}


class Emulator:
    def __init__(self, path: Path, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wiki_events",
                "replay",
                str(path),
                "--port",
                str(self.port),
                *args,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url.replace("recentchange", "nope"), timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("emulator did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/stream/recentchange"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def emulator() -> Iterator[type[Emulator]]:
    started: list[Emulator] = []

    class Started(Emulator):
        def __init__(self, path: Path, *args: str) -> None:
            super().__init__(path, *args)
            started.append(self)

    yield Started
    for e in started:
        e.stop()


class Queues:
    """Drains the loader queue and the quarantine, keeping what it read."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: list[str] = []
        self.lines: list[bytes] = []  # the events' lines, as published
        self.quarantined: list[tuple[str, bytes]] = []

    def drain(self) -> None:
        try:
            conn = pika.BlockingConnection(pika.URLParameters(self.url))
        except pika.exceptions.AMQPConnectionError:
            return  # the broker is restarting; try again later
        try:
            ch = conn.channel()
            for queue, sink in ((LOADER_QUEUE, self._event_batch), (QUARANTINE, self._bad)):
                try:
                    ch.queue_declare(queue, passive=True)
                except pika.exceptions.ChannelClosedByBroker:
                    ch = conn.channel()
                    continue
                while True:
                    method, props, body = ch.basic_get(queue, auto_ack=True)
                    if method is None:
                        break
                    sink(props, body)
        except (pika.exceptions.ConnectionClosedByBroker, pika.exceptions.ChannelClosedByBroker):
            # a quorum queue still starting after a broker restart (INTERNAL_ERROR, noproc):
            # nothing was taken; try again at the next poll
            return
        finally:
            if conn.is_open:
                conn.close()

    def _event_batch(self, props: pika.BasicProperties, body: bytes) -> None:
        assert props.content_type == BATCH_CONTENT_TYPE
        events, rejects, canaries = decode_batch(body, props.content_type)
        assert props.headers["events"] == len(events) and not rejects and not canaries
        # the keys line holds each line's own keys
        assert [e.event_id for e in events] == [orjson.loads(e.raw)["meta"]["id"] for e in events]
        self.ids += [e.event_id for e in events]
        self.lines += [e.raw for e in events]

    def _bad(self, props: pika.BasicProperties, body: bytes) -> None:
        self.quarantined.append((props.headers["x-reason"], body))

    def wait_for(self, want: set[str], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain()
            if want <= set(self.ids):
                return
            time.sleep(0.5)
        raise AssertionError(f"{len(want - set(self.ids))} of {len(want)} events never arrived")


def run_reader_in_thread(reader: Reader) -> threading.Thread:
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    return thread


def make_reader(url: str, amqp_url: str, tmp_path: Path, **opts: object) -> Reader:
    settings: dict[str, object] = {
        "contact": "tests@example.org",
        "idle_timeout": 3,
        "log_every": 60,
    }
    settings.update(opts)
    options = Options(url=url, **settings)  # type: ignore[arg-type]
    return Reader(options, Publisher(amqp_url), Checkpoint(tmp_path / "cp.json"))


@pytest.mark.slow
def test_forced_disconnects_lose_nothing(amqp_url: str, emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = emulator(RAW, "--disconnect-every", "400")
    reader = make_reader(server.url, amqp_url, tmp_path)
    thread = run_reader_in_thread(reader)
    queues = Queues(amqp_url)
    queues.wait_for(file_ids(RAW))
    reader.stop()
    thread.join(30)
    assert reader.stats.reconnects >= 5
    # every id arrived; the extra copies are the timestamp resume's, which replays the
    # events at or after the last event's time (the loader drops them by meta.id)
    assert set(queues.ids) == file_ids(RAW)
    assert len(queues.ids) >= len(file_ids(RAW))
    assert Checkpoint(tmp_path / "cp.json").load() is not None


def start_reader_process(url: str, amqp_url: str, data: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STREAM_URL": url,
        "AMQP_URL": amqp_url,
        "WIKI_EVENTS_DATA": str(data),
        "WIKI_EVENTS_CONTACT": "tests@example.org",
    }
    log = open(data / "reader.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "wiki_events", "stream", "--idle-timeout", "3"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )


@pytest.mark.slow
def test_kill_9_mid_stream_then_restart_leaves_no_gap(
    amqp_url: str, emulator, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    server = emulator(RAW, "--rate", "400")
    queues = Queues(amqp_url)
    proc = start_reader_process(server.url, amqp_url, tmp_path)
    deadline = time.monotonic() + 60
    while len(queues.ids) < 600 and time.monotonic() < deadline:
        queues.drain()
        time.sleep(0.2)
    assert len(queues.ids) >= 600, (tmp_path / "reader.log").read_text()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert len(set(queues.ids)) < len(file_ids(RAW))  # killed before the end
    proc = start_reader_process(server.url, amqp_url, tmp_path)
    try:
        queues.wait_for(file_ids(RAW))
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    assert "resuming from checkpoint" in (tmp_path / "reader.log").read_text()


@pytest.mark.slow
def test_rabbitmq_restart_mid_stream_loses_nothing(amqp_url: str, emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = emulator(RAW, "--rate", "300")
    queues = Queues(amqp_url)
    proc = start_reader_process(server.url, amqp_url, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while len(queues.ids) < 300 and time.monotonic() < deadline:
            queues.drain()
            time.sleep(0.2)
        rabbitmqctl("stop_app")
        time.sleep(3)
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        queues.wait_for(file_ids(RAW))
    finally:
        proc.terminate()
        proc.wait(30)
    log = (tmp_path / "reader.log").read_text()
    assert "RabbitMQ connection lost" in log or "publish failed" in log


@pytest.mark.slow
def test_bad_input_is_quarantined_with_its_reason_and_the_stream_goes_on(
    amqp_url: str,
    emulator,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    good = RAW.read_text().splitlines()[:50]
    canary = next(
        line
        for line in (
            SHARED_DATA / "recentchange" / "2025-12-15_muratcolak78-wikimedia-kafka.ndjson"
        )
        .read_text()
        .splitlines()
        if '"canary"' in line
    )
    no_id = json.loads(good[0])
    del no_id["meta"]["id"]
    oversized = json.loads(good[1])
    oversized["comment"] = "x" * 5000
    oversized["meta"]["id"] = "oversized-event"
    lines = [
        *good[:10],
        "{not json",
        canary,
        json.dumps(no_id),
        *good[10:30],
        json.dumps(oversized),
        *good[30:],
    ]
    path = tmp_path / "bad.ndjson"
    path.write_text("\n".join(lines) + "\n")
    server = emulator(path)
    # a long idle timeout: no reconnect (whose 1 s resume overlap would re-read, and
    # re-quarantine, the last lines) while the test counts
    reader = make_reader(server.url, amqp_url, tmp_path, max_line=3000, idle_timeout=120)
    thread = run_reader_in_thread(reader)
    queues = Queues(amqp_url)
    queues.wait_for({json.loads(line)["meta"]["id"] for line in good})
    deadline = time.monotonic() + 10
    while len(queues.quarantined) < 3 and time.monotonic() < deadline:
        queues.drain()
        time.sleep(0.2)
    reader.stop()
    thread.join(30)
    reasons = sorted(reason.split(":")[0] for reason, _ in queues.quarantined)
    assert reasons == ["malformed-json", "missing-key", "oversized"]
    assert any(reason == "missing-key: meta.id" for reason, _ in queues.quarantined)
    assert any(body == b"{not json" for _, body in queues.quarantined)
    assert reader.stats.canaries == 1
    assert sum(reader.stats.quarantined.values()) == 3
    assert "oversized-event" not in queues.ids
    assert len(set(queues.ids)) == 50


def test_event_bytes_pass_through_and_invalid_utf8_is_quarantined_unchanged(
    amqp_url: str, tmp_path: Path
) -> None:
    good = RAW.read_bytes().splitlines()[0]
    pretty = json.dumps(json.loads(good), indent=1).encode()  # several data: lines
    broken = good.replace(b'"meta"', b'"\xff\xfe": 1, "meta"', 1)  # not UTF-8
    reader = make_reader("http://stream.invalid/v2/stream/recentchange", amqp_url, tmp_path)
    reader.transport = httpx.MockTransport(sse_of([good, pretty, broken]))
    reader.run(until=lambda stats: stats.received >= 3)
    queues = Queues(amqp_url)
    queues.drain()
    # the event as it arrived, byte for byte; the multi-line one as one compact line
    compact = json.dumps(json.loads(good), separators=(",", ":"), ensure_ascii=False).encode()
    assert queues.lines == [good, compact]
    [(reason, body)] = queues.quarantined
    assert reason.startswith("malformed-json") and body == broken


def test_a_bad_line_read_again_is_quarantined_once(amqp_url: str, tmp_path: Path) -> None:
    good = RAW.read_bytes().splitlines()[:2]
    reader = make_reader("http://stream.invalid/v2/stream/recentchange", amqp_url, tmp_path)
    # as a resume re-reads its overlap: the same bad line twice, around good events
    reader.transport = httpx.MockTransport(sse_of([good[0], b"{bad", good[1], b"{bad", b"{worse"]))
    reader.run(until=lambda stats: stats.received >= 5)
    queues = Queues(amqp_url)
    queues.drain()
    assert sorted(body for _, body in queues.quarantined) == [b"{bad", b"{worse"]
    assert reader.stats.quarantined == {"malformed-json": 2}


def sse_of(events: list[bytes]) -> Callable[[httpx.Request], httpx.Response]:
    """A stream sending ``events`` as SSE (one ``data:`` line per line of an event) on the
    first request and nothing on the next ones, for a reader given an
    ``httpx.MockTransport``."""
    body = b"".join(
        b"event: message\nid: [%d]\n" % n
        + b"".join(b"data: " + line + b"\n" for line in event.split(b"\n"))
        + b"\n"
        for n, event in enumerate(events)
    )

    served: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        served.append(request)
        content = body if len(served) == 1 else b""
        return httpx.Response(200, content=content, headers={"Content-Type": "text/event-stream"})

    return handler


def test_403_says_what_to_do(amqp_url: str, tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(403, text="Please set a user-agent")

    reader = make_reader(
        "http://stream.invalid/v2/stream/recentchange", amqp_url, tmp_path, since="2h"
    )
    reader.transport = httpx.MockTransport(handler)
    with pytest.raises(FatalStreamError, match="WIKI_EVENTS_CONTACT"):
        reader.run()
    request = seen[0]
    assert request.headers["User-Agent"] == user_agent("tests@example.org")
    assert "tests@example.org" in request.headers["User-Agent"]
    assert abs(int(request.url.params["since"]) - since_ms("2h")) < 60_000
    assert "Last-Event-ID" not in request.headers


def test_restart_sends_the_checkpoint_back(amqp_url: str, tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    event_id = '[{"topic":"eqiad.mediawiki.recentchange","partition":0,"timestamp":1724299342001}]'
    Checkpoint(tmp_path / "cp.json").save(event_id)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(429, text="too many")

    reader = make_reader(
        "http://stream.invalid/v2/stream/recentchange",
        amqp_url,
        tmp_path,
        since="2h",
        max_backoff=0.1,
    )
    reader.transport = httpx.MockTransport(handler)
    reader.run(until=lambda stats: len(seen) >= 2)
    sent = event_id.replace("1724299342001", "1724299341001")  # minus the 1 s overlap
    assert all(r.headers["Last-Event-ID"] == sent for r in seen)
    assert all("since" not in r.url.params for r in seen)  # the checkpoint wins


def test_since_accepts_durations_iso_and_epoch() -> None:
    now = 1_800_000_000.0
    assert since_ms("2h", now) == int((now - 7200) * 1000)
    assert since_ms("90s", now) == int((now - 90) * 1000)
    assert since_ms("2024-08-22T04:00:00Z") == 1724299200000
    assert since_ms("1724299200000") == 1724299200000
    with pytest.raises(ValueError, match="duration such as"):
        since_ms("yesterday")


def test_a_looped_replay_repeats_each_event_with_a_fresh_id_and_a_shifted_time() -> None:
    import uuid

    from reader.emulator import Log, load

    log = Log(load(RAW), loop=True)
    ids = set()
    for lap in range(3):
        for index in (0, 1, log.size - 1):
            first = json.loads(log.records[index].data)
            record = log.get(lap * log.size + index)
            assert record is not None
            event = json.loads(record.data)
            want = (
                first["meta"]["id"]
                if lap == 0
                else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{first['meta']['id']}/{lap}"))
            )
            assert event["meta"]["id"] == record.meta_id == want
            assert iso_ms(event["meta"]["dt"]) == record.ts_ms
            assert record.ts_ms == log.records[index].ts_ms + lap * log.shift
            assert {k: v for k, v in event.items() if k not in ("meta", "timestamp")} == {
                k: v for k, v in first.items() if k not in ("meta", "timestamp")
            }
            ids.add(event["meta"]["id"])
    assert len(ids) == 9


def test_stream_stops_on_sigterm_while_rabbitmq_is_down(tmp_path: Path) -> None:
    """`wiki-events stream` with RabbitMQ unreachable (a closed port) sits in the
    publisher's retry loop; SIGTERM ends it within seconds, in one line, status 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "AMQP_"))}
    env |= {
        "WIKI_EVENTS_DATA": str(tmp_path / "var"),
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F",
        "STREAM_URL": f"http://127.0.0.1:{free_port()}/v2/stream/recentchange",
    }
    ended = sigterm_when(["stream"], env, tmp_path / "log", "unreachable", times=2)
    assert ended.returncode == 0 and ended.seconds < 3, ended
    text = ended.log
    assert "wiki-events stream: stopped while RabbitMQ at 127.0.0.1 unreachable" in text
    assert "Traceback" not in text
