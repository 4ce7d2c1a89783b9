"""The loader: real RabbitMQ, the embedded ClickHouse, exact counts through faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pika
import pytest

from loader.bronze import (
    COLUMNS,
    RAW_TABLE,
    REJECTS_TABLE,
    Bronze,
    Progress,
    migrate,
    rowbinary,
)
from loader.consumer import Loader, Options
from loader.direct import DirectSink
from reader.publisher import Publisher
from wiki_core.config import clickhouse_client
from wiki_core.event import Reject, Valid, judge
from wiki_core.metrics import serve
from wiki_core.topology import LOADER_QUEUE, Batch

from .helpers.clickhouse import ClickHouseProcess
from .helpers.metrics import scrape
from .helpers.paths import RAW, ROOT
from .helpers.ports import free_port
from .helpers.rabbitmq import publish
from .helpers.recorded import looped_events
from .helpers.signals import sigterm_when
from .helpers.warehouse import bronze_counts


def queue_depth(amqp_url: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(conn.channel().queue_declare(LOADER_QUEUE, passive=True).method.message_count)
    finally:
        conn.close()


def run_until_drained(loader: Loader, amqp_url: str, expect: int, timeout: float = 180) -> None:
    """Runs the loader until bronze has ``expect`` events and the queue is empty."""
    deadline = time.monotonic() + timeout
    done = threading.Event()

    def until(stats: object) -> bool:
        return done.is_set() or time.monotonic() > deadline

    thread = threading.Thread(target=loader.run, kwargs={"until": until}, daemon=True)
    thread.start()
    while time.monotonic() < deadline:
        if loader.stats.inserted >= expect and queue_depth(amqp_url) == 0:
            time.sleep(1.5)  # anything in flight lands or shows up as extra
            break
        time.sleep(0.5)
    done.set()
    thread.join(60)


@pytest.mark.slow
def test_120k_events_with_copies_land_once(ch: ClickHouseProcess, amqp_url: str) -> None:
    events = looped_events(120_000)
    publish(amqp_url, events)
    publish(amqp_url, events[:12_000])  # the reader republishing after a resume
    loader = Loader(lambda: clickhouse_client(ch.url), Options(amqp_url=amqp_url))
    run_until_drained(loader, amqp_url, 120_000)
    assert bronze_counts(ch) == (120_000, 120_000)
    assert loader.stats.duplicates == 12_000
    assert queue_depth(amqp_url) == 0


@pytest.mark.slow
def test_kill_9_after_insert_before_ack_then_restart(ch: ClickHouseProcess, amqp_url: str) -> None:
    events = looped_events(20_000)
    publish(amqp_url, events)
    crashed = subprocess.run(
        [sys.executable, "tests/helpers/loader_crash.py", ch.url, amqp_url, "2"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()[-2000:]
    landed, _ = bronze_counts(ch)
    assert 0 < landed < 20_000  # two inserts landed, their messages were never acked
    assert queue_depth(amqp_url) > 0
    loader = Loader(lambda: clickhouse_client(ch.url), Options(amqp_url=amqp_url))
    run_until_drained(loader, amqp_url, 20_000 - landed)
    assert bronze_counts(ch) == (20_000, 20_000)
    assert loader.stats.duplicates >= landed - 5000  # the redelivered, already-landed part


@pytest.mark.slow
def test_clickhouse_restart_during_load(ch: ClickHouseProcess, amqp_url: str) -> None:
    events = looped_events(60_000)
    publish(amqp_url, events[:20_000])
    loader = Loader(
        lambda: clickhouse_client(ch.url),
        # a small prefetch: most of the 40 messages published below must stay queued
        Options(amqp_url=amqp_url, batch_events=5000, max_backoff=2, prefetch=10),
    )
    deadline = time.monotonic() + 120
    stop = threading.Event()
    thread = threading.Thread(
        target=loader.run, kwargs={"until": lambda s: stop.is_set()}, daemon=True
    )
    thread.start()
    while loader.stats.inserted < 20_000 and time.monotonic() < deadline:
        time.sleep(0.2)
    ch.stop()  # ClickHouse goes away while events keep coming
    publish(amqp_url, events[20_000:])
    retry_deadline = time.monotonic() + 15
    while loader.stats.insert_retries == 0 and time.monotonic() < retry_deadline:
        time.sleep(0.2)
    assert loader.stats.insert_retries > 0
    assert queue_depth(amqp_url) > 0  # the backlog waits in RabbitMQ
    ch.start()
    while time.monotonic() < deadline:
        if loader.stats.inserted >= 60_000 and queue_depth(amqp_url) == 0:
            break
        time.sleep(0.5)
    stop.set()
    thread.join(60)
    assert bronze_counts(ch) == (60_000, 60_000)


@pytest.mark.slow
def test_a_poison_message_lands_in_rejects_and_the_rest_of_its_batch_in_bronze(
    ch: ClickHouseProcess, amqp_url: str
) -> None:
    good = RAW.read_text().splitlines()[:20]
    no_id = json.loads(good[0])
    del no_id["meta"]["id"]
    bad_dt = json.loads(good[1])
    bad_dt["meta"]["dt"] = "yesterday"
    bad_dt["meta"]["id"] = "bad-dt"
    lines = [*good[:5], '{"meta": oops', json.dumps(no_id), *good[5:], json.dumps(bad_dt)]
    publish(amqp_url, lines, per_message=len(lines))
    loader = Loader(lambda: clickhouse_client(ch.url), Options(amqp_url=amqp_url))
    run_until_drained(loader, amqp_url, 20)
    assert bronze_counts(ch) == (20, 20)
    rejects = (
        clickhouse_client(ch.url)
        .query(f"SELECT reason, detail, raw FROM {REJECTS_TABLE} ORDER BY reason")
        .result_rows
    )
    assert [(r[0], r[1]) for r in rejects if r[0] != "malformed-json"] == [
        ("bad-meta-dt", "Invalid isoformat string: 'yesterday'"),
        ("missing-key", "meta.id"),
    ]
    assert any(r[0] == "malformed-json" and r[2] == '{"meta": oops' for r in rejects)
    raw_kept = (
        clickhouse_client(ch.url)
        .query(
            f"SELECT raw FROM {RAW_TABLE} WHERE event_id = '{json.loads(good[0])['meta']['id']}'"
        )
        .result_rows
    )
    assert raw_kept == [(good[0],)]  # byte for byte


@pytest.mark.slow
def test_the_readers_rejects_reach_bronze_through_the_quarantine(
    ch: ClickHouseProcess, amqp_url: str
) -> None:
    good = judge(RAW.read_bytes().splitlines()[0])
    assert isinstance(good, Valid)
    reject = Reject("malformed-json", "line 1 column 2", b"{not json", source="reader")
    publisher = Publisher(amqp_url)
    publisher.connect()
    publisher.publish(Batch({"frwiki": [good]}, [reject]))
    publisher.close()
    loader = Loader(lambda: clickhouse_client(ch.url), Options(amqp_url=amqp_url))
    client = clickhouse_client(ch.url)
    stop = threading.Event()
    thread = threading.Thread(target=loader.run, kwargs={"until": lambda s: stop.is_set()})
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not client.command(
            f"SELECT count() FROM {REJECTS_TABLE}"
        ):
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(60)
    rejects = client.query(f"SELECT reason, detail, source, raw FROM {REJECTS_TABLE}")
    assert rejects.result_rows == [("malformed-json", "line 1 column 2", "reader", "{not json")]
    assert bronze_counts(ch) == (1, 1)  # its batch's event landed, as in the direct mode


@pytest.mark.slow
def test_the_same_meta_id_with_another_meta_dt_is_a_duplicate(
    ch: ClickHouseProcess, amqp_url: str
) -> None:
    original = json.loads(RAW.read_text().splitlines()[0])
    later = json.loads(json.dumps(original))
    later["meta"]["dt"] = "2024-08-23T11:00:00Z"  # another day: another hour of meta.dt
    publish(amqp_url, [json.dumps(original)])
    loader = Loader(lambda: clickhouse_client(ch.url), Options(amqp_url=amqp_url))
    run_until_drained(loader, amqp_url, 1)
    publish(amqp_url, [json.dumps(later), json.dumps(original)])
    loader = Loader(lambda: clickhouse_client(ch.url), Options(amqp_url=amqp_url))
    run_until_drained(loader, amqp_url, 0)
    assert bronze_counts(ch) == (1, 1) and loader.stats.duplicates == 2


def test_ids_in_bronze_before_the_id_table_are_found_after_the_migration(
    ch: ClickHouseProcess,
) -> None:
    client = clickhouse_client(ch.url)
    client.command("DROP DATABASE bronze SYNC")
    migrate(client)
    client.command("DROP TABLE bronze.wiki_ids_mv SYNC")  # bronze as migration 1 left it
    client.command("DROP TABLE bronze.wiki_ids SYNC")
    client.command("DELETE FROM bronze.schema_migrations WHERE version = 2")
    event = judge(RAW.read_bytes().splitlines()[0])
    assert isinstance(event, Valid)
    client.raw_insert(RAW_TABLE, COLUMNS, insert_block=rowbinary([event]), fmt="RowBinary")
    assert migrate(client) == 3
    assert Bronze(client).existing([event]) == {event.event_id}


def test_a_reject_is_kept_once_per_distinct_input(ch: ClickHouseProcess) -> None:
    client = clickhouse_client(ch.url)
    # a row from before raw_hash: its default is computed from raw
    client.command(
        f"INSERT INTO {REJECTS_TABLE} (reason, detail, source, raw) "
        "VALUES ('malformed-json', 'x', 'reader', '{old')"
    )
    bronze = Bronze(client)
    bad = Reject("malformed-json", "line 1", b"{not json", source="reader")
    no_id = Reject("missing-key", "meta.id", b'{"meta": {}}')
    assert bronze.reject([bad, no_id, bad]) == 2  # a copy in the same batch
    assert bronze.reject([bad, Reject("malformed-json", "again", b"{old")]) == 0  # re-read
    assert bronze.reject([Reject("malformed-json", "x", b"\xff{broken")]) == 1
    assert bronze.reject([Reject("malformed-json", "y", b"\xff{broken")]) == 0
    rows = client.query(f"SELECT raw, count() FROM {REJECTS_TABLE} GROUP BY raw ORDER BY raw")
    assert rows.result_rows == [
        ('{"meta": {}}', 1),
        ("{not json", 1),
        ("{old", 1),
        ("\ufffd{broken", 1),
    ]


def test_migrations_are_idempotent_and_retention_configurable(ch: ClickHouseProcess) -> None:
    client = clickhouse_client(ch.url)
    assert migrate(client) == migrate(client) == 3
    assert client.command("SELECT count() FROM bronze.schema_migrations") == 3
    migrate(client, retention_days=30)
    assert "toIntervalDay(30)" in client.command(f"SHOW CREATE TABLE {RAW_TABLE}")


LEAN_LOADER = """
import sys
from loader.bronze import migrate
from loader.consumer import Loader, Options
from reader.publisher import Publisher
from wiki_core.event import Reject, Valid, judge
from wiki_core.config import clickhouse_client

url, amqp_url = sys.argv[1], sys.argv[2]
client = clickhouse_client(url)
client.command("DROP DATABASE bronze SYNC")  # a first start: every migration runs
migrate(client)
Loader(lambda: clickhouse_client(url), Options(amqp_url=amqp_url, linger=0.2)).run(
    until=lambda stats: stats.inserted >= 3000
)
print(" ".join(sorted({"numpy", "pandas", "pyarrow", "polars"} & set(sys.modules))))
"""


@pytest.mark.slow
def test_the_loader_never_loads_the_dataframe_libraries(
    ch: ClickHouseProcess, amqp_url: str
) -> None:
    # pandas, numpy and pyarrow are 80 MB of resident memory; clickhouse-connect imports
    # them lazily (client.insert checks for a DataFrame), so a stray call would cost
    # the loader most of its memory budget
    publish(amqp_url, looped_events(3000))
    done = subprocess.run(
        [sys.executable, "-c", LEAN_LOADER, ch.url, amqp_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert bronze_counts(ch) == (3000, 3000)
    assert done.stdout.strip() == ""


@pytest.mark.slow
def test_long_lines_unusual_times_and_out_of_range_years(
    ch: ClickHouseProcess, amqp_url: str
) -> None:
    good = [json.loads(line) for line in RAW.read_text().splitlines()[:3]]
    good[0]["comment"] = "é" * 20_000  # a RowBinary length past two LEB128 bytes
    good[1]["meta"]["dt"] = "2024-08-22T07:32:33.123456+02:00"  # through datetime
    good[2]["meta"]["dt"] = "2200-01-01T00:00:00Z"  # past DateTime's range (gold would wrap it)
    lines = [json.dumps(e, ensure_ascii=False) for e in good]
    publish(amqp_url, lines, per_message=3)
    loader = Loader(lambda: clickhouse_client(ch.url), Options(amqp_url=amqp_url))
    run_until_drained(loader, amqp_url, 2)
    client = clickhouse_client(ch.url)
    rows = client.query(
        f"SELECT event_id, toString(event_time), raw FROM {RAW_TABLE} ORDER BY event_time"
    ).result_rows
    assert rows == [
        (good[0]["meta"]["id"], "2024-08-22 04:03:29.000", lines[0]),  # as sent: byte for byte
        (good[1]["meta"]["id"], "2024-08-22 05:32:33.123", lines[1]),  # in UTC
    ]
    [(reason, detail)] = client.query(f"SELECT reason, detail FROM {REJECTS_TABLE}").result_rows
    assert reason == "bad-meta-dt" and "outside 1970-2105" in detail


class LostReply:
    """The real client, except that the first insert into bronze.wiki_raw lands and then
    raises, as when ClickHouse's answer is lost on the way back."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def raw_insert(self, table: str, *args: Any, **kwargs: Any) -> Any:
        result = self.client.raw_insert(table, *args, **kwargs)
        if table == RAW_TABLE and not self.lost:
            self.lost += 1
            raise ConnectionResetError("the reply was lost")
        return result


def test_direct_counts_stay_exact_when_a_retry_follows_a_landed_insert(
    ch: ClickHouseProcess,
) -> None:
    """A retry after the insert landed (its rejects' write failed, or its reply was lost)
    counts the batch's rows as inserted, not as duplicates, and writes them once."""
    client = clickhouse_client(ch.url)
    rows = [judge(line.encode()) for line in looped_events(500)]
    assert all(isinstance(r, Valid) for r in rows)
    bad = Reject("malformed-json", "line 1", b"{not json", source="reader")
    # the rejects table is gone for the first attempt; the backoff's wait brings it back
    client.command(f"RENAME TABLE {REJECTS_TABLE} TO {REJECTS_TABLE}_away")
    landed: list[int] = []

    def wait(seconds: float) -> None:
        landed.append(bronze_counts(ch)[0])
        client.command(f"RENAME TABLE {REJECTS_TABLE}_away TO {REJECTS_TABLE}")

    sink = DirectSink(lambda: clickhouse_client(ch.url), stop=lambda: False, wait=wait)
    sink.publish(Batch({"enwiki": rows[:300] + rows[:10]}, [bad]))  # type: ignore[dict-item]
    assert landed == [300]  # the insert had landed when the rejects failed
    assert sink.inserted == 300
    assert bronze_counts(ch) == (300, 300)
    assert client.command(f"SELECT count() FROM {REJECTS_TABLE}") == 1
    # the insert lands, its reply is lost: the retry sends it again with the same token,
    # ClickHouse drops the copy, and the rows count as inserted
    lossy = LostReply(clickhouse_client(ch.url))
    progress = Progress()
    bronze = Bronze(lossy)
    with pytest.raises(ConnectionResetError):
        bronze.write(rows[290:], [], progress)  # type: ignore[arg-type]
    assert bronze_counts(ch) == (500, 500)
    assert bronze.write(rows[290:], [], progress) == (200, 10)  # type: ignore[arg-type]
    assert bronze_counts(ch) == (500, 500)
    assert Bronze(client).write(rows[:5], []) == (0, 5)  # type: ignore[arg-type]


@pytest.mark.slow
def test_loader_counts_and_metrics_stay_exact_when_the_rejects_write_fails_once(
    ch: ClickHouseProcess, amqp_url: str
) -> None:
    events = looped_events(2000)
    publish(amqp_url, [*events[:1000], "{not json", *events[1000:]], per_message=2001)
    client = clickhouse_client(ch.url)
    client.command(f"RENAME TABLE {REJECTS_TABLE} TO {REJECTS_TABLE}_away")
    loader = Loader(lambda: clickhouse_client(ch.url), Options(amqp_url=amqp_url, max_backoff=2))
    port = free_port()
    server = serve(port, loader.stats.metrics, host="127.0.0.1")
    done = threading.Event()
    thread = threading.Thread(
        target=loader.run, kwargs={"until": lambda s: done.is_set()}, daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while loader.stats.insert_retries == 0:
            assert time.monotonic() < deadline, "the rejects' write never failed"
            time.sleep(0.05)
        landed = bronze_counts(ch)[0]
        client.command(f"RENAME TABLE {REJECTS_TABLE}_away TO {REJECTS_TABLE}")
        while loader.stats.batches == 0 or queue_depth(amqp_url):
            assert time.monotonic() < deadline, "the batch was never acked"
            time.sleep(0.1)
        scraped = scrape(port)
    finally:
        done.set()
        thread.join(60)
        server.shutdown()
    assert landed == 2000  # the insert had landed before the rejects' write failed
    assert bronze_counts(ch) == (2000, 2000)
    assert (loader.stats.inserted, loader.stats.duplicates) == (2000, 0)
    assert loader.stats.rejects == {"malformed-json": 1}
    assert scraped["wiki_loader_events_inserted_total"] == 2000
    assert scraped["wiki_loader_duplicates_total"] == 0
    assert scraped["wiki_loader_insert_retries_total"] >= 1
    assert client.command(f"SELECT count() FROM {REJECTS_TABLE}") == 1


def test_load_stops_on_sigterm_while_rabbitmq_is_down(
    ch: ClickHouseProcess, tmp_path: Path
) -> None:
    """`wiki-events load` with ClickHouse up and RabbitMQ unreachable (a closed port)
    waits between reconnects; SIGTERM ends the wait at once: status 0, its summary, one
    line per attempt with the cause, no pika traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "AMQP_"))}
    env |= {
        "CLICKHOUSE_URL": f"{ch.url}/default",
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F",
        "WIKI_EVENTS_DATA": str(tmp_path / "var"),
    }
    ended = sigterm_when(["load"], env, tmp_path / "log", "reconnecting in", times=3)
    assert ended.returncode == 0 and ended.seconds < 3, ended
    assert "(connection refused: nothing listens there); reconnecting in" in ended.log
    assert "summary:" in ended.log and "Traceback" not in ended.log, ended.log
