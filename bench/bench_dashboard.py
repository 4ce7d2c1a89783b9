"""The dashboard's full page of data over 30 days of gold (about 90M events' worth).

Gold is generated straight into dbt's gold tables (built by ``dbt run``), shaped like
the live stream: ~35 events/s, 900 wikis with a Zipf-like share (wikidata, commons, en
first), a bot / registered / anonymous split, a type mix, ~32M page-hour rows and ~6M
editor-hour rows over 30 days ending now; the merges those inserts start are left to
finish. Then ``dash_app.app.build_view`` (every panel's query and its figure, as the page
asks them) runs for a set of views with the dashboard's cache and ClickHouse's query
condition cache off, each view many times; p50 / p95 over all page loads. Reference,
same run: the fixed cost of a page's worth of trivial queries (``SELECT 1`` through the
same client, one per panel).

Apart from the page loads (not in their p50 / p95): a ten-year custom range, as a shared
link can ask for it, rendered through the page's callback: its time and the size of its
answer (it is clipped to 31 days, by day).

Run: .venv/bin/python bench/bench_dashboard.py [--repeat N]
Writes bench/results/dashboard.json.
"""

from __future__ import annotations

import argparse
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
from dash_app.pages.edits import build_view, render  # noqa: E402
from dash_app.queries import Gold  # noqa: E402
from dash_app.state import ViewState  # noqa: E402
from loader.bronze import migrate  # noqa: E402
from tests.conftest import ClickHouseProcess  # noqa: E402
from wiki_core.config import clickhouse_client  # noqa: E402
from wiki_events.dbt import run_dbt  # noqa: E402

MINUTES = 30 * 24 * 60
NAMES = [
    "wikidatawiki",
    "commonswiki",
    "enwiki",
    "dewiki",
    "frwiki",
    "eswiki",
    "jawiki",
    "ruwiki",
    "itwiki",
    "zhwiki",
    "ptwiki",
    "plwiki",
    "nlwiki",
    "arwiki",
]
WIKI = (
    f"arrayConcat({NAMES!r}, arrayMap(i -> concat('x', toString(i), 'wiki'), "
    f"range({len(NAMES) + 1}, 901)))"
)
KINDS = "[('registered', 0.60), ('bot', 0.35), ('anonymous', 0.05)]"
TYPES = "[('edit', 0.52), ('categorize', 0.32), ('log', 0.10), ('new', 0.03), ('flow', 0.03)]"

GENERATE = [
    # per minute and wiki: the busiest 120 wikis each minute, events ~ 388 / rank
    f"""
    INSERT INTO gold.events_per_minute_wiki
    SELECT minute, {WIKI}[rank] AS wiki, kind.1 AS user_kind,
           toUInt64(greatest(1, round(388 / rank * kind.2 * (0.7 + randCanonical() * 0.6))))
    FROM (
        SELECT toStartOfMinute(now() - INTERVAL 30 DAY) + INTERVAL (number DIV 120) MINUTE
                   AS minute,
               1 + (number % 120) AS rank
        FROM numbers({MINUTES * 120})
    )
    ARRAY JOIN {KINDS} AS kind
    """,
    """
    INSERT INTO gold.events_per_minute
    SELECT minute, user_kind, sum(events) FROM gold.events_per_minute_wiki GROUP BY ALL
    """,
    f"""
    INSERT INTO gold.events_per_hour_wiki
    SELECT hour, wiki, user_kind, t.1 AS type,
           toUInt64(round(events * t.2)) AS n,
           toUInt64(if(t.1 IN ('edit', 'new'), n * 310, 0)),
           toUInt64(if(t.1 = 'edit', n * 95, 0)),
           toUInt64(if(t.1 = 'new', n, 0))
    FROM (
        SELECT toStartOfHour(minute) AS hour, wiki, user_kind, sum(events) AS events
        FROM gold.events_per_minute_wiki GROUP BY ALL
    )
    ARRAY JOIN {TYPES} AS t
    WHERE n > 0
    """,
    """
    INSERT INTO gold.events_per_hour
    SELECT hour, user_kind, sum(events) FROM gold.events_per_hour_wiki GROUP BY ALL
    """,
    # ~44k page rows an hour: skewed wikis, a long tail of titles, a few hot pages
    f"""
    INSERT INTO gold.page_edits_per_hour
    SELECT toStartOfHour(now() - INTERVAL 30 DAY) + INTERVAL (number % 720) HOUR AS hour,
           {WIKI}[1 + toUInt32(floor(pow(randCanonical(), 2.5) * 300))] AS wiki,
           ['registered', 'bot', 'anonymous'][1 + (cityHash64(number, 3) % 20 > 7)
                                              + (cityHash64(number, 3) % 20 = 19)] AS user_kind,
           toInt32(if(cityHash64(number, 4) % 5 = 0, 1, 0)) AS namespace,
           concat('Page ', toString(cityHash64(number, 1) % 3000000)) AS title,
           toUInt64(1 + if(cityHash64(number, 2) % 50 = 0, cityHash64(number, 5) % 40, 0)),
           toInt64(cityHash64(number, 6) % 2000) - 600
    FROM numbers(32000000)
    """,
    f"""
    INSERT INTO gold.editor_edits_per_hour
    SELECT toStartOfHour(now() - INTERVAL 30 DAY) + INTERVAL (number % 720) HOUR AS hour,
           {WIKI}[1 + toUInt32(floor(pow(randCanonical(), 2.5) * 300))] AS wiki,
           if(cityHash64(number, 1) % 3000 < 200, 'bot', 'registered') AS user_kind,
           concat('User ', toString(cityHash64(number, 1) % 300000)) AS user,
           toUInt64(1 + cityHash64(number, 2) % if(user_kind = 'bot', 300, 5)),
           toUInt64(cityHash64(number, 3) % 5000), toUInt64(cityHash64(number, 4) % 1500)
    FROM numbers(6000000)
    """,
    """
    INSERT INTO gold.top_pages_per_hour
    SELECT hour, user_kind, topKWeightedState(100, 3, 'counts')((wiki, title), edits)
    FROM gold.page_edits_per_hour GROUP BY hour, user_kind
    """,
    """
    INSERT INTO gold.top_editors_per_hour
    SELECT hour, user_kind, topKWeightedState(100, 3, 'counts')((wiki, user), edits)
    FROM gold.editor_edits_per_hour GROUP BY hour, user_kind
    """,
    """
    INSERT INTO gold.wiki_totals
    SELECT wiki, sum(events), min(hour), max(hour) + INTERVAL 59 MINUTE,
           max(hour) + INTERVAL 59 MINUTE,
           uniqState(toString(cityHash64(wiki, hour) % 5000)),
           uniqState(toString(cityHash64(hour, wiki) % 90000))
    FROM gold.events_per_hour_wiki GROUP BY wiki
    """,
]

VIEWS = {
    "default (6h, all wikis)": ViewState(),
    "1h": ViewState.build(range="1h"),
    "24h": ViewState.build(range="24h"),
    "7d": ViewState.build(range="7d"),
    "6h, three wikis": ViewState.build(["enwiki", "dewiki", "frwiki"]),
    "24h, humans, one wiki": ViewState.build(["enwiki"], "24h", "humans"),
}


def settle_merges(client: Any, quiet_polls: int = 5, timeout: float = 600) -> float:
    """Wait until no merge has run for ``quiet_polls`` polls in a row; seconds waited."""
    t0 = time.perf_counter()
    quiet = 0
    while quiet < quiet_polls and time.perf_counter() - t0 < timeout:
        time.sleep(1)
        quiet = quiet + 1 if client.command("SELECT count() FROM system.merges") == 0 else 0
    return round(time.perf_counter() - t0, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        server = ClickHouseProcess(Path(tmp) / "ch").start()
        url = f"http://default:@127.0.0.1:{server.port}/default"
        try:
            client = clickhouse_client(url, send_receive_timeout=1800)
            migrate(client)
            built = run_dbt(["run"], url, work_dir=Path(tmp) / "dbt")
            assert built.returncode == 0, built.stdout[-2000:]
            t0 = time.perf_counter()
            for statement in GENERATE:
                client.command(statement, settings={"max_insert_threads": 2})
            results["generate_s"] = round(time.perf_counter() - t0, 1)
            sizes = client.query(
                "SELECT table, sum(rows) FROM system.parts WHERE database = 'gold' AND active "
                "GROUP BY table ORDER BY table"
            ).result_rows
            results["gold_rows"] = {name: int(n) for name, n in sizes}
            results["events_worth"] = int(
                client.command("SELECT sum(events) FROM gold.events_per_minute")
            )
            client.command("OPTIMIZE TABLE gold.events_per_minute_wiki FINAL")
            # 30 days arrived in a few inserts, not over 30 days: let the background
            # merges they started finish, as they would have long ago on a live system
            results["merges_settled_s"] = settle_merges(client)

            # The cache off, and ClickHouse's query condition cache too: live, the window
            # moves with every new event, so a page rarely repeats a filter; here the gold
            # is still and every load would repeat the previous one's exactly.
            no_reuse = {"use_query_condition_cache": 0}
            gold = Gold(lambda: clickhouse_client(url, settings=no_reuse), cache_seconds=0)
            build_view(gold, ViewState())  # connect, warm the page cache once
            per_view: dict[str, list[float]] = {}
            for _ in range(args.repeat):
                for name, state in VIEWS.items():
                    t0 = time.perf_counter()
                    view = build_view(gold, state)
                    per_view.setdefault(name, []).append(time.perf_counter() - t0)
                    assert view["top-pages"], name
            every = sorted(t for ts in per_view.values() for t in ts)
            results["page_ms"] = {
                "p50": round(every[len(every) // 2] * 1000, 1),
                "p95": round(every[int(len(every) * 0.95)] * 1000, 1),
                "loads": len(every),
            }
            results["slowest_loads_ms"] = sorted(
                ([round(t * 1000, 1), name] for name, ts in per_view.items() for t in ts),
                reverse=True,
            )[:5]
            results["per_view_median_ms"] = {
                name: round(statistics.median(ts) * 1000, 1) for name, ts in per_view.items()
            }
            # where a page's time goes: each panel query alone, 7d (the heaviest window)
            state = VIEWS["7d"]
            panel: dict[str, list[float]] = {}
            original = gold.run

            def timed(sql: str, params: Any = None, ttl: Any = None) -> Any:
                t0 = time.perf_counter()
                out = original(sql, params, ttl)
                name = next((k for k, v in vars(q).items() if v is sql), "?")
                panel.setdefault(name, []).append(time.perf_counter() - t0)
                return out

            gold.run = timed  # type: ignore[method-assign]
            for _ in range(5):
                build_view(gold, state)
            results["panel_ms_7d"] = {
                k: round(statistics.median(v) * 1000, 1) for k, v in sorted(panel.items())
            }
            gold.run = original  # type: ignore[method-assign]
            # reference: the same number of trivial queries through the same client
            n_queries = sum(len(v) for v in panel.values()) // 5
            ref = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                for _ in range(n_queries):
                    gold.run("SELECT 1", ttl=0)
                ref.append(time.perf_counter() - t0)
            results["reference_trivial_page_ms"] = round(statistics.median(ref) * 1000, 1)
            # a ten-year link: bounded work (clipped to 31 days, daily buckets)
            ten_years = "?range=custom&start=2016-01-01T00:00&end=2026-12-31T00:00"
            times, size = [], 0
            for _ in range(5):
                t0 = time.perf_counter()
                out = render(gold, ten_years)
                times.append(time.perf_counter() - t0)
                size = len(json.dumps(out, default=str))
            results["ten_year_link"] = {
                "median_ms": round(statistics.median(times) * 1000, 1),
                "answer_bytes": size,
                "banner": out["banner"],
            }
            results["queries_per_page"] = n_queries
        finally:
            server.stop()
    path = ROOT / "bench" / "results" / "dashboard.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
