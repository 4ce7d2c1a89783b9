"""``wiki-events up``: the whole pipeline in one command, on embedded defaults.

What runs where: the embedded ClickHouse in a child process (unless ``CLICKHOUSE_URL``
already answers); the reader, the loader, the emulator (with ``--replay``) and the
dashboard as threads of this process. RabbitMQ carries the events when ``AMQP_URL``
reaches one; otherwise the reader hands each batch straight to the loader's writer
(``DirectSink``), which keeps the same guarantee: the checkpoint moves only after
ClickHouse has the rows.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pika
import pika.exceptions

from reader.loader import Bronze, Reject, parse_message
from reader.publisher import EXCHANGE, Message, backoff

from .config import ClickHouseURL, Settings, clickhouse_client
from .timefmt import age_text

log = logging.getLogger("up")


class DirectSink:
    """The reader's sink when there is no broker: each batch is written to bronze with
    the loader's own writer (duplicates dropped, rejects kept) before ``publish``
    returns, so the reader's checkpoint still trails what ClickHouse holds."""

    def __init__(self, client_factory: Callable[[], Any], stop: Callable[[], bool],
                 max_backoff: float = 30.0) -> None:  # fmt: skip
        self._factory = client_factory
        self._stop = stop
        self._bronze: Bronze | None = None
        self.max_backoff = max_backoff
        self.inserted = 0
        self.duplicates = 0

    def connect(self) -> None:
        pass

    def publish(self, messages: list[Message]) -> None:
        rows, rejects = [], []
        for message in messages:
            if message.exchange == EXCHANGE:
                good, bad, _ = parse_message(message.body)
                rows += good
                rejects += bad
            else:  # the reader's quarantine
                reason = str(message.headers.get("x-reason", "quarantined"))
                rejects.append(Reject(reason.split(":", 1)[0], reason, message.body))
        attempt = 0
        while True:
            try:
                if self._bronze is None:
                    self._bronze = Bronze(self._factory())
                inserted, duplicates = self._bronze.write(rows, rejects)
                self.inserted += inserted
                self.duplicates += duplicates
                return
            except Exception as exc:  # noqa: BLE001 - ClickHouse down: retry, keep the batch
                self._bronze = None
                attempt += 1
                delay = backoff(attempt, self.max_backoff, base=1.0)
                log.warning("insert failed (%s); retrying in %.1fs",
                            str(exc).splitlines()[0][:200], delay)  # fmt: skip
                if self._stop() and attempt > 3:
                    raise
                time.sleep(delay)

    def tick(self) -> None:
        pass

    def close(self) -> None:
        pass


def broker_problem(amqp_url: str) -> str | None:
    """Why RabbitMQ at ``amqp_url`` cannot be used, or None when it can."""
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # the caller says it once
    params = pika.URLParameters(amqp_url)
    params.socket_timeout = 3
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
        return None
    except pika.exceptions.ProbableAuthenticationError:
        return "the user or password was refused"
    except pika.exceptions.AMQPError as exc:
        return f"{type(exc).__name__} {str(exc)[:200]}".strip()
    except OSError as exc:
        return str(exc)


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def clickhouse_answers(url: str) -> bool:
    try:
        return httpx.get(f"{ClickHouseURL.parse(url).base}ping", timeout=2).text.strip() == "Ok."
    except httpx.HTTPError:
        return False


@dataclass
class EmbeddedClickHouse:
    """``wiki-events clickhouse`` as a child process, for the length of ``up``."""

    data: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data.parent / "clickhouse.log"

    def start(self, url: str, timeout: float = 90.0) -> None:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wiki_events", "clickhouse", "--data", str(self.data),
                 "--port", str(self.port)],
                stdout=out, stderr=out,
                env={k: v for k, v in os.environ.items() if k != "CLICKHOUSE_URL"},
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError("the embedded ClickHouse exited: " + " / ".join(tail))
            if clickhouse_answers(url):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the embedded ClickHouse did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 30.0) -> None:
    """SIGTERM a child that still runs, wait up to ``timeout`` for it, then SIGKILL it."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


class Threads:
    """Named worker threads; the first failure is kept for the main loop to report."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.failure: tuple[str, BaseException] | None = None

    def start(self, name: str, target: Callable[[], object]) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - reported by the main loop
                log.exception("%s failed", name)
                self.failure = self.failure or (name, exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self, timeout: float, name: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            if name is None or thread.name == name:
                thread.join(max(0.0, deadline - time.monotonic()))


def gold_total(url: str) -> tuple[int, float | None]:
    """(events in gold, seconds since the newest event) or (-1, None) if unavailable."""
    try:
        client = clickhouse_client(url, connect_timeout=2, send_receive_timeout=5)
        try:
            row = client.query(
                "SELECT sum(events), dateDiff('millisecond', max(last_event_at), now64(3)) "
                "FROM gold.wiki_totals"
            ).result_rows[0]
        finally:
            client.close()
        return int(row[0]), (row[1] / 1000 if row[0] else None)
    except Exception:  # noqa: BLE001 - progress is best effort
        return -1, None


def is_local(url: str) -> bool:
    return ClickHouseURL.parse(url).host in ("127.0.0.1", "localhost", "::1")


@dataclass
class UpOptions:
    replay: Path | None = None
    speed: float = 1.0
    loop: bool = False
    since: str | None = None
    dash_host: str = "127.0.0.1"
    dash_port: int = 8050
    dashboard: bool = True
    progress_every: float = 5.0


def up(opts: UpOptions, settings: Settings, say: Callable[[str], None]) -> int:
    """Run everything until interrupted (SIGINT/SIGTERM raise KeyboardInterrupt here)."""
    from reader import bronze
    from reader.checkpoint import Checkpoint
    from reader.loader import Loader
    from reader.loader import Options as LoaderOptions
    from reader.publisher import Publisher
    from reader.stream import Options as StreamOptions
    from reader.stream import Reader

    from .dbt import run_dbt

    url = settings.clickhouse_url
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    threads = Threads()
    stoppers: list[tuple[Callable[[], None], str | None]] = []
    clickhouse: EmbeddedClickHouse | None = None
    say("wiki-events up")
    # one progress line from here replaces the reader's and the loader's own
    for name in ("reader", "loader", "loader.bronze"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        # ClickHouse
        if clickhouse_answers(url):
            say(f"  ClickHouse   already running at {redact(url)}")
        elif is_local(url):
            clickhouse = EmbeddedClickHouse(data / "clickhouse", ClickHouseURL.parse(url).port)
            clickhouse.start(url)
            say(f"  ClickHouse   embedded, data in {clickhouse.data}, at {redact(url)} "
                f"(log: {clickhouse.log_path})")  # fmt: skip
        else:
            say(f"  ClickHouse   not reachable at {redact(url)}; start it or fix CLICKHOUSE_URL")
            return 2
        client = clickhouse_client(url)
        retention = os.environ.get("BRONZE_RETENTION_DAYS")
        bronze.migrate(client, int(retention or bronze.DEFAULT_RETENTION_DAYS))
        client.close()

        # dbt, before any insert: the views exist when the first event lands
        say("  dbt          dbt build (silver and gold materialized views, tests)...")
        done = run_dbt(["build"], url, work_dir=data / "dbt")
        summary = [ln for ln in done.stdout.splitlines() if "Done. PASS=" in ln]
        say(f"               {summary[-1].split('  ', 1)[-1].strip() if summary else 'no summary'}")
        if done.returncode != 0:
            tail = [ln for ln in done.stdout.splitlines() if "rror" in ln or "FAIL" in ln][-5:]
            for line in tail:
                say(f"               {line.strip()}")
            if not gold_exists(url):
                say("  dbt build failed and gold does not exist: stopping (see above)")
                return 2
            say(
                "               some dbt tests failed; the pipeline runs on (run `dbt test` to see)"
            )

        # the stream: live, or a replayed recording
        stream_url = settings.stream_url
        if opts.replay is not None:
            stream_url = start_emulator(opts, threads, stoppers)
            say(f"  stream       replaying {opts.replay} at speed {opts.speed:g} "
                f"({'looped' if opts.loop else 'once'}) via {stream_url}")  # fmt: skip
        else:
            say(f"  stream       {stream_url}")

        # the broker, or the in-process hand-off
        stop_flag = threading.Event()
        problem = broker_problem(settings.amqp_url)
        loader: Loader | None = None
        direct: DirectSink | None = None
        if problem is None:
            say(f"  broker       RabbitMQ at {redact(settings.amqp_url)}")
            sink: Any = Publisher(settings.amqp_url, stop=stop_flag.is_set)
            loader = Loader(
                lambda: clickhouse_client(url), LoaderOptions(amqp_url=settings.amqp_url)
            )
            threads.start("loader", loader.run)
        else:
            say(
                f"  broker       NONE: RabbitMQ at {redact(settings.amqp_url)} is unreachable "
                f"({problem})."
            )
            say(
                "               Events go from the reader straight to ClickHouse in this "
                "process (no queue);"
            )
            say("               set AMQP_URL to a running RabbitMQ for the buffered pipeline.")
            direct = DirectSink(lambda: clickhouse_client(url), stop_flag.is_set)
            sink = direct  # fmt: skip
        checkpoint = Checkpoint(data / "reader.checkpoint.json")
        resumed = checkpoint.load()
        reader = Reader(
            StreamOptions(url=stream_url, contact=settings.contact, since=opts.since),
            sink,
            checkpoint,
        )
        say(f"  reader       {'resuming from its checkpoint' if resumed else 'starting fresh'} "
            f"({checkpoint.path})")  # fmt: skip
        threads.start("reader", reader.run)
        stoppers.insert(0, (stop_flag.set, None))
        stoppers.insert(1, (reader.stop, "reader"))
        if loader is not None:
            stoppers.insert(2, (loader.stop, "loader"))

        if opts.dashboard:
            address = start_dashboard(opts, threads, stoppers)
            say(f"  dashboard    {address}")
        say("Ctrl-C stops everything; running `wiki-events up` again resumes where this stops.")

        last = time.monotonic()
        read_before = reader.stats.received
        while True:
            time.sleep(0.5)
            if threads.failure:
                name, exc = threads.failure
                say(f"wiki-events up: the {name} stopped: {exc}")
                return 1
            now = time.monotonic()
            if now - last >= opts.progress_every:
                rate = (reader.stats.received - read_before) / (now - last)
                read_before, last = reader.stats.received, now
                loaded = loader.stats.inserted if loader else (direct.inserted if direct else 0)
                total, age = gold_total(url)
                say(
                    f"read {reader.stats.received:,} ({rate:,.0f}/s) · "
                    f"published {reader.stats.published:,} · loaded {loaded:,} · "
                    f"gold {'?' if total < 0 else f'{total:,}'} events"
                    + (f" · newest event {age_text(age)} old" if age is not None else "")
                )
    except KeyboardInterrupt:
        say("stopping: reader (flush and checkpoint), loader, dashboard, ClickHouse...")
        return 0
    finally:
        # in order: the reader flushes to the broker (or bronze) and checkpoints, then
        # the loader inserts what it holds, then the rest; ClickHouse last
        for stop, thread_name in stoppers:
            stop()
            if thread_name:
                threads.join(30, thread_name)
        threads.join(10)
        if clickhouse is not None:
            clickhouse.stop()


def gold_exists(url: str) -> bool:
    try:
        client = clickhouse_client(url)
        try:
            return bool(client.command("EXISTS TABLE gold.wiki_totals"))
        finally:
            client.close()
    except Exception:  # noqa: BLE001
        return False


def start_emulator(
    opts: UpOptions, threads: Threads, stoppers: list[tuple[Callable[[], None], str | None]]
) -> str:
    import socket

    import uvicorn

    from reader.emulator import Emulator
    from reader.emulator import Options as ReplayOptions

    assert opts.replay is not None
    emulator = Emulator(opts.replay, ReplayOptions(speed=opts.speed, loop=opts.loop))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            emulator.app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )  # fmt: skip
    )
    threads.start("emulator", server.run)

    def stop() -> None:
        emulator.closing = True
        server.should_exit = True

    stoppers.append((stop, "emulator"))
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/v2/stream/recentchange"


def start_dashboard(
    opts: UpOptions, threads: Threads, stoppers: list[tuple[Callable[[], None], str | None]]
) -> str:
    from werkzeug.serving import make_server

    from dash_app.app import create_app

    server = make_server(opts.dash_host, opts.dash_port, create_app().server, threaded=True)
    threads.start("dashboard", server.serve_forever)
    stoppers.append((server.shutdown, "dashboard"))
    return f"http://{opts.dash_host}:{opts.dash_port}/"
