"""The attention spikes per loaded hour (``dumps/spikes.py``): what one hour costs to
compute and store, with the 24 hours before it in silver, on a realistic hour.

- The hour: ``tests/helpers/dumps_files.py``'s hour of 6M lines (the same file as bench_dumps.py,
  cached under var/bench-dumps), loaded by the real loader (in this process) into the
  embedded ClickHouse with every dumps model built: the load computes its spikes with no
  hour before it (the first figure).
- The 24 hours before it: silver rows made from that hour by SQL (each page's views
  times a factor from 0 to 2, hashed from page and hour: the same pages, other counts),
  published as loads of their own in the ledger. Loading 24 more generated hours would
  take ~10 s each and the pages would be other pages; the lookup's cost depends on the
  candidates of the hour and on the rows it reads per candidate, both as in a real day.
- Then ``spikes.compute`` for the hour, as the loader runs it, ``--repeat`` times: the
  figure with 24 hours present. From system.query_log: the engine's time and rows read.
- The read: ``gold.page_attention_spikes_hour`` as the dashboard asks it (the window of
  the last 25 hours), and the query-time definition it replaces (a window function over
  every page row of silver) over the same 25 hours, unless --skip-old.

Run: .venv/bin/python bench/bench_spikes.py [--lines 6000000] [--repeat 3] [--skip-old]
Writes bench/results/spikes.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_dumps import dumps_warehouse, load_average  # noqa: E402
from bench.bench_local_clickhouse import machine  # noqa: E402
from dumps import schema, spikes  # noqa: E402
from dumps.load import PAGEVIEWS, Loader, Options  # noqa: E402
from tests.helpers.dumps_expected import QUERY_TIME_SPIKES  # noqa: E402
from tests.helpers.dumps_files import pageviews_dir, pageviews_name, write_pageviews_hour  # noqa: E402
from tests.helpers.dumps_site import DumpsSite, Faults, ServerThread  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402

HOUR = dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC)  # the file bench_dumps.py generates


def last_query(ch: Any, like: str) -> dict[str, float]:
    """The newest finished query like ``like``: seconds, the engine's CPU seconds and its
    seconds waiting for a core (the machine is shared), rows read, peak memory (MB)."""
    ch.command("SYSTEM FLUSH LOGS")
    rows = ch.query(
        "SELECT query_duration_ms / 1e3, ProfileEvents['OSCPUVirtualTimeMicroseconds'] / 1e6, "
        "ProfileEvents['OSCPUWaitMicroseconds'] / 1e6, read_rows, memory_usage / 1e6 "
        "FROM system.query_log WHERE type = 'QueryFinish' AND query LIKE {q:String} "
        "ORDER BY event_time_microseconds DESC LIMIT 1",
        parameters={"q": like},
    ).result_rows
    names = ("s", "cpu_s", "cpu_wait_s", "read_rows", "memory_mb")
    return {k: round(float(v), 2) for k, v in zip(names, rows[0], strict=True)}


def previous_hours(ch: Any, load_id: int, hours: int) -> float:
    """``hours`` hours before the loaded one, in silver, published: returns seconds."""
    t0 = time.perf_counter()
    for k in range(1, hours + 1):
        fake = load_id - k
        file_hour = HOUR - dt.timedelta(hours=k)
        ch.command(
            "INSERT INTO silver.pageviews (load_id, file_hour, hour, domain_code, wiki, family, "
            "access, title, views, loaded_at) SELECT {fake:UInt64}, file_hour - toIntervalHour("
            "{k:UInt8}), hour - toIntervalHour({k:UInt8}), domain_code, wiki, family, access, "
            "title, toUInt32(views * (cityHash64(title, domain_code, {k:UInt8}) % 2001) / 1000), "
            "loaded_at FROM silver.pageviews WHERE load_id = {id:UInt64}",
            parameters={"fake": fake, "k": k, "id": load_id},
        )
        ch.command(
            f"INSERT INTO {schema.LEDGER} (dataset, name, load_id, period, url, size, "
            "last_modified, etag, state, rows, rejected, message, started_at, finished_at) "
            "SELECT 'pageviews', {n:String}, {fake:UInt64}, toDateTime({p:String}, 'UTC'), '', 0, "
            "now(), '', 'done', 0, 0, 'bench: made from the loaded hour', now64(3), now64(3)",
            parameters={"n": pageviews_name(file_hour), "fake": fake, "p": f"{file_hour:%F %T}"},
        )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=6_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-old", action="store_true")
    args = parser.parse_args()

    cache = ROOT / "var" / "bench-dumps" / f"{args.lines}" / "other"
    path = cache / pageviews_dir(HOUR) / pageviews_name(HOUR)
    if not path.exists():
        write_pageviews_hour(cache, HOUR, lines=args.lines, seed=14, keep_pages=False)
    load_before = load_average()
    result: dict[str, Any] = {"machine": machine(), "lines": args.lines}

    with tempfile.TemporaryDirectory() as tmp, dumps_warehouse(Path(tmp), 1800) as (_, ch):
        with ServerThread(DumpsSite(cache, Faults()), free_port()) as site:
            loader = Loader(ch, Options(base_url=site.url))
            t0 = time.perf_counter()
            assert loader.run([PAGEVIEWS], HOUR, HOUR + dt.timedelta(hours=1)) == {"loaded": 1}
            result["load_s"] = round(time.perf_counter() - t0, 2)
        load_id = int(ch.command("SELECT load_id FROM bronze.dumps_visible"))
        like = "INSERT INTO gold.page_attention_spikes_hour_loads SELECT%"
        result["first_hour"] = last_query(ch, like)
        result["first_hour_load"] = last_query(ch, "INSERT INTO bronze.load_%")
        result["previous_hours_made_s"] = round(previous_hours(ch, load_id, 24), 1)
        result["silver_rows"] = int(ch.command("SELECT count() FROM silver.pageviews"))
        result["candidates"] = int(
            ch.command(
                "SELECT count() FROM (SELECT wiki, title FROM silver.pageviews "
                "WHERE load_id = {id:UInt64} GROUP BY wiki, title "
                "HAVING sum(views) >= 500)",
                parameters={"id": load_id},
            )
        )
        runs = []
        for _ in range(args.repeat):
            wall = spikes.compute(ch, load_id, HOUR)
            marker = "INSERT INTO gold.page_attention_hours_loads SELECT%"
            runs.append(
                {
                    "wall_s": round(wall, 2),
                    "spikes": last_query(ch, like),
                    "marker": last_query(ch, marker),
                }
            )
        result["compute_with_24_hours"] = runs
        result["stored_rows_per_hour"] = int(
            ch.command(
                "SELECT count() FROM gold.page_attention_spikes_hour_loads "
                "WHERE run_id = (SELECT max(run_id) FROM gold.page_attention_hours_loads)"
            )
        )
        window = (
            f"hour >= toDateTime('{HOUR - dt.timedelta(hours=25):%F %T}', 'UTC') "
            f"AND hour < toDateTime('{HOUR:%F %T}', 'UTC')"
        )
        t0 = time.perf_counter()
        read = ch.query(
            f"SELECT kind, count() FROM gold.page_attention_spikes_hour WHERE {window} "
            "GROUP BY kind"
        ).result_rows
        result["read_view_s"] = round(time.perf_counter() - t0, 2)
        result["read_view_rows"] = {k: int(n) for k, n in read}
        if not args.skip_old:
            t0 = time.perf_counter()
            try:
                old = ch.query(
                    f"SELECT kind, count() FROM ({QUERY_TIME_SPIKES}) WHERE {window} GROUP BY kind",
                    settings={"max_memory_usage": 8_000_000_000},
                ).result_rows
                result["old_view_rows"] = {k: int(n) for k, n in old}
            except Exception as exc:  # noqa: BLE001 - the figure is that it failed
                result["old_view_error"] = str(exc).splitlines()[0][:300]
            result["old_view_s"] = round(time.perf_counter() - t0, 2)

    result["shared"] = (
        f"machine shared with other helpers; load average {load_before} before, "
        f"{load_average()} after"
    )
    out = ROOT / "bench" / "results" / "spikes.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
