"""Issue 15 item 7 against a real ``wiki-events clickhouse``: who exists with a users file,
malformed and mixed credentials, session timeouts, oversized heads, and clients that
stop half-way (a head or a body) all get what a real server gives them."""

from __future__ import annotations

import base64
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers.clickhouse import ClickHouseProcess

TIMEOUT = 2  # the server's receive timeout in these tests, seconds
# a users file without `default`: only its users exist
USERS = """<clickhouse>
  <profiles><default/><viewer><readonly>1</readonly></viewer></profiles>
  <users>
    <admin><password>admin-secret</password><profile>default</profile></admin>
    <viewer><password>view-secret</password><profile>viewer</profile></viewer>
  </users>
</clickhouse>
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseProcess]:
    folder = tmp_path_factory.mktemp("protocol")
    users = folder / "users.xml"
    users.write_text(USERS)
    mp = pytest.MonkeyPatch()
    mp.setenv("LOCAL_CLICKHOUSE_RECEIVE_TIMEOUT", str(TIMEOUT))
    try:
        proc = ClickHouseProcess(folder / "data", users=users).start()
    finally:
        mp.undo()
    yield proc
    proc.stop()


def code(r: httpx.Response) -> str | None:
    return r.headers.get("X-ClickHouse-Exception-Code")


# -- users and credentials ------------------------------------------------------------------


def test_with_a_users_file_only_its_users_exist(server: ClickHouseProcess) -> None:
    for kwargs in ({}, {"auth": ("default", "")}, {"params": {"user": "default"}}):
        r = httpx.post(server.url, content="SELECT 1", **kwargs)  # type: ignore[arg-type]
        assert r.status_code in (401, 403) and code(r) == "516", (kwargs, r.text)
    assert httpx.post(server.url, content="SELECT 1", auth=("admin", "admin-secret")).text == "1\n"


def test_a_users_file_may_define_default_without_password(tmp_path: Path) -> None:
    users = tmp_path / "users.xml"
    users.write_text(
        "<clickhouse><profiles><default/></profiles>"
        "<users><default><password></password></default></users></clickhouse>"
    )
    proc = ClickHouseProcess(tmp_path / "data", users=users).start()
    try:
        assert httpx.post(proc.url, content="SELECT 1").text == "1\n"
    finally:
        proc.stop()


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Bearer abc",
        "Digest username=admin",
        "garbage",
        "Basic",
    ],
)
def test_a_malformed_authorization_header_is_an_auth_error(
    server: ClickHouseProcess, authorization: str
) -> None:
    r = httpx.post(server.url, content="SELECT 1", headers={"Authorization": authorization})
    assert r.status_code == 403 and code(r) == "516", r.text
    assert "Invalid authentication" in r.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {
            "auth": ("viewer", "view-secret"),
            "params": {"user": "admin", "password": "admin-secret"},
        },
        {"auth": ("admin", "admin-secret"), "params": {"password": "x"}},
        {
            "headers": {"X-ClickHouse-User": "viewer", "X-ClickHouse-Key": "view-secret"},
            "params": {"user": "admin", "password": "admin-secret"},
        },
        {
            "headers": {"X-ClickHouse-User": "viewer", "X-ClickHouse-Key": "view-secret"},
            "auth": ("admin", "admin-secret"),
        },
    ],
)
def test_credentials_from_two_places_are_an_error(server: ClickHouseProcess, kwargs: dict) -> None:  # type: ignore[type-arg]
    r = httpx.post(server.url, content="SELECT currentUser()", **kwargs)
    assert r.status_code == 403 and code(r) == "516", r.text
    assert "simultaneously" in r.text


def test_each_way_of_logging_in_works_alone(server: ClickHouseProcess) -> None:
    for kwargs in (
        {"auth": ("viewer", "view-secret")},
        {"headers": {"X-ClickHouse-User": "viewer", "X-ClickHouse-Key": "view-secret"}},
        {"params": {"user": "viewer", "password": "view-secret"}},
    ):
        r = httpx.post(server.url, content="SELECT 1", **kwargs)  # type: ignore[arg-type]
        assert r.text == "1\n", r.text


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-1", "1e9", "abc", ""])
def test_session_timeout_must_be_a_finite_number_in_bounds(
    server: ClickHouseProcess, value: str
) -> None:
    r = httpx.post(
        server.url,
        content="SELECT 1",
        params={"session_id": uuid.uuid4().hex, "session_timeout": value},
        auth=("admin", "admin-secret"),
    )
    assert r.status_code != 200 and code(r) == "374", (value, r.text)


# -- oversized heads ------------------------------------------------------------------------


def test_a_200_kb_header_gets_an_http_error(server: ClickHouseProcess) -> None:
    r = httpx.post(server.url, content="SELECT 1", headers={"X-Junk": "a" * 200_000})
    assert r.status_code == 431, r.text


def raw_request(server: ClickHouseProcess, head: bytes) -> bytes:
    """Send a request as bytes (httpx refuses URLs this long); the answer's first bytes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        return sock.recv(4096)


def test_a_200_kb_url_gets_an_http_answer(server: ClickHouseProcess) -> None:
    token = base64.b64encode(b"admin:admin-secret")
    query = b"SELECT%201%20--" + b"-" * 200_000
    answer = raw_request(
        server,
        b"GET /?query="
        + query
        + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
        + token
        + b"\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    assert answer.split(b" ")[1] in (b"200", b"400", b"414"), answer[:300]
    answer = raw_request(server, b"GET /?junk" + b"x" * 200_000 + b"=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.split(b" ")[1].startswith(b"4"), answer[:300]


def test_a_head_past_one_mib_gets_400_not_a_reset(server: ClickHouseProcess) -> None:
    answer = raw_request(
        server, b"GET /?query=" + b"1" * (2 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


# -- clients that stop half-way ----------------------------------------------------------------


def test_a_half_sent_head_times_out(server: ClickHouseProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT * 5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        answer = sock.recv(4096)
        waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert sock.recv(4096) == b""  # and closed
    assert waited < TIMEOUT * 4
    # an idle connection that never sends a byte is closed too
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT * 5) as sock:
        assert sock.recv(4096).startswith(b"HTTP/1.1 408")


def test_a_stalled_insert_body_times_out_and_releases_its_connection(
    server: ClickHouseProcess,
) -> None:
    admin = ("admin", "admin-secret")
    table = f"t_{uuid.uuid4().hex[:8]}"
    httpx.post(
        server.url,
        content=f"CREATE TABLE {table} (a UInt8) ENGINE = MergeTree ORDER BY a",
        auth=admin,
    )
    token = base64.b64encode(b"admin:admin-secret").decode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT * 5) as sock:
        sock.sendall(
            f"POST /?query=INSERT%20INTO%20{table}%20FORMAT%20TSV HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Basic {token}\r\nContent-Length: 100000\r\n\r\n1\n2\n".encode()
        )
        answer = sock.recv(4096)
    assert b" 503 " in answer.split(b"\r\n")[0], answer
    assert b"X-ClickHouse-Exception-Code: 209" in answer or b"x-clickhouse-exception-code: 209" in (
        answer.lower()
    )
    # the insert was cancelled, nothing stored; the server serves on
    r = httpx.post(server.url, content=f"SELECT count() FROM {table}", auth=admin)
    assert r.text == "0\n"
    # a session whose stalled request timed out is free again
    sid = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT * 5) as sock:
        sock.sendall(
            f"POST /?session_id={sid}&query=INSERT%20INTO%20{table}%20FORMAT%20TSV HTTP/1.1\r\n"
            f"Host: x\r\nAuthorization: Basic {token}\r\nContent-Length: 10\r\n\r\n1\n".encode()
        )
        assert b" 503 " in sock.recv(4096)
    r = httpx.post(server.url, content="SELECT 5", params={"session_id": sid}, auth=admin)
    assert r.text == "5\n", r.text


# -- clickhouse-connect's integration suite: what a real server answers ----------------------
# (issue 15 item 9; the figures are bench/compat_connect.py's)


def test_external_data_is_read_with_the_requests_settings(ch_client) -> None:  # type: ignore[no-untyped-def]
    from clickhouse_connect.driver.exceptions import DatabaseError
    from clickhouse_connect.driver.external import ExternalData

    def ext() -> ExternalData:
        rows = b"a,1\nbad,x\nb,2\n"
        return ExternalData(
            file_name="ext.csv", data=rows, fmt="CSV", structure="s String, n UInt8"
        )

    # the URL's input settings hold while the external table is read, as on a server
    allow = {"input_format_allow_errors_num": 1}
    assert ch_client.command("SELECT sum(n) FROM ext", external_data=ext(), settings=allow) == 3
    # without them the bad row is an error, and the session is usable after it
    with pytest.raises(DatabaseError, match="INCORRECT_DATA"):
        ch_client.command("SELECT sum(n) FROM ext", external_data=ext())
    assert ch_client.command("SELECT 7") == 7


def test_a_statement_without_a_result_set_has_no_format(
    ch_client,
    clickhouse: ClickHouseProcess,  # type: ignore[no-untyped-def]
) -> None:
    from clickhouse_connect.driver.summary import QuerySummary

    summary = ch_client.command("DROP TABLE IF EXISTS no_such_table_at_all")
    assert isinstance(summary, QuerySummary)
    assert uuid.UUID(summary.query_id())
    assert "query_id" in ch_client.query("SET max_threads = 1").first_item
    # a read with no rows still has a (empty) result set
    assert ch_client.command("SELECT 13 WHERE 0") == ""
    r = httpx.post(clickhouse.url, content="SET max_threads = 1")
    assert r.status_code == 200 and "X-ClickHouse-Format" not in r.headers
    r = httpx.post(clickhouse.url, content="SELECT 1 WHERE 0")
    assert r.headers["X-ClickHouse-Format"] == "TabSeparated"


def test_the_format_function_is_not_a_format_clause(ch_client) -> None:  # type: ignore[no-untyped-def]
    csv = {"$xx$": b"col1,col2\n100,700"}
    query = "SELECT col2, col1 FROM format(CSVWithNames, $xx$)"
    assert ch_client.raw_query(query, parameters=csv) == b"700\t100\n"
    assert ch_client.raw_query(query + " FORMAT CSV", parameters=csv) == b"700,100\n"


def test_show_create_of_a_system_table(ch_client) -> None:  # type: ignore[no-untyped-def]
    statement = ch_client.query("SHOW CREATE TABLE system.tables").first_item["statement"]
    assert statement.startswith("CREATE TABLE system.tables\n(\n    `database` String,")
    assert "\nENGINE = SystemTables" in statement
    assert ch_client.command("SHOW CREATE TABLE system.one").startswith("CREATE TABLE system.one")
    from clickhouse_connect.driver.exceptions import DatabaseError

    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE"):
        ch_client.query("SHOW CREATE TABLE system.no_such_table")


def test_a_sessions_time_zone_is_the_one_its_replies_name(
    ch_client,
    clickhouse: ClickHouseProcess,  # type: ignore[no-untyped-def]
) -> None:
    session = {"session_id": ch_client.get_client_setting("session_id")}
    ch_client.command("SET session_timezone = 'America/Denver'")
    r = httpx.post(
        clickhouse.url, params=session, content="SELECT toDateTime('2023-03-18 16:04:25')"
    )
    assert (r.text, r.headers["X-ClickHouse-Timezone"]) == (
        "2023-03-18 16:04:25\n",
        "America/Denver",
    )
    value = ch_client.query("SELECT toDateTime('2023-03-18 16:04:25') AS d").first_row[0]
    assert (value.hour, str(value.tzinfo)) == (16, "America/Denver")
    # another session, and the same one once it resets, read in the server's zone
    other = httpx.post(clickhouse.url, params={"session_id": uuid.uuid4().hex}, content="SELECT 1")
    assert other.headers["X-ClickHouse-Timezone"] != "America/Denver"
    ch_client.command("SET session_timezone = ''")
    r = httpx.post(clickhouse.url, params=session, content="SELECT 1")
    assert r.headers["X-ClickHouse-Timezone"] == other.headers["X-ClickHouse-Timezone"]
