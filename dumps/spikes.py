"""Each loaded hour's attention spikes (``gold.page_attention_spikes_hour``), stored.

The spikes need each page's views over the 24 hours before the hour: as a window over
silver's page rows at query time they cost seconds per million rows (a real day holds
~150M). So the loader computes them per hour, the moment the ledger has published a
pageviews load (the views are not held back by their cost: up to a minute of CPU with a
day of page rows before the hour), through two parameterized views that dbt builds
(the definition and its thresholds stay in ``wiki_dbt``):

- ``gold.page_attention_spikes_compute``: the views side of the hour's views spikes
  (read: the hour's pages with at least ``spike_min_views`` views, then the previous
  24 hours of those pages only, by silver's sorting key), into
  ``gold.page_attention_spikes_hour_loads``;
- ``gold.page_attention_hours_compute``: one row saying this computation exists, with
  the hour's (wiki, domain code) pairs, into ``gold.page_attention_hours_loads``.

Exactly once and visibility, as every dumps gold table: the rows carry the load's
``load_id`` (so they show only once the load is ``done``, and a failed or replaced
load's rows are deleted with the rest of it by ``Loader.purge``) and a fresh ``run_id``;
per hour, the newest computation whose load is visible is what gold shows. A load also
recomputes the visible hours of the 24 after its own (their baselines include its hour):
nothing in a backfill run in order or in ``--follow``, up to 24 computations when an hour
arrives late or is republished.

Edits are not stored: they keep arriving after an hour's views were loaded, so the view
``gold.page_attention_spikes_hour`` reads them when it is queried, for its few pages.

The tables are dbt's (``dbt run --vars '{dumps: true}'``); until they exist the loader
computes nothing, and ``catch_up`` computes every visible hour that has no computation
yet (run at the start of each ``wiki-events pageviews`` and whenever ``--follow`` waits
for the next hour: a computation that failed after its load was published is made then).
What a failed computation can leave stale until the hour is loaded again: the later
hours' baselines that a late hour would have recomputed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

log = logging.getLogger("dumps.spikes")

VISIBLE = "bronze.dumps_visible"
# stored table <- the parameterized view that fills it; the marker table last: a
# computation counts from its marker row on (a crash before it leaves rows no run shows)
STEPS = [
    ("gold.page_attention_spikes_hour_loads", "gold.page_attention_spikes_compute"),
    ("gold.page_attention_hours_loads", "gold.page_attention_hours_compute"),
]
HOURS = STEPS[-1][0]
BASELINE = dt.timedelta(hours=24)

_last_run = 0


def built(ch: Any) -> bool:
    """Whether dbt built the spikes' tables and views (``dumps: true``)."""
    names = [name for step in STEPS for name in step]
    found = ch.command(
        "SELECT count() FROM system.tables WHERE has({n:Array(String)}, "
        "concat(database, '.', name))",
        parameters={"n": names},
    )
    return int(found) == len(names)


def _run_id() -> int:
    """A fresh id, larger than every earlier one (microseconds, as load ids)."""
    global _last_run
    _last_run = max(_last_run + 1, time.time_ns() // 1000)
    return _last_run


def compute(ch: Any, load_id: int, file_hour: dt.datetime) -> float:
    """Compute the spikes of the hour of the pageviews file ``file_hour`` as silver will
    be once ``load_id`` is published; returns the seconds it took."""
    started = time.perf_counter()
    params = {"load_id": load_id, "run_id": _run_id(), "file_hour": _text(file_hour)}
    for table, view in STEPS:
        ch.command(
            f"INSERT INTO {table} SELECT * FROM {view}(load_id = {{load_id:UInt64}}, "
            "run_id = {run_id:UInt64}, file_hour = {file_hour:String})",
            parameters=params,
        )
    return time.perf_counter() - started


def for_load(ch: Any, load_id: int, name: str, file_hour: dt.datetime) -> list[dt.datetime]:
    """The spikes a new pageviews load changes: its own hour's, and those of the visible
    hours in the 24 after it. Computed once the load is published. Returns the file
    hours computed (none when dbt has not built the tables)."""
    if not built(ch):
        return []
    later = ch.query(
        f"SELECT period FROM {VISIBLE} WHERE dataset = 'pageviews' AND name != {{n:String}} "
        "AND period > toDateTime({p:String}, 'UTC') "
        "AND period <= toDateTime({p:String}, 'UTC') + INTERVAL 24 HOUR ORDER BY period",
        parameters={"n": name, "p": _text(file_hour)},
    ).result_rows
    hours = [file_hour] + [_utc(row[0]) for row in later]
    seconds = [compute(ch, load_id, hour) for hour in hours]
    log.info(
        "%s: attention spikes of %d hour(s) computed in %.2f s",
        name,
        len(hours),
        sum(seconds),
    )
    return hours


def catch_up(ch: Any) -> int:
    """Compute every visible pageviews hour that has no computation by a visible load
    (loaded before dbt built the tables, or after they were rebuilt). Returns how many."""
    if not built(ch):
        return 0
    missing = ch.query(
        f"SELECT load_id, period FROM {VISIBLE} WHERE dataset = 'pageviews' AND period NOT IN "
        f"(SELECT file_hour FROM {HOURS} WHERE load_id IN (SELECT load_id FROM {VISIBLE})) "
        "ORDER BY period"
    ).result_rows
    for load_id, period in missing:
        compute(ch, int(load_id), _utc(period))
    if missing:
        log.info("attention spikes of %d loaded hour(s) caught up", len(missing))
    return len(missing)


def _text(when: dt.datetime) -> str:
    """A UTC instant as ClickHouse reads a DateTime('UTC') (naive means UTC)."""
    return f"{_utc(when).astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}"


def _utc(value: Any) -> dt.datetime:
    when: dt.datetime = value
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when
