"""Loader throughput into bronze and its peak memory, beside a direct insert.

- ``wiki-events load`` (a real subprocess) drains N recorded events (looped with fresh
  ids) from RabbitMQ into the embedded ClickHouse; timed from start until bronze holds
  all N; its peak RSS read from /proc (VmHWM).
- Reference, same run: the same events inserted straight into bronze in batches of the
  same size, without RabbitMQ and without the duplicate lookup.

Run: .venv/bin/python bench/bench_loader.py [--events N]   (needs RabbitMQ)
Writes bench/results/loader.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_local_clickhouse import machine, rss_mb  # noqa: E402
from loader.bronze import RAW_TABLE, Bronze, migrate  # noqa: E402
from tests.helpers.clickhouse import ClickHouseProcess  # noqa: E402
from tests.helpers.rabbitmq import publish, rabbitmqctl  # noqa: E402
from tests.helpers.recorded import looped_events  # noqa: E402
from wiki_core.config import clickhouse_client  # noqa: E402
from wiki_core.topology import decode_batch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    args = parser.parse_args()
    n = args.events
    events = looped_events(n)
    vhost = f"wiki-bench-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    with tempfile.TemporaryDirectory() as tmp:
        server = ClickHouseProcess(Path(tmp) / "ch").start()
        try:
            client = clickhouse_client(server.url)
            migrate(client)
            publish(amqp_url, events)
            env = {**os.environ, "CLICKHOUSE_URL": server.url, "AMQP_URL": amqp_url}
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "wiki_events", "load"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            rss = 0.0
            while client.command(f"SELECT count() FROM {RAW_TABLE}") < n:
                rss = max(rss, rss_mb(proc.pid, "VmHWM"))
                time.sleep(0.2)
            loader_s = time.perf_counter() - t0
            rss = max(rss, rss_mb(proc.pid, "VmHWM"))
            proc.terminate()
            proc.wait(30)

            # reference: the same rows straight into a fresh bronze table
            client.command(f"TRUNCATE TABLE {RAW_TABLE}")
            bronze = Bronze(client)
            t0 = time.perf_counter()
            for start in range(0, n, 20_000):
                rows, _, _ = decode_batch("\n".join(events[start : start + 20_000]).encode(), None)
                bronze.insert(rows, uuid.uuid4().hex)
            direct_s = time.perf_counter() - t0
            assert client.command(f"SELECT count() FROM {RAW_TABLE}") == n
        finally:
            server.stop()
            rabbitmqctl("delete_vhost", vhost)
    result = {
        "events": n,
        "loader_events_per_s": n / loader_s,
        "direct_insert_events_per_s": n / direct_s,
        "loader_peak_rss_mb": rss,
        "materialized_views": "none yet (issue 5 adds them)",
        "machine": machine(),
    }
    out = ROOT / "bench" / "results" / "loader.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Machine: {result['machine']}\n")
    print("| figure | loader (RabbitMQ → bronze) | direct insert | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| events/s, {n:,} events | {result['loader_events_per_s']:,.0f} "
        f"| {result['direct_insert_events_per_s']:,.0f} "
        f"| {result['loader_events_per_s'] / result['direct_insert_events_per_s']:.2f} "
        f"| ≥ 50,000 |"
    )
    print(f"| loader peak RSS, MB | {rss:.0f} | | | ≤ 150 |")


if __name__ == "__main__":
    main()
