"""``up``'s start steps, each started (and stopped) alone. The whole of ``up`` runs in
tests/test_pipeline.py."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import httpx

from wiki_core.config import Settings, clickhouse_client
from wiki_core.event import Reject, Valid, judge
from wiki_core.topology import Batch
from wiki_events.up import Threads, start_emulator, start_transport

from .helpers.clickhouse import ClickHouseProcess
from .helpers.paths import RAW
from .helpers.ports import free_port
from .helpers.warehouse import bronze_counts


def test_the_emulator_step_serves_the_recording_until_its_stop(tmp_path: Path) -> None:
    threads = Threads()
    with contextlib.ExitStack() as stack:
        url = start_emulator(stack, threads, RAW, speed=0, loop=False, say=print)
        with httpx.stream("GET", url, timeout=10) as response:
            chunks = response.iter_bytes()
            received = b""
            while b"data: " not in received:
                received += next(chunks)
        assert received.startswith(b":ok") and RAW.read_bytes().split(b"\n", 1)[0] in received
        [thread] = threads.threads
        assert thread.is_alive()
    assert not thread.is_alive() and threads.failure is None


def test_without_a_broker_the_transport_writes_events_and_rejects_to_bronze(
    ch: ClickHouseProcess,
    tmp_path: Path,
) -> None:
    unreachable = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    env = {"CLICKHOUSE_URL": ch.url, "AMQP_URL": unreachable, "WIKI_EVENTS_DATA": str(tmp_path)}
    said: list[str] = []
    events = [judge(line) for line in RAW.read_bytes().splitlines()[:3]]
    assert all(isinstance(e, Valid) for e in events)
    reject = Reject("malformed-json", "line 1 column 2", b"{not json", source="reader")
    with contextlib.ExitStack() as stack:
        transport = start_transport(
            stack, Settings.from_env(env), Threads(), threading.Event(), said.append
        )
        transport.sink.publish(Batch({"frwiki": events}, [reject]))  # type: ignore[dict-item]
        transport.sink.publish(Batch({"frwiki": events[:1]}))  # type: ignore[dict-item]
        assert transport.loaded() == 3  # the copy is dropped
    assert said[0].startswith("  broker       NONE: RabbitMQ at")
    assert bronze_counts(ch) == (3, 3)
    rejects = clickhouse_client(ch.url).query(
        "SELECT reason, detail, source, raw FROM bronze.wiki_rejects"
    )
    assert rejects.result_rows == [("malformed-json", "line 1 column 2", "reader", "{not json")]
