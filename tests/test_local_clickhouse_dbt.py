"""dbt-clickhouse (http driver) against the embedded server, unmodified."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from .helpers.clickhouse import ClickHouseProcess
from .helpers.paths import FIXTURES

DBT = str(Path(sys.executable).with_name("dbt"))


def dbt(project: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CH_PORT": str(port), "DBT_PROFILES_DIR": str(project)}
    done = subprocess.run(
        [DBT, *args, "--project-dir", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def scalar(server: ClickHouseProcess, sql: str) -> str:
    return httpx.post(server.url, content=sql).text.strip()


@pytest.mark.slow
def test_dbt_debug_run_rerun_full_refresh_test_docs(tmp_path: Path) -> None:
    project = tmp_path / "dbt_mini"
    shutil.copytree(FIXTURES / "dbt_mini", project)
    server = ClickHouseProcess(tmp_path / "data").start()
    try:
        assert "All checks passed" in dbt(project, server.port, "debug").stdout
        for args in (["run"], ["run"], ["run", "--full-refresh"]):
            out = dbt(project, server.port, *args).stdout
            assert "PASS=3" in out and "ERROR=0" in out, out
            # the incremental model never doubles; the materialized view's target holds
            # each kind once per source load
            assert (
                scalar(server, "SELECT count(), uniqExact(id) FROM mini.events_incremental")
                == "100\t100"
            )
            assert scalar(server, "SELECT sum(n) FROM mini.kind_counts_mv") == "100"
        # an insert into the source fires the materialized view
        httpx.post(
            server.url, content="INSERT INTO mini.src_events SELECT 100 + number, 0 FROM numbers(5)"
        )
        assert scalar(server, "SELECT sum(n) FROM mini.kind_counts_mv") == "105"
        assert (
            scalar(
                server,
                "SELECT engine FROM system.tables WHERE database = 'mini' "
                "AND name = 'kind_counts_mv_mv'",
            )
            == "MaterializedView"
        )
        out = dbt(project, server.port, "test").stdout
        assert "PASS=3" in out and "ERROR=0" in out, out
        dbt(project, server.port, "docs", "generate")
        assert (project / "target" / "catalog.json").stat().st_size > 0
        assert '"events_incremental"' in (project / "target" / "catalog.json").read_text()
    finally:
        server.stop()


@pytest.mark.parametrize("wait_end_of_query", ["0", "1"])
@pytest.mark.parametrize("prefix", ["dbt", "dbt_clickhouse"])
def test_query_log_keeps_the_text_as_sent_and_the_projection_used(
    clickhouse: ClickHouseProcess, wait_end_of_query: str, prefix: str
) -> None:
    """dbt-clickhouse's projection tests find their query in system.query_log by its
    leading comment and check which projection answered it; a server logs the text as
    it came, whitespace around it included, whether the answer streams or waits for the
    end of the query (clickhouse-connect's way), and logs nothing else with that text:
    the suite's schemas are named dbt_clickhouse_..., a word that sends the query to the
    guard (guard.py), whose own statements (EXPLAIN AST, formatQuerySingleLine) hold
    the text and must stay out of the log."""
    db = f"{prefix}_{uuid.uuid4().hex[:8]}"
    for sql in (
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.people (age UInt8, department String, "
        "PROJECTION by_dept (SELECT department, avg(age) GROUP BY department)) "
        "ENGINE = MergeTree ORDER BY age",
        f"INSERT INTO {db}.people VALUES (33, 'eng'), (48, 'eng'), (25, 'sales')",
    ):
        assert httpx.post(clickhouse.url, content=sql).status_code == 200
    marker = uuid.uuid4().hex
    sent = f" -- {marker}\n  SELECT department, avg(age) FROM {db}.people GROUP BY department\n"
    reply = httpx.post(
        clickhouse.url,
        params={"wait_end_of_query": wait_end_of_query},
        content=sent + " FORMAT TSV",
    )
    assert sorted(reply.text.splitlines()) == ["eng\t40.5", "sales\t25"]
    httpx.post(clickhouse.url, content="SYSTEM FLUSH LOGS")
    logged = httpx.post(
        clickhouse.url,
        params={"param_m": f"%{marker}%"},
        content="SELECT query, projections FROM system.query_log WHERE query LIKE {m:String} "
        "AND type = 'QueryFinish' AND query NOT LIKE '%system.query_log%' "
        "FORMAT JSONEachRow",
    ).text.splitlines()
    assert [json.loads(row) for row in logged] == [
        {"query": sent + " FORMAT TSV", "projections": [f"{db}.people.by_dept"]}
    ]


def test_the_guards_parse_takes_the_requests_parser_settings(
    clickhouse: ClickHouseProcess,
) -> None:
    """The guard's own parse (above: on a connection of its own) takes the request's
    parser settings: a query past the default max_query_size (256 KiB) that names a
    guarded word runs when the URL raises the limit, as without the guard."""
    values = ",".join(f"'{uuid.uuid4()}'" for _ in range(8000))  # about 300 KB
    sql = f"SELECT count() AS clickhouse FROM (SELECT arrayJoin([{values}]))"
    assert len(sql) > 262144
    raised = httpx.post(clickhouse.url, params={"max_query_size": "100000000"}, content=sql)
    assert raised.status_code == 200, raised.text
    assert raised.text == "8000\n"
    default = httpx.post(clickhouse.url, content=sql)
    assert default.status_code == 400 and "Max query size exceeded" in default.text


def test_wait_end_of_query_answers_a_late_error_with_its_status(
    clickhouse: ClickHouseProcess,
) -> None:
    """With wait_end_of_query the whole result is made before the answer starts, so an
    error half-way through the rows is the answer's status, not text after a 200."""
    sql = "SELECT throwIf(number = 300000) FROM numbers(500000) FORMAT TSV"
    reply = httpx.post(clickhouse.url, params={"wait_end_of_query": "1"}, content=sql)
    assert reply.status_code == 500
    assert reply.headers["X-ClickHouse-Exception-Code"] == "395"
    whole = httpx.post(
        clickhouse.url,
        params={"wait_end_of_query": "1"},
        content="SELECT number FROM numbers(300000) FORMAT TSV",
    )
    assert whole.status_code == 200 and len(whole.text.splitlines()) == 300000
