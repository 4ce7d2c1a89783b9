"""``wiki-events up``: the whole pipeline in one command, on embedded defaults.

What runs where: the embedded ClickHouse in a child process (unless ``CLICKHOUSE_URL``
already answers); the reader, the loader, the emulator (with ``--replay``) and the
dashboard as threads of this process. RabbitMQ carries the events when ``AMQP_URL``
reaches one; otherwise the reader hands each batch straight to bronze
(``loader.direct``), which keeps the same guarantee: the checkpoint moves only after
ClickHouse has the rows.

``up`` is a row of start steps. Each step starts one part and registers how to stop it
on an ``ExitStack``, so the stops run in the reverse order of the starts: the dashboard,
then the reader (it flushes to the broker or bronze and checkpoints), then the loader
(it inserts what it holds), the emulator, and ClickHouse last. Each step can be started
(and stopped) alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pika
import pika.exceptions

from transform.project import build_summary, run_dbt
from transform.status import gold_exists, gold_total
from wiki_core.config import ClickHouseURL, Settings, clickhouse_client
from wiki_core.health import clickhouse_answers
from wiki_core.timefmt import age_text
from wiki_core.topology import Sink
from wiki_core.unreachable import without_password

from .accounts import ANALYST, PASSWORDS, SERVICES, LocalAccounts, role_urls

log = logging.getLogger("up")

Say = Callable[[str], None]


@dataclass
class UpOptions:
    replay: Path | None = None
    speed: float = 1.0
    loop: bool = False
    since: str | None = None
    dash_host: str = "127.0.0.1"
    dash_port: int = 8050
    dashboard: bool = True
    dumps: bool = False  # also follow the page-view and media-count dumps
    progress_every: float = 5.0


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


def clickhouse_up(url: str) -> bool:
    """Whether a ClickHouse answers at ``url`` now."""
    try:
        clickhouse_answers(url, timeout=2)
    except (httpx.HTTPError, ConnectionError):
        return False
    return True


def is_local(url: str) -> bool:
    return ClickHouseURL.parse(url).host in ("127.0.0.1", "localhost", "::1")


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


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 30.0) -> None:
    """SIGTERM a child that still runs, wait up to ``timeout`` for it, then SIGKILL it."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def clickhouse_command(
    data: Path, port: int, users: Path | None = None, users_d: Path | None = None
) -> list[str]:
    """``wiki-events clickhouse`` on ``data`` and ``port``, run by this Python."""
    command = [sys.executable, "-m", "wiki_events", "clickhouse", "--data", str(data)]
    command += ["--port", str(port)]
    command += ["--users", str(users)] if users else []
    return command + (["--users-d", str(users_d)] if users_d else [])


@dataclass
class EmbeddedClickHouse:
    """``wiki-events clickhouse`` as a child process, for the length of ``up``."""

    data: Path
    port: int
    users_d: Path | None = None  # the users.d folder it loads (else its built-in admin)
    env: dict[str, str] = field(default_factory=dict)  # its users' passwords
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data.parent / "clickhouse.log"

    def start(self, url: str, timeout: float = 90.0) -> None:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            env = {k: v for k, v in os.environ.items() if k != "CLICKHOUSE_URL"}
            self.proc = subprocess.Popen(
                clickhouse_command(self.data, self.port, users_d=self.users_d),
                stdout=out,
                stderr=out,
                env={**env, **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError("the embedded ClickHouse exited: " + " / ".join(tail))
            if clickhouse_up(url):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the embedded ClickHouse did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        stop_process(self.proc)


class Unavailable(Exception):
    """A start step cannot go on; the message says why, for the user."""


# -- the start steps: each starts one part and puts its stop on ``stack`` -------------


def start_clickhouse(stack: contextlib.ExitStack, settings: Settings, say: Say) -> None:
    """ClickHouse at ``CLICKHOUSE_URL``: the one running there, or the embedded one."""
    url = settings.clickhouse_url
    if clickhouse_up(url):
        say(f"  ClickHouse   already running at {without_password(url)}")
        return
    if not is_local(url):
        raise Unavailable(
            f"  ClickHouse   not reachable at {without_password(url)}; "
            "start it or fix CLICKHOUSE_URL"
        )
    clickhouse = EmbeddedClickHouse(settings.data_dir / "clickhouse", ClickHouseURL.parse(url).port)
    accounts = None
    if LocalAccounts.available() and ClickHouseURL.parse(url).user == "default":
        # production's users, each part logging in as its own (wiki_events/accounts.py)
        accounts = LocalAccounts.prepare(settings.data_dir)
        clickhouse.users_d = accounts.folder
        clickhouse.env = accounts.server_env()
    stack.callback(clickhouse.stop)  # also when it fails to answer in time
    clickhouse.start(url)
    say(
        f"  ClickHouse   embedded, data in {clickhouse.data}, at {without_password(url)} "
        f"(log: {clickhouse.log_path})"
    )
    if accounts is not None:
        say(
            "               users: production's (deploy/clickhouse/users.d): the parts log "
            f"in as {', '.join(SERVICES)}; `wiki-events sql` as {ANALYST} "
            f"(passwords in {settings.data_dir / PASSWORDS})"
        )


def prepare_warehouse(settings: Settings, say: Say, with_dumps: bool = False) -> None:
    """Bronze's migrations, then dbt's build, before any insert: the views exist when
    the first event lands. ``with_dumps``: the dumps' bronze too, and their models."""
    from dumps import service as dumps_service
    from loader import bronze

    urls = role_urls(settings.clickhouse_url, settings.data_dir)
    client = clickhouse_client(urls["loader"])
    try:
        bronze.migrate(client, settings.retention_days, settings.cluster)
    finally:
        client.close()
    if with_dumps:
        client = clickhouse_client(urls["dumps"])
        try:
            dumps_service.prepare(client, settings.cluster)
        finally:
            client.close()
    say("  dbt          dbt build (silver and gold materialized views, tests)...")
    args = ["build", "--vars", dumps_service.DBT_VARS] if with_dumps else ["build"]
    done = run_dbt(args, urls["dbt"], work_dir=settings.data_dir / "dbt", cluster=settings.cluster)
    summary, problems = build_summary(done.stdout)
    say(f"               {summary}")
    if done.returncode != 0:
        for line in problems:
            say(f"               {line}")
        if not gold_exists(urls["dbt"]):
            raise Unavailable("  dbt build failed and gold does not exist: stopping (see above)")
        say("               some dbt tests failed; the pipeline runs on (run `dbt test` to see)")


def start_emulator(
    stack: contextlib.ExitStack,
    threads: Threads,
    path: Path,
    speed: float,
    loop: bool,
    say: Say,
) -> str:
    """The EventStreams emulator replaying ``path`` on a free port; returns its URL."""
    import uvicorn

    from reader.emulator import Emulator
    from reader.emulator import Options as ReplayOptions

    emulator = Emulator(path, ReplayOptions(speed=speed, loop=loop))
    if emulator.warning:
        say(f"  warning      {emulator.warning}")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        emulator.app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    threads.start("emulator", server.run)

    def stop() -> None:
        emulator.closing = True
        server.should_exit = True
        threads.join(30, "emulator")

    stack.callback(stop)
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        if threads.failure:
            raise Unavailable(f"  stream       the emulator failed: {threads.failure[1]}")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/v2/stream/recentchange"


@dataclass
class Transport:
    """How events go from the reader to bronze: ``sink`` for the reader, and the count
    of events loaded so far."""

    sink: Sink
    loaded: Callable[[], int]


def start_transport(
    stack: contextlib.ExitStack,
    settings: Settings,
    threads: Threads,
    stop: threading.Event,
    say: Say,
) -> Transport:
    """RabbitMQ and a loader thread when ``AMQP_URL`` answers, else the direct hand-off.
    ``stop`` tells the sink's retries to give up (set when the reader stops)."""
    url = role_urls(settings.clickhouse_url, settings.data_dir)["loader"]
    problem = broker_problem(settings.amqp_url)
    if problem is not None:
        from loader.direct import DirectSink

        say(
            f"  broker       NONE: RabbitMQ at {without_password(settings.amqp_url)} "
            "is unreachable "
            f"({problem})."
        )
        say(
            "               Events go from the reader straight to ClickHouse in this "
            "process (no queue);"
        )
        say("               set AMQP_URL to a running RabbitMQ for the buffered pipeline.")
        direct = DirectSink(lambda: clickhouse_client(url), stop.is_set)
        return Transport(direct, lambda: direct.inserted)

    from loader.consumer import Loader
    from loader.consumer import Options as LoaderOptions
    from reader.publisher import Publisher

    say(f"  broker       RabbitMQ at {without_password(settings.amqp_url)}")
    loader = Loader(lambda: clickhouse_client(url), LoaderOptions(amqp_url=settings.amqp_url))
    threads.start("loader", loader.run)

    def stop_loader() -> None:  # after the reader: it inserts what the reader flushed
        loader.stop()
        threads.join(30, "loader")

    stack.callback(stop_loader)
    publisher = Publisher(settings.amqp_url, stop=stop.is_set)
    return Transport(publisher, lambda: loader.stats.inserted)


def start_reader(
    stack: contextlib.ExitStack,
    settings: Settings,
    threads: Threads,
    sink: Sink,
    stream_url: str,
    since: str | None,
    stop: threading.Event,
    say: Say,
) -> Any:
    """The reader thread, from its checkpoint; its stop flushes and checkpoints."""
    from reader.checkpoint import Checkpoint, path_in
    from reader.stream import Options as StreamOptions
    from reader.stream import Reader

    checkpoint = Checkpoint(path_in(settings.data_dir))
    resumed = checkpoint.load()
    opts = StreamOptions(url=stream_url, contact=settings.contact, since=since)
    reader = Reader(opts, sink, checkpoint)
    say(
        f"  reader       {'resuming from its checkpoint' if resumed else 'starting fresh'} "
        f"({checkpoint.path})"
    )
    threads.start("reader", reader.run)

    def stop_reader() -> None:
        stop.set()
        reader.stop()
        threads.join(30, "reader")

    stack.callback(stop_reader)
    return reader


def start_dumps(
    stack: contextlib.ExitStack, stop: threading.Event, settings: Settings, say: Say
) -> None:
    """The dumps' followers: each new hour of page views and day of media counts."""
    from dumps import service as dumps_service

    # the followers read their ClickHouse from the environment, as their service does
    own = role_urls(settings.clickhouse_url, settings.data_dir)["dumps"]
    os.environ.setdefault("DUMPS_CLICKHOUSE_URL", own)
    followers = dumps_service.start(stop)
    say(f"  dumps        following page views and media counts at {settings.dumps_url}")

    def stop_followers() -> None:
        stop.set()
        for thread in followers:
            thread.join(30)

    stack.callback(stop_followers)


def start_dashboard(
    stack: contextlib.ExitStack, settings: Settings, threads: Threads, host: str, port: int
) -> str:
    """The dashboard on ``host:port``; returns its address."""
    from werkzeug.serving import make_server

    from dash_app.app import create_app

    # the dashboard reads its ClickHouse from the environment, as its service does
    own = role_urls(settings.clickhouse_url, settings.data_dir)["dashboard"]
    os.environ.setdefault("DASH_CLICKHOUSE_URL", own)

    server = make_server(host, port, create_app().server, threaded=True)
    threads.start("dashboard", server.serve_forever)

    def stop() -> None:
        server.shutdown()
        threads.join(30, "dashboard")

    stack.callback(stop)
    return f"http://{host}:{port}/"


def up(opts: UpOptions, settings: Settings, say: Say) -> int:
    """Run everything until interrupted (SIGINT/SIGTERM raise KeyboardInterrupt here)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    threads = Threads()
    stop = threading.Event()
    say("wiki-events up")
    # one progress line from here replaces the reader's and the loader's own
    for name in ("reader", "loader", "loader.bronze", "loader.direct"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with contextlib.ExitStack() as stack:
        stack.callback(threads.join, 10)
        try:
            start_clickhouse(stack, settings, say)
            prepare_warehouse(settings, say, opts.dumps)
            stream_url = settings.stream_url
            if opts.replay is not None:
                stream_url = start_emulator(stack, threads, opts.replay, opts.speed, opts.loop, say)
                say(
                    f"  stream       replaying {opts.replay} at speed {opts.speed:g} "
                    f"({'looped' if opts.loop else 'once'}) via {stream_url}"
                )
            else:
                say(f"  stream       {stream_url}")
            transport = start_transport(stack, settings, threads, stop, say)
            reader = start_reader(
                stack, settings, threads, transport.sink, stream_url, opts.since, stop, say
            )
            if opts.dumps:
                start_dumps(stack, stop, settings, say)
            if opts.dashboard:
                address = start_dashboard(stack, settings, threads, opts.dash_host, opts.dash_port)
                say(f"  dashboard    {address}")
            say("Ctrl-C stops everything; running `wiki-events up` again resumes where this stops.")
            return watch(opts, settings, threads, reader, transport, say)
        except Unavailable as exc:
            say(str(exc))
            return 2
        except KeyboardInterrupt:
            say("stopping: dashboard, reader (flush and checkpoint), loader, ClickHouse...")
            return 0


def watch(
    opts: UpOptions,
    settings: Settings,
    threads: Threads,
    reader: Any,
    transport: Transport,
    say: Say,
) -> int:
    """A progress line every ``progress_every`` seconds until a thread fails."""
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
            total, age = gold_total(settings.clickhouse_url)
            say(
                f"read {reader.stats.received:,} ({rate:,.0f}/s) · "
                f"published {reader.stats.published:,} · loaded {transport.loaded():,} · "
                f"gold {'?' if total < 0 else f'{total:,}'} events"
                + (f" · newest event {age_text(age)} old" if age is not None else "")
            )
