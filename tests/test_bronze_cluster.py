"""Bronze's DDL for a ClickHouse cluster (``CLICKHOUSE_CLUSTER``): rendered here, parsed
by the real engine's parser; a cluster itself cannot run on this machine."""

from __future__ import annotations

import re

import pytest

from loader.bronze import DATABASE, MIGRATIONS, for_cluster
from wiki_core.config import Settings
from wiki_events.dbt import dbt_env

STATEMENTS = [s for _, _, statements in MIGRATIONS for s in statements]
DDL = [s for s in STATEMENTS if not s.strip().startswith("INSERT")]


def test_without_a_cluster_the_ddl_is_unchanged() -> None:
    assert all(for_cluster(s) == s for s in STATEMENTS)


@pytest.mark.parametrize("statement", DDL, ids=lambda s: " ".join(s.split()[:5]))
def test_on_a_cluster_ddl_runs_on_cluster_with_replicated_engines(statement: str) -> None:
    rendered = for_cluster(statement, "wiki")
    head = " ".join(rendered.split()[:10])
    assert re.search(r"^(CREATE|ALTER) .*? [\w.]+ ON CLUSTER 'wiki'", head), head
    assert not re.search(r"ENGINE = MergeTree\b", rendered)
    assert "non_replicated_deduplication_window" not in rendered
    if "ENGINE" in statement:
        assert "ENGINE = ReplicatedMergeTree" in rendered
    if "non_replicated_deduplication_window" in statement:
        assert "replicated_deduplication_window = 10000" in rendered


def test_a_cluster_name_is_quoted_not_pasted() -> None:
    rendered = for_cluster(f"CREATE DATABASE IF NOT EXISTS {DATABASE}", "x' SETTINGS a=1 --")
    assert rendered == "CREATE DATABASE IF NOT EXISTS bronze ON CLUSTER 'x\\' SETTINGS a=1 --'"


def test_the_engine_parses_every_rendered_statement(ch_client) -> None:  # type: ignore[no-untyped-def]
    for statement in STATEMENTS:
        rendered = for_cluster(statement, "wiki")
        formatted = ch_client.command("SELECT formatQuery({q:String})", parameters={"q": rendered})
        if "ON CLUSTER" in rendered:
            assert "ON CLUSTER wiki" in str(formatted), formatted


def test_one_setting_names_the_cluster_for_bronze_and_dbt() -> None:
    settings = Settings.from_env({"CLICKHOUSE_CLUSTER": "wiki"})
    assert settings.cluster == "wiki"
    env = dbt_env("http://default:@127.0.0.1:8123/default", base={}, cluster=settings.cluster)
    assert env["DBT_CLICKHOUSE_CLUSTER"] == "wiki"
    assert dbt_env("http://127.0.0.1:8123/", base={})["DBT_CLICKHOUSE_CLUSTER"] == ""
