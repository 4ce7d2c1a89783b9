"""The dbt side's commands, all under ``wiki-events health``: ``dbt`` (the healthcheck of
the dbt service), ``wait-dbt`` (the gate the loader, the dashboard and the dumps'
followers wait at) and ``models-digest`` (what the marker holds once built).

Registered on the ``health`` group in ``wiki_events/health.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from wiki_core.health import Verdict

from . import marker, status
from .project import PROJECT


@click.command("dbt")
def health() -> Verdict:
    """Healthy when the dbt marker names the models this image carries."""
    return status.health()


@click.command("wait-dbt")
@click.option("--every", type=float, default=5.0, show_default=True)
def wait_dbt(every: float) -> None:
    """Block until dbt has built this image's models (the loader's and dash's gate)."""
    found = marker.Marker.from_env()
    wait_for(lambda: status.health(found), every, lambda s: click.echo(s, err=True))
    click.echo("dbt has built these models", err=True)


@click.command("models-digest")
def models_digest() -> None:
    """What the dbt marker holds once these models are built (`` dumps``: with theirs)."""
    click.echo(marker.marker_text(PROJECT, marker.dumps_wanted()))


def wait_for(check: Callable[[], Verdict], every: float, say: Callable[[str], object]) -> None:
    last = ""
    while True:
        verdict = check()
        if verdict.healthy:
            return
        if verdict.reason != last:
            say(f"waiting: {verdict.reason}")
            last = verdict.reason
        time.sleep(every)
