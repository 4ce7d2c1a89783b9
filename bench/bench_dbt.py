"""dbt on a bronze of 1M events: ``dbt build`` from scratch, then a ``dbt run`` with
nothing to do.

- bronze: the recorded events looped with fresh ids (1M), inserted straight in.
- ``dbt build``: creates silver (backfilled from bronze) and every gold table
  (backfilled from silver), their views, and runs every test (unit, generic,
  reconciliations over the whole million).
- ``dbt run`` again: with the views in place it only swaps each view's query in place.
- Reference, same run: ``dbt parse``, dbt's own cost of starting and reading the project.

Run: .venv/bin/python bench/bench_dbt.py [--events N]
Writes bench/results/dbt.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.bench_local_clickhouse import machine  # noqa: E402
from loader.bronze import Bronze, migrate  # noqa: E402
from reader.emulator import Log, load  # noqa: E402
from tests.helpers.clickhouse import ClickHouseProcess  # noqa: E402
from tests.helpers.paths import RAW  # noqa: E402
from transform.project import run_dbt  # noqa: E402
from wiki_core.config import clickhouse_client  # noqa: E402
from wiki_core.topology import decode_batch  # noqa: E402


def timed_dbt(args: list[str], url: str, work: Path) -> float:
    t0 = time.perf_counter()
    done = run_dbt(args, url, work_dir=work)
    seconds = time.perf_counter() - t0
    assert done.returncode == 0, done.stdout[-3000:]
    return round(seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    log = Log(load(RAW), loop=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = ClickHouseProcess(Path(tmp) / "ch").start()
        url = f"http://default:@127.0.0.1:{server.port}/default"
        try:
            client = clickhouse_client(url)
            migrate(client)
            writer = Bronze(client)
            for start in range(0, args.events, 10_000):
                end = min(start + 10_000, args.events)
                lines = [log.get(i).data for i in range(start, end)]  # type: ignore[union-attr]
                rows, _, _ = decode_batch(b"\n".join(lines), None)
                writer.insert(rows, f"bench-{start}")
            work = Path(tmp) / "dbt"
            results = {
                "machine": machine(),
                "bronze_events": args.events,
                "dbt_parse_s": timed_dbt(["parse"], url, work),
                "dbt_build_s": timed_dbt(
                    ["build", "--vars", "{reconcile_lag_minutes: 0}"], url, work
                ),
                "dbt_run_noop_s": timed_dbt(["run"], url, work),
            }
            gold = httpx.post(server.url, content="SELECT sum(events) FROM gold.wiki_totals")
            results["gold_events"] = int(gold.text)
        finally:
            server.stop()
    out = ROOT / "bench" / "results" / "dbt.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
