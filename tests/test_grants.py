"""Each production ClickHouse user does its real duties, held to its grants.

The embedded server loads production's users.d as it is (``helpers.paths.USERS_D``; the
grant mutations of ``bench/grant_mutations.py`` point it at a copy with one grant taken
away), and ClickHouse's own access control judges every statement. Each part runs its
own code as the user production gives it, in a first boot's order: the loader migrates
bronze (and changes its retention), the dumps user prepares the dumps' bronze, dbt builds
silver and gold and rebuilds them as an upgrade does, the loader inserts events through
the views, the dumps followers load files (and clean up after failed ones, and compute
the attention spikes), the dashboard renders its pages, the backup service backs up. A
duty refused says which statement (code 497, ACCESS_DENIED, ClickHouse's message).

The stages build on each other (module fixtures, in that order), as on a first boot.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.external import ExternalData

from dash_app.pages import edits, lookup, readers
from dash_app.queries import Gold, Unavailable
from dumps import schema as dumps_schema
from dumps import service as dumps_service
from dumps.load import MEDIACOUNTS, PAGEVIEWS, PROJECTVIEWS, Loader, Options
from loader import bronze
from loader.bronze import DATABASE as BRONZE
from loader.bronze import Bronze
from transform.project import run_dbt
from wiki_core import analysts
from wiki_core.config import clickhouse_client
from wiki_core.ddl import for_cluster
from wiki_core.topology import decode_batch

from .helpers.backup import PASSWORDS, MotoS3, Scripts
from .helpers.clickhouse import ClickHouseProcess
from .helpers.dumps_files import (
    mediacounts_dir,
    mediacounts_name,
    pageviews_dir,
    pageviews_name,
    projectviews_name,
    write_mediacounts_day,
    write_pageviews_hour,
)
from .helpers.dumps_site import DumpsSite, Faults, ServerThread
from .helpers.paths import RAW, USERS_D
from .helpers.ports import free_port

pytestmark = pytest.mark.slow  # a warehouse built by dbt per module

H = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
T0 = dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC)  # file hour 01 = views of 00:00-01:00
REFUSED = re.compile(r"Code: 497\. DB::Exception: [^\n]*?(?=\(ACCESS_DENIED\)|$)")


def refusals(text: str) -> list[str]:
    """ClickHouse's ACCESS_DENIED messages in ``text`` (a dbt log, an exception)."""
    return sorted({m.group(0).strip() for m in REFUSED.finditer(text)})


@dataclass
class Server:
    process: ClickHouseProcess
    work: Path

    def url(self, role: str) -> str:
        password = "" if role == "default" else f"{role}-pw"
        return f"http://{role}:{password}@127.0.0.1:{self.process.port}/default"

    def client(self, role: str) -> Any:
        return clickhouse_client(self.url(role), send_receive_timeout=300)

    def admin(self, sql: str) -> list[tuple[Any, ...]]:
        reply = httpx.post(
            self.process.url,
            content=sql,
            params={"default_format": "JSONCompact"},
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
        return [tuple(row) for row in reply.json()["data"]]

    def dbt(self, *args: str) -> str:
        """dbt as the dbt service runs it, as the dbt user; a failure names what was refused."""
        done = run_dbt(list(args), self.url("dbt"), work_dir=self.work / "dbt", timeout=900)
        out = done.stdout + done.stderr
        assert done.returncode == 0, "\n".join(refusals(out)) or out[-3000:]
        return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Production's users.d (USERS_D) and an analyst's file beside it, as
    wiki_core/analysts.py writes one; the S3 stand-in reachable for the backup."""
    folder = tmp_path_factory.mktemp("grants")
    users_d = folder / "users.d"
    users_d.mkdir()
    for item in USERS_D.iterdir():
        (users_d / item.name).symlink_to(item)
    (users_d / "ana.xml").write_text(analysts.users_xml("ana", "ana-pw", ("127.0.0.1", "::1")))
    env = {**PASSWORDS, "LOCAL_CLICKHOUSE_ALLOW_NETWORK": "1"}
    process = ClickHouseProcess(folder / "data", users_d=users_d, env=env).start()
    yield Server(process, folder)
    process.stop()


@pytest.fixture(scope="module")
def migrated(server: Server) -> Server:
    """The bronze service: the loader's bronze, then the dumps' as the dumps user."""
    loader = server.client("loader")
    try:
        bronze.migrate(loader, 90)
    finally:
        loader.close()
    dumps = server.client("dumps")
    try:
        dumps_service.prepare(dumps)
    finally:
        dumps.close()
    return server


@pytest.fixture(scope="module")
def built(migrated: Server) -> Server:
    """The dbt service's first build, the dumps' models included."""
    migrated.dbt("build", "--vars", dumps_service.DBT_VARS)
    return migrated


@pytest.fixture(scope="module")
def loaded(built: Server) -> Server:
    """The loader's inserts into bronze, through silver's and gold's views."""
    lines = RAW.read_bytes().splitlines(keepends=True)  # 2,387 real events
    client = built.client("loader")
    try:
        writer = Bronze(client)
        for start in range(0, len(lines), 1000):
            rows, rejects, _ = decode_batch(b"".join(lines[start : start + 1000]), None)
            writer.write(rows, rejects)
    finally:
        client.close()
    return built


@dataclass
class Site:
    root: Path
    url: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site") / "other"
    root.mkdir()
    with ServerThread(DumpsSite(root, Faults()), free_port()) as served:
        yield Site(root, served.url)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


@pytest.fixture(scope="module")
def dumps_loaded(
    loaded: Server, site: Site
) -> tuple[Server, dict[str, int], list[logging.LogRecord]]:
    """The dumps followers as the dumps user: an hour of page views and a day of media
    counts load, the next hour and day fail (truncated files) and are cleaned up; then
    the loaded files are published again, and the loads they replace are purged."""
    write_pageviews_hour(site.root, T0, lines=3000, seed=1)
    write_pageviews_hour(site.root, T0 + H, lines=3000, seed=2)
    truncate(site.root / pageviews_dir(T0 + H) / pageviews_name(T0 + H))
    day = T0.replace(hour=0)
    write_mediacounts_day(site.root, day.date(), files=300, seed=1)
    write_mediacounts_day(site.root, (day + DAY).date(), files=300, seed=2)
    truncate(site.root / mediacounts_dir((day + DAY).date()) / mediacounts_name((day + DAY).date()))
    client = loaded.client("dumps")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("dumps").addHandler(handler)
    try:
        follower = Loader(client, Options(base_url=site.url, backoff=0.05, retries=0))
        counts = follower.run([PAGEVIEWS, PROJECTVIEWS], T0, T0 + 2 * H)
        media = follower.run([MEDIACOUNTS], day, day + 2 * DAY)
        # republished later with other numbers: every table holds the old loads' rows
        old = [
            site.root / pageviews_dir(T0) / pageviews_name(T0),
            site.root / pageviews_dir(T0) / projectviews_name(T0),
            site.root / mediacounts_dir(day.date()) / mediacounts_name(day.date()),
        ]
        before = [path.stat().st_mtime for path in old]
        write_pageviews_hour(site.root, T0, lines=3200, seed=3)
        write_mediacounts_day(site.root, day.date(), files=320, seed=3)
        for path, mtime in zip(old, before, strict=True):
            os.utime(path, (mtime + 120, mtime + 120))
        follower = Loader(client, Options(base_url=site.url, backoff=0.05, retries=0))
        again = follower.run([PAGEVIEWS, PROJECTVIEWS], T0, T0 + H)
        media_again = follower.run([MEDIACOUNTS], day, day + DAY)
    finally:
        logging.getLogger("dumps").removeHandler(handler)
        client.close()
    return (
        loaded,
        {f"pageviews {k}": v for k, v in counts.items()}
        | {f"mediacounts {k}": v for k, v in media.items()}
        | {f"again pageviews {k}": v for k, v in again.items()}
        | {f"again mediacounts {k}": v for k, v in media_again.items()},
        records,
    )


# -- ON CLUSTER: no cluster runs here, so the grant is read from users.d -------------------


def test_the_users_that_run_ddl_on_a_cluster_hold_cluster() -> None:
    """ClickHouse refuses ON CLUSTER without CLUSTER (a global privilege; the embedded
    engine has no Keeper, so it refuses such DDL before it checks the grant). The users
    whose code renders DDL ON CLUSTER (wiki_core.ddl.for_cluster; dbt-clickhouse with a
    profile cluster) hold it, the others do not."""
    assert "ON CLUSTER" in for_cluster(f"CREATE DATABASE IF NOT EXISTS {BRONZE}", "wiki")
    assert "ON CLUSTER" in for_cluster(dumps_schema.DDL[0], "wiki")
    users = ET.parse(USERS_D / "wiki-events.xml").getroot().find("users")
    assert users is not None
    holders = {
        user.tag
        for user in users
        for query in user.findall("grants/query")
        if (query.text or "").strip() == "GRANT CLUSTER ON *.*"
    }
    assert holders == {"loader", "dbt", "dumps"}


# -- the duties, in a first boot's order ---------------------------------------------------


def test_the_loader_migrates_bronze_and_changes_its_retention(migrated: Server) -> None:
    """The bronze service again with another BRONZE_RETENTION_DAYS: ALTER ... MODIFY TTL."""
    client = migrated.client("loader")
    try:
        assert bronze.migrate(client, 120) == bronze.migrate(client, 120)
    finally:
        client.close()
    ((create,),) = migrated.admin(f"SHOW CREATE TABLE {bronze.RAW_TABLE}")
    assert "toIntervalDay(120)" in create, create
    tables = {
        name
        for (name,) in migrated.admin("SELECT name FROM system.tables WHERE database = 'bronze'")
    }
    assert {dumps_schema.LEDGER.split(".")[1], "wiki_raw"} <= tables


def test_dbt_builds_silver_and_gold_then_rebuilds_them_as_an_upgrade_does(
    built: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dbt service: the first build (fixture), then the next version's build over the
    built models as the dbt service runs it at an upgrade (the materialized views' queries
    changed in place: ALTER VIEW MODIFY QUERY), a full refresh (tables swapped, views
    replaced), and a start with nothing to build after SILVER_RETENTION_DAYS changed:
    silver's TTL altered."""
    assert built.admin("SELECT count() FROM system.tables WHERE database = 'gold'")[0][0] > 10
    built.dbt("build", "--vars", dumps_service.DBT_VARS)
    built.dbt("build", "--vars", dumps_service.DBT_VARS, "--full-refresh")
    monkeypatch.setenv("SILVER_RETENTION_DAYS", "120")
    built.dbt("run-operation", "apply_silver_retention", "--vars", dumps_service.DBT_VARS)
    ((create,),) = built.admin("SHOW CREATE TABLE silver.wiki")
    assert "toIntervalDay(120)" in create, create


def test_the_loader_inserts_events_through_silver_and_gold(loaded: Server) -> None:
    ((silver,),) = loaded.admin("SELECT count() FROM silver.wiki")
    ((minutes,),) = loaded.admin("SELECT count() FROM gold.events_per_minute_wiki")
    assert int(silver) > 0 and int(minutes) > 0


def test_the_dumps_followers_load_clean_up_and_compute_spikes(
    dumps_loaded: tuple[Server, dict[str, int], list[logging.LogRecord]],
) -> None:
    server, counts, records = dumps_loaded
    refused = [r.getMessage() for r in records if "497" in r.getMessage()]
    assert not refused, "\n".join(refused)
    # the hour's pageviews and projectviews and the next hour's projectviews; the
    # truncated pageviews file; the day of media counts, the truncated next day
    assert counts == {
        "pageviews loaded": 3,
        "pageviews failed": 1,
        "mediacounts loaded": 1,
        "mediacounts failed": 1,
        "again pageviews replaced": 2,
        "again mediacounts replaced": 1,
    }, counts
    # the rows of a failed or replaced load are gone from every table that carries load_id
    failed = [
        load_id
        for (load_id,) in server.admin(
            f"SELECT load_id FROM {dumps_schema.LEDGER} FINAL "
            "WHERE state IN ('failed', 'superseded')"
        )
    ]
    assert len(failed) == 5, counts
    ids = ",".join(str(int(i)) for i in failed)
    tables = server.admin(
        "SELECT database, table FROM system.columns WHERE name = 'load_id' "
        "AND database IN ('bronze', 'silver', 'gold') "
        "AND table NOT IN ('dumps_files', 'dumps_rejects') "  # the ledger keeps its record
        "AND table IN (SELECT name FROM system.tables WHERE engine LIKE '%MergeTree')"
    )
    assert len(tables) > 10
    left = {
        f"{db}.{table}": n
        for db, table in tables
        for ((n,),) in [
            server.admin(f"SELECT count() FROM `{db}`.`{table}` WHERE load_id IN ({ids})")
        ]
        if int(n)
    }
    assert not left, f"a dead load's rows were left (purge did not reach them): {left}"
    # the loaded hour's attention spikes: its computation's marker row
    ((marks,),) = server.admin("SELECT count() FROM gold.page_attention_hours_loads")
    assert marks > 0


def test_an_analyst_reads_every_layer_and_sends_external_data(loaded: Server) -> None:
    """An analyst (the role analyst, wiki_core/analysts.py) reads bronze, silver and gold,
    uses table functions (most need CREATE TEMPORARY TABLE, ClickHouse's documentation
    says) and joins a table of their own sent with the query (external data)."""
    client = loaded.client("ana")
    try:
        for table in (bronze.RAW_TABLE, "silver.wiki", "gold.events_per_minute_wiki"):
            assert client.query(f"SELECT count() FROM {table}").result_rows[0][0] > 0, table
        functions = client.query(
            "SELECT (SELECT count() FROM numbers(10)), "
            "(SELECT count() FROM format(TSV, 'w String', 'enwiki'))"
        )
        assert functions.result_rows[0] == (10, 1)
        mine = ExternalData(
            file_name="mine", data=b"enwiki\nwikidatawiki\n", structure="wiki String"
        )
        found = client.query(
            "SELECT count() FROM silver.wiki WHERE wiki IN (SELECT wiki FROM mine)",
            external_data=mine,
        )
        assert found.result_rows[0][0] > 0
    finally:
        client.close()


class Watched(Gold):
    """The dashboard's Gold, keeping each refusal (the pages show it as a message)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused: list[str] = []

    def run(self, sql: str, params: dict[str, Any] | None = None, ttl: float | None = None) -> Any:
        try:
            return super().run(sql, params, ttl)
        except Unavailable as exc:
            self.refused.append(str(exc))
            raise


def test_the_dashboard_reads_every_page(
    dumps_loaded: tuple[Server, dict[str, int], list[logging.LogRecord]],
) -> None:
    server = dumps_loaded[0]
    gold = Watched(lambda: server.client("dashboard"), cache_seconds=0)
    edits_day = "?range=custom&start=2024-08-22&end=2024-08-23"
    views_day = "?range=custom&start=2026-11-01&end=2026-11-02"
    for page, search in (
        (edits, edits_day),
        (edits, views_day),
        (readers, views_day),
        (readers, views_day + "&wikis=enwiki"),
        (lookup, views_day + "&titles=Main_Page"),
    ):
        page.render(gold, search)
    assert not gold.refused, "\n".join(gold.refused)
    assert gold.queries_run > 10


def test_the_backup_service_backs_up_bronze_silver_and_gold(
    dumps_loaded: tuple[Server, dict[str, int], list[logging.LogRecord]], tmp_path: Path
) -> None:
    server = dumps_loaded[0]
    s3 = MotoS3(tmp_path).start()
    try:
        done = Scripts(tmp_path, server.process, s3).backup("once")
        assert done.returncode == 0, "\n".join(refusals(done.stdout + done.stderr)) or done.stderr
        assert s3.objects()
    finally:
        s3.stop()
