"""``wiki-events health``: liveness judged from outside the processes, for Docker
healthchecks and the watchdog. Each stage's check is its own (its ``cli.py`` and
``status.py``); this group gathers them, reports their verdict and adds the deployment's
own commands:

    wiki-events health reader    # exit 0: the reader's checkpoint moved recently
    wiki-events health loader    # exit 0: no backlog, or bronze got an insert recently
    wiki-events health dbt       # exit 0: the dbt marker names this image's models
                                 # (and the dumps' when WIKI_EVENTS_PROFILES holds dumps)
    wiki-events health wait-dbt  # block until it does (the loader's and dash's gate)
    wiki-events health dumps FOLLOWER  # exit 0: the follower's newest file is no later
                                 # than the dumps' publication delay explains
    wiki-events health models-digest
    wiki-events health alert TEXT  # retried; kept for the watchdog when undelivered
    wiki-events health watchdog  # restart unhealthy containers, alert; OOM kills, restart
                                 # loops, disk, backups, outages of RabbitMQ and ClickHouse
                                 # (once, and when back); the heartbeat

Exit codes follow Docker's healthcheck contract: 0 healthy, 1 unhealthy. Each check
prints one line saying why, which ``docker inspect`` shows in the container's health log.
A dependency that does not answer (RabbitMQ, ClickHouse) is not the reader's or the
loader's own failure: their verdict says what is down and stays healthy; the watchdog
alerts on the dependency itself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from dumps import cli as dumps_cli
from loader import cli as loader_cli
from reader import cli as reader_cli
from transform import cli as transform_cli
from transform.marker import building
from wiki_core.config import Settings, environment
from wiki_core.health import Verdict

from .alerts import Courier, Heartbeat, Outbox, retry_waits
from .watchdog import (
    DockerAPI,
    KillWatch,
    Operations,
    Watchdog,
    alert,
    dependencies,
    spools,
    state_folder,
)


@click.group("health")
def health() -> None:
    """Liveness checks for Docker healthchecks, the dbt gate, alerts, the watchdog."""


@health.result_callback()
def report(verdict: Any) -> None:
    """A stage's check returns its verdict: one line, and Docker's exit code."""
    if isinstance(verdict, Verdict):
        click.echo(verdict.reason, err=not verdict.healthy)
        sys.exit(verdict.code)


def held_by_dbt(check: click.Command) -> click.Command:
    """``check``, healthy without asking while dbt builds this version's models: the
    stage is held at its gate (deploy/bin/after-dbt), not stuck, and a restart would not
    help; dbt's own failures are alerted by the dbt service."""
    assert check.callback is not None

    def callback(**options: Any) -> Any:
        if building():
            return Verdict(True, "waiting for dbt to build this version's models")
        return check.callback(**options)  # type: ignore[misc]

    return click.Command(check.name, callback=callback, params=check.params, help=check.help)


for command in (
    reader_cli.health,
    held_by_dbt(loader_cli.health),
    held_by_dbt(dumps_cli.health),
    transform_cli.health,
    transform_cli.wait_dbt,
    transform_cli.models_digest,
):
    health.add_command(command)


@health.command("alert")
@click.argument("text")
@click.option(
    "--retry-for",
    type=float,
    default=90.0,
    show_default=True,
    help="Seconds to go on trying while the failure is transient (waits 1, 2, 4 ... 30 s).",
)
def alert_command(text: str, retry_for: float) -> None:
    """Send TEXT to $ALERT_WEBHOOK_URL, retried with backoff while the failure is
    transient; still undelivered, it is kept in this container's folder on the data
    volume (alerts-pending/), which the watchdog delivers. Exit 1 when it was not
    delivered now."""
    delivered = alert(text, waits=retry_waits(retry_for))
    sys.exit(0 if delivered or not Operations.from_env().alert_webhook_url else 1)


@health.command("watchdog")
@click.option("--interval", type=float, default=30.0, show_default=True)
@click.option(
    "--volume",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/volume"),
    show_default=True,
)
def watchdog_command(interval: float, volume: Path) -> None:
    """Restart unhealthy containers of this compose project; alert on them, OOM kills,
    restart loops, the dumps followers, disk, backups, and an outage of RabbitMQ
    (AMQP_URL) or ClickHouse (CLICKHOUSE_URL): once, then when it is back (the probes need
    no credentials). Alerts wait on the volume until the webhook takes them; after each
    pass that worked, $HEARTBEAT_URL is pinged every $HEARTBEAT_EVERY seconds."""
    ops, settings = Operations.from_env(), Settings.from_env()
    docker, state = DockerAPI.from_env(environment()), state_folder(volume)
    own = state / "alerts-pending" if state else None
    courier = Courier(ops.webhook(), Outbox(own) if own else None, spools(volume, own))
    heartbeat = Heartbeat(ops.heartbeat_url, ops.heartbeat_every) if ops.heartbeat_url else None
    cursor = state / "docker-events-since" if state else None
    Watchdog(
        docker,
        ops.compose_project,
        volume,
        ops.disk_alert_percent,
        backup_expected=ops.backup_expected,
        notify=courier.send,
        restart_timeout=ops.watchdog_restart_timeout,
        dependencies=dependencies(settings.amqp_url, settings.clickhouse_url),
        expected=ops.expected(),
        kills=KillWatch(docker, ops.compose_project, cursor),
        volume_on_host=ops.data_dir,
    ).run(interval, courier, heartbeat)
