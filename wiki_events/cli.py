"""The ``wiki-events`` command: one subcommand per job."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import __version__


@click.group()
@click.version_option(__version__, prog_name="wiki-events")
def main() -> None:
    """wiki-events: Wikimedia recentchange, live in ClickHouse."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


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
