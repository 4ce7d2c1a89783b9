"""DDL for a ClickHouse cluster: the one rule every table the Python side creates takes.

The event bronze (``loader/bronze.py``) and the dumps' bronze (``dumps/schema.py``) both
render their statements through ``for_cluster``, as ``wiki_dbt/macros/engine_clause.sql``
does for dbt's models.
"""

from __future__ import annotations

import re

_ON_CLUSTER = re.compile(
    r"^(\s*(?:CREATE (?:DATABASE|TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS|ALTER TABLE) "
    r"[\w.]+)",
)
_ENGINE = re.compile(r"\bENGINE = (?!Replicated)(\w*MergeTree)\b")


def for_cluster(statement: str, cluster: str = "") -> str:
    """``statement`` as it runs on ``cluster`` (``CLICKHOUSE_CLUSTER``); unchanged without
    one. On a cluster, DDL runs ``ON CLUSTER`` and every ``*MergeTree`` engine is its
    ``Replicated*`` form (arguments kept; its Keeper path and replica name from the
    servers' ``default_replica_path`` / ``default_replica_name``), whose insert
    deduplication is the replicated window."""
    if not cluster:
        return statement
    quoted = "'" + cluster.replace("\\", "\\\\").replace("'", "\\'") + "'"
    statement = _ON_CLUSTER.sub(lambda m: f"{m.group(1)} ON CLUSTER {quoted}", statement, 1)
    statement = _ENGINE.sub(r"ENGINE = Replicated\1", statement)
    return statement.replace(
        "non_replicated_deduplication_window", "replicated_deduplication_window"
    )
