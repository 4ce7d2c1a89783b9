"""The loader's commands: ``wiki-events load`` and its healthcheck ``wiki-events health
loader``.

Registered on the ``wiki-events`` group (and its ``health`` group) in
``wiki_events/cli.py``.
"""

from __future__ import annotations

import logging
import sys

import click

from wiki_core import metrics
from wiki_core.config import DEFAULT_RETENTION_DAYS, Settings, retentions
from wiki_core.health import Verdict
from wiki_core.unreachable import cause, without_password

from . import status
from .consumer import Options as LoaderOptions


@click.command()
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
@metrics.port_option
@metrics.host_option
def load(
    prefetch: int,
    batch_events: int,
    linger: float,
    retention_days: int | None,
    metrics_port: int | None,
    metrics_host: str | None,
) -> None:
    """The loader: RabbitMQ ($AMQP_URL) → ClickHouse bronze ($CLICKHOUSE_URL)."""
    import signal

    from wiki_core.config import clickhouse_client

    from .bronze import migrate
    from .consumer import Loader

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
    metrics.serve_for(
        metrics_port,
        metrics_host,
        (settings.metrics_port, settings.metrics_host),
        loader.stats.metrics,
    )
    # pika logs each failed connection with its traceback; the loader says it in a line
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGTERM, lambda *_: loader.stop())
    signal.signal(signal.SIGINT, lambda *_: loader.stop())
    loader.run()


@click.command("loader")
@click.option(
    "--max-age", type=float, default=None, help="Seconds [default: $LOADER_STALE_SECONDS or 300]."
)
def health(max_age: float | None) -> Verdict:
    """Healthy unless RabbitMQ holds a backlog and bronze had no insert for MAX_AGE."""
    return status.health(Settings.from_env(), max_age)
