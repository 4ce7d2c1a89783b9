"""The whole pipeline with every materialized view: throughput, the naive design beside
it, memory, and freshness at the live rate.

- **Throughput**: the emulator as fast as it goes (``--speed 0 --loop``, the recorded
  events looped with fresh ids) → ``wiki-events stream`` → RabbitMQ → ``wiki-events
  load`` → the embedded ClickHouse, silver and gold built by dbt. Timed between gold
  holding 10% and 100% of N events (sustained, past the start-up).
- **Reference**, same run: the same N events inserted straight into bronze, in-process
  (chDB on the same data folder, every materialized view attached), 10k per insert:
  the engine's limit on this machine.
- **Naive design**, same run: one AMQP message per event, one insert per event.
- **Memory**: the reader's and the loader's RSS (/proc) sampled through the throughput
  run; steady state = the median after the first 10%, and the peak.
- **Freshness**: the emulator at real time (the recording's own ~40 events/s), in this
  process so each event's send time is known; gold's count polled every 20 ms; an
  event's latency is from its send (the reader reads it within a millisecond on
  localhost) to the first poll whose count includes it.

Run: .venv/bin/python bench/bench_pipeline.py [--events N] [--freshness-seconds S]
Writes bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import pika  # noqa: E402

from bench.bench_local_clickhouse import machine, rss_mb  # noqa: E402
from loader.bronze import COLUMNS, RAW_TABLE, migrate, rowbinary  # noqa: E402
from loader.consumer import Options as LoaderOptions  # noqa: E402
from reader.emulator import Emulator, Log, load  # noqa: E402
from reader.emulator import Options as ReplayOptions  # noqa: E402
from reader.publisher import Publisher  # noqa: E402
from tests.helpers.clickhouse import ClickHouseProcess  # noqa: E402
from tests.helpers.paths import RAW  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402
from tests.helpers.rabbitmq import rabbitmqctl  # noqa: E402
from transform.project import run_dbt  # noqa: E402
from wiki_core.config import clickhouse_client  # noqa: E402
from wiki_core.topology import (  # noqa: E402
    EXCHANGE,
    LOADER_QUEUE,
    NDJSON_CONTENT_TYPE,
    Message,
    decode_batch,
)

RESULTS = ROOT / "bench" / "results"


def gold_total(url: str) -> int:
    reply = httpx.post(url, content="SELECT sum(events) FROM gold.events_per_minute", timeout=30)
    return int(reply.text.strip() or 0)


class Warehouse:
    """An embedded ClickHouse with bronze and dbt's silver and gold, and a vhost."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.server = ClickHouseProcess(base / "ch").start()
        self.url = f"http://default:@127.0.0.1:{self.server.port}/default"
        migrate(clickhouse_client(self.url))
        built = run_dbt(["run"], self.url, work_dir=base / "dbt")
        assert built.returncode == 0, built.stdout[-2000:]
        self.vhost = f"wiki-bench-{uuid.uuid4().hex[:8]}"
        rabbitmqctl("add_vhost", self.vhost)
        rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        self.amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"

    def reset(self) -> None:
        """Empty bronze, silver and gold (the views stay) and the queue."""
        client = clickhouse_client(self.url)
        tables = client.query(
            "SELECT database, name FROM system.tables WHERE database IN "
            "('bronze', 'silver', 'gold') AND engine LIKE '%MergeTree'"
        ).result_rows
        for db, name in tables:
            client.command(f"TRUNCATE TABLE {db}.{name}")
        client.close()
        subprocess.run(
            ["rabbitmqctl", "-q", "purge_queue", "-p", self.vhost, LOADER_QUEUE],
            capture_output=True,
        )

    def env(self, **extra: str) -> dict[str, str]:
        contact = "wiki-events bench <bench@example.org>"
        return {
            **os.environ,
            "CLICKHOUSE_URL": self.url,
            "AMQP_URL": self.amqp_url,
            "WIKI_EVENTS_CONTACT": contact,
            **extra,
        }

    def close(self) -> None:
        self.server.stop()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True)


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "wiki_events", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rabbitmq_pid() -> int | None:
    found = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True)
    return int(found.stdout.split()[0]) if found.stdout.split() else None


def throughput(house: Warehouse, n: int) -> dict[str, Any]:
    house.reset()
    port = free_port()
    data = house.base / f"reader-{uuid.uuid4().hex[:6]}"
    env = house.env(
        STREAM_URL=f"http://127.0.0.1:{port}/v2/stream/recentchange", WIKI_EVENTS_DATA=str(data)
    )
    emulator = spawn(["replay", str(RAW), "--port", str(port), "--speed", "0", "--loop"], env)
    time.sleep(2)
    loader = spawn(["load"], env)
    reader = spawn(["stream"], env)
    samples: dict[str, list[float]] = {"reader": [], "loader": []}
    marks: dict[int, float] = {}
    # where the two cores go: each process's CPU time between the 10% and 100% marks
    assert house.server.proc is not None
    pids = {
        "emulator": emulator.pid,
        "reader": reader.pid,
        "loader": loader.pid,
        "clickhouse": house.server.proc.pid,
        "rabbitmq": rabbitmq_pid(),
    }
    cpu: dict[int, dict[str, float]] = {}
    try:
        while True:
            total = gold_total(house.server.url)
            now = time.perf_counter()
            for pct in (10, 100):
                if total >= n * pct // 100 and pct not in marks:
                    marks[pct] = now
                    cpu[pct] = {k: cpu_seconds(p) for k, p in pids.items() if p}
            if 10 in marks:
                samples["reader"].append(rss_mb(reader.pid))
                samples["loader"].append(rss_mb(loader.pid))
            if 100 in marks:
                break
            for proc in (emulator, reader, loader):
                assert proc.poll() is None, proc.args
            time.sleep(0.25)
        peaks = {
            name: rss_mb(p.pid, "VmHWM") for name, p in (("reader", reader), ("loader", loader))
        }
    finally:
        for proc in (reader, loader, emulator):
            proc.terminate()
        for proc in (reader, loader, emulator):
            proc.wait(60)
    rate = (n - n // 10) / (marks[100] - marks[10])
    seconds = marks[100] - marks[10]
    return {
        "events": n,
        "events_per_s": round(rate),
        "seconds": round(seconds, 1),
        "cpu_percent_of_a_core": {
            k: round(100 * (cpu[100][k] - cpu[10][k]) / seconds) for k in cpu[10]
        },
        "cpu_us_per_event": {
            k: round((cpu[100][k] - cpu[10][k]) / (n - n // 10) * 1e6, 1) for k in cpu[10]
        },
        "rss_mb": {
            name: {"steady_median": round(statistics.median(v), 1), "peak": round(peaks[name], 1)}
            for name, v in samples.items()
        },
    }


def direct_reference(house: Warehouse, lines: list[str]) -> dict[str, Any]:
    """The same events straight into bronze, in-process, with every view attached."""
    house.reset()
    house.server.stop()
    from local_clickhouse.engine import Engine

    engine = Engine(house.server.data)
    conn = engine.connect()
    try:
        blocks = []
        for start in range(0, len(lines), 10_000):
            rows, _, _ = decode_batch("\n".join(lines[start : start + 10_000]).encode(), None)
            blocks.append(rowbinary(rows))  # as the loader sends them
        t0 = time.perf_counter()
        for block in blocks:
            inserter = conn.raw.send_insert(
                f"INSERT INTO {RAW_TABLE} ({', '.join(COLUMNS)}) SETTINGS async_insert = 0",
                "RowBinary",
            )
            conn.raw.insert_append(inserter, block)
            conn.raw.insert_done(inserter)
        seconds = time.perf_counter() - t0
        counted = conn.raw.query("SELECT sum(events) FROM gold.events_per_minute", "TSV")
        assert int(bytes(counted.bytes()).decode().strip()) == len(lines)
    finally:
        conn.close()
        engine.close()
        house.server.start()
    return {"events": len(lines), "events_per_s": round(len(lines) / seconds)}


def naive(house: Warehouse, lines: list[str], seconds: float) -> dict[str, Any]:
    """One AMQP message per event (confirmed), one insert per event."""
    house.reset()
    publisher = Publisher(house.amqp_url)
    publisher.connect()
    stop = threading.Event()
    published = [0]

    def publish() -> None:
        for line in lines:
            if stop.is_set():
                return
            publisher.send(
                [
                    Message(
                        EXCHANGE,
                        "w",
                        (line + "\n").encode(),
                        events=1,
                        content_type=NDJSON_CONTENT_TYPE,
                    )
                ]
            )
            published[0] += 1

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    client = clickhouse_client(house.url)
    conn = pika.BlockingConnection(pika.URLParameters(house.amqp_url))
    channel = conn.channel()
    inserted = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        method, _, body = channel.basic_get(LOADER_QUEUE)
        if method is None:
            time.sleep(0.001)
            continue
        rows, _, _ = decode_batch(body, None)
        for r in rows:
            client.raw_insert(
                RAW_TABLE,
                COLUMNS,
                fmt="RowBinary",
                insert_block=rowbinary([r]),
                settings={"async_insert": 0},
            )
            inserted += 1
        channel.basic_ack(method.delivery_tag)
    elapsed = time.perf_counter() - t0
    stop.set()
    thread.join(30)
    publisher.close()
    conn.close()
    assert gold_total(house.server.url) == inserted
    return {
        "events": inserted,
        "seconds": round(elapsed, 1),
        "events_per_s": round(inserted / elapsed),
    }


class TimedEmulator(Emulator):
    """The emulator, recording when each event left (cumulative count, time)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_at: list[tuple[int, float]] = []
        self._count = 0

    async def _events(self, offset: int) -> AsyncIterator[bytes]:
        async for chunk in super()._events(offset):
            yield chunk
            self._count += chunk.count(b"event: message\n")
            self.sent_at.append((self._count, time.perf_counter()))


def freshness(house: Warehouse, seconds: float, linger: float | None = None) -> dict[str, Any]:
    import uvicorn

    house.reset()
    port = free_port()
    emulator = TimedEmulator(RAW, ReplayOptions(speed=1.0, loop=True))
    server = uvicorn.Server(
        uvicorn.Config(
            emulator.app(), host="127.0.0.1", port=port, log_level="critical", log_config=None
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    env = house.env(
        STREAM_URL=f"http://127.0.0.1:{port}/v2/stream/recentchange",
        WIKI_EVENTS_DATA=str(house.base / f"fresh-{uuid.uuid4().hex[:6]}"),
    )
    loader = spawn(["load", *(["--linger", str(linger)] if linger else [])], env)
    time.sleep(3)  # the loader is consuming before the first event
    reader = spawn(["stream"], env)
    polls: list[tuple[float, int]] = []
    http = httpx.Client(timeout=10)
    t_end = time.perf_counter() + seconds
    rss: dict[str, list[float]] = {"reader": [], "loader": []}
    try:
        while time.perf_counter() < t_end:
            reply = http.post(
                house.server.url, content="SELECT sum(events) FROM gold.events_per_minute"
            )
            polls.append((time.perf_counter(), int(reply.text.strip() or 0)))
            if len(polls) % 50 == 0:
                rss["reader"].append(rss_mb(reader.pid))
                rss["loader"].append(rss_mb(loader.pid))
            time.sleep(0.02)
    finally:
        reader.terminate()
        loader.terminate()
        reader.wait(30)
        loader.wait(30)
        emulator.closing = True
        server.should_exit = True
    latencies = []
    sent = emulator.sent_at
    i = 0
    for count, at in sent:
        # the first poll, after the send, whose count includes this event
        while i < len(polls) and (polls[i][0] < at or polls[i][1] < count):
            i += 1
        if i == len(polls):
            break
        latencies.append(polls[i][0] - at)
    warm = latencies[len(latencies) // 10 :]
    warm.sort()
    return {
        "events": sent[-1][0] if sent else 0,
        "measured_chunks": len(warm),
        "rate_events_per_s": round(sent[-1][0] / (sent[-1][1] - sent[0][1]), 1) if sent else 0,
        "p50_s": round(warm[len(warm) // 2], 3),
        "p95_s": round(warm[int(len(warm) * 0.95)], 3),
        "max_s": round(warm[-1], 3),
        "rss_mb": {k: round(statistics.median(v), 1) for k, v in rss.items() if v},
        "loader_linger_s": linger or LoaderOptions.linger,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--naive-seconds", type=float, default=20)
    parser.add_argument("--freshness-seconds", type=float, default=90)
    parser.add_argument("--only-freshness", action="store_true")
    parser.add_argument("--loader-linger", type=float, default=None)
    args = parser.parse_args()
    log = Log(load(RAW), loop=True)
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        house = Warehouse(Path(tmp))
        try:
            results["freshness"] = freshness(house, args.freshness_seconds, args.loader_linger)
            print("freshness", results["freshness"], flush=True)
            if args.only_freshness:
                print(json.dumps(results["freshness"]))
                return
            results["pipeline"] = throughput(house, args.events)
            print("pipeline", results["pipeline"], flush=True)
            lines = [log.get(i).data.decode() for i in range(args.events)]  # type: ignore[union-attr]
            results["direct_in_process"] = direct_reference(house, lines)
            print("direct", results["direct_in_process"], flush=True)
            results["naive"] = naive(house, lines[:200_000], args.naive_seconds)
            print("naive", results["naive"], flush=True)
        finally:
            house.close()
    results["ratios"] = {
        "pipeline_vs_direct": round(
            results["pipeline"]["events_per_s"] / results["direct_in_process"]["events_per_s"], 2
        ),
        "pipeline_vs_naive": round(
            results["pipeline"]["events_per_s"] / results["naive"]["events_per_s"], 1
        ),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
