"""The dumps' bronze layer: the ledger of files, the bronze tables, the rejects.

Owned by the dumps loader (as ``reader/bronze.py`` is by the event loader) and applied
at start, idempotently. dbt reads these tables as sources
(``wiki_dbt/models/staging/dumps/_dumps__sources.yml``).

- ``bronze.dumps_files``: the ledger, one row per (file, load) and state change
  (ReplacingMergeTree on ``updated_at``: read it with FINAL). States: ``loading``,
  ``done``, ``failed``, ``superseded``.
- ``bronze.dumps_visible``: the view every gold read-back filters on: per file, the
  newest load in state ``done``.
- ``bronze.pageviews``, ``bronze.projectviews``, ``bronze.mediacounts``: the lines as
  loaded, split into fields by ClickHouse; a line that does not parse keeps its text in
  ``line`` and its reason in ``fault`` (silver leaves it out, the rejects count it).
- ``bronze.dumps_rejects``: per load and reason, how many lines, and one example.
- ``bronze.dumps_left_out``: per load filtered with ``--wiki`` / ``--project``, the
  lines the filter did not keep, so the loader still checks every line sent arrived
  (kept + left out = sent).

Retention (TTL on ``loaded_at``, the arrival: a backfilled month is not dropped as it
lands): page-level bronze is short, ``BRONZE_DAYS`` below; the ledger and the rejects
are kept a year.
"""

from __future__ import annotations

from typing import Any

from wiki_core.ddl import for_cluster

DATABASE = "bronze"
LEDGER = f"{DATABASE}.dumps_files"
VISIBLE = f"{DATABASE}.dumps_visible"
REJECTS = f"{DATABASE}.dumps_rejects"
LEFT_OUT = f"{DATABASE}.dumps_left_out"
BRONZE_DAYS = {"pageviews": 3, "projectviews": 400, "mediacounts": 7}

_UNQUOTE = (
    "if(length({x}) >= 2 AND startsWith({x}, '\"') AND endsWith({x}, '\"'), "
    "replaceAll(replaceAll(substring({x}, 2, length({x}) - 2), '\\\\\"', '\"'), "
    "'\\\\\\\\', '\\\\'), {x})"
)


def unquote(expr: str) -> str:
    """SQL: a Spark-era quoted field (``"..."`` with ``\\"`` inside) unquoted."""
    return _UNQUOTE.format(x=expr)


# Per dataset: the bronze table's DDL and the SELECT that turns ``line`` (one line of the
# file, LineAsString) into its row. ``{load_id}`` and ``{period}`` are filled per load.
TABLES: dict[str, str] = {
    "pageviews": f"""
        CREATE TABLE IF NOT EXISTS {DATABASE}.pageviews
        (
            load_id       UInt64                 COMMENT 'the load (bronze.dumps_files)',
            file_hour     DateTime('UTC')        COMMENT 'the hour in the file name (its end)',
            domain_code   LowCardinality(String) COMMENT 'as in the file, unquoted',
            title         String                 COMMENT 'page title as in the file, unquoted',
            views         UInt32,
            response_size UInt64                 COMMENT 'always 0 in the files',
            fault         LowCardinality(String) COMMENT 'empty, or why the line is rejected',
            line          String                 COMMENT 'the raw line, kept when rejected',
            loaded_at     DateTime('UTC')        DEFAULT now()
        )
        ENGINE = MergeTree
        PARTITION BY toYYYYMMDD(loaded_at)
        ORDER BY (file_hour, load_id, domain_code, title)
        TTL loaded_at + INTERVAL {BRONZE_DAYS["pageviews"]} DAY
        COMMENT 'Bronze: the hourly pageviews dumps, one row per line'
    """,
    "projectviews": f"""
        CREATE TABLE IF NOT EXISTS {DATABASE}.projectviews
        (
            load_id       UInt64,
            file_hour     DateTime('UTC')        COMMENT 'the hour in the file name (its end)',
            domain_code   LowCardinality(String),
            views         UInt64,
            fault         LowCardinality(String),
            line          String,
            loaded_at     DateTime('UTC')        DEFAULT now()
        )
        ENGINE = MergeTree
        PARTITION BY toYYYYMM(loaded_at)
        ORDER BY (file_hour, load_id, domain_code)
        TTL loaded_at + INTERVAL {BRONZE_DAYS["projectviews"]} DAY
        COMMENT 'Bronze: the hourly projectviews files (Wikimedia''s own totals per code)'
    """,
    "mediacounts": f"""
        CREATE TABLE IF NOT EXISTS {DATABASE}.mediacounts
        (
            load_id             UInt64,
            day                 Date                COMMENT 'the day in the file name',
            base_name           String,
            total_response_size UInt64,
            total               UInt64,
            original            UInt64,
            transcoded_audio    UInt64,
            transcoded_image    UInt64,
            image_widths        Array(UInt64)       COMMENT 'widths 0-199 ... >=1000 (6)',
            transcoded_movie    UInt64,
            movie_heights       Array(UInt64)       COMMENT 'heights 0-239, 240-479, >=480',
            referer_internal    UInt64,
            referer_external    UInt64,
            referer_unknown     UInt64,
            fault               LowCardinality(String),
            line                String,
            loaded_at           DateTime('UTC')     DEFAULT now()
        )
        ENGINE = MergeTree
        PARTITION BY toYYYYMMDD(loaded_at)
        ORDER BY (day, load_id, base_name)
        TTL loaded_at + INTERVAL {BRONZE_DAYS["mediacounts"]} DAY
        COMMENT 'Bronze: the daily mediacounts dumps, one row per line (25 fields)'
    """,
}

_PV_FIELDS = "splitByChar(' ', line)"
PARSE: dict[str, str] = {
    "pageviews": f"""
        SELECT {{load_id}} AS load_id, toDateTime({{period}}, 'UTC') AS file_hour,
               {unquote("f[1]")} AS domain_code, {unquote("f[2]")} AS title,
               toUInt32OrZero(f[3]) AS views, toUInt64OrZero(f[4]) AS response_size,
               multiIf(length(f) != 4, 'fields',
                       toUInt32OrNull(f[3]) IS NULL, 'views not a number',
                       toUInt64OrNull(f[4]) IS NULL, 'size not a number', '') AS fault,
               if(fault = '', '', line) AS line
        FROM (SELECT line, {_PV_FIELDS} AS f FROM {{source}})
    """,
    "projectviews": f"""
        SELECT {{load_id}} AS load_id, toDateTime({{period}}, 'UTC') AS file_hour,
               {unquote("f[1]")} AS domain_code, toUInt64OrZero(f[3]) AS views,
               multiIf(length(f) != 4 OR f[2] != '-', 'fields',
                       toUInt64OrNull(f[3]) IS NULL, 'views not a number', '') AS fault,
               if(fault = '', '', line) AS line
        FROM (SELECT line, {_PV_FIELDS} AS f FROM {{source}})
    """,
    "mediacounts": """
        SELECT {load_id} AS load_id, toDate({period}) AS day,
               f[1] AS base_name,
               toUInt64OrZero(f[2]) AS total_response_size, toUInt64OrZero(f[3]) AS total,
               toUInt64OrZero(f[4]) AS original, toUInt64OrZero(f[5]) AS transcoded_audio,
               toUInt64OrZero(f[8]) AS transcoded_image,
               arrayMap(x -> toUInt64OrZero(x), arraySlice(f, 9, 6)) AS image_widths,
               toUInt64OrZero(f[17]) AS transcoded_movie,
               arrayMap(x -> toUInt64OrZero(x), arraySlice(f, 18, 3)) AS movie_heights,
               toUInt64OrZero(f[23]) AS referer_internal,
               toUInt64OrZero(f[24]) AS referer_external,
               toUInt64OrZero(f[25]) AS referer_unknown,
               multiIf(length(f) != 25, 'fields',
                       NOT startsWith(f[1], '/'), 'base_name',
                       arrayExists(i -> i NOT IN (1, 6, 7, 15, 16, 21, 22)
                                        AND toUInt64OrNull(f[i]) IS NULL,
                                   range(1, 26)), 'count not a number', '') AS fault,
               if(fault = '', '', line) AS line
        FROM (SELECT line, splitByChar('\t', line) AS f FROM {source})
    """,
}

DDL: list[str] = [
    f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
    f"""
    CREATE TABLE IF NOT EXISTS {LEDGER}
    (
        dataset       LowCardinality(String) COMMENT 'pageviews, projectviews, mediacounts',
        name          String                 COMMENT 'file name, e.g. pageviews-20261101-010000.gz',
        load_id       UInt64                 COMMENT 'one attempt at loading the file',
        period        DateTime('UTC')        COMMENT 'the hour or day in the file name',
        url           String,
        size          UInt64                 COMMENT 'bytes, as published',
        last_modified DateTime('UTC')        COMMENT 'as published (index page / header)',
        etag          String,
        state         LowCardinality(String) COMMENT 'loading, done, failed, superseded',
        rows          UInt64                 COMMENT 'lines kept (rejects included)',
        rejected      UInt64                 COMMENT 'lines rejected (bronze.dumps_rejects)',
        message       String                 COMMENT 'why it failed',
        started_at    DateTime64(3, 'UTC'),
        finished_at   DateTime64(3, 'UTC')   COMMENT 'when the state was reached',
        updated_at    DateTime64(3, 'UTC')   DEFAULT now64(3)
    )
    ENGINE = ReplacingMergeTree(updated_at)
    ORDER BY (dataset, name, load_id)
    TTL toDateTime(updated_at) + INTERVAL 400 DAY
    COMMENT 'The dumps ledger: each file, each load of it, its state. Read with FINAL.'
    """,
    f"""
    CREATE VIEW IF NOT EXISTS {VISIBLE} AS
    SELECT dataset, name, argMax(load_id, finished_at) AS load_id, max(period) AS period
    FROM {LEDGER} FINAL
    WHERE state = 'done'
    GROUP BY dataset, name
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {REJECTS}
    (
        load_id     UInt64,
        dataset     LowCardinality(String),
        name        String,
        reason      LowCardinality(String),
        lines       UInt64,
        example     String,
        received_at DateTime('UTC') DEFAULT now()
    )
    ENGINE = MergeTree
    ORDER BY (dataset, name, load_id, reason)
    TTL received_at + INTERVAL 400 DAY
    COMMENT 'Lines of the dumps that did not parse: per load and reason, how many, one example'
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {LEFT_OUT}
    (
        load_id     UInt64,
        lines       UInt64          COMMENT 'lines the --wiki / --project filter left out',
        counted_at  DateTime('UTC') DEFAULT now()
    )
    ENGINE = SummingMergeTree
    ORDER BY load_id
    TTL counted_at + INTERVAL 400 DAY
    COMMENT 'Per filtered load, the lines it did not keep (read with sum): sent = kept + these'
    """,
    *TABLES.values(),
]


def migrate(client: Any, cluster: str = "") -> None:
    """Create what is missing (every statement is IF NOT EXISTS). ``cluster``
    (``CLICKHOUSE_CLUSTER``): ON CLUSTER, Replicated engines, as the event bronze
    (``wiki_core.ddl.for_cluster``)."""
    for statement in DDL:
        client.command(for_cluster(statement, cluster))
