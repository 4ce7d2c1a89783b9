"""What ``wiki-events up --dumps`` (and the compose service) runs: the dumps loaders in
``--follow`` mode, in threads, until told to stop.

``up`` calls, in this order:

1. ``prepare(client)``: the dumps' bronze tables and ledger (before ``dbt build``);
2. ``dbt build --vars '{dumps: true}'`` (``DBT_VARS`` below): the dumps' silver and gold;
3. ``start(stop)``: the followers (pageviews + projectviews hourly, mediacounts daily);
   ``stop`` is an Event; ``join`` the returned threads after setting it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import click

from . import schema
from .cli import run
from .load import LoadFailed

log = logging.getLogger("dumps")

DBT_VARS = "{dumps: true}"


def prepare(client: Any, cluster: str = "") -> None:
    schema.migrate(client, cluster)


def start(stop: threading.Event, poll: float = 300.0, **tuning: Any) -> list[threading.Thread]:
    """One follower thread per dataset family, each with its own HTTP client (so at most
    2 connections each, as the dumps site asks: the pageviews one uses one at a time).
    ``tuning``: the loader's ``Options`` (retries, backoff...). A failure the loader
    explains (the site unreachable, ClickHouse refusing) is one line with its cause and
    remedy; anything else keeps its traceback."""

    def follow(names: list[str]) -> None:
        while not stop.is_set():
            try:
                run(names, None, None, True, poll=poll, quiet=True, stop=stop.is_set, **tuning)
                return
            except (click.ClickException, LoadFailed) as exc:
                said = exc.message if isinstance(exc, click.ClickException) else str(exc)
                log.error("dumps follower %s: %s; again in %.0f s", names[0], said, poll)
            except Exception:  # noqa: BLE001 - keep following; the log says why
                log.exception("dumps follower %s failed; again in %.0f s", names, poll)
            stop.wait(poll)

    threads = [
        threading.Thread(target=follow, args=(names,), name=f"dumps-{names[0]}", daemon=True)
        for names in (["pageviews", "projectviews"], ["mediacounts"])
    ]
    for thread in threads:
        thread.start()
    return threads
