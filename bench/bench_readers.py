"""The readers page (/readers) over a day of generated dumps: how long each panel's query
takes, and the whole page.

``tests/helpers/dumps_files.py`` writes HOURS hourly pageviews files of LINES lines each (Zipf-like
views, every domain-code form) and two days of mediacounts; the real loader loads them
from the local dumps site into the embedded ClickHouse, the dbt models built with
``dumps: true`` before (the materialized views fill as the files load); the recorded
live edits are moved into the last loaded hour. Then every query of the page runs REPEAT
times with the answer cache off, and ``build_view`` (the page's queries, four at a time,
and its figures): the first page (all cold), then REPEAT more as the page serves them
(its slow page-level tables from its cache): median and max.

The page-level tables (read-and-edited, spikes) read gold views over silver's page rows
joined with the edits; their time grows with the page rows kept (7 days by default).

Run: .venv/bin/python bench/bench_readers.py [--hours 24] [--lines 200000] [--repeat 5]
Writes bench/results/readers.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_local_clickhouse import machine  # noqa: E402
from dash_app import queries as q  # noqa: E402
from dash_app.pages import readers  # noqa: E402
from dash_app.queries import Gold  # noqa: E402
from dash_app.state import ViewState  # noqa: E402
from dumps import schema  # noqa: E402
from dumps.load import MEDIACOUNTS, PAGEVIEWS, Loader, Options  # noqa: E402
from loader import bronze  # noqa: E402
from loader.bronze import Bronze  # noqa: E402
from tests.helpers.clickhouse import ClickHouseProcess  # noqa: E402
from tests.helpers.dumps_files import write_mediacounts_day, write_pageviews_hour  # noqa: E402
from tests.helpers.dumps_site import DumpsSite, Faults, ServerThread  # noqa: E402
from tests.helpers.expected import event_time, shifted  # noqa: E402
from tests.helpers.paths import RAW  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402
from transform.project import run_dbt  # noqa: E402
from wiki_core.config import clickhouse_client  # noqa: E402
from wiki_core.topology import decode_batch  # noqa: E402

H = dt.timedelta(hours=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        server = ClickHouseProcess(base / "data").start()
        try:
            result = run(base, server, args.hours, args.lines, args.repeat)
        finally:
            server.stop()
    out = ROOT / "bench" / "results" / "readers.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


def run(base: Path, server: ClickHouseProcess, hours: int, lines: int, repeat: int) -> Any:
    url = f"http://default:@127.0.0.1:{server.port}/default"
    ch = clickhouse_client(url, send_receive_timeout=600)
    bronze.migrate(ch)
    schema.migrate(ch)
    done = run_dbt(["run", "--vars", "{dumps: true}"], url, work_dir=base, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    file_hours = [now - (hours - i) * H for i in range(hours)]
    root = base / "other"
    root.mkdir()
    began = time.monotonic()
    for i, hour in enumerate(file_hours):
        write_pageviews_hour(root, hour, lines=lines, seed=i, keep_pages=False)
    days = [(now - 3 * 24 * H).date(), (now - 2 * 24 * H).date()]
    for i, day in enumerate(days):
        write_mediacounts_day(root, day, files=20_000, seed=100 + i)
    generated = time.monotonic() - began
    began = time.monotonic()
    with ServerThread(DumpsSite(root, Faults()), free_port()) as site:
        loader = Loader(ch, Options(base_url=site.url))
        loader.run([PAGEVIEWS], file_hours[0], file_hours[-1] + H)
        start = dt.datetime.combine(days[0], dt.time(), dt.UTC)
        loader.run([MEDIACOUNTS], start, start + 2 * 24 * H)
    loaded = time.monotonic() - began
    # the live edits: the recording moved into the last loaded hour
    newest = max(
        event_time(json.loads(line)["meta"]["dt"]) for line in RAW.read_bytes().splitlines()
    )
    last = file_hours[-1] - H
    rows, rejects, _ = decode_batch(shifted(RAW, last.replace(minute=30) - newest, "b"), None)
    Bronze(ch).write(rows, rejects)
    page_rows = ch.query("SELECT count() FROM silver.pageviews").result_rows[0][0]

    gold = Gold(lambda: clickhouse_client(url, send_receive_timeout=600), cache_seconds=0)
    state = ViewState.build([], "24h")
    # the page's own queries for this view, as build_view asks them
    asked: dict[str, tuple[str, dict[str, Any]]] = {}
    real_run = gold.run

    def spy(sql: str, params: dict[str, Any] | None = None, ttl: float | None = None) -> Any:
        name = next((k for k, v in vars(q).items() if v is sql), sql[:40])
        kind = (params or {}).get("kind")
        asked.setdefault(f"{name} ({kind})" if kind else name, (sql, params or {}))
        return real_run(sql, params, ttl=0)

    gold.run = spy  # type: ignore[method-assign]
    readers.build_view(gold, state)
    gold.run = real_run  # type: ignore[method-assign]
    per_query = {}
    for name, (sql, params) in asked.items():
        times = []
        for _ in range(repeat):
            t = time.monotonic()
            real_run(sql, params, ttl=0)
            times.append(time.monotonic() - t)
        per_query[name] = {
            "median_ms": round(statistics.median(times) * 1000, 1),
            "max_ms": round(max(times) * 1000, 1),
        }
    # the first page: every query cold; then pages as the page serves them: the slow
    # page-level tables from its cache (PAGE_LEVEL_TTL), the rest queried again
    t = time.monotonic()
    readers.build_view(gold, state)
    first = time.monotonic() - t
    pages = []
    for _ in range(repeat):
        t = time.monotonic()
        readers.build_view(gold, state)
        pages.append(time.monotonic() - t)
    return {
        "machine": machine(),
        "hours": hours,
        "lines_per_hour": lines,
        "silver_page_rows": page_rows,
        "generate_s": round(generated, 1),
        "load_s": round(loaded, 1),
        "view": state.to_search() or "(default)",
        "page_first_ms": round(first * 1000, 1),
        "page_median_ms": round(statistics.median(pages) * 1000, 1),
        "page_max_ms": round(max(pages) * 1000, 1),
        "queries": dict(sorted(per_query.items(), key=lambda kv: -kv[1]["median_ms"])),
    }


if __name__ == "__main__":
    main()
