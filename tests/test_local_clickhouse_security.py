"""The embedded ClickHouse attacked over real HTTP, as a local adversary or a web page
would: files outside the user files folder, GET that writes, read-only users that kill,
multi-statement requests, malformed credentials."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers.clickhouse import READONLY_USER, ClickHouseProcess

ADMIN = ("loader", "load-secret")


def send(
    server: ClickHouseProcess,
    sql: str,
    auth: tuple[str, str] | None = ADMIN,
    method: str = "POST",
    **params: str,
) -> httpx.Response:
    if method == "GET":
        return httpx.get(server.url, params={"query": sql, **params}, auth=auth, timeout=60)
    return httpx.post(server.url, params=params, content=sql, auth=auth, timeout=60)


def code(r: httpx.Response) -> int | None:
    value = r.headers.get("X-ClickHouse-Exception-Code")
    return int(value) if value else None


@pytest.fixture
def db(clickhouse: ClickHouseProcess) -> Iterator[str]:
    name = f"s_{uuid.uuid4().hex[:12]}"
    assert send(clickhouse, f"CREATE DATABASE {name}").status_code == 200
    yield name
    send(clickhouse, f"DROP DATABASE IF EXISTS {name}")


# -- 1. files: only inside the user files folder, for every user ---------------------------


def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("the admin password is hunter2\n")
    return path


READ_ATTEMPTS = [
    "SELECT file('{p}')",
    "SELECT * FROM file('{p}', 'LineAsString')",
    "select /* hide */ FILE('{p}')",
    "SELECT `fi\\x6ce`('{p}')",  # an escaped identifier spells file
    "SELECT \"fi\\x6ce\"('{p}')",
    "SELECT file(concat('{p}', ''))",
    "WITH (x) -> file(x) AS f SELECT f('{p}')",
    "SELECT * FROM file('{{..,x}}/../../../../../../../..{p}', 'LineAsString')",
    "SELECT * FROM file('../../../../../../../../..{p}', 'LineAsString')",
    "SELECT * FROM fileCluster('default', '{p}', 'LineAsString')",
    "SELECT * FROM url('file://{p}', 'LineAsString')",
    "SELECT * FROM url(concat('file://', '{p}'), 'LineAsString')",
    "SELECT * FROM sqlite('{p}', 't')",
    "SELECT $$'$$ AS a, file('{p}') --'",
]


@pytest.mark.parametrize("template", READ_ATTEMPTS)
@pytest.mark.parametrize("who", ["admin", "readonly"])
def test_no_user_reads_a_file_outside_user_files(
    clickhouse: ClickHouseProcess, tmp_path: Path, template: str, who: str
) -> None:
    secret = secret_file(tmp_path)
    auth = ADMIN if who == "admin" else READONLY_USER
    r = send(clickhouse, template.format(p=secret), auth=auth)
    assert r.status_code != 200, r.text
    assert "hunter2" not in r.text
    assert code(r) in (291, 164, 497), r.text


def test_the_users_file_is_not_readable(clickhouse: ClickHouseProcess) -> None:
    assert clickhouse.users is not None
    for auth in (ADMIN, READONLY_USER):
        r = send(clickhouse, f"SELECT file('{clickhouse.users}')", auth=auth)
        assert code(r) == 291 and "dash-secret" not in r.text, r.text
    r = send(clickhouse, "SELECT file({p:String})", param_p=str(clickhouse.users))
    assert code(r) == 291 and "dash-secret" not in r.text, r.text


WRITE_ATTEMPTS = [
    "SELECT 'owned' INTO OUTFILE '{p}'",
    "SELECT 'owned' INTO OUTFILE '{p}' APPEND",
    "SELECT 'owned' INTO OUTFILE '{p}' TRUNCATE",
    "select 'owned' /* c */ into\n-- x\n outfile '{p}' TRUNCATE",
    "SELECT $$'$$ INTO OUTFILE '{p}' --'",
    "INSERT INTO FUNCTION file('{p}', 'LineAsString', 's String') VALUES ('owned')",
    "INSERT INTO FUNCTION file('../../../../../../../..{p}', 'LineAsString', 's String') "
    "VALUES ('owned')",
    "CREATE TABLE {db}.f (s String) ENGINE = File(LineAsString, '{p}')",
    "CREATE TABLE {db}.f (s String) ENGINE = File(LineAsString, `{p}`)",
    "CREATE TABLE {db}.r (k String) ENGINE = EmbeddedRocksDB(0, '{d}') PRIMARY KEY k",
    "ATTACH TABLE {db}.a FROM '{d}' (s String) ENGINE = MergeTree ORDER BY s",
    "CREATE FUNCTION f_{db} AS (p) -> file(p)",
    "CREATE DICTIONARY {db}.x (a String) PRIMARY KEY a SOURCE(EXECUTABLE(command "
    "'touch {p}' format 'TSV')) LAYOUT(FLAT()) LIFETIME(0)",
    "CREATE DICTIONARY {db}.x (a String) PRIMARY KEY a SOURCE(FILE(path '{p}' format "
    "'TSV')) LAYOUT(FLAT()) LIFETIME(0)",
    "CREATE DICTIONARY {db}.x (a String) PRIMARY KEY a SOURCE(CLICKHOUSE(query "
    "'SELECT file(\\'{p}\\') AS a')) LAYOUT(FLAT()) LIFETIME(0)",
]


@pytest.mark.parametrize("template", WRITE_ATTEMPTS)
def test_no_user_writes_a_file_outside_user_files(
    clickhouse: ClickHouseProcess, tmp_path: Path, db: str, template: str
) -> None:
    target = tmp_path / "target.txt"
    target.write_text("original\n")
    folder = tmp_path / "folder"
    sql = template.format(p=target, d=folder, db=db)
    for auth, method in ((ADMIN, "POST"), (READONLY_USER, "POST"), (None, "GET")):
        r = send(clickhouse, sql, auth=auth, method=method)
        assert r.status_code != 200, (auth, method, r.text)
        assert code(r) in (291, 358, 164, 497), r.text
    assert target.read_text() == "original\n"
    assert not folder.exists()
    assert send(clickhouse, f"SELECT count() FROM system.tables WHERE database = '{db}'").text == (
        "0\n"
    )


def test_files_inside_user_files_work(clickhouse: ClickHouseProcess) -> None:
    name = f"out-{uuid.uuid4().hex[:8]}.tsv"
    user_files = clickhouse.data / "user_files"
    r = send(clickhouse, f"INSERT INTO FUNCTION file('{name}', 'TSV', 'a UInt8') VALUES (1), (2)")
    assert r.status_code == 200, r.text
    assert (user_files / name).read_text() == "1\n2\n"
    assert send(clickhouse, f"SELECT sum(a) FROM file('{name}', 'TSV', 'a UInt8')").text == "3\n"
    absolute = user_files / name
    assert send(clickhouse, f"SELECT count() FROM file('{absolute}', 'TSV')").text == "2\n"
    glob = send(clickhouse, "SELECT count() > 1 FROM file('out-*.tsv', 'TSV', 'a UInt8')")
    assert glob.text == "1\n", glob.text
    assert send(clickhouse, f"SELECT length(file('{name}'))").text == "4\n"
    # the read-only user reads there too (the engine refuses it the table function)
    r = send(clickhouse, f"SELECT length(file('{name}'))", auth=READONLY_USER)
    assert r.text == "4\n", r.text


# -- 3. GET is read-only by the engine's decision; 4. read-only users cannot KILL ---------


@pytest.mark.parametrize(
    "sql",
    [
        "DETACH TABLE {db}.t PERMANENTLY",
        "DETACH TABLE {db}.t",
        "ATTACH TABLE {db}.t",
        "DROP TABLE {db}.t",
        "SYSTEM STOP MERGES",
        "SYSTEM STOP MERGES {db}.t",
        "/* /* nested */ SELECT 1 */ SYSTEM STOP MERGES",
        "KILL QUERY WHERE 1",
        "KILL QUERY WHERE 1 SYNC",
        "INSERT INTO FUNCTION file('get.tsv', 'TSV', 'a UInt8') VALUES (1)",
        "INSERT INTO {db}.t VALUES (2)",
        "SELECT 1 INTO OUTFILE 'get.tsv'",
        "OPTIMIZE TABLE {db}.t FINAL",
        "CREATE TABLE {db}.n (a UInt8) ENGINE = Memory",
    ],
)
def test_get_never_changes_anything(clickhouse: ClickHouseProcess, db: str, sql: str) -> None:
    send(clickhouse, f"CREATE TABLE {db}.t (a UInt8) ENGINE = MergeTree ORDER BY a")
    send(clickhouse, f"INSERT INTO {db}.t VALUES (1)")
    for auth in (None, ADMIN):
        r = send(clickhouse, sql.format(db=db), auth=auth, method="GET")
        assert r.status_code != 200, r.text
        assert code(r) in (164, 497, 358), r.text
    # a session's GET as well
    r = send(clickhouse, sql.format(db=db), auth=ADMIN, method="GET", session_id=uuid.uuid4().hex)
    assert code(r) in (164, 497, 358), r.text
    assert send(clickhouse, f"SELECT count() FROM {db}.t").text == "1\n"
    assert send(clickhouse, f"EXISTS TABLE {db}.n").text == "0\n"
    assert not (clickhouse.data / "user_files" / "get.tsv").exists()
    merges = send(clickhouse, f"SELECT count() FROM system.merges WHERE database = '{db}'")
    assert merges.status_code == 200


def test_get_reads_and_sets(clickhouse: ClickHouseProcess) -> None:
    r = send(clickhouse, "SELECT getSetting('max_threads')", method="GET", max_threads="3")
    assert r.text == "3\n", r.text
    sid = uuid.uuid4().hex
    assert send(clickhouse, "SET max_threads = 2", method="GET", session_id=sid).status_code == 200
    assert send(clickhouse, "SELECT getSetting('max_threads')", session_id=sid).text == "2\n"


def test_readonly_user_cannot_kill_or_run_system(clickhouse: ClickHouseProcess) -> None:
    # the read-only user holds every grant: readonly = 1 is what stops it. KILL: the
    # server's own rule (every engine query has one owner, so a read-only user, who may
    # kill only its own queries, may kill none); SYSTEM: the engine's readonly check.
    for sql in (
        "KILL QUERY WHERE 1",
        "KILL QUERY WHERE user = 'default' SYNC",
        "SYSTEM DROP MARK CACHE",
        "SYSTEM FLUSH LOGS",
    ):
        r = send(clickhouse, sql, auth=READONLY_USER)
        assert r.status_code != 200 and code(r) in (164, 497), (sql, r.text)


def test_readonly_kill_does_not_reach_a_running_query(clickhouse: ClickHouseProcess) -> None:
    import threading

    marker = uuid.uuid4().hex
    result: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: result.append(send(clickhouse, f"SELECT sleep(2), '{marker}'"))
    )
    slow.start()
    import time

    time.sleep(0.7)
    r = send(clickhouse, f"KILL QUERY WHERE query LIKE '%{marker}%'", auth=READONLY_USER)
    slow.join()
    assert code(r) == 497, r.text
    assert result[0].status_code == 200 and marker in result[0].text


# -- 7. one statement per request ------------------------------------------------------------


def test_several_statements_are_refused(clickhouse: ClickHouseProcess, db: str) -> None:
    send(clickhouse, f"CREATE TABLE {db}.m (a UInt8) ENGINE = MergeTree ORDER BY a")
    for sql in (
        f"SELECT 1; INSERT INTO {db}.m VALUES (1)",
        f"INSERT INTO {db}.m VALUES (1); DROP TABLE {db}.m",
    ):
        r = send(clickhouse, sql)
        assert code(r) == 62 and "Multi-statements" in r.text, r.text
    assert send(clickhouse, f"SELECT count() FROM {db}.m").text == "0\n"
    assert send(clickhouse, "SELECT 1;").text == "1\n"  # a trailing semicolon is one statement


# -- 6. invalid UTF-8 in the query text reaches the engine unchanged -------------------------


def test_invalid_utf8_in_a_query_passes_unchanged(clickhouse: ClickHouseProcess, db: str) -> None:
    send(clickhouse, f"CREATE TABLE {db}.u (s String) ENGINE = MergeTree ORDER BY s")
    r = httpx.post(
        clickhouse.url, content=f"INSERT INTO {db}.u VALUES ('".encode() + b"\xff\xfe')", auth=ADMIN
    )
    assert r.status_code == 200, r.text
    r = httpx.post(
        clickhouse.url,
        params={"query": f"INSERT INTO {db}.u FORMAT TSV"},
        content=b"ok\n",
        auth=ADMIN,
    )
    assert send(clickhouse, f"SELECT hex(s) FROM {db}.u ORDER BY s").text == "6F6B\nFFFE\n"
    # in the URL as well (percent-encoded bytes), and in a GET
    raw_url = clickhouse.url + "/?query=SELECT%20hex(%27%FF%C3%A9%27)"
    assert httpx.get(raw_url).text == "FFC3A9\n"
    r = httpx.post(clickhouse.url + "/?query=SELECT%20hex(%27%80%27)%20||%20", content=b"'\xfe'")
    assert r.content == b"80\xfe\n", r.content


# -- 8. external tables: read-only users may send them; _structure is a column list only ---


def external(
    server: ClickHouseProcess,
    query: str,
    structure: str,
    data: bytes,
    auth: tuple[str, str] | None = ADMIN,
    fmt: str = "TabSeparated",
    **params: str,
) -> httpx.Response:
    return httpx.post(
        server.url,
        params=params,
        data={"query": query, "ext_structure": structure, "ext_format": fmt},
        files={"ext": ("ext.tsv", data, "application/octet-stream")},
        auth=auth,
        timeout=60,
    )


def test_readonly_user_sends_external_tables(clickhouse: ClickHouseProcess, db: str) -> None:
    r = external(
        clickhouse,
        "SELECT sum(a), groupArray(b) FROM ext",
        "a UInt32, b String",
        b"1\tx\n2\ty\n",
        auth=READONLY_USER,
    )
    assert r.status_code == 200, r.text
    assert r.text == "3\t['x','y']\n"
    r = external(
        clickhouse,
        "SELECT count() FROM ext",
        "a UInt8, s String",
        b"1,a\n2,b\n3,c\n",
        auth=READONLY_USER,
        fmt="CSV",
        session_id=uuid.uuid4().hex,
    )
    assert r.text == "3\n", r.text
    # ... and stay read-only while they do
    send(clickhouse, f"CREATE TABLE {db}.x (a UInt8) ENGINE = MergeTree ORDER BY a")
    r = external(
        clickhouse, f"INSERT INTO {db}.x SELECT a FROM ext", "a UInt8", b"1\n", auth=READONLY_USER
    )
    assert code(r) == 164, r.text
    r = external(
        clickhouse,
        "SELECT count() FROM ext",
        "a UInt8",
        b"1\n",
        auth=READONLY_USER,
        max_threads="1",
    )
    assert code(r) == 164, r.text
    r = external(clickhouse, "SELECT file('x') FROM ext", "a UInt8", b"1\n", auth=READONLY_USER)
    assert r.status_code != 200
    assert send(clickhouse, f"SELECT count() FROM {db}.x").text == "0\n"


@pytest.mark.parametrize(
    "structure",
    [
        "a UInt8) ENGINE = File(TSV, '{p}') --",
        "a UInt8) ENGINE = File(TSV, '{p}'); SELECT (1",
        "a String DEFAULT file('{p}')",
        "a UInt8) ENGINE = Memory AS SELECT file('{p}') --",
    ],
)
def test_structure_is_parsed_as_a_column_list_only(
    clickhouse: ClickHouseProcess, tmp_path: Path, structure: str
) -> None:
    target = tmp_path / "pwned.tsv"
    secret = secret_file(tmp_path)
    path = target if "File(" in structure else secret
    for auth in (ADMIN, READONLY_USER):
        r = external(clickhouse, "SELECT * FROM ext", structure.format(p=path), b"", auth=auth)
        assert "hunter2" not in r.text
        if r.status_code == 200:  # a DEFAULT is dropped: the column is a plain String
            assert r.text == ""
        else:
            assert code(r) == 62, r.text
    r = external(clickhouse, "SELECT a FROM ext", "a String DEFAULT file('/etc/hostname')", b"\n")
    assert r.text == "\n", r.text
    assert not target.exists()


# -- SQL access management: a clear error that says what to use instead -------------------


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE USER u_x IDENTIFIED BY 'x'",
        "create role r_x",
        "GRANT SELECT ON *.* TO default",
        "DROP USER u_x",
        "ALTER USER default IDENTIFIED BY 'x'",
        "CREATE QUOTA q_x",
    ],
)
def test_access_management_says_what_to_use_instead(
    clickhouse: ClickHouseProcess, sql: str
) -> None:
    # default may manage access (access_management): the engine has no storage for it
    r = send(clickhouse, sql, auth=None)
    assert r.status_code != 200, r.text
    assert "users file" in r.text and "clickhouse-server" in r.text, r.text
    # loader may not: ClickHouse's own answer, the grant it lacks
    r = send(clickhouse, sql)
    assert r.headers.get("X-ClickHouse-Exception-Code") == "497", r.text


# -- INSERT ... VALUES data is not in the parse: its expressions cannot call file() ----------


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO {t} VALUES (file('{p}'))",
        "INSERT INTO {t} VALUES ('x'), (file('{p}'))",
        "INSERT INTO {t} FORMAT Values (file('{p}'))",
        "INSERT INTO {t} VALUES (`fi\\x6ce`('{p}'))",
        "INSERT INTO {t} SETTINGS input_format_values_interpret_expressions = 1 "
        "VALUES (file('{p}'))",
        "INSERT INTO {t} SETTINGS input_format_values_interpret_expressions = 1 "
        "FORMAT Values (file('{p}'))",
        "INSERT INTO {t} VALUES (url('file://{p}'))",
    ],
)
def test_values_data_cannot_read_files(
    clickhouse: ClickHouseProcess, db: str, tmp_path: Path, sql: str
) -> None:
    secret = secret_file(tmp_path)
    table = f"{db}.v"
    send(clickhouse, f"CREATE TABLE {table} (s String) ENGINE = MergeTree ORDER BY s")
    r = send(clickhouse, sql.format(t=table, p=secret))
    assert r.status_code != 200, r.text
    assert "hunter2" not in send(clickhouse, f"SELECT * FROM {table}").text
    # literals naming files are data like any other; expressions without such names work
    r = send(clickhouse, f"INSERT INTO {table} VALUES ('my file.txt'), ('http://x/url')")
    assert r.status_code == 200, r.text
    r = send(clickhouse, f"INSERT INTO {table} VALUES (toString(1 + 1))")
    assert r.status_code == 200, r.text
    assert send(clickhouse, f"SELECT count() FROM {table}").text == "3\n"


@pytest.mark.parametrize("name", ["format_schema", "output_format_schema", "format_template_row"])
def test_settings_that_name_files_cannot_change(
    clickhouse: ClickHouseProcess, tmp_path: Path, name: str
) -> None:
    target = tmp_path / "schema.capnp"
    for sql, params in (
        (f"SET {name} = '{target}'", {}),
        (f"SELECT 1 SETTINGS {name} = '{target}'", {}),
        ("SELECT 1", {name: str(target)}),
    ):
        r = send(clickhouse, sql, **params)
        assert code(r) == 452, (sql, params, r.text)
    assert not target.exists()


# -- no outbound network access unless the admin allows it --------------------------------

NETWORK_ATTEMPTS = [
    "SELECT * FROM url('http://127.0.0.1:{port}/x', 'CSV', 'a String')",
    "SELECT * FROM URL('https://127.0.0.1:{port}/x', 'CSV', 'a String')",
    "SELECT * FROM s3('http://127.0.0.1:{port}/b/x.csv', 'CSV', 'a String')",
    "SELECT * FROM remote('127.0.0.1:{port}', system.one)",
    "SELECT * FROM remoteSecure('127.0.0.1:{port}', system.one)",
    "SELECT * FROM mysql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
    "SELECT * FROM `u\\x72l`('http://127.0.0.1:{port}/x', 'CSV', 'a String')",
    "CREATE TABLE {db}.n (a String) ENGINE = URL('http://127.0.0.1:{port}/x', 'CSV')",
    "CREATE TABLE {db}.n (a String) ENGINE = S3('http://127.0.0.1:{port}/b/x', 'CSV')",
    "CREATE DICTIONARY {db}.d (a String) PRIMARY KEY a "
    "SOURCE(HTTP(url 'http://127.0.0.1:{port}/x' format 'CSV')) LAYOUT(FLAT()) LIFETIME(0)",
]


@pytest.mark.parametrize("template", NETWORK_ATTEMPTS)
def test_no_outbound_network_by_default(
    clickhouse: ClickHouseProcess, db: str, template: str
) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        sql = template.format(port=listener.getsockname()[1], db=db)
        r = send(clickhouse, sql)
        assert code(r) == 481, r.text
        assert "LOCAL_CLICKHOUSE_ALLOW_NETWORK" in r.text
        with pytest.raises(TimeoutError):
            listener.accept()  # the engine never tried to connect


def test_values_naming_network_functions_keep_their_expressions(
    clickhouse: ClickHouseProcess, db: str
) -> None:
    # VALUES data cannot call a table function, so words like s3 or http leave its
    # expressions (and an INSERT's own SETTINGS) working
    table = f"{db}.w"
    send(clickhouse, f"CREATE TABLE {table} (s String) ENGINE = MergeTree ORDER BY s")
    sql = f"INSERT INTO {table} SETTINGS max_threads = 1 VALUES ('s3 http'), (toString(1 + 1))"
    r = send(clickhouse, sql)
    assert r.status_code == 200, r.text
    assert send(clickhouse, f"SELECT s FROM {table} ORDER BY s").text == "2\ns3 http\n"


def test_the_admin_may_allow_network_access(tmp_path: Path) -> None:
    mp = pytest.MonkeyPatch()
    mp.setenv("LOCAL_CLICKHOUSE_ALLOW_NETWORK", "1")
    try:
        server = ClickHouseProcess(tmp_path / "data").start()
    finally:
        mp.undo()
    try:
        # the server reads a query result of its own over HTTP through url()
        inner = f"{server.url}/?query=SELECT%2042"
        r = send(server, f"SELECT * FROM url('{inner}', 'TSV', 'x UInt8')", auth=None)
        assert r.text == "42\n", r.text
        # file:// stays confined to the user files folder
        r = send(server, "SELECT * FROM url('file:///etc/passwd', 'LineAsString')", auth=None)
        assert code(r) == 291, r.text
    finally:
        server.stop()
