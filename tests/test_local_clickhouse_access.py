"""Issue 20: every request is held to its user's grants, profile and quota as ClickHouse
computes them, and the attacks of the hostile probe (an admin, a readonly = 1 and a
readonly = 2 user) fail, each with the request the probe sent.

The users are ClickHouse's own users-file format; the production users
(deploy/clickhouse/users.d) are loaded as they are, onto clickhouse-server's users.xml.
"""

from __future__ import annotations

import asyncio
import http.server
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import brotli
import httpx
import psutil
import pytest
import zstandard

from .helpers.clickhouse import ClickHouseProcess
from .helpers.paths import ROOT, USERS_D

LIMIT = 256 << 20  # the per-query max_memory_usage of the probe's users
USERS = f"""<clickhouse>
  <profiles>
    <default>
      <input_format_values_interpret_expressions>1</input_format_values_interpret_expressions>
    </default>
    <ro><readonly>1</readonly><max_memory_usage>{LIMIT}</max_memory_usage></ro>
    <ro2><readonly>2</readonly><max_memory_usage>{LIMIT}</max_memory_usage></ro2>
    <writer><max_memory_usage>{LIMIT}</max_memory_usage></writer>
    <two_at_once><max_concurrent_queries_for_user>2</max_concurrent_queries_for_user></two_at_once>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
    </default>
    <ro><password>ropw</password><networks><ip>::/0</ip></networks><profile>ro</profile></ro>
    <ro2><password>ro2pw</password><networks><ip>::/0</ip></networks><profile>ro2</profile></ro2>
    <writer><password>wpw</password><networks><ip>::/0</ip></networks><profile>writer</profile>
    </writer>
    <counted><password>cpw</password><profile>default</profile><quota>five</quota></counted>
    <pair><password>ppw</password><profile>two_at_once</profile></pair>
    <elsewhere><password>epw</password><networks><ip>10.1.2.3</ip></networks></elsewhere>
  </users>
  <quotas>
    <default/>
    <five><interval><duration>3600</duration><queries>5</queries></interval></five>
  </quotas>
</clickhouse>
"""
RO = ("ro", "ropw")
RO2 = ("ro2", "ro2pw")
WRITER = ("writer", "wpw")


def start(folder: Path, users: str = USERS) -> ClickHouseProcess:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "users.xml"
    path.write_text(users)
    return ClickHouseProcess(folder / "data", users=path).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseProcess]:
    proc = start(tmp_path_factory.mktemp("access"))
    yield proc
    proc.stop()


def send(
    server: ClickHouseProcess,
    sql: str,
    auth: tuple[str, str] | None = None,
    **params: str,
) -> httpx.Response:
    return httpx.post(server.url, params=params, content=sql, auth=auth, timeout=120)


def code(r: httpx.Response) -> int | None:
    value = r.headers.get("X-ClickHouse-Exception-Code")
    return int(value) if value else None


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("the admin password is hunter2\n")
    return path


# -- 1. a read-only user reads no file ----------------------------------------------------


def test_external_values_data_cannot_call_file(server: ClickHouseProcess) -> None:
    # curl -u ro:ropw -F x=@u.txt -F 'x_structure=a String' -F x_format=Values
    #      -F 'query=SELECT a FROM x'   with u.txt = (file('<the users file>'))
    for target in (server.users, Path("/proc/self/environ")):
        r = httpx.post(
            server.url,
            data={"query": "SELECT a FROM x", "x_structure": "a String", "x_format": "Values"},
            files={"x": ("u.txt", f"(file('{target}'))".encode(), "text/plain")},
            auth=RO,
        )
        assert r.status_code != 200, r.text
        assert "ropw" not in r.text and "PATH=" not in r.text, r.text
    # literals still arrive as data
    r = httpx.post(
        server.url,
        data={"query": "SELECT a FROM x", "x_structure": "a String", "x_format": "Values"},
        files={"x": ("u.txt", b"('file(x)')", "text/plain")},
        auth=RO,
    )
    assert r.text == "file(x)\n", r.text


def test_a_readonly_2_user_reads_no_file(server: ClickHouseProcess) -> None:
    r = send(server, "SELECT * FROM `/etc/issue`", auth=RO2)
    assert code(r) == 291, r.text
    session = {"session_id": uuid.uuid4().hex}
    assert (
        send(server, "CREATE TEMPORARY TABLE tmp (a String)", auth=RO2, **session).status_code
        == 200
    )
    r = send(server, "INSERT INTO tmp VALUES (file('/etc/hostname'))", auth=RO2, **session)
    assert r.status_code != 200 and code(r) == 344, r.text  # expressions are off
    # ... and the profile's constraint keeps them off
    r = send(server, "SET input_format_values_interpret_expressions = 1", auth=RO2, **session)
    assert code(r) == 452, r.text
    assert send(server, "SELECT count() FROM tmp", auth=RO2, **session).text == "0\n"


# -- 2. the admin stays inside the user files folder ---------------------------------------


ADMIN_FILE_ATTEMPTS = [
    "SELECT * FROM '{p}'",
    "SELECT * FROM default.`{p}`",
    'SELECT * FROM default."{p}"',
    "CREATE DICTIONARY d_{u} (a String) PRIMARY KEY a SOURCE(CLICKHOUSE(query "
    "'SELECT * FROM \\'{p}\\'')) LAYOUT(FLAT()) LIFETIME(0)",
    "CREATE DATABASE d_{u} ENGINE = Filesystem('{d}')",
    "SELECT * FROM filesystem('{d}')",
    "SELECT * FROM format(Values, 'a String', '(file(''{p}''))')",
]


@pytest.mark.parametrize("template", ADMIN_FILE_ATTEMPTS)
def test_the_admin_reads_no_file_outside_user_files(
    server: ClickHouseProcess, secret: Path, template: str
) -> None:
    sql = template.format(p=secret, d=secret.parent, u=uuid.uuid4().hex[:8])
    r = send(server, sql)
    assert r.status_code != 200, r.text
    assert "hunter2" not in r.text and "secret.txt" not in r.text.split("`")[0], r.text


@pytest.mark.parametrize(
    "sql, value",
    [
        ("SELECT * FROM {t:Identifier}", "{p}"),
        ("SELECT * FROM default.{t:Identifier}", "{p}"),
        ("SELECT * FROM {t:Identifier}", "../../../../../../../..{p}"),
    ],
)
def test_a_parameter_names_no_file_outside_user_files(
    server: ClickHouseProcess, tmp_path_factory: pytest.TempPathFactory, sql: str, value: str
) -> None:
    """The engine substitutes the parameter: the guard judges the query with it (a
    server has no table named by a path at all). The path holds no guarded word, as
    /etc/hostname does not."""
    secret = tmp_path_factory.mktemp("plain") / "secret.txt"
    secret.write_text("the admin password is hunter2\n")
    r = send(server, sql, param_t=value.format(p=secret))
    assert r.status_code != 200 and code(r) == 291, r.text
    assert "hunter2" not in r.text


def test_a_data_lake_catalog_database_reaches_no_host(
    server: ClickHouseProcess, listener: Listener
) -> None:
    """The DataLakeCatalog database engine asks its catalog's URL when it is created."""
    r = send(
        server,
        f"CREATE DATABASE dl_{uuid.uuid4().hex[:8]} ENGINE = DataLakeCatalog("
        f"'http://127.0.0.1:{listener.port}/cat') SETTINGS catalog_type = 'rest', warehouse = 'w'",
        allow_experimental_database_iceberg="1",
        allow_database_iceberg="1",
    )
    time.sleep(0.3)
    assert code(r) == 481 and listener.hits == [], (r.text, listener.hits)


def test_a_parameter_set_in_a_session_names_no_file(
    server: ClickHouseProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A session's SET param_t is substituted in a later request, whose text does not
    show it: a value that could name something guarded is refused when it is set."""
    secret = tmp_path_factory.mktemp("plain") / "secret.txt"
    secret.write_text("the admin password is hunter2\n")
    session = {"session_id": uuid.uuid4().hex}
    r = send(server, f"SET param_t = '{secret}'", **session)
    assert code(r) == 497 and "send it with the request" in r.text, r.text
    r = send(server, "SELECT * FROM {t:Identifier}", **session)
    assert r.status_code != 200 and "hunter2" not in r.text, r.text
    # an ordinary value is set and substituted as on a server
    assert send(server, "SET param_band = 'AC / DC'", **session).status_code == 200
    r = send(server, "SELECT {band:String}", **session)
    assert r.status_code == 200 and r.text == "AC / DC\n", r.text


def test_a_relative_path_is_inside_user_files_not_where_the_server_started(
    server: ClickHouseProcess,
) -> None:
    """The server starts from the repository (ClickHouseProcess's cwd): a table named by
    a relative path resolves in the user files folder, as file() does on a server."""
    assert (ROOT / "pyproject.toml").exists()
    for sql in ("SELECT * FROM 'pyproject.toml'", "SELECT _path FROM '*' LIMIT 5"):
        r = send(server, sql)
        assert "build-system" not in r.text and str(ROOT) not in r.text, r.text


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM eval(unhex('{hexed}')) SETTINGS allow_experimental_eval_table_function = 1",
        "SELECT * FROM python(os)",
        "SELECT * FROM arrowstream('x')",
    ],
)
def test_functions_no_server_has_or_no_check_sees_are_refused(
    server: ClickHouseProcess, sql: str
) -> None:
    hexed = b"SELECT * FROM '/etc/hostname'".hex()
    r = send(server, sql.format(hexed=hexed))
    assert code(r) == 497 and "not available in the embedded ClickHouse" in r.text, r.text


def test_every_table_function_is_judged(server: ClickHouseProcess) -> None:
    """Each of the engine's table functions is one the guard checks (paths, hosts,
    refused) or one that reads only the server's own tables and generators: a chDB
    upgrade that brings a new one fails here until it is placed."""
    from local_clickhouse import guard

    local = {
        "sqlstandardvalues", "dictionary", "format", "fuzzjson", "fuzzquery", "generaterandom",
        "generateseries", "generate_series", "input", "loop", "merge", "mergetreeanalyzeindexes",
        "mergetreeanalyzeindexesuuid", "mergetreecodecblockcounts", "mergetreeindex",
        "mergetreeprojection", "mergetreetextindex", "null", "numbers", "numbers_mt", "primes",
        "prometheusquery", "prometheusqueryrange", "timeseriesdata", "timeseriesmetricfamilies",
        "timeseriesmetrics", "timeseriessamples", "timeseriesselector", "timeseriestags",
        "values", "view", "viewexplain", "viewifpermitted", "zeros", "zeros_mt",
        "executable",  # runs only the admin's user_scripts folder, as on a server
    }  # fmt: skip
    judged = guard.PATH_FUNCTIONS | guard.NETWORK_FUNCTIONS | guard.REFUSED_FUNCTIONS
    names = send(server, "SELECT lower(name) FROM system.table_functions").text.split()
    assert len(names) > 50
    assert sorted(set(names) - judged - local) == []
    # every guarded name has a trigger in it, or the guard would not parse the query
    for name in judged:
        assert guard._could_name(name.encode()), name


def test_a_division_is_not_a_path(server: ClickHouseProcess) -> None:
    """A slash with white space on both sides is a division: nothing to refuse."""
    r = send(server, "SELECT 6 / {d:UInt8} AS half, 'a / b' AS text", param_d="2")
    assert r.status_code == 200 and r.text == "3\ta / b\n", r.text


def test_format_values_data_from_a_parameter_cannot_call_file(
    server: ClickHouseProcess, secret: Path
) -> None:
    r = send(
        server,
        "SELECT * FROM format(Values, 'a String', {p:String})",
        param_p=f"(file('{secret}'))",
    )
    assert r.status_code != 200 and "hunter2" not in r.text, r.text


def test_the_admin_writes_no_file_outside_user_files(
    server: ClickHouseProcess, secret: Path
) -> None:
    for sql, params in (
        (f"INSERT INTO `{secret}` SELECT 'owned'", {}),
        (f"INSERT INTO `{secret}` SELECT 'owned'", {"engine_file_truncate_on_insert": "1"}),
    ):
        r = send(server, sql, **params)
        assert code(r) == 291, r.text
    assert secret.read_text() == "the admin password is hunter2\n"


# -- 3. no outbound network with the network switched off -----------------------------------


class Listener:
    """A local HTTP server that records every request it gets."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"the body of a local port\n")

            do_GET = do_PUT = do_POST = do_HEAD = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    catcher = Listener()
    yield catcher
    catcher.close()


NETWORK_ATTEMPTS = [
    "SELECT * FROM format(Values, 'c String', "
    "'((SELECT any(c) FROM url(''http://127.0.0.1:{port}/x'', RawBLOB, ''c String'')))')",
    "CREATE DICTIONARY {db}.d (a String) PRIMARY KEY a "
    "SOURCE(CLICKHOUSE(HOST '127.0.0.1' PORT {port} TABLE 'x')) LAYOUT(FLAT()) LIFETIME(0)",
    "CREATE DICTIONARY {db}.d (a String) PRIMARY KEY a SOURCE(clickhouse(port {port} table 'x')) "
    "LAYOUT(FLAT()) LIFETIME(0)",
    "CREATE TABLE {db}.w (a Int8) ENGINE = MergeTree ORDER BY a "
    "SETTINGS disk = disk(type = web, endpoint = 'http://127.0.0.1:{port}/')",
    "CREATE TABLE {db}.s (a Int8) ENGINE = MergeTree ORDER BY a SETTINGS disk = disk(type = s3, "
    "endpoint = 'http://127.0.0.1:{port}/b/', access_key_id = 'k', secret_access_key = 's')",
    "SELECT * FROM bigquery('p', 'd', 't', access_token = 'x', "
    "base_url = 'http://127.0.0.1:{port}')",
    # eval() builds its query while it runs: url() spelled by concat, hidden in hex
    "SELECT * FROM eval(concat('SELECT * FROM u', 'rl(''http://127.0.0.1:{port}/x'', "
    "RawBLOB)')) SETTINGS allow_experimental_eval_table_function = 1",
]


@pytest.mark.parametrize("template", NETWORK_ATTEMPTS)
def test_nothing_reaches_a_local_port(
    server: ClickHouseProcess, listener: Listener, template: str
) -> None:
    db = f"n_{uuid.uuid4().hex[:8]}"
    assert send(server, f"CREATE DATABASE {db}").status_code == 200
    try:
        r = send(server, template.format(port=listener.port, db=db))
        time.sleep(0.3)
        assert r.status_code != 200, r.text
        assert "local port" not in r.text
        assert listener.hits == []
        # the read-only user cannot make it happen through a dictionary either
        r = send(server, f"SELECT dictGet('{db}.d', 'a', 'x')", auth=RO)
        assert r.status_code != 200 and listener.hits == []
    finally:
        send(server, f"DROP DATABASE IF EXISTS {db}")


# -- 4. memory: no request takes the server past its user's limit (a fresh server each) ---

# What one request may add to the server's resident memory beyond the user's
# max_memory_usage (256 MiB). Measured (issue 20's note): a 4 GiB brotli bomb +18 MiB,
# 300 MB multipart +1 MiB (both refused at the user's limit), one 512 MiB field
# +183-197 MiB (refused at 32 MiB), 1 GiB of rows +226 MiB (loaded) on a quiet machine;
# with the whole suite and a stack beside it (load 4-15) 1 GiB of rows took +312 and
# +316 MiB in 2 runs of about 10: its ~100 MiB blocks (a million rows) are parsed while
# the one before is written, and freed blocks stay resident in the allocator a while.
MARGIN = 64 << 20


def _peak_growth(proc: ClickHouseProcess, act: Callable[[], httpx.Response]) -> tuple[int, Any]:
    assert proc.proc is not None
    process = psutil.Process(proc.proc.pid)
    time.sleep(0.5)
    base = process.memory_info().rss
    peak = [base]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        response = act()
        time.sleep(0.3)
    finally:
        done.set()
        watcher.join()
    return peak[0] - base, response


BOUNDARY = "----wiki-events-boundary"


def _multipart(size: int) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="query"\r\n\r\n'
        f"SELECT count() FROM x\r\n--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="x_structure"\r\n\r\na String\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="x"; filename="x"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    block = (b"a" * 1023 + b"\n") * 1024
    for _ in range(size // len(block)):
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def _brotli_bomb(size: int) -> bytes:
    compressor = brotli.Compressor(quality=1)
    return b"".join(compressor.process(p) for p in _multipart(size)) + compressor.finish()


def _one_field(size: int) -> bytes:
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    block = b"x" * (1 << 20)
    out = [compressor.compress(block) for _ in range(size >> 20)]
    return b"".join(out) + compressor.compress(b"\n") + compressor.flush()


def _rows(size: int) -> Iterator[bytes]:
    block = (b"y" * 99 + b"\n") * (1 << 14)
    for _ in range(size // len(block)):
        yield block


MEMORY_ATTACKS: dict[str, Callable[[str], httpx.Response]] = {
    # 1,586 bytes of brotli: a multipart external table of 4 GiB, by the read-only user
    "brotli multipart bomb": lambda url: httpx.post(
        url,
        content=_brotli_bomb(4 << 30),
        headers={**MULTIPART, "Content-Encoding": "br"},
        auth=RO,
        timeout=300,
    ),
    "300 MB multipart": lambda url: httpx.post(
        url, content=_multipart(300 << 20), headers=MULTIPART, auth=RO, timeout=300
    ),
    # a 16 KB zstd INSERT body holding one 512 MiB field
    "one 512 MiB field": lambda url: httpx.post(
        url,
        params={"query": "INSERT INTO big FORMAT TSV"},
        content=_one_field(512 << 20),
        headers={"Content-Encoding": "zstd"},
        auth=WRITER,
        timeout=300,
    ),
    "1 GiB of rows": lambda url: httpx.post(
        url,
        params={"query": "INSERT INTO big FORMAT TSV"},
        content=_rows(1 << 30),
        auth=WRITER,
        timeout=600,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("attack", list(MEMORY_ATTACKS))
def test_one_request_raises_memory_by_at_most_its_users_limit(tmp_path: Path, attack: str) -> None:
    proc = start(tmp_path)
    try:
        ok = send(proc, "CREATE TABLE big (s String) ENGINE = MergeTree ORDER BY tuple()")
        assert ok.status_code == 200
        # the request's memory, not the background merges' of the parts it writes (their own
        # limits; on a loaded machine parts pile up and a merge of many reads them all at once)
        assert send(proc, "SYSTEM STOP MERGES big").status_code == 200
        growth, r = _peak_growth(proc, lambda: MEMORY_ATTACKS[attack](proc.url))
        assert growth <= LIMIT + MARGIN, (attack, growth >> 20, r.status_code, r.text[:300])
        if attack == "1 GiB of rows":
            assert r.status_code == 200, r.text  # bounded, not refused
        else:
            assert r.status_code in (400, 500), r.text
            assert code(r) in (36, 131, 241), r.text  # a limit, named
        # the server goes on
        assert send(proc, "SELECT 1").text == "1\n"
    finally:
        proc.stop()


# -- 5. one user's slow queries do not hold another's ---------------------------------------


@pytest.mark.slow
def test_three_hundred_slow_queries_of_one_user_do_not_hold_the_admin(tmp_path: Path) -> None:
    proc = start(tmp_path)

    async def attack() -> float:
        limits = httpx.Limits(max_connections=400)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            tasks = [
                asyncio.create_task(client.post(proc.url, content="SELECT sleep(3)", auth=RO))
                for _ in range(300)
            ]
            await asyncio.sleep(1.5)
            worst = 0.0
            for _ in range(10):
                started = time.perf_counter()
                r = await client.post(proc.url, content="SELECT 1")
                worst = max(worst, time.perf_counter() - started)
                assert r.text == "1\n"
                await asyncio.sleep(0.2)
            running = sum(1 for t in tasks if not t.done())
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert running > 200  # the admin was measured while the user's queue stood
            return worst

    try:
        worst = asyncio.run(attack())
        assert worst < 1.0, worst
    finally:
        # the user's queue would take a minute to drain (its clients are gone, and as on
        # a real server their queries still run): not waited for
        proc.stop(signal.SIGKILL)


# -- 6. the smaller ones --------------------------------------------------------------------


def test_a_thousand_external_tables_are_a_bad_request(server: ClickHouseProcess) -> None:
    files = {f"t{i}": (f"t{i}", b"1\n", "text/plain") for i in range(1000)}
    data = {"query": "SELECT 1", **{f"t{i}_structure": "a UInt8" for i in range(1000)}}
    r = httpx.post(server.url, data=data, files=files, auth=RO, timeout=120)
    assert r.status_code == 400 and code(r) == 36, r.text


def test_deeply_nested_parentheses_get_the_parsers_answer(server: ClickHouseProcess) -> None:
    r = send(server, "SELECT " + "(" * 100_000 + "1" + ")" * 100_000)
    assert code(r) == 306 and "Maximum parse depth" in r.text, r.text[:300]


def test_decompress_1_is_refused_and_stores_nothing(server: ClickHouseProcess) -> None:
    send(server, "CREATE TABLE IF NOT EXISTS dz (s String) ENGINE = MergeTree ORDER BY s")
    r = httpx.post(
        server.url,
        params={"query": "INSERT INTO dz FORMAT TSV", "decompress": "1"},
        content=zstandard.ZstdCompressor().compress(b"a\nb\n"),
    )
    assert r.status_code == 501 and code(r) == 48, r.text
    assert send(server, "SELECT count() FROM dz").text == "0\n"


# -- ClickHouse's access control: grants, profiles, quotas, hosts ---------------------------


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseProcess]:
    """The production users (deploy/clickhouse/users.d) on clickhouse-server's users.xml."""
    folder = tmp_path_factory.mktemp("production")
    env = {
        f"CLICKHOUSE_{role.upper()}_PASSWORD": f"{role}-pw"
        for role in ("loader", "dbt", "dashboard", "backup", "dumps")
    }
    proc = ClickHouseProcess(folder / "data", users_d=USERS_D, env=env).start()
    for db in ("bronze", "silver", "gold"):
        send(proc, f"CREATE DATABASE IF NOT EXISTS {db}")
    send(proc, "CREATE TABLE gold.g (a UInt8) ENGINE = MergeTree ORDER BY a")
    send(proc, "CREATE TABLE silver.s (a UInt8) ENGINE = MergeTree ORDER BY a")
    send(proc, "CREATE TABLE bronze.b (a UInt8) ENGINE = MergeTree ORDER BY a")
    yield proc
    proc.stop()


def who(role: str) -> tuple[str, str]:
    return role, f"{role}-pw"


@pytest.mark.parametrize(
    ("role", "sql", "missing"),
    [
        ("dashboard", "INSERT INTO gold.g VALUES (1)", "INSERT"),
        ("dashboard", "SELECT * FROM bronze.b", "SELECT"),
        ("dashboard", "SELECT count() FROM system.processes", "SELECT"),
        ("dbt", "DROP TABLE bronze.b", "DROP TABLE"),
        ("dbt", "INSERT INTO bronze.b VALUES (1)", "INSERT"),
        ("loader", "CREATE DATABASE elsewhere", "CREATE DATABASE"),
        ("loader", "SELECT * FROM gold.g", "SELECT"),
        ("loader", "SELECT * FROM file('x.csv', 'CSV', 'a String')", "READ ON FILE"),
        ("dumps", "DROP TABLE gold.g", "DROP TABLE"),
        ("backup", "SELECT * FROM silver.s", "SELECT"),
    ],
)
def test_production_users_are_held_to_their_grants(
    production: ClickHouseProcess, role: str, sql: str, missing: str
) -> None:
    r = send(production, sql, auth=who(role))
    assert r.status_code == 403 and code(r) == 497, r.text
    assert f"{role}: Not enough privileges" in r.text and missing in r.text, r.text


def test_production_users_do_what_they_are_granted(production: ClickHouseProcess) -> None:
    assert (
        send(production, "INSERT INTO bronze.b VALUES (1)", auth=who("loader")).status_code == 200
    )
    assert send(production, "SELECT count() FROM bronze.b", auth=who("dbt")).text == "1\n"
    r = send(production, "CREATE TABLE gold.t (a UInt8) ENGINE = Memory", auth=who("dbt"))
    assert r.status_code == 200, r.text
    assert send(production, "SELECT count() FROM gold.g", auth=who("dashboard")).text == "0\n"
    # the dashboard's profile: readonly = 1 and a result bound, as ClickHouse applies it
    r = send(
        production,
        "SELECT getSetting('readonly'), getSetting('max_result_rows')",
        auth=who("dashboard"),
    )
    assert r.text == "1\t100000\n", r.text
    # the default user answers only on the machine itself (networks: localhost)
    assert send(production, "SELECT 1").text == "1\n"


def test_no_client_picks_another_role_or_kills_without_the_grant(
    production: ClickHouseProcess,
) -> None:
    for sql in (
        "SET ROLE ALL",
        "SET ROLE __embedded_internal",
        "SET DEFAULT ROLE ALL TO dashboard",
    ):
        r = send(production, sql, auth=who("dbt"))
        assert code(r) == 497, r.text
    r = send(production, "KILL QUERY WHERE 1", auth=who("dbt"))
    assert code(r) == 497 and "KILL QUERY" in r.text, r.text
    r = httpx.post(production.url, params={"role": "__embedded_internal"}, content="SELECT 1")
    assert code(r) == 48, r.text


def test_a_view_runs_as_a_named_definer_only(production: ClickHouseProcess) -> None:
    r = send(
        production, "CREATE VIEW gold.v1 SQL SECURITY DEFINER AS SELECT 1 AS a", auth=who("dbt")
    )
    assert code(r) == 497 and "DEFINER = dbt" in r.text, r.text
    r = send(
        production,
        "CREATE VIEW gold.v2 DEFINER = dbt SQL SECURITY DEFINER AS SELECT a FROM silver.s",
        auth=who("dbt"),
    )
    assert r.status_code == 200, r.text
    # the dashboard reads through it with dbt's rights, as on a real server
    assert send(production, "SELECT count() FROM gold.v2", auth=who("dashboard")).text == "0\n"
    r = send(
        production,
        "CREATE VIEW gold.v3 DEFINER = loader SQL SECURITY DEFINER AS SELECT 1",
        auth=who("dbt"),
    )
    assert code(r) == 497 and "SET DEFINER" in r.text, r.text


def test_the_values_constraint_holds_for_every_production_user(
    production: ClickHouseProcess,
) -> None:
    r = send(production, "SET input_format_values_interpret_expressions = 1", auth=who("loader"))
    assert code(r) == 452, r.text
    r = send(production, "INSERT INTO bronze.b VALUES (1 + 1)", auth=who("loader"))
    assert code(r) == 344, r.text


def test_a_quota_counts_one_users_queries(server: ClickHouseProcess) -> None:
    for _ in range(5):
        assert send(server, "SELECT 1", auth=("counted", "cpw")).text == "1\n"
    r = send(server, "SELECT 1", auth=("counted", "cpw"))
    assert code(r) == 201 and "queries = 5/5" in r.text, r.text
    assert send(server, "SELECT 1").text == "1\n"  # other users are not counted with it


def test_max_concurrent_queries_for_user(server: ClickHouseProcess) -> None:
    results: list[httpx.Response] = []
    slow = [
        threading.Thread(
            target=lambda: results.append(send(server, "SELECT sleep(2)", auth=("pair", "ppw")))
        )
        for _ in range(2)
    ]
    for t in slow:
        t.start()
    time.sleep(0.8)
    r = send(server, "SELECT 1", auth=("pair", "ppw"))
    for t in slow:
        t.join()
    assert code(r) == 202 and "maximum: 2" in r.text, r.text
    assert [x.status_code for x in results] == [200, 200]


def test_a_user_connects_only_from_its_networks(server: ClickHouseProcess) -> None:
    r = send(server, "SELECT 1", auth=("elsewhere", "epw"))
    assert code(r) == 516 and "not allowed to connect from" in r.text, r.text


# -- an INSERT that fails as it finishes is an error, not a 200 ---------------------------


def test_an_insert_whose_materialized_view_fails_is_an_error(server: ClickHouseProcess) -> None:
    # chDB's streamed insert lets an error at its end pass (the rows of the table itself
    # are in): the server reads the insert's outcome back and answers it
    db = f"f_{uuid.uuid4().hex[:8]}"
    for sql in (
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.src (a Int32) ENGINE = MergeTree ORDER BY a",
        f"CREATE TABLE {db}.dst (a Int32) ENGINE = MergeTree ORDER BY a",
        f"CREATE MATERIALIZED VIEW {db}.mv TO {db}.dst AS "
        f"SELECT throwIf(a = 5, 'the view refuses 5') + a AS a FROM {db}.src",
    ):
        assert send(server, sql).status_code == 200, sql
    for session in ({}, {"session_id": uuid.uuid4().hex}):
        r = httpx.post(
            server.url,
            params={"query": f"INSERT INTO {db}.src FORMAT TSV", **session},
            content=b"1\n5\n",
        )
        assert r.status_code == 500 and code(r) == 395, r.text
        assert "the view refuses 5" in r.text
    r = httpx.post(server.url, params={"query": f"INSERT INTO {db}.src FORMAT TSV"}, content=b"2\n")
    assert r.status_code == 200, r.text
    assert send(server, f"SELECT groupArray(a) FROM {db}.dst").text == "[2]\n"
