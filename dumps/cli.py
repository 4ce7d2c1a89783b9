"""``wiki-events pageviews`` and ``wiki-events mediacounts``: backfill a range, or follow;
``wiki-events health dumps FOLLOWER``: a follower's liveness (its Docker healthcheck).

Registered on the ``wiki-events`` group in ``wiki_events/cli.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from wiki_core.config import SettingError, Settings
from wiki_core.unreachable import quiet_clients, sentence

from . import status
from .load import DATASETS, Dataset, Loader, LoadFailed, loader_from_env, print_progress

log = logging.getLogger("dumps")


def parse_when(value: str, daily: bool) -> dt.datetime:
    """``2026-11-01T00`` / ``2026-11-01T00:00`` / ``2026-11-01`` (UTC)."""
    text = value.strip().replace(" ", "T").removesuffix("Z")
    for fmt in ("%Y-%m-%dT%H", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            when = dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        return (
            when.replace(hour=0, minute=0, second=0) if daily else when.replace(minute=0, second=0)
        )
    raise click.BadParameter(f"{value!r}: expected YYYY-MM-DD{'' if daily else 'THH'} (UTC)")


def newest_loaded(loader: Loader, dataset: str) -> dt.datetime | None:
    value = loader.ch.command(
        "SELECT max(period) FROM bronze.dumps_visible WHERE dataset = {d:String}",
        parameters={"d": dataset},
    )
    when = dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)
    return None if when.year < 2000 else when


def run(
    names: list[str],
    start: str | None,
    end: str | None,
    follow: bool,
    wikis: tuple[str, ...] = (),
    projects: tuple[str, ...] = (),
    poll: float = 300.0,
    quiet: bool = False,
    stop: Callable[[], bool] | None = None,
    block_rows: int | None = None,
    **tuning: Any,
) -> dict[str, int]:
    datasets = [DATASETS[n] for n in names]
    daily = datasets[0].step == dt.timedelta(days=1)
    if start is None and not follow:
        raise click.UsageError("--from is required without --follow")
    step = datasets[0].step
    begin = parse_when(start, daily) if start is not None else None
    finish = parse_when(end, daily) if end else None
    if begin is not None:  # said before ClickHouse is even asked
        if finish is None and not follow:
            finish = begin + step
        _check_range(datasets[0], begin, finish)
    if stop is None:  # the command alone: its clients' retry warnings, said once below
        quiet_clients()
    try:
        loader = loader_from_env(
            wikis=frozenset(wikis),
            projects=frozenset(projects),
            poll=poll,
            block_rows=block_rows,
            progress=None if quiet else print_progress,
            **tuning,
        )
    except SettingError:
        raise  # says itself which variable (the command group makes it one line)
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator
        settings = Settings.from_env()
        raise click.ClickException(
            "cannot prepare the dumps' tables: "
            + sentence(
                "ClickHouse",
                settings.dumps_clickhouse_url or settings.clickhouse_url,
                exc,
                "start it (`wiki-events clickhouse`, or `up`), or set DUMPS_CLICKHOUSE_URL "
                "or CLICKHOUSE_URL",
            )
        ) from exc
    stopping = threading.Event()
    if stop is None:  # the command itself: signals stop it; in `up`, the caller does
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        stop = stopping.is_set
    try:
        if begin is None:  # --follow without --from: after the newest loaded
            newest = newest_loaded(loader, names[0])
            begin = (newest + step) if newest else _floor(dt.datetime.now(dt.UTC) - 2 * step, daily)
            _check_range(datasets[0], begin, finish)
        counts = loader.run(datasets, begin, finish, follow=follow, stop=stop)
    except LoadFailed as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        loader.close()
    if not quiet:
        sys.stderr.write("\n")
        click.echo(loader.progress.line().split(" · ETA")[0], err=True)
    return counts


def _check_range(dataset: Dataset, begin: dt.datetime, finish: dt.datetime | None) -> None:
    """A range Wikimedia can have published: from the dataset's first period to the next
    one due; anything else is said at once, not walked period by period."""
    fmt = "%Y-%m-%d" if dataset.step >= dt.timedelta(days=1) else "%Y-%m-%dT%H"
    if begin < dataset.first:
        raise click.BadParameter(
            f"{begin:{fmt}} is before the first {dataset.name} file ({dataset.first:{fmt}})",
            param_hint="--from",
        )
    latest = _floor(dt.datetime.now(dt.UTC), dataset.step >= dt.timedelta(days=1))
    latest += dataset.step
    if finish is not None and finish < begin:
        raise click.BadParameter(
            f"{finish:{fmt}} is before --from {begin:{fmt}}", param_hint="--to"
        )
    if finish is not None and finish > latest + dataset.step:
        raise click.BadParameter(
            f"{finish:{fmt}} is in the future (no file past {latest:{fmt}} can exist yet; "
            "--follow waits for new ones)",
            param_hint="--to",
        )


def _floor(when: dt.datetime, daily: bool) -> dt.datetime:
    when = when.replace(minute=0, second=0, microsecond=0)
    return when.replace(hour=0) if daily else when


_common = [
    click.option("--from", "start", default=None, help="First file's period (UTC)."),
    click.option("--to", "end", default=None, help="End of the range, excluded (UTC)."),
    click.option(
        "--follow",
        is_flag=True,
        help="Then keep waiting for each next file (a 404 for a recent period is 'not yet').",
    ),
    click.option(
        "--poll", default=300.0, show_default=True, help="--follow: seconds between looks."
    ),
    click.option("--quiet", is_flag=True, help="No progress line."),
    click.option(
        "--insert-block-rows",
        "block_rows",
        type=int,
        default=None,
        help="Rows per insert block (default: the server's, ~1M); smaller = less server memory.",
    ),
]


def _options(func):  # type: ignore[no-untyped-def]
    for option in reversed(_common):
        func = option(func)
    return func


@click.command()
@_options
@click.option("--wiki", "wikis", multiple=True, help="Load only these wikis (dbnames, repeatable).")
@click.option(
    "--project", "projects", multiple=True, help="Load only these domain codes (en, en.m...)."
)
def pageviews(
    start: str | None,
    end: str | None,
    follow: bool,
    poll: float,
    quiet: bool,
    block_rows: int | None,
    wikis: tuple[str, ...],
    projects: tuple[str, ...],
) -> None:
    """Hourly pageviews (+ projectviews) dumps from $DUMPS_URL into ClickHouse.

    --from/--to name the hours as the files do (pageviews-20261101-010000.gz is hour
    2026-11-01T01, holding the views of 00:00-01:00). Each file loads once; a rerun skips
    it, a republished file replaces it.
    """
    _finish(
        run(
            ["pageviews", "projectviews"],
            start,
            end,
            follow,
            wikis,
            projects,
            poll,
            quiet,
            block_rows=block_rows,
        )
    )


@click.command()
@_options
def mediacounts(
    start: str | None,
    end: str | None,
    follow: bool,
    poll: float,
    quiet: bool,
    block_rows: int | None,
) -> None:
    """Daily mediacounts dumps from $DUMPS_URL into ClickHouse (--from/--to: days)."""
    _finish(run(["mediacounts"], start, end, follow, poll=poll, quiet=quiet, block_rows=block_rows))


def _finish(counts: dict[str, int]) -> None:
    """What happened to the files; exit status 1 when one failed."""
    click.echo(
        "files: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"), err=True
    )
    if counts.get("failed"):
        sys.exit(1)


@click.command("dumps")
@click.argument("follower", type=click.Choice(sorted(status.FOLLOWED)))
@click.option(
    "--beyond",
    type=float,
    default=None,
    help="Seconds late past the publication delay [default: $DUMPS_STALE_SECONDS or 14400].",
)
def health(follower: str, beyond: float | None) -> status.Verdict:
    """Healthy unless FOLLOWER's newest loaded file is later than the dumps' publication
    delay explains (8 h for page views, 2 days for media counts) by more than --beyond."""
    from wiki_core.config import Settings

    limit = status.stale_seconds() if beyond is None else beyond
    return status.health(Settings.from_env(), follower, limit)
