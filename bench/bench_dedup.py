"""The loader's duplicate lookup: by ``meta.id`` alone (``bronze.wiki_ids``, now) against
the lookup keyed on the hour of ``meta.dt`` (``bronze.wiki_raw``, before), on a bronze
of N events, at the live batch size (40 ids: a second of the live stream) and the
backfill batch size (10,000 ids), half of them already in bronze.

Run: .venv/bin/python bench/bench_dedup.py [--events N] [--runs R]
Writes bench/results/dedup.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_local_clickhouse import machine  # noqa: E402
from loader.bronze import IDS_TABLE, RAW_TABLE, migrate  # noqa: E402
from tests.helpers.clickhouse import ClickHouseProcess  # noqa: E402
from wiki_core.config import clickhouse_client  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def timed(client: Any, sql: str, runs: int) -> dict[str, float]:
    seconds, found = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        found = len(client.query(sql, settings={"max_query_size": 100_000_000}).result_rows)
        seconds.append(time.perf_counter() - t0)
    return {
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "found": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "events_in_bronze": args.events}
    with tempfile.TemporaryDirectory() as tmp:
        server = ClickHouseProcess(Path(tmp) / "ch").start()
        try:
            client = clickhouse_client(server.url, send_receive_timeout=600)
            migrate(client)
            # a bronze of N events over N / 40 seconds (the live rate), in 1M-row inserts
            for start in range(0, args.events, 1_000_000):
                count = min(1_000_000, args.events - start)
                client.command(
                    f"INSERT INTO {RAW_TABLE} (event_id, event_time, wiki, type, raw) "
                    f"SELECT toString(generateUUIDv4(number)), "
                    f"toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + "
                    f"toIntervalMillisecond(({start} + number) * 25), 'enwiki', 'edit', '{{}}' "
                    f"FROM numbers({count})"
                )
            client.command(f"OPTIMIZE TABLE {IDS_TABLE} FINAL")
            client.command(f"OPTIMIZE TABLE {RAW_TABLE} FINAL")
            # copies come from resumes and redeliveries: of recent events
            present = client.query(
                f"SELECT event_id, toString(toStartOfHour(event_time)) FROM {RAW_TABLE} "
                f"ORDER BY event_time DESC LIMIT 5000"
            ).result_rows
            for name, size in (("live", 40), ("backfill", 10_000)):
                rng = random.Random(size)
                found = rng.sample(present, min(size // 2, len(present)))
                ids = [i for i, _ in found] + [f"new-{rng.random()}" for _ in range(size // 2)]
                hours = sorted({h for _, h in found})
                id_list = ", ".join(quote(i) for i in ids)
                by_hour = (
                    f"SELECT event_id FROM {RAW_TABLE} WHERE toStartOfHour(event_time) IN "
                    f"({', '.join(quote(h) for h in hours)}) AND event_id IN ({id_list})"
                )
                by_id = f"SELECT event_id FROM {IDS_TABLE} WHERE event_id IN ({id_list})"
                results[name] = {
                    "ids": size,
                    "hours_spanned": len(hours),
                    "by_meta_id": timed(client, by_id, args.runs),
                    "by_hour_and_id_before": timed(client, by_hour, args.runs),
                }
                print(name, results[name], flush=True)
            results["ids_table_bytes"] = int(
                client.command(
                    "SELECT sum(bytes_on_disk) FROM system.parts WHERE active "
                    "AND database = 'bronze' AND table = 'wiki_ids'"
                )
            )
        finally:
            server.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dedup.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
