"""Bronze's DDL for a ClickHouse cluster (``CLICKHOUSE_CLUSTER``), the live stream's and
the dumps' alike (one rule, ``wiki_core.ddl.for_cluster``): rendered here, parsed by the
real engine's parser; a cluster itself cannot run on this machine."""

from __future__ import annotations

import re

import pytest

from dumps import schema as dumps_schema
from loader.bronze import DATABASE, MIGRATIONS
from wiki_core.config import Settings
from wiki_core.ddl import for_cluster
from wiki_events.dbt import dbt_env

STATEMENTS = [s for _, _, statements in MIGRATIONS for s in statements] + dumps_schema.DDL
DDL = [s for s in STATEMENTS if not s.strip().startswith("INSERT")]


def test_without_a_cluster_the_ddl_is_unchanged() -> None:
    assert all(for_cluster(s) == s for s in STATEMENTS)


@pytest.mark.parametrize("statement", DDL, ids=lambda s: " ".join(s.split()[:5]))
def test_on_a_cluster_ddl_runs_on_cluster_with_replicated_engines(statement: str) -> None:
    rendered = for_cluster(statement, "wiki")
    head = " ".join(rendered.split()[:10])
    assert re.search(r"^(CREATE|ALTER) .*? [\w.]+ ON CLUSTER 'wiki'", head), head
    assert not re.search(r"ENGINE = (?!Replicated)\w*MergeTree\b", rendered)
    assert "non_replicated_deduplication_window" not in rendered
    engine = re.search(r"ENGINE = (\w*MergeTree\b.*)", statement)
    if engine:  # the same engine, arguments kept, replicated
        assert f"ENGINE = Replicated{engine.group(1)}" in rendered
    if "non_replicated_deduplication_window" in statement:
        assert "replicated_deduplication_window = 10000" in rendered


def test_a_cluster_name_is_quoted_not_pasted() -> None:
    rendered = for_cluster(f"CREATE DATABASE IF NOT EXISTS {DATABASE}", "x' SETTINGS a=1 --")
    assert rendered == "CREATE DATABASE IF NOT EXISTS bronze ON CLUSTER 'x\\' SETTINGS a=1 --'"


def test_the_dumps_tables_take_the_rule() -> None:
    rendered = [for_cluster(s, "wiki") for s in dumps_schema.DDL]
    engines = {e for r in rendered for e in re.findall(r"ENGINE = (\w+)", r)}
    assert engines == {
        "ReplicatedMergeTree",
        "ReplicatedReplacingMergeTree",
        "ReplicatedSummingMergeTree",
    }
    view = next(r for r in rendered if schema_name(r) == dumps_schema.VISIBLE)
    assert f"CREATE VIEW IF NOT EXISTS {dumps_schema.VISIBLE} ON CLUSTER 'wiki'" in view


def schema_name(statement: str) -> str:
    found = re.search(r"IF NOT EXISTS ([\w.]+)", statement)
    return found.group(1) if found else ""


def test_the_engine_parses_every_rendered_statement(ch_client) -> None:  # type: ignore[no-untyped-def]
    for statement in STATEMENTS:
        rendered = for_cluster(statement, "wiki")
        formatted = ch_client.command("SELECT formatQuery({q:String})", parameters={"q": rendered})
        if "ON CLUSTER" in rendered:
            assert "ON CLUSTER wiki" in str(formatted), formatted
        if "ENGINE" in rendered:
            assert "ENGINE = Replicated" in str(formatted), formatted


def test_one_setting_names_the_cluster_for_bronze_and_dbt() -> None:
    settings = Settings.from_env({"CLICKHOUSE_CLUSTER": "wiki"})
    assert settings.cluster == "wiki"
    env = dbt_env("http://default:@127.0.0.1:8123/default", base={}, cluster=settings.cluster)
    assert env["DBT_CLICKHOUSE_CLUSTER"] == "wiki"
    assert dbt_env("http://127.0.0.1:8123/", base={})["DBT_CLICKHOUSE_CLUSTER"] == ""
