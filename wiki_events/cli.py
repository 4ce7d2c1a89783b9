"""The ``wiki-events`` command: one subcommand per job."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from dumps.cli import mediacounts, pageviews
from loader.consumer import Options as LoaderOptions
from reader.emulator import Options as ReplayOptions
from reader.stream import Options as StreamOptions
from wiki_core import __version__
from wiki_core.config import (
    CHECKPOINT_FILE,
    DEFAULT_RETENTION_DAYS,
    SettingError,
    Settings,
    retentions,
)
from wiki_core.unreachable import cause, without_password

from .health import health

# the reader's and the loader's Prometheus endpoint (serve_metrics)
metrics_port_option = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics on this port [default: $METRICS_PORT; 0: none].",
)


class _Main(click.Group):
    """The command group: a setting that cannot be used is one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingError as exc:
            raise click.ClickException(f"{exc} (set in the environment or .env)") from exc


@click.group(cls=_Main)
@click.version_option(__version__, prog_name="wiki-events")
def main() -> None:
    """wiki-events: Wikimedia recentchange, live in ClickHouse."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("pika", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
@click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/clickhouse"),
    show_default=True,
    help="Folder holding the ClickHouse data (created if missing).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 exposes the server to the network.",
)
@click.option("--port", default=8123, show_default=True, type=int)
@click.option(
    "--users",
    "users_file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="TOML file of users (see local_clickhouse/users.py).",
)
def clickhouse(data: Path, host: str, port: int, users_file: str | None) -> None:
    """The embedded ClickHouse server (chDB over the HTTP interface)."""
    from local_clickhouse.serve import StartupError, serve

    try:
        serve(data, host=host, port=port, users_file=users_file, log_level="warning")
    except StartupError as exc:
        click.echo(f"wiki-events clickhouse: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.option(
    "--since",
    default=None,
    help="Backfill from this time when there is no checkpoint: ISO time, epoch ms, "
    "or a duration such as 2h.",
)
@click.option("--reset", is_flag=True, help="Ignore the checkpoint (use with --since).")
@click.option("--wiki", "wikis", multiple=True, help="Keep only these wikis (repeatable).")
@click.option(
    "--type",
    "types",
    multiple=True,
    help="Keep only these event types: edit, new, log, categorize... (repeatable).",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Checkpoint file [default: $WIKI_EVENTS_DATA/{CHECKPOINT_FILE}].",
)
@click.option(
    "--idle-timeout",
    default=StreamOptions.idle_timeout,
    show_default=True,
    help="Seconds without a byte before the connection counts as dead.",
)
@click.option(
    "--max-line",
    default=StreamOptions.max_line,
    show_default=True,
    help="Bytes; a longer SSE line goes to the quarantine.",
)
@click.option(
    "--resume-overlap",
    default=StreamOptions.resume_overlap_ms,
    show_default=True,
    help="Milliseconds to re-read on resume, so events sharing the last event's timestamp "
    "are not skipped (see reader/stream.py: resume_id).",
)
@metrics_port_option
def stream(
    metrics_port: int | None,
    since: str | None,
    reset: bool,
    wikis: tuple[str, ...],
    types: tuple[str, ...],
    checkpoint: Path | None,
    idle_timeout: float,
    max_line: int,
    resume_overlap: int,
) -> None:
    """The reader: EventStreams ($STREAM_URL) → RabbitMQ ($AMQP_URL)."""
    import signal

    from reader.checkpoint import Checkpoint
    from reader.publisher import Publisher
    from reader.stream import FatalStreamError, Reader

    settings = Settings.from_env()
    opts = StreamOptions(
        url=settings.stream_url,
        contact=settings.contact,
        since=since,
        reset=reset,
        wikis=frozenset(wikis),
        types=frozenset(types),
        idle_timeout=idle_timeout,
        max_line=max_line,
        resume_overlap_ms=resume_overlap,
    )
    reader = Reader(
        opts,
        Publisher(settings.amqp_url),
        Checkpoint(checkpoint or settings.checkpoint_path),
    )
    serve_metrics(metrics_port, settings, reader.stats.metrics)
    signal.signal(signal.SIGTERM, lambda *_: reader.stop())
    signal.signal(signal.SIGINT, lambda *_: reader.stop())
    try:
        reader.run()
    except (FatalStreamError, ValueError, RuntimeError) as exc:
        click.echo(f"wiki-events stream: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True)
@click.option(
    "--speed",
    default=ReplayOptions.speed,
    show_default=True,
    help="1 = real time by meta.dt, N = N times faster, 0 = as fast as possible.",
)
@click.option(
    "--rate", default=ReplayOptions.rate, help="A fixed rate in events/s (overrides --speed)."
)
@click.option(
    "--disconnect-every",
    default=ReplayOptions.disconnect_every,
    help="Close the stream after N events.",
)
@click.option(
    "--disconnect-seconds",
    default=ReplayOptions.disconnect_seconds,
    help="Close the stream after S seconds.",
)
@click.option(
    "--loop",
    is_flag=True,
    help="Replay the file forever, each pass with fresh ids and later times.",
)
def replay(
    file: Path,
    host: str,
    port: int,
    speed: float,
    rate: float,
    disconnect_every: int,
    disconnect_seconds: float,
    loop: bool,
) -> None:
    """The EventStreams emulator: replay a recorded NDJSON or SSE file over HTTP."""
    import uvicorn

    from reader.emulator import Emulator

    emulator = Emulator(
        file,
        ReplayOptions(
            speed=speed,
            rate=rate,
            disconnect_every=disconnect_every,
            disconnect_seconds=disconnect_seconds,
            loop=loop,
        ),
    )
    click.echo(
        f"replaying {file} ({len(emulator.log)} events) at "
        f"http://{host}:{port}/v2/stream/recentchange",
        err=True,
    )
    if emulator.warning:
        click.echo(f"warning: {emulator.warning}", err=True)
    uvicorn.run(
        emulator.app(), host=host, port=port, log_level="warning", timeout_graceful_shutdown=2
    )


@main.command()
@click.option(
    "--prefetch",
    default=LoaderOptions.prefetch,
    show_default=True,
    help="Unacked messages at most (each up to the reader's batch, 5000 events): bounds memory.",
)
@click.option(
    "--batch-events",
    default=LoaderOptions.batch_events,
    show_default=True,
    help="Events per insert at most.",
)
@click.option(
    "--linger",
    default=LoaderOptions.linger,
    show_default=True,
    help="Seconds a batch waits for more events before it is inserted.",
)
@click.option(
    "--retention-days",
    default=None,
    type=int,
    help=f"Bronze retention [default: $BRONZE_RETENTION_DAYS or {DEFAULT_RETENTION_DAYS}].",
)
@metrics_port_option
def load(
    prefetch: int,
    batch_events: int,
    linger: float,
    retention_days: int | None,
    metrics_port: int | None,
) -> None:
    """The loader: RabbitMQ ($AMQP_URL) → ClickHouse bronze ($CLICKHOUSE_URL)."""
    import signal

    from loader.bronze import migrate
    from loader.consumer import Loader
    from wiki_core.config import clickhouse_client

    settings = Settings.from_env()
    days = retention_days or settings.retention_days
    if retention_days is not None:  # BRONZE_RETENTION_DAYS's rules: silver's at least
        retentions(
            {
                "BRONZE_RETENTION_DAYS": str(retention_days),
                "SILVER_RETENTION_DAYS": str(settings.silver_retention_days),
            }
        )
    try:
        version = migrate(clickhouse_client(settings.clickhouse_url), days, settings.cluster)
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator
        where = without_password(settings.clickhouse_url)
        click.echo(f"wiki-events load: cannot prepare bronze at {where}: {cause(exc)}", err=True)
        sys.exit(2)
    logging.getLogger("loader").info("bronze schema version %d, retention %d days", version, days)
    loader = Loader(
        lambda: clickhouse_client(settings.clickhouse_url),
        LoaderOptions(
            amqp_url=settings.amqp_url, prefetch=prefetch, batch_events=batch_events, linger=linger
        ),
    )
    serve_metrics(metrics_port, settings, loader.stats.metrics)
    signal.signal(signal.SIGTERM, lambda *_: loader.stop())
    signal.signal(signal.SIGINT, lambda *_: loader.stop())
    loader.run()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Dash's debug mode (reloads on code changes).")
def dash(host: str, port: int, debug: bool) -> None:
    """The dashboard on http://HOST:PORT, reading gold ($DASH_CLICKHOUSE_URL or $CLICKHOUSE_URL).

    Production: gunicorn dash_app.app:server.
    """
    from dash_app.app import create_app

    click.echo(f"wiki-events dash: open http://{host}:{port}/")
    create_app().run(host=host, port=port, debug=debug)


def serve_metrics(port: int | None, settings: Settings, collect: Any) -> None:
    """The stage's Prometheus endpoint, when a port is given (option, else METRICS_PORT)."""
    port = settings.metrics_port if port is None else port
    if not 0 <= port <= 65535:
        raise click.UsageError(f"METRICS_PORT={port} is not a port (0-65535; 0: none)")
    if port:
        from wiki_core.metrics import serve

        try:
            serve(port, collect)
        except OSError as exc:
            raise click.ClickException(f"cannot serve metrics on :{port}: {exc.strerror}") from exc
        logging.getLogger("wiki_events").info("Prometheus metrics on :%d/metrics", port)


@main.command()
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Replay this recording (NDJSON or SSE) through the emulator instead of the live stream.",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    help="With --replay: 1 = real time, N = N times faster, 0 = as fast as possible.",
)
@click.option("--loop", is_flag=True, help="With --replay: forever, fresh ids each pass.")
@click.option(
    "--since",
    default=None,
    help="Without a checkpoint, backfill from this time (ISO, epoch ms, or e.g. 2h).",
)
@click.option("--dash-host", default="127.0.0.1", show_default=True)
@click.option("--dash-port", default=8050, show_default=True, type=int)
@click.option("--no-dash", is_flag=True, help="Do not start the dashboard.")
@click.option(
    "--dumps",
    is_flag=True,
    help="Also follow the page-view and media-count dumps (DUMPS_URL): new hours and days "
    "as they are published.",
)
def up(
    replay: Path | None,
    speed: float,
    loop: bool,
    since: str | None,
    dash_host: str,
    dash_port: int,
    no_dash: bool,
    dumps: bool,
) -> None:
    """The whole pipeline on embedded defaults: ClickHouse, reader, loader, dbt, dashboard.

    Data (ClickHouse, the reader's checkpoint, dbt's logs) lives in $WIKI_EVENTS_DATA
    (default ./var); a second run resumes where the first stopped.
    """
    import signal

    from .up import UpOptions
    from .up import up as run_up

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background
    opts = UpOptions(
        replay=replay,
        speed=speed,
        loop=loop,
        since=since,
        dash_host=dash_host,
        dash_port=dash_port,
        dashboard=not no_dash,
        dumps=dumps,
    )
    sys.exit(run_up(opts, Settings.from_env(), lambda line: click.echo(line, err=True)))


@main.command()
def status() -> None:
    """Pipeline health on one screen: reader, queues, bronze / silver / gold, freshness.

    Exits 0 when all is well, 1 on a warning, 2 on an error.
    """
    from .status import gather

    settings = Settings.from_env()
    report = gather(settings)
    click.echo(report.render())
    sys.exit({"ok": 0, "warn": 1, "error": 2}[report.worst])


@main.command()
@click.argument("query", required=False)
@click.option(
    "--format",
    "fmt",
    default=None,
    help="ClickHouse output format [default: PrettyCompactMonoBlock on a terminal, "
    "TSVWithNames in a pipe].",
)
def sql(query: str | None, fmt: str | None) -> None:
    """A SQL console against ClickHouse ($CLICKHOUSE_URL).

    With QUERY, runs it and exits (1 on error); QUERY "-" reads one query from stdin.
    Without, an interactive console: end statements with ;  and leave with \\q.
    """
    from .console import Console, interactive

    settings = Settings.from_env()
    console = Console(settings.clickhouse_url, fmt)
    try:
        if query is not None:
            ok, text = console.run(sys.stdin.read() if query == "-" else query)
            click.echo(text.rstrip("\n"), err=not ok)
            sys.exit(0 if ok else 1)
        history = settings.data_dir / "sql_history"
        sys.exit(interactive(console, history, click.echo))
    finally:
        console.close()


main.add_command(health)
main.add_command(pageviews)
main.add_command(mediacounts)
