"""One hour of pageviews (6M lines, generated) from the local dumps site into bronze and
gold, beside the engine parsing the same file in-process; the loader's peak memory; and
the bytes a day takes per layer.

- The file: ``tests/helpers/dumps_files.py``'s hour of 6M lines (cached under var/bench-dumps).
- Loader: ``wiki-events pageviews`` (a real subprocess) against the embedded ClickHouse
  (its own process) with every dumps model of wiki_dbt built, so each block goes through
  bronze → silver → every gold view; served by the local dumps site (a thread of this
  process). Timed from start to exit (the ledger says ``done``); peak RSS from /proc
  (VmHWM); the server's CPU time for the insert from system.query_log.
- Reference, same run: chDB in this process parsing the same gzip file with the same
  SELECT the loader's per-load view runs (``dumps/schema.py``'s PARSE), output dropped.
- Bytes per day and layer: ``system.parts`` after the hour (×24 for a day) and after a
  generated mediacounts day.

Run: .venv/bin/python bench/bench_dumps.py [--lines 6000000] [--media-files 200000]
Writes bench/results/dumps.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_local_clickhouse import machine, rss_mb  # noqa: E402
from dumps import schema  # noqa: E402
from loader import bronze  # noqa: E402
from tests.helpers.clickhouse import ClickHouseProcess  # noqa: E402
from tests.helpers.dumps_files import (  # noqa: E402
    pageviews_dir,
    pageviews_name,
    write_mediacounts_day,
    write_pageviews_hour,
)
from tests.helpers.dumps_site import DumpsSite, Faults, ServerThread  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402
from transform.project import run_dbt  # noqa: E402
from wiki_core.config import clickhouse_client  # noqa: E402

HOUR = dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 1)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def reference(path: Path) -> float:
    """Seconds for chDB, in this process, to parse the gzip file as the loader's view does."""
    import chdb

    select = schema.PARSE["pageviews"].format(
        load_id="toUInt64(1)",
        period="'2026-11-01 01:00:00'",
        source=f"file('{path}', 'LineAsString', 'line String', 'gzip')",
    )
    chdb.query("SELECT 1")  # load the engine first
    t0 = time.perf_counter()
    chdb.query(select, "Null")
    return time.perf_counter() - t0


def layer_bytes(client: object, tables: list[str]) -> dict[str, int]:
    rows = client.query(  # type: ignore[attr-defined]
        "SELECT database, table, sum(bytes_on_disk) FROM system.parts WHERE active "
        "AND concat(database, '.', table) IN {t:Array(String)} GROUP BY database, table",
        parameters={"t": tables},
    ).result_rows
    return {f"{db}.{table}": int(b) for db, table, b in rows}


@contextlib.contextmanager
def dumps_warehouse(tmp: Path, timeout: int = 600) -> Iterator[tuple[str, Any]]:
    """The embedded ClickHouse (its own process) on ``tmp``, with both bronzes and every
    dumps model of wiki_dbt built: (its URL, a client)."""
    server = ClickHouseProcess(tmp / "ch").start()
    url = f"http://default:@127.0.0.1:{server.port}/default"
    try:
        client = clickhouse_client(url, send_receive_timeout=timeout, connect_timeout=60)
        bronze.migrate(client)
        schema.migrate(client)
        done = run_dbt(["run", "--vars", "{dumps: true}"], url, work_dir=tmp)
        assert done.returncode == 0, done.stdout + done.stderr
        yield url, client
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=6_000_000)
    parser.add_argument("--media-files", type=int, default=200_000)
    args = parser.parse_args()

    cache = ROOT / "var" / "bench-dumps" / f"{args.lines}" / "other"
    path = cache / pageviews_dir(HOUR) / pageviews_name(HOUR)
    generated = 0.0
    if not path.exists():
        t0 = time.perf_counter()
        write_pageviews_hour(cache, HOUR, lines=args.lines, seed=14, keep_pages=False)
        generated = time.perf_counter() - t0
    write_mediacounts_day(cache, DAY, files=args.media_files, seed=14)
    load_before = load_average()

    ref_s = reference(path)

    with tempfile.TemporaryDirectory() as tmp, dumps_warehouse(Path(tmp)) as (url, client):
        with ServerThread(DumpsSite(cache, Faults()), free_port()) as site:
            env = {**os.environ, "CLICKHOUSE_URL": url, "DUMPS_URL": site.url}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.time()
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "wiki_events",
                    "pageviews",
                    "--quiet",
                    "--from",
                    f"{HOUR:%Y-%m-%dT%H}",
                    "--to",
                    f"{HOUR:%Y-%m-%d}T02",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            rss = 0.0
            while proc.poll() is None:
                rss = max(rss, rss_mb(proc.pid, "VmHWM"))
                time.sleep(0.05)
            elapsed = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            output = proc.stdout.read().decode() if proc.stdout else ""
            assert proc.returncode == 0, output
            loader_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            rows = int(client.command("SELECT count() FROM bronze.pageviews"))
            gold = int(client.command("SELECT sum(views) FROM gold.pageviews_hour_wiki"))
            silver = int(client.command("SELECT sum(views) FROM silver.pageviews"))
            ledger = int(
                client.command(
                    "SELECT sum(rows) FROM bronze.dumps_files FINAL "
                    "WHERE state = 'done' AND dataset = 'pageviews'"
                )
            )
            assert rows == ledger and gold == silver, (rows, ledger, gold, silver)
            # the views are in gold from the ledger's done row on; the hour's attention
            # spikes are computed after it (dumps/spikes.py), before the loader exits
            published = float(
                client.command(
                    "SELECT toUnixTimestamp64Milli(max(updated_at)) / 1e3 FROM "
                    "bronze.dumps_files WHERE state = 'done' AND dataset = 'pageviews'"
                )
            )
            published_s = published - started
            client.command("SYSTEM FLUSH LOGS")
            cpu = client.query(
                "SELECT ProfileEvents['OSCPUVirtualTimeMicroseconds'] / 1e6, "
                "ProfileEvents['OSCPUWaitMicroseconds'] / 1e6, query_duration_ms / 1e3 "
                "FROM system.query_log WHERE type = 'QueryFinish' "
                "AND query LIKE 'INSERT INTO bronze.load_%' ORDER BY written_rows DESC LIMIT 1"
            ).result_rows
            server_cpu, server_wait, insert_s = cpu[0] if cpu else (0.0, 0.0, 0.0)

            # mediacounts: one day, for bytes per day
            t1 = time.perf_counter()
            proc2 = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "wiki_events",
                    "mediacounts",
                    "--quiet",
                    "--from",
                    f"{DAY}",
                    "--to",
                    f"{DAY + dt.timedelta(days=1)}",
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            media_s = time.perf_counter() - t1
            assert proc2.returncode == 0, proc2.stdout + proc2.stderr
        client.command("OPTIMIZE TABLE silver.pageviews FINAL")
        tables = [
            "bronze.pageviews",
            "silver.pageviews",
            "gold.pageviews_hour_wiki_loads",
            "gold.pageviews_day_wiki_loads",
            "gold.top_pages_day_loads",
            "bronze.projectviews",
            "silver.projectviews",
            "bronze.mediacounts",
            "silver.mediacounts",
            "gold.media_day_loads",
            "gold.top_media_day_loads",
        ]
        sizes = layer_bytes(client, tables)

    hourly = {t: b * 24 for t, b in sizes.items() if "media" not in t}
    daily_media = {t: b for t, b in sizes.items() if "media" in t}
    result = {
        "machine": machine(),
        "shared": f"machine shared with other helpers; load average {load_before} before, "
        f"{load_average()} after",
        "lines": rows,
        "file_bytes": path.stat().st_size,
        "generated_s": round(generated, 1),
        "loader_s": round(elapsed, 2),
        "views_published_s": round(published_s, 2),
        "lines_per_s": round(rows / elapsed),
        "loader_peak_rss_mb": round(rss, 1),
        "loader_cpu_s": round(loader_cpu, 2),
        "server_insert_s": round(insert_s, 2),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_wait_s": round(server_wait, 2),
        "reference_engine_parse_s": round(ref_s, 2),
        "reference_lines_per_s": round(rows / ref_s),
        "media_files": args.media_files,
        "media_load_s": round(media_s, 2),
        "bytes_per_day_pageviews_x24": hourly,
        "bytes_per_day_mediacounts": daily_media,
    }
    out = ROOT / "bench" / "results" / "dumps.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Machine: {result['machine']}; {result['shared']}")
    print("| figure | value | reference | target |")
    print("| --- | --- | --- | --- |")
    print(
        f"| one hour, {rows:,} lines, site → bronze + silver + gold (views published) | "
        f"{published_s:.1f} s ({round(rows / published_s):,} lines/s) | engine parse "
        f"in-process {ref_s:.1f} s ({result['reference_lines_per_s']:,} lines/s) | ≤ 15 s "
        "(≥ 400k lines/s) |"
    )
    print(f"| the loader's whole run, the hour's attention spikes included | {elapsed:.1f} s | | |")
    print(
        f"| CPU: loader / server insert (server waiting for a core) | {loader_cpu:.1f} s / "
        f"{server_cpu:.1f} s ({server_wait:.1f} s) | | |"
    )
    print(f"| loader peak RSS | {rss:.0f} MB | | ≤ 200 MB |")
    for table, b in {**hourly, **daily_media}.items():
        print(f"| bytes per day, {table} | {b / 1e6:,.1f} MB | | |")


if __name__ == "__main__":
    main()
