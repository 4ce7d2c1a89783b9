"""The bronze layer's DDL, owned by the loader: versioned, idempotent, applied at start.

``bronze.wiki_raw`` keeps every event's original JSON (``raw``) unchanged, plus the keys
that serve ordering, deduplication and retention. Choices:

- ORDER BY ``(toStartOfHour(event_time), event_id)``: the loader's duplicate lookup
  asks for ``(hour, event_id)`` pairs, which this key answers from the primary index;
  a duplicate carries the same ``meta.dt`` as its original, so the hour always matches.
- PARTITION BY the month of *ingestion*, and TTL on ``ingested_at``: retention counts
  from arrival. ``meta.dt`` can be years old (re-logged uploads), and a TTL on it would
  drop such an event the moment it landed.
- ``raw`` compressed with ZSTD(3); the low-cardinality keys as ``LowCardinality``.
- ``non_replicated_deduplication_window``: a retried insert with the same
  ``insert_deduplication_token`` is dropped by ClickHouse itself.

``bronze.wiki_rejects`` keeps what could not be loaded, with its reason and payload.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger("loader.bronze")

DATABASE = "bronze"
RAW_TABLE = f"{DATABASE}.wiki_raw"
REJECTS_TABLE = f"{DATABASE}.wiki_rejects"
DEFAULT_RETENTION_DAYS = 90

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "bronze.wiki_raw and bronze.wiki_rejects",
        [
            f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
            f"""
            CREATE TABLE IF NOT EXISTS {RAW_TABLE}
            (
                event_id    String                  COMMENT 'meta.id',
                event_time  DateTime64(3, 'UTC')    CODEC(Delta, ZSTD(1)) COMMENT 'meta.dt',
                wiki        LowCardinality(String)  COMMENT 'wiki (empty when absent)',
                type        LowCardinality(String)  COMMENT 'type as sent: edit, log, 142...',
                ingested_at DateTime64(3, 'UTC')    DEFAULT now64(3) CODEC(Delta, ZSTD(1))
                                                    COMMENT 'when the loader inserted it',
                raw         String CODEC(ZSTD(3)) COMMENT 'the event JSON, unchanged'
            )
            ENGINE = MergeTree
            PARTITION BY toYYYYMM(ingested_at)
            ORDER BY (toStartOfHour(event_time), event_id)
            TTL toDateTime(ingested_at) + INTERVAL {DEFAULT_RETENTION_DAYS} DAY
            SETTINGS non_replicated_deduplication_window = 10000
            COMMENT 'Bronze: every recentchange event as received, one row per meta.id'
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {REJECTS_TABLE}
            (
                received_at DateTime64(3, 'UTC') DEFAULT now64(3),
                reason      LowCardinality(String),
                detail      String,
                source      LowCardinality(String),
                raw         String CODEC(ZSTD(3))
            )
            ENGINE = MergeTree
            PARTITION BY toYYYYMM(received_at)
            ORDER BY (reason, received_at)
            TTL toDateTime(received_at) + INTERVAL {DEFAULT_RETENTION_DAYS} DAY
            COMMENT 'What the loader could not load, with the reason'
            """,
        ],
    ),
]


def migrate(client: Any, retention_days: int = DEFAULT_RETENTION_DAYS) -> int:
    """Apply the migrations not yet applied; returns the schema version."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {DATABASE}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version"
    )
    done = {
        row[0]
        for row in client.query(f"SELECT version FROM {DATABASE}.schema_migrations").result_rows
    }
    for version, name, statements in MIGRATIONS:
        if version in done:
            continue
        for statement in statements:
            client.command(statement)
        # a parameterised INSERT ... SELECT, not client.insert: that one imports pandas,
        # numpy and pyarrow (to check for a DataFrame), 80 MB of the loader's memory
        client.command(
            f"INSERT INTO {DATABASE}.schema_migrations (version, name) "
            "SELECT {version:UInt32}, {name:String}",
            parameters={"version": version, "name": name},
        )
        log.info("bronze schema: applied migration %d (%s)", version, name)
    set_retention(client, retention_days)
    return max(v for v, _, _ in MIGRATIONS)


_TTL = re.compile(r"TTL toDateTime\((\w+)\) \+ toIntervalDay\((\d+)\)")


def set_retention(client: Any, days: int) -> None:
    for table, column in ((RAW_TABLE, "ingested_at"), (REJECTS_TABLE, "received_at")):
        ddl = client.command(f"SHOW CREATE TABLE {table}")
        match = _TTL.search(str(ddl).replace("\\n", " "))
        if match and int(match.group(2)) == days:
            continue
        client.command(
            f"ALTER TABLE {table} MODIFY TTL toDateTime({column}) + INTERVAL {int(days)} DAY"
        )
        log.info("bronze retention of %s set to %d days", table, days)
