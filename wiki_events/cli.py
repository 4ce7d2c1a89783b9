"""The ``wiki-events`` command: one subcommand per job.

Each stage brings its own commands (its ``cli.py``): the reader ``stream`` and
``replay``, the loader ``load``, the dashboard ``dash``, the dumps ``pageviews`` and
``mediacounts``, their healthchecks under ``health``. Registered here with what belongs
to no single stage: ``clickhouse`` (the embedded server), ``up``, ``status``, ``sql``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from dash_app.cli import dash
from dumps.cli import mediacounts, pageviews
from loader.cli import load
from reader.cli import replay, stream
from wiki_core import build
from wiki_core.config import SettingError, Settings

from .health import health


class _Main(click.Group):
    """The command group: a setting that cannot be used is one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingError as exc:
            raise click.ClickException(f"{exc} (set in the environment or .env)") from exc


@click.group(cls=_Main)
@click.version_option(build(), prog_name="wiki-events")
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
    help="A ClickHouse users file (XML or YAML, as clickhouse-server's users.xml; its "
    "users.d/ folder is merged onto it) [default: one passwordless `default` admin].",
)
@click.option(
    "--users-d",
    "users_d",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="A folder of users.d files, put on clickhouse-server's own users.xml as the "
    "server image does (e.g. deploy/clickhouse/users.d).",
)
def clickhouse(
    data: Path, host: str, port: int, users_file: str | None, users_d: str | None
) -> None:
    """The embedded ClickHouse server (chDB over the HTTP interface)."""
    from local_clickhouse.serve import StartupError, serve

    try:
        serve(
            data,
            host=host,
            port=port,
            users_file=users_file,
            users_d=users_d,
            log_level="warning",
        )
    except StartupError as exc:
        click.echo(f"wiki-events clickhouse: {exc}", err=True)
        sys.exit(2)


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
@click.option(
    "--admin",
    is_flag=True,
    help="As $CLICKHOUSE_URL's user itself (the administrator), not the analyst that "
    "`wiki-events up` made for the console.",
)
def sql(query: str | None, fmt: str | None, admin: bool) -> None:
    """A SQL console against ClickHouse ($CLICKHOUSE_URL).

    Against the ClickHouse that `wiki-events up` runs, as its analyst (reads bronze,
    silver and gold; builds in dev_analyst); --admin for the administrator.
    With QUERY, runs it and exits (1 on error); QUERY "-" reads one query from stdin.
    Without, an interactive console: end statements with ;  and leave with \\q.
    """
    from .accounts import ANALYST, role_urls
    from .console import Console, interactive

    settings = Settings.from_env()
    url = settings.clickhouse_url
    if not admin:
        url = role_urls(url, settings.data_dir)[ANALYST]
    console = Console(url, fmt)
    try:
        if query is not None:
            ok, text = console.run(sys.stdin.read() if query == "-" else query)
            click.echo(text.rstrip("\n"), err=not ok)
            sys.exit(0 if ok else 1)
        history = settings.data_dir / "sql_history"
        sys.exit(interactive(console, history, click.echo))
    finally:
        console.close()


for command in (stream, replay, load, dash, pageviews, mediacounts, health):
    main.add_command(command)
