"""The dashboard's command: ``wiki-events dash`` (registered in ``wiki_events/cli.py``)."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Dash's debug mode (reloads on code changes).")
def dash(host: str, port: int, debug: bool) -> None:
    """The dashboard on http://HOST:PORT, reading gold ($DASH_CLICKHOUSE_URL or $CLICKHOUSE_URL).

    Production: gunicorn dash_app.app:server.
    """
    from .app import create_app

    click.echo(f"wiki-events dash: open http://{host}:{port}/")
    create_app().run(host=host, port=port, debug=debug)
