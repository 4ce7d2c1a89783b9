"""The loader's face in ``wiki-events status`` and ``wiki-events health loader``: its
queues in RabbitMQ, bronze and the rejects it wrote.

The loader is stuck when RabbitMQ holds messages for it and bronze has had no insert for
a while; an empty queue with no insert is an idle stream, not a stuck loader. A
dependency that does not answer (RabbitMQ, ClickHouse) is not the loader's own failure:
a restart cannot help, so the verdict is healthy and says what is down.
"""

from __future__ import annotations

from typing import Any

import pika
import pika.exceptions

from wiki_core.config import Settings, clickhouse_client, environment, number
from wiki_core.health import Line, Verdict, unreachable, waiting_for
from wiki_core.topology import LOADER_QUEUE, QUARANTINE
from wiki_core.unreachable import sentence

from .bronze import RAW_TABLE


def stale_seconds(env: dict[str, str] | None = None) -> float:
    """``LOADER_STALE_SECONDS``: how long a backlog may wait without an insert before the
    loader counts as stuck (300)."""
    return number(environment() if env is None else env, "LOADER_STALE_SECONDS", 300)


def queue_lines(settings: Settings) -> list[Line]:
    """A ``queue`` line for the loader's queue and the quarantine."""
    params = pika.URLParameters(settings.amqp_url)
    params.socket_timeout = 3
    params.connection_attempts = 1
    try:
        conn = pika.BlockingConnection(params)
    except (pika.exceptions.AMQPError, OSError) as exc:
        remedy = (
            "start it (`rabbitmq-server -detached`) or set AMQP_URL; without a broker, "
            "`wiki-events up` hands events straight to the loader"
        )
        return [Line("queue", "warn", sentence("RabbitMQ", settings.amqp_url, exc, remedy))]
    found = []
    try:
        for name in (LOADER_QUEUE, QUARANTINE):
            channel = conn.channel()
            try:
                q = channel.queue_declare(name, passive=True).method
            except pika.exceptions.ChannelClosedByBroker:
                found.append(Line("queue", "info", f"{name}: not declared yet"))
                continue
            state = "ok"
            if name == LOADER_QUEUE and q.message_count > 100 and q.consumer_count == 0:
                state = "warn"
            if name == QUARANTINE and q.message_count:
                state = "warn"
            text = f"{name}: {q.message_count:,} message(s) waiting, {q.consumer_count} consumer(s)"
            found.append(Line("queue", state, text))
    finally:
        conn.close()
    return found


def bronze_lines(client: Any, tables: set[str], settings: Settings) -> list[Line]:
    """The ``bronze`` and ``rejects`` lines (``tables``: the warehouse's, as db.name)."""
    if "bronze.wiki_raw" not in tables:
        return [Line("bronze", "info", "no bronze.wiki_raw yet: the loader creates it at start")]
    count = client.command("SELECT count() FROM bronze.wiki_raw")
    rejects = client.query(
        "SELECT reason, count() FROM bronze.wiki_rejects GROUP BY reason ORDER BY 2 DESC"
    ).result_rows
    total_rejects = sum(n for _, n in rejects)
    return [
        Line("bronze", "ok", f"{int(count):,} events"),
        Line(
            "rejects",
            "warn" if total_rejects else "ok",
            f"{total_rejects:,}"
            + (": " + ", ".join(f"{r} {n:,}" for r, n in rejects) if rejects else ""),
        ),
    ]


def queue_depth(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        result = channel.queue_declare(queue=queue, passive=True)
        return int(result.method.message_count)
    finally:
        connection.close()


def last_insert_age(clickhouse_url: str, table: str) -> float | None:
    """Seconds since the newest row of ``table`` was ingested; None when it is empty."""
    client = clickhouse_client(clickhouse_url)
    try:
        value = client.command(
            f"SELECT if(count() = 0, -1, dateDiff('millisecond', max(ingested_at), now64(3)))"
            f" FROM {table}"
        )
    finally:
        client.close()
    millis = float(value)
    return None if millis < 0 else millis / 1000


def verdict(backlog: int, age: float | None, max_age: float) -> Verdict:
    if backlog == 0:
        return Verdict(True, "queue empty")
    if age is None:
        if backlog:
            return Verdict(False, f"{backlog} messages waiting and bronze is empty")
    elif age > max_age:
        return Verdict(
            False,
            f"{backlog} messages waiting and the last insert is {age:.0f}s old "
            f"(limit {max_age:.0f}s): stuck",
        )
    return Verdict(True, f"{backlog} messages waiting, last insert {age or 0:.0f}s ago")


def health(settings: Settings, max_age: float | None = None) -> Verdict:
    """Healthy unless RabbitMQ holds a backlog and bronze had no insert for ``max_age``."""
    limit = max_age or stale_seconds()
    looking = ("RabbitMQ", settings.amqp_url)
    try:
        backlog = queue_depth(settings.amqp_url, LOADER_QUEUE)
        looking = ("ClickHouse", settings.clickhouse_url)
        age = last_insert_age(settings.clickhouse_url, RAW_TABLE) if backlog else None
    except Exception as exc:  # noqa: BLE001 - any failure to look is said once
        if unreachable(exc):  # a dependency is down: not the loader's own failure
            return waiting_for(*looking, exc, "the loader")
        return Verdict(False, f"cannot judge: {str(exc).splitlines()[0] if str(exc) else exc!r}")
    return verdict(backlog, age, limit)
