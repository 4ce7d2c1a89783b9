"""Embedded ClickHouse over HTTP against the same engine in-process, in one run.

Figures (issue 2 targets on the 2-core machine):
- insert throughput of narrow rows through clickhouse-connect (target >= 1M rows/s),
  beside the same Native bytes appended in-process;
- the round trip of a trivial query over HTTP (target p50 <= 2 ms), beside the same
  query in-process.

Run: .venv/bin/python bench/bench_local_clickhouse.py [--rows N]
Writes bench/results/local_clickhouse.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import chdb
import clickhouse_connect
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.clickhouse import ClickHouseProcess  # noqa: E402

TABLE = "CREATE TABLE {name} (id UInt64, v UInt32) ENGINE = MergeTree ORDER BY id"


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(np.array(values), p))


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory in MB from /proc: VmRSS now, VmHWM its peak."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def machine() -> str:
    cpus = Path("/proc/cpuinfo").read_text().count("processor\t:")
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {cpus} cores, {mem} GiB, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = ClickHouseProcess(Path(tmp) / "http").start()
        try:
            results = run(server, Path(tmp) / "inproc", args.rows, args.queries)
        finally:
            server.stop()
    results["machine"] = machine()
    out = ROOT / "bench" / "results" / "local_clickhouse.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


def run(server: ClickHouseProcess, inproc_path: Path, rows: int, queries: int) -> dict[str, object]:
    ids = np.arange(rows, dtype=np.uint64)
    vals = (ids % 1000).astype(np.uint32)

    # -- insert over HTTP through clickhouse-connect, in 500k-row inserts
    client = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, compress=False)
    client.command(TABLE.format(name="narrow"))
    batch = 500_000
    t0 = time.perf_counter()
    for start in range(0, rows, batch):
        columns: list[Any] = [ids[start : start + batch], vals[start : start + batch]]
        client.insert("narrow", columns, column_names=["id", "v"], column_oriented=True)
    http_insert_s = time.perf_counter() - t0
    assert client.command("SELECT count() FROM narrow") == rows

    # -- the same rows as Native bytes appended in-process (the engine's own speed here)
    conn = chdb.connect(str(inproc_path))
    conn.query(TABLE.format(name="narrow"))
    native = [
        conn.query(
            f"SELECT toUInt64(number) AS id, toUInt32(number % 1000) AS v "
            f"FROM numbers({start}, {min(batch, rows - start)})",
            "Native",
        ).bytes()
        for start in range(0, rows, batch)
    ]
    t0 = time.perf_counter()
    for block in native:
        inserter = conn._conn.send_insert("INSERT INTO narrow", "Native")
        conn._conn.insert_append(inserter, block)
        conn._conn.insert_done(inserter)
    inproc_insert_s = time.perf_counter() - t0
    assert conn.query("SELECT count() FROM narrow", "TSV").bytes().strip() == str(rows).encode()

    # -- one trivial query: HTTP round trip (keep-alive) against in-process
    http = httpx.Client()
    for _ in range(50):
        http.post(server.url, content="SELECT 1")
    http_ms = []
    for _ in range(queries):
        t0 = time.perf_counter()
        r = http.post(server.url, content="SELECT 1")
        http_ms.append((time.perf_counter() - t0) * 1000)
        assert r.text == "1\n"
    cc_ms = []
    for _ in range(queries):
        t0 = time.perf_counter()
        client.query("SELECT 1")
        cc_ms.append((time.perf_counter() - t0) * 1000)
    inproc_ms = []
    for _ in range(queries):
        t0 = time.perf_counter()
        conn.query("SELECT 1", "TSV")
        inproc_ms.append((time.perf_counter() - t0) * 1000)
    conn.close()

    return {
        "rows": rows,
        "insert_rows_per_s_http": rows / http_insert_s,
        "insert_rows_per_s_inprocess": rows / inproc_insert_s,
        "trivial_query_ms_http": {
            "p50": statistics.median(http_ms),
            "p95": percentile(http_ms, 95),
        },
        "trivial_query_ms_clickhouse_connect": {
            "p50": statistics.median(cc_ms),
            "p95": percentile(cc_ms, 95),
        },
        "trivial_query_ms_inprocess": {
            "p50": statistics.median(inproc_ms),
            "p95": percentile(inproc_ms, 95),
        },
    }


def table(r: dict) -> str:  # type: ignore[type-arg]
    http, inproc = r["insert_rows_per_s_http"], r["insert_rows_per_s_inprocess"]
    q_http, q_in = r["trivial_query_ms_http"], r["trivial_query_ms_inprocess"]
    q_cc = r["trivial_query_ms_clickhouse_connect"]
    lines = [
        f"Machine: {r['machine']}",
        "",
        "| figure | over HTTP | in-process | ratio | target |",
        "| --- | --- | --- | --- | --- |",
        f"| insert, narrow rows, rows/s ({r['rows']:,} rows) | {http:,.0f} | {inproc:,.0f} "
        f"| {http / inproc:.2f} | ≥ 1,000,000 over HTTP |",
        f"| `SELECT 1` round trip p50 / p95, ms (raw HTTP keep-alive) "
        f"| {q_http['p50']:.2f} / {q_http['p95']:.2f} | {q_in['p50']:.2f} / {q_in['p95']:.2f} "
        f"| +{q_http['p50'] - q_in['p50']:.2f} ms | p50 ≤ 2 ms |",
        f"| `SELECT 1` through clickhouse-connect p50 / p95, ms "
        f"| {q_cc['p50']:.2f} / {q_cc['p95']:.2f} | | | |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
