"""Analysts in production (issue 22): a ClickHouse user each, added and removed by the
operator (deploy/bin/stack analyst -> deploy/analysts.py -> wiki_core/analysts.py's
Roster, one users.d file on the data volume), reached over HTTPS through production's
Caddy site for them (deploy/Caddyfile, port 8443).

The server is the embedded ClickHouse with production's users.d and the roster's file
linked into it, as compose.yaml mounts it; it reads the users again when the file
changes, as clickhouse-server's config reloader does, so an analyst added can log in
and one removed cannot, without a restart. Caddy is the real caddy with the Caddyfile's
own block. The refusals are ClickHouse's own (code 497 and the missing grant, 396 for the
profile's result limit, 452 for its constraints, 516 for a login).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from loader import bronze
from transform.project import run_dbt
from wiki_core.analysts import AnalystError, BadName, Roster, digest, parse
from wiki_core.config import clickhouse_client

from .helpers.backup import PASSWORDS, Scripts
from .helpers.caddy import Caddy
from .helpers.clickhouse import ClickHouseProcess
from .helpers.paths import RAW, ROOT, USERS_D
from .helpers.ports import own_address
from .helpers.warehouse import write_bronze

SCRIPT = ROOT / "deploy" / "analysts.py"
# ClickHouse listens on this machine's own address, so that Caddy's requests come from an
# address that is not ClickHouse's loopback (127.0.0.1, where `default` is let in), as
# from Caddy's container
LOCAL = own_address()

# -- the roster and the operator's command, alone -----------------------------------------


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    """deploy/analysts.py as deploy/bin/stack runs it: the system's python3 would do, here
    this one (standard library only either way)."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_add_shows_the_password_once_and_keeps_only_its_hash(tmp_path: Path) -> None:
    file = tmp_path / "analysts" / "analysts.xml"
    assert run_script("ensure", str(file)).returncode == 0
    assert parse(file.read_text()) == []
    inode = file.stat().st_ino
    added = run_script("add", str(file), "ann")
    assert added.returncode == 0, added.stderr
    password = added.stdout.strip()
    assert len(password) >= 32
    text = file.read_text()
    assert password not in text and digest(password) in text
    (ann,) = parse(text)
    assert ann.name == "ann" and ann.password_sha256 == digest(password)
    assert "GRANT analyst" in text and "ON dev_ann.*" in text
    # rewritten in place: compose mounts this one file, and a rename would leave the
    # container with the old one
    assert run_script("add", str(file), "bob").returncode == 0
    assert file.stat().st_ino == inode
    assert run_script("list", str(file)).stdout.split() == ["ann", "bob"]
    assert run_script("remove", str(file), "ann").returncode == 0
    assert run_script("list", str(file)).stdout.split() == ["bob"]
    assert file.stat().st_ino == inode


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "Ann"), "cannot name an analyst"),
        (("add", "dbt"), "none of the service users' names"),
        (("add", "a-b"), "cannot name an analyst"),
        (("add", "bob"), "analyst bob exists already"),
        (("remove", "carol"), "no analyst carol (the analysts: bob)"),
        (("remove", "x;y"), "cannot name an analyst"),
    ],
)
def test_bad_names_a_second_add_and_an_unknown_removal_are_refused(
    tmp_path: Path, args: tuple[str, str], message: str
) -> None:
    file = tmp_path / "analysts.xml"
    Roster(file).ensure()
    Roster(file).add("bob")
    before = file.read_text()
    done = run_script(args[0], str(file), args[1])
    assert done.returncode == 1
    assert message in done.stderr, done.stderr
    assert done.stdout == ""
    assert file.read_text() == before


def test_a_missing_or_foreign_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AnalystError, match="no analysts file"):
        Roster(tmp_path / "nothing.xml").add("ann")
    other = tmp_path / "wiki-events.xml"
    other.write_text((USERS_D / "wiki-events.xml").read_text())
    with pytest.raises(AnalystError, match="not an analysts file"):
        Roster(other).names()
    with pytest.raises(BadName):
        Roster(tmp_path / "x.xml").remove("default")


# -- against the embedded ClickHouse with production's users, through Caddy -----------------


@dataclass
class Prod:
    clickhouse: ClickHouseProcess
    caddy: Caddy
    roster: Roster
    docs: Path
    work: Path

    def client(self, user: str, password: str, **kw: Any) -> Any:
        """clickhouse-connect as an analyst's notebook: HTTPS through Caddy."""
        return clickhouse_connect.get_client(
            host="localhost",
            port=self.caddy.port,
            username=user,
            password=password,
            secure=True,
            ca_cert=str(self.caddy.ca),
            **kw,
        )

    def wait_login(self, user: str, password: str, ok: bool, timeout: float = 30) -> float:
        """Seconds until ClickHouse lets ``user`` in (``ok``) or refuses it."""
        started = time.monotonic()
        while True:
            reply = httpx.post(
                self.caddy.url,
                content="SELECT 1",
                auth=(user, password),
                verify=str(self.caddy.ca),
                timeout=30,
            )
            if (reply.status_code == 200) == ok:
                return time.monotonic() - started
            assert time.monotonic() - started < timeout, reply.text
            time.sleep(0.2)

    def add(self, name: str) -> str:
        password = self.roster.add(name)
        self.wait_login(name, password, ok=True)
        return password


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prod]:
    folder = tmp_path_factory.mktemp("analysts")
    users_d = folder / "users.d"
    users_d.mkdir()
    for item in USERS_D.iterdir():
        (users_d / item.name).symlink_to(item)
    roster = Roster(folder / "volume" / "analysts" / "analysts.xml")
    roster.ensure()
    # compose.yaml mounts the volume's file into users.d
    (users_d / "analysts.xml").symlink_to(roster.path)
    docs = folder / "volume" / "dbt" / "docs"
    docs.mkdir(parents=True)
    clickhouse = ClickHouseProcess(
        folder / "data", users_d=users_d, env=dict(PASSWORDS), host=LOCAL
    ).start()
    caddy = Caddy(folder / "caddy", LOCAL, clickhouse.port, docs)
    try:
        caddy.start()
        url = f"http://loader:loader-pw@{LOCAL}:{clickhouse.port}/default"
        loader = clickhouse_client(url)
        try:
            bronze.migrate(loader, 90)
        finally:
            loader.close()
        built = dbt(["build"], f"http://dbt:dbt-pw@{LOCAL}:{clickhouse.port}", folder / "dbt")
        assert built.returncode == 0, built.stdout[-3000:]
        lines = RAW.read_bytes().splitlines(keepends=True)  # 2,387 real events
        write_bronze(url, [b"".join(lines[i : i + 1000]) for i in range(0, len(lines), 1000)])
        yield Prod(clickhouse, caddy, roster, docs, folder)
    finally:
        caddy.stop()
        clickhouse.stop()


def dbt(
    args: list[str], url: str, work: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_dbt(args, url, work_dir=work, timeout=1200, env=env)


def refused(call: Any) -> str:
    with pytest.raises(DatabaseError) as caught:
        call()
    return str(caught.value)


def test_an_added_analyst_logs_in_without_a_restart_and_reads_every_layer(prod: Prod) -> None:
    password = prod.roster.add("ann")
    # clickhouse-server reads users.d again every 2 s; the embedded server as well
    took = prod.wait_login("ann", password, ok=True)
    assert took < 15
    client = prod.client("ann", password)
    try:
        assert client.query("SELECT sum(events) FROM gold.wiki_totals").result_rows[0][0] > 0
        assert client.query("SELECT count() FROM silver.wiki").result_rows[0][0] > 0
        assert client.query(f"SELECT count() FROM {bronze.RAW_TABLE}").result_rows[0][0] > 0
        # their own database: made, written, dropped
        client.command("CREATE DATABASE IF NOT EXISTS dev_ann")
        client.command("CREATE TABLE dev_ann.t ENGINE = MergeTree ORDER BY a AS SELECT 1 AS a")
        assert client.query("SELECT count() FROM dev_ann.t").result_rows[0][0] == 1
        client.command("DROP TABLE dev_ann.t")
    finally:
        client.close()


def test_an_analyst_changes_nothing_of_production_and_reads_nobody_elses(prod: Prod) -> None:
    password = prod.add("dora")
    other = prod.add("eve")
    eve = prod.client("eve", other)
    dora = prod.client("dora", password)
    try:
        eve.command("CREATE DATABASE IF NOT EXISTS dev_eve")
        eve.command("CREATE TABLE dev_eve.secret ENGINE = Memory AS SELECT 42 AS x")
        # the statement, and the grant ClickHouse names as missing (a column list when
        # the statement names columns: INSERT(wiki, ...) ON gold.wiki_totals)
        cases = {
            "INSERT INTO gold.wiki_totals SELECT * FROM gold.wiki_totals LIMIT 1": (
                "INSERT",
                "ON gold.wiki_totals",
            ),
            "DROP TABLE silver.wiki": ("DROP TABLE", "ON silver.wiki"),
            "ALTER TABLE bronze.wiki_raw DELETE WHERE 1": ("ALTER DELETE", "ON bronze.wiki_raw"),
            "SELECT * FROM dev_eve.secret": ("SELECT", "ON dev_eve.secret"),
            "SELECT name FROM system.users": ("SHOW USERS", "ON *.*"),
            "CREATE TABLE gold.mine ENGINE = Memory AS SELECT 1": ("CREATE TABLE", "ON gold.mine"),
        }
        for sql, (privilege, target) in cases.items():
            message = refused(lambda sql=sql: dora.command(sql))
            assert "Code: 497" in message and "ACCESS_DENIED" in message, (sql, message)
            grant = message.split("necessary to have the grant ", 1)[-1]
            assert grant.startswith(privilege) and target in grant, (sql, message)
    finally:
        eve.close()
        dora.close()


def test_an_analyst_is_stopped_by_the_profiles_limits(prod: Prod) -> None:
    password = prod.add("finn")
    client = prod.client("finn", password)
    try:
        # max_result_rows 1,000,000 with result_overflow_mode throw (users.d, profile analyst)
        message = refused(lambda: client.query("SELECT number FROM numbers(2000000)"))
        assert "Code: 396" in message and "TOO_MANY_ROWS_OR_BYTES" in message, message
        # the limits cannot be raised (the profile's constraints)
        message = refused(
            lambda: client.query("SELECT 1", settings={"max_result_rows": 10_000_000})
        )
        assert "Code: 452" in message and "SETTING_CONSTRAINT_VIOLATION" in message, message
    finally:
        client.close()


def test_the_default_user_and_wrong_passwords_are_refused_through_caddy(prod: Prod) -> None:
    for auth in (None, ("default", ""), ("ann", "wrong"), ("loader", "")):
        reply = httpx.post(
            prod.caddy.url, content="SELECT 1", auth=auth, verify=str(prod.caddy.ca), timeout=30
        )
        # ClickHouse's statuses (exceptionCodeToHTTPStatus): 403 for AUTHENTICATION_FAILED,
        # 401 for REQUIRED_PASSWORD (a user with a password, none given)
        code = reply.headers["X-ClickHouse-Exception-Code"]
        assert (reply.status_code, code) in ((403, "516"), (401, "194")), (auth, reply.text)
    # `default` answers only on ClickHouse's own loopback (users.d: networks)
    reply = httpx.post(prod.caddy.url, content="SELECT 1", verify=str(prod.caddy.ca), timeout=30)
    assert "not allowed to connect from address" in reply.text


def test_the_docs_are_served_behind_the_clickhouse_login(prod: Prod) -> None:
    password = prod.add("gus")
    (prod.docs / "index.html").write_text("<html>the dbt docs: gold.wiki_totals</html>")
    ca = str(prod.caddy.ca)
    anonymous = httpx.get(f"{prod.caddy.url}/docs/", verify=ca, timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    wrong = httpx.get(f"{prod.caddy.url}/docs/", auth=("gus", "nope"), verify=ca, timeout=30)
    assert wrong.status_code == 403 and "Authentication failed" in wrong.text
    good = httpx.get(f"{prod.caddy.url}/docs/", auth=("gus", password), verify=ca, timeout=30)
    assert good.status_code == 200 and "gold.wiki_totals" in good.text
    moved = httpx.get(f"{prod.caddy.url}/docs", verify=ca, timeout=30)
    assert moved.status_code in (301, 302, 308) and moved.headers["location"].endswith("/docs/")


def test_dbt_builds_an_analysts_models_into_their_own_database_over_https(prod: Prod) -> None:
    """``dbt build --target prod_dev`` from an analyst's laptop: HTTPS through Caddy
    (secure: True, Caddy's CA trusted as a public CA would be), as the analyst, every
    model into dev_NAME as a view, its tests passing; production's silver and gold and
    their materialized views untouched."""
    password = prod.add("hana")
    before = prod_tables(prod)
    done = dbt(
        ["build", "--target", "prod_dev"],
        f"http://unused@{LOCAL}:{prod.clickhouse.port}",
        prod.work / "dbt-hana",
        {
            "DBT_CLICKHOUSE_HOST": "localhost",
            "DBT_CLICKHOUSE_PORT": str(prod.caddy.port),
            "DBT_CLICKHOUSE_USER": "hana",
            "DBT_CLICKHOUSE_PASSWORD": password,
            "SSL_CERT_FILE": str(prod.caddy.ca),
        },
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert " ERROR=0 " in done.stdout
    client = prod.client("hana", password)
    try:
        kinds = dict(
            client.query(
                "SELECT name, engine FROM system.tables WHERE database = 'dev_hana'"
            ).result_rows
        )
        assert kinds.get("wiki_totals") == "View" and kinds.get("wiki") == "View", kinds
        assert "MaterializedView" not in kinds.values()
        mine = client.query("SELECT sum(events) FROM dev_hana.wiki_totals").result_rows[0][0]
        prods = client.query("SELECT sum(events) FROM gold.wiki_totals").result_rows[0][0]
        assert mine == prods > 0
    finally:
        client.close()
    assert prod_tables(prod) == before


def prod_tables(prod: Prod) -> list[tuple[Any, ...]]:
    reply = httpx.post(
        prod.clickhouse.url,
        content="SELECT database, name, engine, metadata_modification_time FROM system.tables "
        "WHERE database IN ('bronze', 'silver', 'gold') ORDER BY database, name FORMAT TSV",
        auth=("dbt", "dbt-pw"),  # it holds a grant on each of them, so it sees them all
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    return [tuple(line.split("\t")) for line in reply.text.splitlines()]


def test_a_removed_analyst_cannot_log_in(prod: Prod) -> None:
    password = prod.add("ivan")
    client = prod.client("ivan", password)
    client.close()
    prod.roster.remove("ivan")
    took = prod.wait_login("ivan", password, ok=False)
    assert took < 15
    reply = httpx.post(
        prod.caddy.url,
        content="SELECT 1",
        auth=("ivan", password),
        verify=str(prod.caddy.ca),
        timeout=30,
    )
    assert reply.status_code == 403
    assert "ivan: Authentication failed" in reply.text
    # the others are still in
    assert "ivan" not in prod.roster.names() and "ann" in prod.roster.names()


def test_the_console_runs_a_query_as_the_analyst_in_a_browser(
    prod: Prod, request: pytest.FixtureRequest
) -> None:
    """/play through Caddy in headless Chromium: the analyst's own login, a query's rows
    in the page, a refusal as ClickHouse's own message; the password in the page's URL
    parameters stays out of Caddy's log."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    from .helpers.browser import wait_for

    password = prod.add("jo")
    # the suite's Chromium (tests/conftest.py's pytest_setup_options: headless, no sandbox)
    (options,) = request.config.hook.pytest_setup_options()
    # Caddy's internal CA is not in Chromium's store (httpx and dbt above verify it)
    options.accept_insecure_certs = True
    driver = webdriver.Chrome(options=options)
    try:
        driver.get(f"{prod.caddy.url}/play?user=jo")
        assert driver.find_element(By.ID, "user").get_attribute("value") == "jo"
        driver.find_element(By.ID, "password").send_keys(password)

        def run(sql: str) -> None:
            query = driver.find_element(By.ID, "query")
            query.clear()
            query.send_keys(sql)
            driver.find_element(By.ID, "run").click()

        run(
            "SELECT wiki, sum(events) AS events FROM gold.wiki_totals GROUP BY wiki "
            "ORDER BY events DESC LIMIT 3"
        )
        cells = wait_for(
            lambda: [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#data-table td")],
            what="the query's rows in the page",
        )
        assert len(cells) == 6 and int(cells[1]) > 0, cells
        run("SELECT * FROM system.users")
        error = wait_for(
            lambda: driver.find_element(By.ID, "error").text, what="ClickHouse's refusal"
        )
        assert "Code: 497" in error and "SHOW USERS" in error, error
    finally:
        driver.quit()
    log = prod.caddy.log.read_text()
    assert "password=REDACTED" in log
    assert password not in log


def test_the_operators_command_adds_lists_and_removes_analysts(tmp_path: Path) -> None:
    """deploy/bin/stack analyst as the operator runs it on the server (docker a stand-in
    that hands clickhouse-client's queries to the embedded server): the password shown
    once and on no command line, the login working before the command returns; a second
    add, an unknown removal and a bad name refused with the reason; a removed analyst
    refused, their dev database dropped."""
    volume = tmp_path / "volume"
    users_d = tmp_path / "users.d"
    users_d.mkdir()
    for item in USERS_D.iterdir():
        (users_d / item.name).symlink_to(item)
    Roster(volume / "analysts" / "analysts.xml").ensure()
    (users_d / "analysts.xml").symlink_to(volume / "analysts" / "analysts.xml")
    env_file = tmp_path / ".env"
    env_file.write_text(f"DATA_DIR='{volume}'\nDOMAIN='wiki-events.example.org'\n")
    server = ClickHouseProcess(tmp_path / "data", users_d=users_d, env=dict(PASSWORDS)).start()
    try:
        scripts = Scripts(tmp_path / "operator", server, None)

        def stack(*args: str) -> subprocess.CompletedProcess[str]:
            return scripts.stack("analyst", *args, COMPOSE_ENV_FILES=str(env_file))

        added = stack("add", "kim")
        assert added.returncode == 0, added.stdout + added.stderr
        (password,) = re.findall(r"^  password: (\S+)$", added.stdout, re.M)
        assert "https://wiki-events.example.org:8443" in added.stdout
        assert password not in scripts.argv_log.read_text()  # ps shows no password
        assert password not in (volume / "analysts" / "analysts.xml").read_text()
        kim = clickhouse_client(f"http://kim:{password}@127.0.0.1:{server.port}/default")
        kim.command("CREATE DATABASE dev_kim")
        kim.command("CREATE TABLE dev_kim.t ENGINE = Memory AS SELECT 1 AS a")
        kim.close()

        again = stack("add", "kim")
        assert again.returncode == 1 and "analyst kim exists already" in again.stderr
        bad = stack("add", "Kim")
        assert bad.returncode == 1 and "cannot name an analyst" in bad.stderr
        assert stack("list").stdout.split() == ["kim"]

        removed = stack("remove", "kim")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert "DROP DATABASE IF EXISTS dev_kim SYNC" in scripts.queries()
        reply = httpx.post(server.url, content="SELECT 1", auth=("kim", password), timeout=30)
        assert reply.status_code == 403 and "kim: Authentication failed" in reply.text
        databases = httpx.post(server.url, content="SHOW DATABASES", timeout=30).text.split()
        assert "dev_kim" not in databases
        unknown = stack("remove", "kim")
        assert unknown.returncode == 1 and "no analyst kim (the analysts: none)" in unknown.stderr
    finally:
        server.stop()


def test_wiki_events_sql_connects_with_an_https_url(prod: Prod) -> None:
    """`wiki-events sql` from an analyst's laptop: CLICKHOUSE_URL names the server, the
    port and the analyst's own user (the password URL-encoded)."""
    password = prod.add("lee")
    login = f"lee:{quote(password, safe='')}"
    env = {
        **os.environ,
        "CLICKHOUSE_URL": f"https://{login}@localhost:{prod.caddy.port}/default",
        "SSL_CERT_FILE": str(prod.caddy.ca),  # Caddy's internal CA, as a public CA would be
        "WIKI_EVENTS_DATA": str(prod.work / "lee"),
    }
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("wiki-events")),
            "sql",
            "--format",
            "TSV",
            "SELECT count() > 0 FROM gold.wiki_totals",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    refused_ = subprocess.run(
        [str(Path(sys.executable).with_name("wiki-events")), "sql", "DROP TABLE silver.wiki"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert refused_.returncode == 1 and "Code: 497" in refused_.stderr, refused_.stderr


def test_a_file_clickhouse_cannot_load_leaves_the_users_in_force(prod: Prod) -> None:
    """As clickhouse-server's reloader: a broken users.d file is logged and the users stay
    as they were; once it is fixed, the next change is read."""
    password = prod.add("max")
    broken = prod.work / "users.d" / "zz-broken.xml"
    broken.write_text("<clickhouse><users><half>")
    try:
        log = prod.clickhouse.log
        deadline = time.monotonic() + 30
        while "zz-broken.xml" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        assert "the users were not reloaded; the old ones stay in force" in log.read_text()
        prod.wait_login("max", password, ok=True, timeout=1)
        # a change while the broken file is there is not taken either
        other = prod.roster.add("nia")
        time.sleep(5)
        prod.wait_login("nia", other, ok=False, timeout=1)
    finally:
        broken.unlink()
    prod.wait_login("nia", other, ok=True)
    prod.wait_login("max", password, ok=True, timeout=1)


def test_a_query_running_across_a_reload_finishes_and_the_others_wait(prod: Prod) -> None:
    """A reload lets running queries finish (new ones wait a moment), as users on a real
    server notice nothing of a reload."""
    password = prod.add("ola")
    client = prod.client("ola", password, send_receive_timeout=60)
    results: list[Any] = []

    def slow() -> None:
        results.append(client.query("SELECT sleep(3), 7").result_rows)

    running = threading.Thread(target=slow)
    running.start()
    time.sleep(0.5)
    other = prod.roster.add("pim")  # the reload comes while sleep(3) runs
    took = prod.wait_login("pim", other, ok=True)
    running.join(30)
    client.close()
    assert results == [[(0, 7)]]
    assert took < 15
