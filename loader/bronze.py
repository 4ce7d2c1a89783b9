"""The bronze layer's DDL, owned by the loader: versioned, idempotent, applied at start.

``bronze.wiki_raw`` keeps every event's original JSON (``raw``) unchanged, plus the keys
that serve ordering, deduplication and retention. Choices:

- ORDER BY ``(toStartOfHour(event_time), event_id)``: silver and gold read by time.
- PARTITION BY the month of *ingestion*, and TTL on ``ingested_at``: retention counts
  from arrival. ``meta.dt`` can be years old (re-logged uploads), and a TTL on it would
  drop such an event the moment it landed.
- ``raw`` compressed with ZSTD(3); the low-cardinality keys as ``LowCardinality``.
- ``non_replicated_deduplication_window``: a retried insert with the same
  ``insert_deduplication_token`` is dropped by ClickHouse itself.

``bronze.wiki_ids`` (migration 2) holds every ``meta.id`` of ``wiki_raw``, filled by a
materialized view, ordered by the id alone: the loader's duplicate lookup. An event's
identity is its ``meta.id``, whatever its ``meta.dt`` (the same id sent again with
another ``meta.dt`` was counted twice by a lookup keyed on the hour of ``meta.dt``).
Granules of 1,024 rows: a lookup of random UUIDs reads one granule per id found in
each part; bench/bench_dedup.py measures it at the live and the backfill batch sizes.

``bronze.wiki_rejects`` keeps what could not be loaded, with its reason and payload:
the rejects of the reader and of the loader, in both modes (through the quarantine queue
with RabbitMQ, straight from the direct hand-off without), each distinct input once
(``raw_hash``, migration 3).

``Bronze`` writes: the duplicate lookup, the inserts, the rejects.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
from dataclasses import dataclass
from typing import Any

import orjson

from wiki_core.config import DEFAULT_RETENTION_DAYS
from wiki_core.ddl import for_cluster
from wiki_core.event import Reject, Valid

log = logging.getLogger("loader.bronze")

DATABASE = "bronze"
RAW_TABLE = f"{DATABASE}.wiki_raw"
REJECTS_TABLE = f"{DATABASE}.wiki_rejects"
IDS_TABLE = f"{DATABASE}.wiki_ids"
COLUMNS = ["event_id", "event_time", "wiki", "type", "raw"]

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
    (
        2,
        "bronze.wiki_ids: the duplicate lookup by meta.id alone",
        [
            f"""
            CREATE TABLE IF NOT EXISTS {IDS_TABLE}
            (
                event_id    String                COMMENT 'meta.id',
                ingested_at DateTime64(3, 'UTC')  CODEC(Delta, ZSTD(1))
            )
            ENGINE = MergeTree
            PARTITION BY toYYYYMM(ingested_at)
            ORDER BY event_id
            TTL toDateTime(ingested_at) + INTERVAL {DEFAULT_RETENTION_DAYS} DAY
            SETTINGS index_granularity = 1024, non_replicated_deduplication_window = 10000
            COMMENT 'Every meta.id in bronze.wiki_raw: the loader''s duplicate lookup'
            """,
            f"""
            CREATE MATERIALIZED VIEW IF NOT EXISTS {IDS_TABLE}_mv TO {IDS_TABLE}
            AS SELECT event_id, ingested_at FROM {RAW_TABLE}
            """,
            # the ids bronze held before the view existed (one written twice meanwhile
            # is harmless: the lookup asks whether an id is there, not how often)
            f"INSERT INTO {IDS_TABLE} SELECT event_id, ingested_at FROM {RAW_TABLE}",
        ],
    ),
    (
        3,
        "bronze.wiki_rejects.raw_hash: a reject kept once per distinct input",
        [
            f"""
            ALTER TABLE {REJECTS_TABLE} ADD COLUMN IF NOT EXISTS raw_hash UInt64
            DEFAULT reinterpretAsUInt64(substring(SHA256(raw), 1, 8))
            COMMENT 'the first 8 bytes of SHA-256 of raw: the loader keeps each input once'
            """,
        ],
    ),
]


def migrate(client: Any, retention_days: int = DEFAULT_RETENTION_DAYS, cluster: str = "") -> int:
    """Apply the migrations not yet applied; returns the schema version. ``cluster``: the
    DDL for a ClickHouse cluster (``for_cluster``)."""
    client.command(for_cluster(f"CREATE DATABASE IF NOT EXISTS {DATABASE}", cluster))
    client.command(
        for_cluster(
            f"CREATE TABLE IF NOT EXISTS {DATABASE}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
            "ENGINE = MergeTree ORDER BY version",
            cluster,
        )
    )
    done = {
        row[0]
        for row in client.query(f"SELECT version FROM {DATABASE}.schema_migrations").result_rows
    }
    for version, name, statements in MIGRATIONS:
        if version in done:
            continue
        for statement in statements:
            client.command(for_cluster(statement, cluster))
        # a parameterised INSERT ... SELECT, not client.insert: that one imports pandas,
        # numpy and pyarrow (to check for a DataFrame), 80 MB of the loader's memory
        client.command(
            f"INSERT INTO {DATABASE}.schema_migrations (version, name) "
            "SELECT {version:UInt32}, {name:String}",
            parameters={"version": version, "name": name},
        )
        log.info("bronze schema: applied migration %d (%s)", version, name)
    set_retention(client, retention_days, cluster)
    return max(v for v, _, _ in MIGRATIONS)


_TTL = re.compile(r"TTL toDateTime\((\w+)\) \+ toIntervalDay\((\d+)\)")


def set_retention(client: Any, days: int, cluster: str = "") -> None:
    tables = (
        (RAW_TABLE, "ingested_at"),
        (REJECTS_TABLE, "received_at"),
        (IDS_TABLE, "ingested_at"),
    )
    for table, column in tables:
        ddl = client.command(f"SHOW CREATE TABLE {table}")
        match = _TTL.search(str(ddl).replace("\\n", " "))
        if match and int(match.group(2)) == days:
            continue
        client.command(
            for_cluster(
                f"ALTER TABLE {table} MODIFY TTL toDateTime({column}) + INTERVAL {int(days)} DAY",
                cluster,
            )
        )
        log.info("bronze retention of %s set to %d days", table, days)


_INT64 = struct.Struct("<q").pack
# RowBinary's string length prefix (LEB128) for the lengths most strings have
_LENGTHS = [bytes((n,)) if n < 0x80 else bytes(((n & 0x7F) | 0x80, n >> 7)) for n in range(1 << 14)]


def _length(n: int) -> bytes:
    if n < 1 << 14:
        return _LENGTHS[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def rowbinary(rows: list[Valid]) -> bytes:
    """Bronze rows (``COLUMNS``) in ClickHouse's RowBinary format: the raw line goes in as
    the bytes it arrived as, with no JSON escaping for ClickHouse to undo."""
    parts: list[bytes] = []
    add = parts.extend
    for r in rows:
        event_id, wiki, kind = r.event_id.encode(), r.wiki.encode(), r.type.encode()
        add(
            (
                _length(len(event_id)),
                event_id,
                _INT64(r.millis),
                _length(len(wiki)),
                wiki,
                _length(len(kind)),
                kind,
                _length(len(r.raw)),
                r.raw,
            )
        )
    return b"".join(parts)


def raw_hash(raw: bytes) -> int:
    """A reject's identity: the first 8 bytes of SHA-256 of its stored text, as
    ``bronze.wiki_rejects.raw_hash``'s default computes it for the rows before it."""
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "little")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Progress:
    """How far one batch's ``Bronze.write`` got: the lookup's new rows, and which of the
    insert and the rejects' write succeeded (a retry does only what is left)."""

    fresh: list[Valid] | None = None
    inserted: bool = False
    rejected: bool = False


class Bronze:
    """The ClickHouse side: the duplicate lookup and the inserts."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def existing(self, rows: list[Valid]) -> set[str]:
        if not rows:
            return set()
        ids = ", ".join(_quote(r.event_id) for r in rows)
        sql = f"SELECT event_id FROM {IDS_TABLE} WHERE event_id IN ({ids})"
        result = self.client.query(sql, settings={"max_query_size": 100_000_000})
        return {row[0] for row in result.result_rows}

    def insert(self, rows: list[Valid], token: str) -> None:
        # RowBinary: the lines go in as they came, with no decoded copy to hold and no
        # JSON escaping for ClickHouse to undo. Measured end to end against JSONEachRow:
        # CPU per event 85 -> 60 us in ClickHouse, 31 -> 21 us in the loader.
        self.client.raw_insert(
            RAW_TABLE,
            COLUMNS,
            insert_block=rowbinary(rows),
            fmt="RowBinary",
            settings={
                "insert_deduplication_token": token,
                "insert_deduplicate": 1,
                "deduplicate_blocks_in_dependent_materialized_views": 1,
            },
        )

    def reject(self, rejects: list[Reject]) -> int:
        """Keep the rejects bronze does not hold yet, once per distinct input (a replay or
        a resume that reads a bad line again adds nothing); returns how many were new."""
        distinct: dict[int, tuple[Reject, str]] = {}
        for r in rejects:
            text = r.raw.decode("utf-8", errors="replace")  # as stored
            distinct.setdefault(raw_hash(text.encode()), (r, text))
        hashes = ", ".join(str(h) for h in distinct)
        present = {
            row[0]
            for row in self.client.query(
                f"SELECT DISTINCT raw_hash FROM {REJECTS_TABLE} WHERE raw_hash IN ({hashes})"
            ).result_rows
        }
        block = b"".join(
            orjson.dumps(
                {
                    "reason": r.reason,
                    "detail": r.detail[:1000],
                    "source": r.source,
                    "raw": text,
                    "raw_hash": h,
                }
            )
            + b"\n"
            for h, (r, text) in distinct.items()
            if h not in present
        )
        if block:
            self.client.raw_insert(
                REJECTS_TABLE,
                ["reason", "detail", "source", "raw", "raw_hash"],
                insert_block=block,
                fmt="JSONEachRow",
            )
        return block.count(b"\n")

    def write(
        self, rows: list[Valid], rejects: list[Reject], progress: Progress | None = None
    ) -> tuple[int, int]:
        """Insert the new rows and the rejects; returns (inserted, duplicates).

        ``progress``: the batch's write across its retries (the loader and the direct
        hand-off keep one per batch). The duplicate lookup is asked once; a retry sends
        the same new rows with the same deduplication token, so ClickHouse drops them if
        the failed attempt had landed, and skips a step that had succeeded. The counts are
        the first lookup's: rows that this batch inserted before its rejects failed are not
        counted again as duplicates on the retry."""
        progress = Progress() if progress is None else progress
        if progress.fresh is None:
            unique: dict[str, Valid] = {}
            for row in rows:
                unique.setdefault(row.event_id, row)
            present = self.existing(list(unique.values()))
            progress.fresh = [r for r in unique.values() if r.event_id not in present]
        fresh = progress.fresh
        if fresh and not progress.inserted:
            token = hashlib.sha256("\n".join(r.event_id for r in fresh).encode()).hexdigest()
            self.insert(fresh, token)
            progress.inserted = True
        if rejects and not progress.rejected:
            self.reject(rejects)
            progress.rejected = True
        return len(fresh), len(rows) - len(fresh)
