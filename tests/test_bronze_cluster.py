"""Bronze's DDL for a ClickHouse cluster (``CLICKHOUSE_CLUSTER``), the live stream's and
the dumps' alike (one rule, ``wiki_core.ddl.for_cluster``): rendered here, parsed by the
real engine's parser; and the cluster's configuration (``deploy/cluster``: two replicas,
Keeper, the macros), read by ClickHouse's own config processor. A cluster itself cannot
run on this machine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dumps import schema as dumps_schema
from loader.bronze import DATABASE, MIGRATIONS
from transform.project import dbt_env
from wiki_core.config import Settings
from wiki_core.ddl import for_cluster

from .helpers.paths import ROOT

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


# -- deploy/cluster: one shard of two replicas on a three-node Keeper ----------------------

CLUSTER_DIR = ROOT / "deploy" / "cluster"


def _xml(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _replica_hosts() -> tuple[str, list[str]]:
    """The cluster's name and its one shard's replica hosts, from remote_servers."""
    (cluster,) = list(_xml(CLUSTER_DIR / "config.d" / "cluster.xml").find("remote_servers"))  # type: ignore[arg-type]
    (shard,) = cluster.findall("shard")
    assert shard.findtext("internal_replication") == "true"
    return cluster.tag, [r.findtext("host", "") for r in shard.findall("replica")]


def test_the_cluster_is_one_shard_of_two_replicas_each_with_its_macros() -> None:
    name, hosts = _replica_hosts()
    assert len(hosts) == 2 and len(set(hosts)) == 2
    config = _xml(CLUSTER_DIR / "config.d" / "cluster.xml")
    # ReplicatedMergeTree() as for_cluster and engine_clause.sql write it: its Keeper path
    # and replica name from these, which name the shard, the table and the replica
    path = config.findtext("default_replica_path", "")
    assert all(part in path for part in ("{shard}", "{database}", "{table}")), path
    assert config.findtext("default_replica_name") == "{replica}"
    assert config.findtext("distributed_ddl/path")  # ON CLUSTER goes through Keeper
    replicas = sorted(CLUSTER_DIR.glob("replica-*/replica.xml"))
    assert [p.parent.name for p in replicas] == ["replica-1", "replica-2"]
    for path, host in zip(replicas, hosts, strict=True):
        replica = _xml(path)
        macros = {m.tag: m.text for m in replica.find("macros")}  # type: ignore[union-attr]
        assert macros == {"cluster": name, "shard": "01", "replica": host}, path
        assert replica.findtext("interserver_http_host") == host


def test_the_replicas_find_every_keeper_node_of_an_odd_quorum() -> None:
    config = _xml(CLUSTER_DIR / "config.d" / "cluster.xml")
    nodes = [(n.findtext("host"), n.findtext("port")) for n in config.findall("zookeeper/node")]
    keeper = _xml(CLUSTER_DIR / "keeper" / "keeper.xml").find("keeper_server")
    assert keeper is not None
    raft = keeper.findall("raft_configuration/server")
    assert [s.findtext("id") for s in raft] == ["1", "2", "3"]  # a quorum survives one loss
    assert nodes == [(s.findtext("hostname"), keeper.findtext("tcp_port")) for s in raft]
    server_id = keeper.find("server_id")
    assert server_id is not None and server_id.get("from_env") == "KEEPER_SERVER_ID"


_READ_CONFIG = """
import json, sys
import chdb
conn = chdb.connect(":memory:?config-file=" + sys.argv[1])
cur = conn.cursor()
out = {}
for key, sql in (
    ("clusters", "SELECT cluster, shard_num, replica_num, host_name, port FROM system.clusters"),
    ("macros", "SELECT macro, substitution FROM system.macros ORDER BY macro"),
    ("path", "SELECT value FROM system.server_settings WHERE name = 'default_replica_path'"),
    ("name", "SELECT value FROM system.server_settings WHERE name = 'default_replica_name'"),
):
    cur.execute(sql)
    out[key] = [list(row) for row in cur.fetchall()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("replica", [1, 2])
def test_clickhouse_reads_the_cluster_and_the_replicas_macros(tmp_path: Path, replica: int) -> None:
    """The files as clickhouse-server gets them (config.d beside its config.xml), read by
    ClickHouse's own config processor in the embedded engine."""
    (tmp_path / "config.d").mkdir()
    (tmp_path / "config.xml").write_text("<clickhouse></clickhouse>\n")
    (tmp_path / "config.d" / "cluster.xml").symlink_to(CLUSTER_DIR / "config.d" / "cluster.xml")
    (tmp_path / "config.d" / "replica.xml").symlink_to(
        CLUSTER_DIR / f"replica-{replica}" / "replica.xml"
    )
    elsewhere = tmp_path / "cwd"  # chDB reads a config.xml in its working folder
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _READ_CONFIG, str(tmp_path / "config.xml")],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    name, hosts = _replica_hosts()
    assert seen["clusters"] == [[name, 1, n, host, 9000] for n, host in enumerate(hosts, 1)]
    assert seen["macros"] == [["cluster", name], ["replica", hosts[replica - 1]], ["shard", "01"]]
    assert seen["path"] == [["/clickhouse/tables/{shard}/{database}/{table}"]]
    assert seen["name"] == [["{replica}"]]
