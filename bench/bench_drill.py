"""The edits page's drill-down panel "views of the pages edited in the last hour" at real
volume: how long its queries take, and how many rows they read, beside the same answer
from the view a query would otherwise read (gold.page_views_edits_hour, which joins every
page row silver holds).

- Views: one generated hour of pageviews (``tests/helpers/dumps_files.py``, 6M lines by default,
  cached under var/bench-dumps as bench_dumps.py caches it), loaded by the real loader
  from the local dumps site into the embedded ClickHouse, every model of wiki_dbt built
  with ``dumps: true``.
- Edits: EDITED enwiki pages (10,000 by default) edited in the hour after the views'
  hour and the hour of the views (Zipf-like: a few pages many times), through the
  loader's bronze writer: 70% are pages of the file, 30% pages nobody read.
- Timed: the panel as the page asks it (``dash_app.pages.edits.drill_views``, answer
  cache off), each of its queries REPEAT times (median, max) with the rows and bytes it
  read (system.query_log); and the reference: the same top pages from
  ``gold.edited_pages_views_hour``'s former shape, the full join view.

Run: .venv/bin/python bench/bench_drill.py [--lines 6000000] [--edited 10000] [--repeat 7]
     [--data DIR]  (keep the loaded warehouse in DIR and reuse it on the next run)
Writes bench/results/drill.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_local_clickhouse import machine  # noqa: E402
from dash_app import queries as q  # noqa: E402
from dash_app.pages import edits  # noqa: E402
from dash_app.queries import Gold  # noqa: E402
from dumps import schema  # noqa: E402
from dumps.load import PAGEVIEWS, PROJECTVIEWS, Loader, Options  # noqa: E402
from loader import bronze  # noqa: E402
from loader.bronze import Bronze  # noqa: E402
from tests.helpers.clickhouse import ClickHouseProcess  # noqa: E402
from tests.helpers.dumps_files import write_pageviews_hour  # noqa: E402
from tests.helpers.dumps_site import DumpsSite, Faults, ServerThread  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402
from transform.project import run_dbt  # noqa: E402
from wiki_core.config import clickhouse_client  # noqa: E402
from wiki_core.topology import decode_batch  # noqa: E402

FILE_HOUR = dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC)  # views of 00:00-01:00
VIEWS_HOUR = dt.datetime(2026, 11, 1, 0)
END = dt.datetime(2026, 11, 1, 1, 40)  # the window's end: edits of 00:40-01:40
WIKI = "enwiki"
KINDS = ["bot", "anonymous", "registered"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=6_000_000)
    parser.add_argument("--edited", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--data", type=Path, help="keep the warehouse here, reuse it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.data.resolve() if args.data else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        fresh = not (base / "ch").exists()
        server = ClickHouseProcess(base / "ch").start()
        try:
            url = f"http://default:@127.0.0.1:{server.port}/default"
            setup = fill(url, base, args.lines, args.edited) if fresh else {"reused": str(base)}
            result = {"machine": machine(), **setup, **measure(url, args.repeat)}
        finally:
            server.stop()
    out = ROOT / "bench" / "results" / "drill.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


def fill(url: str, base: Path, lines: int, edited: int) -> dict[str, Any]:
    """Load the hour of views and the edits; their figures."""
    ch = clickhouse_client(url, send_receive_timeout=900)
    bronze.migrate(ch)
    schema.migrate(ch)
    done = run_dbt(["run", "--vars", "{dumps: true}"], url, work_dir=base, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    cache = ROOT / "var" / "bench-dumps" / f"{lines}" / "other"
    began = time.monotonic()
    if not any(cache.rglob("pageviews-*.gz")):
        write_pageviews_hour(cache, FILE_HOUR, lines=lines, seed=14, keep_pages=False)
    generated = time.monotonic() - began
    began = time.monotonic()
    with ServerThread(DumpsSite(cache, Faults()), free_port()) as site:
        loader = Loader(ch, Options(base_url=site.url))
        got = loader.run([PAGEVIEWS, PROJECTVIEWS], FILE_HOUR, FILE_HOUR + dt.timedelta(hours=1))
        assert got == {"loaded": 2}, got
    loaded = time.monotonic() - began

    # the edited pages: most of them read in the hour, the rest not
    rng = random.Random(7)
    read = [
        r[0]
        for r in ch.query(
            "SELECT DISTINCT replaceAll(title, '_', ' ') FROM silver.pageviews "
            "WHERE wiki = {w:String} AND title != '-' LIMIT 1000000",
            parameters={"w": WIKI},
        ).result_rows
    ]
    titles = rng.sample(read, min(len(read), edited * 7 // 10))
    titles += [f"Unread page {i}" for i in range(edited - len(titles))]
    events: list[str] = []
    for rank, title in enumerate(titles, 1):
        for _ in range(max(1, int(50 / rank**0.6))):  # Zipf-like: 50 edits down to 1
            minute = rng.randrange(40, 100)  # 00:40-01:40
            when = VIEWS_HOUR + dt.timedelta(minutes=minute, seconds=rng.randrange(60))
            events.append(_edit(len(events), title, when))
    for start in range(0, len(events), 5000):
        body = ("\n".join(events[start : start + 5000]) + "\n").encode()
        rows, rejects, _ = decode_batch(body, None)
        assert not rejects, rejects[:3]
        Bronze(ch).write(rows, rejects)
    silver = ch.query(
        "SELECT count(), countIf(wiki = {w:String}) FROM silver.pageviews",
        parameters={"w": WIKI},
    ).result_rows[0]
    return {
        "lines": lines,
        "silver_page_rows": silver[0],
        "silver_page_rows_of_the_wiki": silver[1],
        "edited_pages": len(titles),
        "edits": len(events),
        "generate_s": round(generated, 1),
        "load_s": round(loaded, 1),
    }


def _edit(n: int, title: str, when: dt.datetime) -> str:
    meta = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"drill:{n}")),
        "dt": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "domain": "en.wikipedia.org",
    }
    return json.dumps(
        {
            "meta": meta,
            "type": "edit",
            "namespace": 0,
            "title": title,
            "user": f"Editor{n % 97}",
            "bot": False,
            "minor": False,
            "length": {"old": 100, "new": 110},
            "revision": {"old": n, "new": n + 1},
            "wiki": WIKI,
        }
    )


def measure(url: str, repeat: int) -> dict[str, Any]:
    gold = Gold(lambda: clickhouse_client(url, send_receive_timeout=600), cache_seconds=0)
    ch = clickhouse_client(url, send_receive_timeout=600)
    asked: dict[str, tuple[str, dict[str, Any]]] = {}
    real_run = gold.run

    def spy(sql: str, params: dict[str, Any] | None = None, ttl: float | None = None) -> Any:
        name = next((k for k, v in vars(q).items() if v is sql), sql[:40])
        asked.setdefault(name, (sql, params or {}))
        return real_run(sql, params, ttl=0)

    gold.run = spy  # type: ignore[method-assign]
    panel = edits.drill_views(gold, WIKI, END, KINDS)
    gold.run = real_run  # type: ignore[method-assign]
    assert len(panel.rows) == q.DRILL_PAGES, panel
    per_query = {name: timed(ch, sql, params, repeat) for name, (sql, params) in asked.items()}
    # references, same run: the page views without the domain codes (no projectviews
    # loaded for the hour), and the top pages asked of the dbt view that joins every
    # page row of silver with the edits (one wiki, the views' hour)
    sql, params = asked["DRILL_VIEWS"]
    without_codes = timed(ch, q.DRILL_VIEWS_ANY_CODE, params, repeat)
    model = timed(
        ch,
        "SELECT title, edits, views FROM gold.edited_pages_views_hour "
        "WHERE wiki = {wiki:String} AND hour = {hour:DateTime} "
        "ORDER BY edits DESC, title LIMIT 20",
        {"wiki": WIKI, "hour": VIEWS_HOUR},
        max(2, repeat // 3),
    )
    times = []
    for _ in range(repeat):
        t = time.monotonic()
        edits.drill_views(gold, WIKI, END, KINDS)
        times.append(time.monotonic() - t)
    return {
        "load_average": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "window_end": str(END),
        "panel_note": panel.note,
        "panel_rows": len(panel.rows),
        "panel_median_ms": round(statistics.median(times) * 1000, 1),
        "panel_max_ms": round(max(times) * 1000, 1),
        "queries": per_query,
        "reference_views_without_codes": without_codes,
        "reference_edited_pages_views_hour_model": model,
    }


def timed(ch: Any, sql: str, params: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Median and max wall time of a query, and the rows and bytes it read."""
    params = {**params, "limit": q.MAX_ROWS + 1}
    times = []
    tag = f"bench-drill-{uuid.uuid4()}"
    for _ in range(repeat):
        t = time.monotonic()
        ch.query(sql, parameters=params, settings={"log_comment": tag})
        times.append(time.monotonic() - t)
    ch.command("SYSTEM FLUSH LOGS")
    read = ch.query(
        "SELECT max(read_rows), max(read_bytes) FROM system.query_log "
        "WHERE type = 'QueryFinish' AND log_comment = {t:String}",
        parameters={"t": tag},
    ).result_rows[0]
    return {
        "median_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "read_rows": int(read[0]),
        "read_mb": round(read[1] / 2**20, 1),
    }


if __name__ == "__main__":
    main()
