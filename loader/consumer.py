"""``wiki-events load``: RabbitMQ → ClickHouse bronze, effectively once.

The loop: consume with a bounded prefetch; gather messages until a batch is big enough
(``batch_events``) or old enough (``linger``); read each message's judged keys (or judge
its lines: ``wiki_core.topology.decode_batch``); drop the duplicates; insert; and only
when ClickHouse has answered, ack the batch's messages (one ``multiple`` ack). The
insert runs on a worker thread while this thread keeps servicing the AMQP connection, so
heartbeats flow during long inserts.

How an event is counted once, and where that stops holding:

1. Within a batch, by ``meta.id`` (the first copy wins).
2. Against bronze: before inserting, the loader asks ClickHouse which of the batch's
   ids bronze already has (``bronze.wiki_ids``, whatever their ``meta.dt``), and leaves
   those out. A copy republished by the reader after a resume, or a message redelivered
   after a crash between insert and ack, is dropped here — before it reaches the
   materialized views, which fire on insert. This holds for one loader at a time; two
   loaders that read two copies of one event at the same moment could both insert it
   (the scale-out path routes by wiki so a wiki's copies meet in one loader). It also
   stops holding for a copy that arrives after the original left bronze by retention.
3. A retried insert carries the same ``insert_deduplication_token``, and the table has
   a deduplication window, so an insert that did land before its reply was lost is not
   written twice (and neither are its materialized views' rows). The retry keeps the
   first attempt's duplicate lookup and skips a step that succeeded (``bronze.Progress``):
   rows inserted before the rejects' write failed, or whose reply was lost, count as
   inserted, not as duplicates, in the stats and the Prometheus counters.

Bad input: a line that is not JSON, lacks ``meta.id`` or a parseable ``meta.dt`` goes to
``bronze.wiki_rejects`` with its reason; the rest of its batch lands. The loader also
consumes the quarantine queue (the reader's rejects, messages past the delivery limit)
into ``bronze.wiki_rejects``, so every reject is in one place in both modes.

ClickHouse down: the batch is retried with backoff while the unacked
messages (at most ``prefetch``) wait, and the backlog stays in RabbitMQ. RabbitMQ down:
reconnect with backoff; unacked messages come back and step 2 drops what had landed.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions

from wiki_core.backoff import backoff
from wiki_core.config import DEFAULT_AMQP_URL
from wiki_core.event import Reject, Valid
from wiki_core.metrics import Metric, counter, gauge
from wiki_core.topology import (
    LOADER_QUEUE,
    QUARANTINE,
    declare_topology,
    decode_batch,
    supports_quorum,
)
from wiki_core.unreachable import cause, without_password

from .bronze import Bronze, Progress
from .retry import retry

log = logging.getLogger("loader")


@dataclass
class Options:
    amqp_url: str = DEFAULT_AMQP_URL
    queue: str = LOADER_QUEUE
    # the quarantine, consumed into bronze.wiki_rejects ("" leaves it in RabbitMQ)
    quarantine: str = QUARANTINE
    # unacked messages at most: the batch of one insert can hold no more. The reader's
    # messages hold one wiki's events of one flush, often a few dozen: 100 of them make
    # inserts of thousands. Memory is bounded by prefetch x message size (a message holds
    # at most the reader's batch, 5000 events); measured: 65 MB steady at full speed,
    # 95 MB peak; prefetch 300 gave 7% more throughput for 185 MB.
    prefetch: int = 100
    batch_events: int = 10_000
    # seconds a batch waits to fill: at the live rate (~40 events/s) this sets how soon
    # an event reaches gold (p50 0.9 s measured with 0.5, 1.4 s with 1.0); two inserts
    # a second stay well inside what ClickHouse merges comfortably
    linger: float = 0.5
    max_backoff: float = 30.0
    log_every: float = 5.0


@dataclass
class Stats:
    inserted: int = 0
    duplicates: int = 0
    canaries: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    insert_retries: int = 0
    last_insert_ms: float = 0.0  # how long the last insert took
    last_insert_at: float = 0.0  # when it ended (epoch seconds)
    started: float = field(default_factory=time.monotonic)

    def metrics(self) -> list[Metric]:
        """The counters for Prometheus (``METRICS_PORT``), read when scraped."""
        return [
            counter("wiki_loader_events_inserted", "Events inserted into bronze.", self.inserted),
            counter(
                "wiki_loader_duplicates", "Events dropped as already in bronze.", self.duplicates
            ),
            counter("wiki_loader_canaries", "Canary events dropped.", self.canaries),
            counter("wiki_loader_rejects", "Events rejected, by reason.", self.rejects),
            counter("wiki_loader_batches", "Inserts into bronze.", self.batches),
            counter("wiki_loader_insert_retries", "Failed inserts retried.", self.insert_retries),
            gauge(
                "wiki_loader_last_insert_duration_seconds",
                "How long the last insert took.",
                self.last_insert_ms / 1000,
            ),
            gauge(
                "wiki_loader_last_insert_timestamp_seconds",
                "When the last insert ended (0: none yet).",
                self.last_insert_at,
            ),
        ]

    def line(self, rate: float) -> str:
        return (
            f"events/s={rate:.0f} inserted={self.inserted} duplicates={self.duplicates} "
            f"rejects={sum(self.rejects.values())} canaries={self.canaries} "
            f"batches={self.batches} last_insert_ms={self.last_insert_ms:.0f} "
            f"insert_retries={self.insert_retries}"
        )


def quarantined(body: bytes, routing_key: str, headers: dict[str, Any] | None) -> Reject:
    """A message of the quarantine queue as a reject: the stage and reason from its routing
    key (``reader.malformed-json``, ``loader.delivery-limit``), the detail from its
    ``x-reason`` header."""
    source, _, reason = routing_key.partition(".")
    text = str((headers or {}).get("x-reason") or "")
    detail = text.split(": ", 1)[1] if text.startswith(f"{reason}: ") else text
    return Reject(reason or source, detail, body, source=source if reason else "rabbitmq")


@dataclass
class _Pending:
    tag: int
    rows: list[Valid]
    rejects: list[Reject]


class Loader:
    def __init__(self, client_factory: Callable[[], Any], opts: Options) -> None:
        self.client_factory = client_factory
        self.opts = opts
        self.stats = Stats()
        self._stop = False
        self._stopping = threading.Event()  # the same, for waits that a stop cuts short
        self._bronze: Bronze | None = None
        self._pending: list[_Pending] = []
        self._pending_events = 0
        self._first_at: float | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="insert")
        # Called after ClickHouse answered an insert and before the ack: the fault tests
        # kill the process here.
        self.after_insert: Callable[[], None] = lambda: None

    def stop(self) -> None:
        self._stop = True
        self._stopping.set()

    def _clickhouse(self) -> Bronze:
        if self._bronze is None:
            self._bronze = Bronze(self.client_factory())
        return self._bronze

    def run(self, until: Callable[[Stats], bool] | None = None) -> Stats:
        attempt = 0
        try:
            while not self._stop:
                try:
                    self._consume(until)
                    return self.stats
                except (
                    pika.exceptions.AMQPConnectionError,
                    pika.exceptions.AMQPChannelError,
                    pika.exceptions.StreamLostError,
                    OSError,
                ) as exc:
                    attempt += 1
                    delay = backoff(attempt, self.opts.max_backoff)
                    log.warning(
                        "RabbitMQ at %s lost or unreachable (%s); reconnecting in %.1fs; "
                        "%d unacked message(s) will be redelivered",
                        without_password(self.opts.amqp_url),
                        cause(exc),
                        delay,
                        len(self._pending),
                    )
                    self._pending.clear()
                    self._pending_events = 0
                    self._first_at = None
                    self._stopping.wait(delay)  # SIGTERM ends it at once
        finally:
            self._pool.shutdown(wait=False)
            elapsed = max(time.monotonic() - self.stats.started, 1e-9)
            log.info("summary: %s", self.stats.line(self.stats.inserted / elapsed))
        return self.stats

    def _consume(self, until: Callable[[Stats], bool] | None) -> None:
        params = pika.URLParameters(self.opts.amqp_url)
        params.heartbeat = 30
        conn = pika.BlockingConnection(params)
        try:
            channel = conn.channel()
            declare_topology(channel, supports_quorum(conn._impl.server_properties))  # noqa: SLF001
            channel.basic_qos(prefetch_count=self.opts.prefetch)

            def pending(tag: int, rows: list[Valid], rejects: list[Reject]) -> None:
                self._pending.append(_Pending(tag, rows, rejects))
                self._pending_events += len(rows) + len(rejects)
                if self._first_at is None:
                    self._first_at = time.monotonic()

            def on_message(ch: Any, method: Any, props: Any, body: bytes) -> None:
                rows, rejects, canaries = decode_batch(body, props.content_type)
                self.stats.canaries += canaries
                pending(method.delivery_tag, rows, rejects)

            def on_quarantined(ch: Any, method: Any, props: Any, body: bytes) -> None:
                pending(
                    method.delivery_tag, [], [quarantined(body, method.routing_key, props.headers)]
                )

            channel.basic_consume(self.opts.queue, on_message)
            if self.opts.quarantine:
                channel.basic_consume(self.opts.quarantine, on_quarantined)
            log.info("consuming %s (prefetch %d messages)", self.opts.queue, self.opts.prefetch)
            last_log, logged = time.monotonic(), 0
            while not self._stop:
                conn.process_data_events(time_limit=0.1)
                now = time.monotonic()
                full = (
                    self._pending_events >= self.opts.batch_events
                    or len(self._pending) >= self.opts.prefetch
                )
                old = self._first_at is not None and now - self._first_at >= self.opts.linger
                if self._pending and (full or old):
                    self._flush(conn, channel)
                if now - last_log >= self.opts.log_every:
                    rate = (self.stats.inserted - logged) / (now - last_log)
                    log.info("%s", self.stats.line(rate))
                    last_log, logged = now, self.stats.inserted
                if until is not None and until(self.stats):
                    break
            if self._pending:
                self._flush(conn, channel)
        finally:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def _flush(self, conn: Any, channel: Any) -> None:
        batch, self._pending = self._pending, []
        self._pending_events = 0
        self._first_at = None
        rows = [r for p in batch for r in p.rows]
        rejects = [r for p in batch for r in p.rejects]
        started = time.monotonic()
        progress = Progress()  # a retry counts what an earlier attempt inserted once

        def write() -> tuple[int, int]:
            nonlocal started
            started = time.monotonic()
            future = self._pool.submit(lambda: self._clickhouse().write(rows, rejects, progress))
            while not future.done():
                conn.process_data_events(time_limit=0.05)  # heartbeats during the insert
            return future.result()

        def failed(exc: Exception) -> None:
            self.stats.insert_retries += 1
            self._bronze = None

        inserted, duplicates = retry(
            write,
            what=lambda: f"insert of {len(rows)} events ({len(batch)} message(s) unacked)",
            log=log,
            max_backoff=self.opts.max_backoff,
            stop=lambda: self._stop,
            wait=conn.sleep,
            on_failure=failed,
            reraise=(pika.exceptions.AMQPError,),  # from the heartbeats: run() reconnects
        )
        self.stats.last_insert_ms = (time.monotonic() - started) * 1000
        self.stats.last_insert_at = time.time()
        self.after_insert()
        for reject in rejects:
            self.stats.rejects[reject.reason] += 1
        channel.basic_ack(batch[-1].tag, multiple=True)
        self.stats.inserted += inserted
        self.stats.duplicates += duplicates
        self.stats.batches += 1
