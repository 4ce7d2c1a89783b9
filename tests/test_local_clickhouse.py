"""The embedded ClickHouse over real HTTP, with real clients: httpx (as curl would),
clickhouse-connect, and dbt in tests/test_local_clickhouse_dbt.py."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import io
import ipaddress
import json
import signal
import subprocess
import sys
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import brotli
import clickhouse_connect
import httpx
import lz4.frame
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from clickhouse_connect.driver.exceptions import DatabaseError

from .helpers.clickhouse import READONLY_USER, ClickHouseProcess
from .helpers.paths import ROOT
from .helpers.ports import free_port


@pytest.fixture
def db(ch_client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"t_{uuid.uuid4().hex[:12]}"
    ch_client.command(f"CREATE DATABASE {name}")
    yield name
    ch_client.command(f"DROP DATABASE IF EXISTS {name}")


def post(server: ClickHouseProcess, body: bytes | str = b"", **params: str) -> httpx.Response:
    return httpx.post(server.url + "/", params=params, content=body, timeout=60)


# -- the HTTP interface, as curl uses it -----------------------------------------------------


def test_ping_and_query_in_url_body_or_both(clickhouse: ClickHouseProcess) -> None:
    assert httpx.get(clickhouse.url + "/ping").text == "Ok.\n"
    assert httpx.get(clickhouse.url, params={"query": "SELECT 1"}).text == "1\n"
    assert post(clickhouse, "SELECT 2").text == "2\n"
    assert post(clickhouse, "+ 1", query="SELECT 2").text == "3\n"


def test_response_headers(clickhouse: ClickHouseProcess) -> None:
    r = httpx.get(
        clickhouse.url,
        params={
            "query": "SELECT number FROM numbers(5) FORMAT JSONEachRow",
            "query_id": "hdr-test-1",
        },
    )
    assert r.status_code == 200
    assert r.headers["X-ClickHouse-Query-Id"] == "hdr-test-1"
    assert r.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert r.headers["X-ClickHouse-Timezone"]
    assert r.headers["X-ClickHouse-Server-Display-Name"]
    summary = json.loads(r.headers["X-ClickHouse-Summary"])
    assert int(summary["read_rows"]) == 5
    assert [json.loads(line)["number"] for line in r.text.splitlines()] == [0, 1, 2, 3, 4]


def test_command_answers_empty_body_with_summary(clickhouse: ClickHouseProcess, db: str) -> None:
    r = post(clickhouse, f"CREATE TABLE {db}.c (a UInt8) ENGINE = MergeTree ORDER BY a")
    assert r.status_code == 200 and r.content == b""
    assert "X-ClickHouse-Summary" in r.headers


@pytest.mark.parametrize(
    ("sql", "code", "status", "name"),
    [
        ("SELEC 1", 62, 400, "SYNTAX_ERROR"),
        ("SELECT * FROM no_such_table", 60, 404, "UNKNOWN_TABLE"),
        ("SELECT no_such_function()", 46, 404, "UNKNOWN_FUNCTION"),
        ("SELECT 1 FORMAT NoSuchFormat", 73, 404, "UNKNOWN_FORMAT"),
        ("SELECT throwIf(1)", 395, 500, "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO"),
    ],
)
def test_errors_carry_clickhouse_codes(
    clickhouse: ClickHouseProcess, sql: str, code: int, status: int, name: str
) -> None:
    r = post(clickhouse, sql)
    assert r.status_code == status
    assert r.headers["X-ClickHouse-Exception-Code"] == str(code)
    assert r.text.startswith(f"Code: {code}. DB::Exception: ")
    assert f"({name})" in r.text


def test_unknown_url_setting_is_an_error(clickhouse: ClickHouseProcess) -> None:
    r = post(clickhouse, "SELECT 1", no_such_setting="1")
    assert r.status_code == 404
    assert r.headers["X-ClickHouse-Exception-Code"] == "115"


def test_url_settings_are_strings_converted_by_clickhouse(clickhouse: ClickHouseProcess) -> None:
    r = post(
        clickhouse,
        "SELECT getSetting('max_threads'), getSetting('max_result_rows')",
        max_threads="1",
        max_result_rows="1000",
    )
    assert r.text.split() == ["1", "1000"]


def test_requests_never_inherit_another_requests_state(
    clickhouse: ClickHouseProcess, db: str
) -> None:
    post(clickhouse, f"USE {db}")
    post(clickhouse, "SET max_threads = 1")
    assert post(clickhouse, "SELECT currentDatabase()").text == "default\n"
    assert post(clickhouse, "SELECT getSetting('max_threads')").text != "1\n"


def test_get_is_read_only(clickhouse: ClickHouseProcess, db: str) -> None:
    r = httpx.get(
        clickhouse.url, params={"query": f"CREATE TABLE {db}.g (a UInt8) ENGINE = Memory"}
    )
    assert r.status_code == 500
    assert r.headers["X-ClickHouse-Exception-Code"] == "164"
    assert post(clickhouse, f"EXISTS TABLE {db}.g").text == "0\n"


def test_insert_data_in_body_or_with_query_param(clickhouse: ClickHouseProcess, db: str) -> None:
    post(clickhouse, f"CREATE TABLE {db}.i (a UInt32, s String) ENGINE = MergeTree ORDER BY a")
    post(clickhouse, b"1,one\n2,two\n", query=f"INSERT INTO {db}.i FORMAT CSV")
    post(clickhouse, f'INSERT INTO {db}.i FORMAT JSONEachRow\n{{"a":3,"s":"three"}}\n')
    post(clickhouse, f"INSERT INTO {db}.i VALUES (4, 'fo''ur')")
    r = post(clickhouse, f"SELECT a, s FROM {db}.i ORDER BY a FORMAT CSV")
    assert r.text == '1,"one"\n2,"two"\n3,"three"\n4,"fo\'ur"\n'


def test_chunked_request_body(clickhouse: ClickHouseProcess, db: str) -> None:
    post(clickhouse, f"CREATE TABLE {db}.ch (a UInt32) ENGINE = MergeTree ORDER BY a")

    def body() -> Iterator[bytes]:
        yield f"INSERT INTO {db}.ch FORMAT TSV\n".encode()
        for i in range(0, 100_000, 997):  # chunk borders fall anywhere in the rows
            yield "".join(f"{n}\n" for n in range(i, min(i + 997, 100_000))).encode()

    r = httpx.post(clickhouse.url, content=body(), timeout=60)
    assert r.status_code == 200, r.text
    assert post(clickhouse, f"SELECT count(), sum(a) FROM {db}.ch").text.split() == [
        "100000",
        str(sum(range(100_000))),
    ]


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("br", brotli.compress),
        ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
        ("lz4", lz4.frame.compress),
    ],
)
def test_compressed_request_bodies(
    clickhouse: ClickHouseProcess, db: str, encoding: str, compress
) -> None:  # type: ignore[no-untyped-def]
    post(clickhouse, f"CREATE TABLE {db}.z (a UInt32) ENGINE = MergeTree ORDER BY a")
    data = f"INSERT INTO {db}.z FORMAT TSV\n".encode() + b"".join(b"%d\n" % i for i in range(5000))
    r = httpx.post(clickhouse.url, content=compress(data), headers={"Content-Encoding": encoding})
    assert r.status_code == 200, r.text
    assert post(clickhouse, f"SELECT count() FROM {db}.z").text == "5000\n"


DECOMPRESS = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "br": brotli.decompress,
    "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
    "lz4": lz4.frame.decompress,
}


@pytest.mark.parametrize("encoding", sorted(DECOMPRESS))
def test_compressed_responses(clickhouse: ClickHouseProcess, encoding: str) -> None:
    with httpx.stream(
        "POST",
        clickhouse.url,
        params={"enable_http_compression": "1"},
        content="SELECT number FROM numbers(200000)",
        headers={"Accept-Encoding": encoding},
    ) as r:
        raw = b"".join(r.iter_raw())
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == encoding
    expected = "".join(f"{i}\n" for i in range(200000)).encode()
    assert len(raw) < len(expected)
    assert DECOMPRESS[encoding](raw) == expected


def test_no_compression_without_the_setting(clickhouse: ClickHouseProcess) -> None:
    r = httpx.post(clickhouse.url, content="SELECT 1", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in r.headers and r.text == "1\n"


def test_output_formats(clickhouse: ClickHouseProcess) -> None:
    q = "SELECT number AS n, toString(number) AS s FROM numbers(100000)"
    doc = json.loads(post(clickhouse, q + " FORMAT JSON").text)
    assert doc["rows"] == 100000 and doc["data"][-1] == {"n": 99999, "s": "99999"}
    for fmt, header in (
        ("CSVWithNames", 1),
        ("TSVWithNamesAndTypes", 2),
        ("JSONCompactEachRowWithNames", 1),
    ):
        lines = post(clickhouse, q + f" FORMAT {fmt}").text.splitlines()
        assert len(lines) == 100000 + header, fmt  # the header once, however many chunks
    table = pq.read_table(io.BytesIO(post(clickhouse, q + " FORMAT Parquet").content))
    assert table.num_rows == 100000
    arrow = pa.ipc.open_file(io.BytesIO(post(clickhouse, q + " FORMAT Arrow").content)).read_all()
    assert arrow.column("n").to_pylist()[-1] == 99999
    stream = pa.ipc.open_stream(io.BytesIO(post(clickhouse, q + " FORMAT ArrowStream").content))
    assert stream.read_all().num_rows == 100000
    assert post(clickhouse, "SELECT 1 AS x", default_format="JSONEachRow").text == '{"x":1}\n'


def test_large_result_streams_in_chunks(clickhouse: ClickHouseProcess) -> None:
    with httpx.stream(
        "POST", clickhouse.url, content="SELECT number FROM numbers(3000000)", timeout=60
    ) as r:
        sizes = [len(c) for c in r.iter_raw()]
    assert sum(sizes) == sum(len(f"{i}\n") for i in range(3_000_000))
    assert len(sizes) > 1 and r.headers.get("transfer-encoding") == "chunked"


def test_error_after_the_body_started_is_in_band(clickhouse: ClickHouseProcess) -> None:
    r = post(clickhouse, "SELECT throwIf(number = 2500000) FROM numbers(4000000)")
    tag = r.headers["X-ClickHouse-Exception-Tag"]
    assert r.status_code == 200  # the status was sent before the error happened
    assert f"__exception__\r\n{tag}\r\nCode: 395." in r.text
    assert r.text.endswith(f" {tag}\r\n__exception__\r\n")


def test_query_parameters(clickhouse: ClickHouseProcess) -> None:
    r = post(
        clickhouse,
        "SELECT {a:UInt32} + 1, {s:String}, length({arr:Array(String)})",
        param_a="41",
        param_s="it's; DROP TABLE x",
        param_arr="['a','b','c']",
    )
    assert r.text == "42\tit\\'s; DROP TABLE x\t3\n"


def test_multipart_external_data(clickhouse: ClickHouseProcess) -> None:
    r = httpx.post(
        clickhouse.url,
        data={
            "query": "SELECT sum(a), groupArray(b) FROM ext",
            "ext_structure": "a UInt32, b String",
        },
        files={"ext": ("ext.tsv", b"1\tx\n2\ty\n3\tz\n", "text/tab-separated-values")},
    )
    assert r.status_code == 200, r.text
    assert r.text == "6\t['x','y','z']\n"
    r = httpx.post(
        clickhouse.url,
        params={"query": "SELECT count() FROM t2", "t2_types": "UInt8,String", "t2_format": "CSV"},
        files={"t2": ("t2.csv", b"1,a\n2,b\n", "text/csv")},
    )
    assert r.text == "2\n", r.text


# -- sessions -----------------------------------------------------------------------------


def test_session_keeps_set_use_and_temporary_tables(clickhouse: ClickHouseProcess, db: str) -> None:
    sid = uuid.uuid4().hex
    post(clickhouse, "SET max_threads = 1", session_id=sid)
    post(clickhouse, f"USE {db}", session_id=sid)
    post(clickhouse, "CREATE TEMPORARY TABLE tmp (x UInt8)", session_id=sid)
    post(clickhouse, "INSERT INTO tmp VALUES (7)", session_id=sid)
    r = post(
        clickhouse,
        "SELECT getSetting('max_threads'), currentDatabase(), sum(x) FROM tmp",
        session_id=sid,
    )
    assert r.text.split() == ["1", db, "7"]
    # another session and no session see none of it
    assert (
        post(clickhouse, "SELECT currentDatabase()", session_id=uuid.uuid4().hex).text
        == "default\n"
    )
    assert post(clickhouse, "SELECT count() FROM tmp").status_code == 404


def test_url_settings_hold_for_one_request_of_a_session(clickhouse: ClickHouseProcess) -> None:
    sid = uuid.uuid4().hex
    post(clickhouse, "SET max_result_rows = 77", session_id=sid)
    assert (
        post(
            clickhouse, "SELECT getSetting('max_result_rows')", session_id=sid, max_result_rows="5"
        ).text
        == "5\n"
    )
    assert post(clickhouse, "SELECT getSetting('max_result_rows')", session_id=sid).text == "77\n"


def test_session_check_and_timeout(clickhouse: ClickHouseProcess) -> None:
    r = post(clickhouse, "SELECT 1", session_id="never-made", session_check="1")
    assert r.headers["X-ClickHouse-Exception-Code"] == "372"
    sid = uuid.uuid4().hex
    post(clickhouse, "SET max_threads = 1", session_id=sid, session_timeout="1")
    import time

    time.sleep(2.5)
    r = post(clickhouse, "SELECT 1", session_id=sid, session_check="1")
    assert r.headers.get("X-ClickHouse-Exception-Code") == "372"
    assert (
        post(clickhouse, "SELECT 1", session_timeout="99999", session_id="x").headers[
            "X-ClickHouse-Exception-Code"
        ]
        == "374"
    )


def test_a_failing_query_in_a_session_reports_its_own_error(
    clickhouse: ClickHouseProcess,
) -> None:
    sid = uuid.uuid4().hex
    r = post(clickhouse, "SELEC oops", session_id=sid)
    assert r.headers["X-ClickHouse-Exception-Code"] == "47", r.text  # not a lock error
    assert post(clickhouse, "SELECT 2", session_id=sid).text == "2\n"  # the session lives on


def test_session_used_twice_at_once_is_locked(clickhouse: ClickHouseProcess) -> None:
    sid = uuid.uuid4().hex
    results: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: results.append(
            post(clickhouse, "SELECT sleep(3) + sleep(1)", session_id=sid)
        )
    )
    slow.start()
    import time

    time.sleep(1.5)  # the slow query holds the session for 4 s
    r = post(clickhouse, "SELECT 1", session_id=sid)
    slow.join()
    assert results[0].status_code == 200, results[0].text
    assert r.headers.get("X-ClickHouse-Exception-Code") == "373", r.text
    assert "is locked by a concurrent client" in r.text
    assert post(clickhouse, "SELECT 1", session_id=sid).text == "1\n"  # free again


# -- users ------------------------------------------------------------------------------------


def test_wrong_password_is_authentication_failed(clickhouse: ClickHouseProcess) -> None:
    for kwargs in (
        {"auth": ("loader", "wrong")},
        {"headers": {"X-ClickHouse-User": "loader", "X-ClickHouse-Key": "wrong"}},
        {"params": {"user": "nobody", "password": "x"}},
    ):
        r = httpx.post(clickhouse.url, content="SELECT 1", **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 403, kwargs
        assert r.headers["X-ClickHouse-Exception-Code"] == "516"
    for kwargs in (
        {"auth": ("loader", "load-secret")},
        {"headers": {"X-ClickHouse-User": "loader", "X-ClickHouse-Key": "load-secret"}},
        {"params": {"user": "loader", "password": "load-secret"}},
    ):
        assert httpx.post(clickhouse.url, content="SELECT 1", **kwargs).text == "1\n"  # type: ignore[arg-type]


def test_readonly_user_cannot_write_create_drop_or_set(
    clickhouse: ClickHouseProcess, db: str
) -> None:
    post(clickhouse, f"CREATE TABLE {db}.r (a UInt8) ENGINE = MergeTree ORDER BY a")
    post(clickhouse, f"INSERT INTO {db}.r VALUES (1)")
    ro = clickhouse_connect.get_client(
        host="127.0.0.1", port=clickhouse.port, username=READONLY_USER[0], password=READONLY_USER[1]
    )
    assert ro.query(f"SELECT count() FROM {db}.r").result_rows == [(1,)]
    for sql in (
        f"INSERT INTO {db}.r VALUES (2)",
        f"CREATE TABLE {db}.x (a UInt8) ENGINE = Memory",
        f"DROP TABLE {db}.r",
        "SET max_threads = 1",
        f"TRUNCATE TABLE {db}.r",
    ):
        with pytest.raises(DatabaseError, match="164"):
            ro.command(sql)
    with pytest.raises(DatabaseError, match="164"):
        ro.insert(f"{db}.r", [(3,)], column_names=["a"])
    r = httpx.post(
        clickhouse.url, content="SELECT 1", params={"max_threads": "1"}, auth=READONLY_USER
    )
    assert r.headers["X-ClickHouse-Exception-Code"] == "164"
    assert post(clickhouse, f"SELECT count() FROM {db}.r").text == "1\n"


# -- clickhouse-connect -------------------------------------------------------------------------


TYPES = [
    ("i8", "Int8", -128),
    ("u64", "UInt64", 2**64 - 1),
    ("i128", "Int128", -(2**100)),
    ("f32", "Float32", 1.5),
    ("f64", "Float64", 3.141592653589793),
    ("dec", "Decimal(18, 4)", decimal.Decimal("12345.6789")),
    ("s", "String", "héllo\t'\"\n"),
    ("fs", "FixedString(4)", b"ab\x00\x01"),
    ("lc", "LowCardinality(String)", "enwiki"),
    ("n", "Nullable(Int32)", None),
    ("arr", "Array(Nullable(String))", ["a", None, "c"]),
    ("m", "Map(String, UInt16)", {"k": 7}),
    ("tup", "Tuple(a UInt8, b String)", (1, "x")),
    ("d", "Date", dt.date(2024, 8, 22)),
    (
        "dtm",
        "DateTime('Europe/Berlin')",
        dt.datetime(2024, 8, 22, 6, 2, 22, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    ),
    ("dt64", "DateTime64(3, 'UTC')", dt.datetime(2025, 12, 15, 12, 2, 50, 873000, tzinfo=dt.UTC)),
    ("u", "UUID", uuid.UUID("fd722ea0-b593-4747-a3f8-6e391522b9c6")),
    ("ip4", "IPv4", ipaddress.IPv4Address("192.0.2.1")),
    ("ip6", "IPv6", ipaddress.IPv6Address("2001:db8::1")),
    ("e", "Enum8('edit' = 1, 'log' = 2)", "log"),
    ("j", "JSON", {"meta": {"id": "x"}, "n": 1}),
    ("dyn", "Dynamic", "text"),
]


def test_clickhouse_connect_round_trips_every_common_type(ch_client, db: str) -> None:  # type: ignore[no-untyped-def]
    columns = ", ".join(f"{name} {ctype}" for name, ctype, _ in TYPES)
    ch_client.command(f"CREATE TABLE {db}.types ({columns}) ENGINE = MergeTree ORDER BY tuple()")
    row = [value for _, _, value in TYPES]
    ch_client.insert(f"{db}.types", [row], column_names=[n for n, _, _ in TYPES])
    got = ch_client.query(f"SELECT * FROM {db}.types").result_rows[0]
    for (name, _, want), have in zip(TYPES, got, strict=True):
        if name in ("dtm", "dt64"):  # clickhouse-connect reads them as naive UTC
            assert have.replace(tzinfo=dt.UTC) == want, name
        elif name == "f32":
            assert abs(have - want) < 1e-6
        elif name == "tup":  # clickhouse-connect reads a named tuple as a dict
            assert have == {"a": 1, "b": "x"}
        else:
            assert have == want, (name, have, want)


def test_clickhouse_connect_inserts_and_reads_frames(ch_client, db: str) -> None:  # type: ignore[no-untyped-def]
    ch_client.command(
        f"CREATE TABLE {db}.f (a UInt32, s LowCardinality(String), t DateTime64(3)) "
        "ENGINE = MergeTree ORDER BY a"
    )
    frame = pd.DataFrame(
        {"a": [1, 2, 3], "s": ["x", "y", "x"], "t": pd.to_datetime(["2024-01-01 00:00:00.123"] * 3)}
    )
    ch_client.insert_df(f"{db}.f", frame)
    ch_client.insert_arrow(
        f"{db}.f",
        pa.table(
            {
                "a": pa.array([4, 5], pa.uint32()),
                "s": ["z", "z"],
                "t": pa.array([0, 1], pa.timestamp("ms")),
            }
        ),
    )
    df = ch_client.query_df(f"SELECT * FROM {db}.f ORDER BY a")
    assert list(df["a"]) == [1, 2, 3, 4, 5]
    assert ch_client.query_arrow(f"SELECT s, count() c FROM {db}.f GROUP BY s ORDER BY s").column(
        "c"
    ).to_pylist() == [2, 1, 2]
    with ch_client.query_row_block_stream("SELECT number FROM numbers(500000)") as blocks:
        assert sum(len(b) for b in blocks) == 500000


def test_clickhouse_connect_parameters_sessions_compression(
    clickhouse: ClickHouseProcess, db: str
) -> None:
    for compress in ("lz4", "zstd", "gzip", "br", False):
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=clickhouse.port, compress=compress, session_id=uuid.uuid4().hex
        )
        client.command("CREATE TEMPORARY TABLE tt (x UInt32)")
        client.insert("tt", [(i,) for i in range(10000)])
        assert client.command("SELECT sum(x) FROM tt") == sum(range(10000))
        assert client.query("SELECT {v:String}", parameters={"v": "a'b"}).result_rows == [("a'b",)]
        client.close()


def test_clickhouse_connect_million_row_insert(ch_client, db: str) -> None:  # type: ignore[no-untyped-def]
    ch_client.command(
        f"CREATE TABLE {db}.big (id UInt64, wiki LowCardinality(String)) "
        "ENGINE = MergeTree ORDER BY id"
    )
    ids = list(range(1_000_000))
    ch_client.insert(
        f"{db}.big", [ids, ["enwiki"] * len(ids)], column_names=["id", "wiki"], column_oriented=True
    )
    assert ch_client.query(f"SELECT count(), uniqExact(id), sum(id) FROM {db}.big").result_rows == [
        (1_000_000, 1_000_000, sum(ids))
    ]


def test_clickhouse_connect_errors(ch_client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatabaseError, match="code: 60"):
        ch_client.query("SELECT * FROM default.not_there")
    with pytest.raises(DatabaseError, match="395"):
        ch_client.query("SELECT throwIf(number = 300000) FROM numbers(500000)")


def test_system_tables_clients_rely_on(clickhouse: ClickHouseProcess, ch_client, db: str) -> None:  # type: ignore[no-untyped-def]
    ch_client.command(f"CREATE TABLE {db}.s (a UInt8) ENGINE = MergeTree ORDER BY a")
    assert ch_client.query(
        f"SELECT name FROM system.tables WHERE database = '{db}'"
    ).result_rows == [("s",)]
    assert ch_client.query(
        f"SELECT name, type FROM system.columns WHERE database = '{db}'"
    ).result_rows == [("a", "UInt8")]
    assert "MergeTree" in ch_client.command(f"SHOW CREATE TABLE {db}.s")
    assert ch_client.query("SELECT value FROM system.settings WHERE name = 'readonly'").result_rows
    marker = uuid.uuid4().hex
    ch_client.query(f"SELECT '{marker}'", settings={"log_comment": marker})
    qid = f"qid-{marker}"
    # chDB assigns its own query ids; the id the client chose is the log_comment
    assert post(clickhouse, "SELECT 42", query_id=qid).headers["X-ClickHouse-Query-Id"] == qid
    ch_client.command("SYSTEM FLUSH LOGS")
    assert ch_client.query(
        f"SELECT count() FROM system.query_log WHERE log_comment = '{marker}' "
        "AND type = 'QueryFinish' AND query_kind = 'Select'"
    ).result_rows == [(1,)]
    assert ch_client.query(
        f"SELECT query FROM system.query_log WHERE log_comment = '{qid}' AND type = 'QueryFinish'"
    ).result_rows == [("SELECT 42",)]


def test_ten_clients_at_once(clickhouse: ClickHouseProcess, db: str) -> None:
    post(clickhouse, f"CREATE TABLE {db}.p (k UInt32, v UInt64) ENGINE = MergeTree ORDER BY k")
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            client = clickhouse_connect.get_client(host="127.0.0.1", port=clickhouse.port)
            for _ in range(5):
                client.insert(f"{db}.p", [(k, i) for i in range(2000)], column_names=["k", "v"])
                client.query(f"SELECT count() FROM {db}.p WHERE k = {k}")
            client.close()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert post(clickhouse, f"SELECT count(), uniqExact(k) FROM {db}.p").text.split() == [
        "100000",
        "10",
    ]


# -- lifecycle ----------------------------------------------------------------------------------


def test_restart_keeps_data_and_sigterm_is_clean(tmp_path: Path) -> None:
    server = ClickHouseProcess(tmp_path / "data").start()
    post(server, "CREATE TABLE keep (a UInt32) ENGINE = MergeTree ORDER BY a")
    post(server, b"".join(b"%d\n" % i for i in range(1000)), query="INSERT INTO keep FORMAT TSV")
    assert server.stop(signal.SIGTERM) == 0
    server.start()
    assert post(server, "SELECT count(), sum(a) FROM keep").text.split() == [
        "1000",
        str(sum(range(1000))),
    ]
    assert server.stop(signal.SIGINT) == 0


def start_failure(data: Path, port: int) -> str:
    """Start a server that must refuse to start; its one-line reason."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "wiki_events",
            "clickhouse",
            "--data",
            str(data),
            "--port",
            str(port),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    return done.stderr


def test_port_taken_and_folder_in_use_are_one_line_errors(
    clickhouse: ClickHouseProcess, tmp_path: Path
) -> None:
    assert "already taken" in start_failure(tmp_path / "d", clickhouse.port)
    assert "in use by another process" in start_failure(clickhouse.data, free_port())


def test_form_encoded_queries_with_compression(clickhouse: ClickHouseProcess) -> None:
    """clickhouse-connect's form encoding (query and parameters as multipart fields),
    with each compression; and a compressed multipart body sent by hand."""
    for compress in (False, "lz4", "zstd", "gzip", "br"):
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=clickhouse.port, compress=compress, form_encode_query_params=True
        )
        assert client.query("SELECT {a:UInt8} + 1", parameters={"a": 1}).result_rows == [(2,)]
        assert client.command("SELECT 7") == 7
        client.close()
    boundary = "b0undary"
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="query"\r\n\r\n'
        f"SELECT {{x:UInt8}} * 2\r\n--{boundary}\r\nContent-Disposition: form-data; "
        f'name="param_x"\r\n\r\n21\r\n--{boundary}--\r\n'
    ).encode()
    r = httpx.post(
        clickhouse.url,
        content=gzip.compress(form),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Encoding": "gzip",
        },
    )
    assert r.text == "42\n", r.text


def test_session_timezone_in_the_url_is_the_reply_time_zone(
    clickhouse: ClickHouseProcess, ch_client
) -> None:  # type: ignore[no-untyped-def]
    r = post(clickhouse, "SELECT timezone()", session_timezone="Asia/Tokyo")
    assert r.text == "Asia/Tokyo\n"
    assert r.headers["X-ClickHouse-Timezone"] == "Asia/Tokyo"
    assert post(clickhouse, "SELECT 1").headers["X-ClickHouse-Timezone"] != "Asia/Tokyo"
    settings = {"session_timezone": "Asia/Tokyo"}
    stamp = ch_client.query("SELECT toDateTime('2024-01-01 09:00:00')", settings=settings)
    # read in the session's zone: 09:00 in Tokyo is 00:00 UTC
    value = stamp.result_rows[0][0]
    assert value.replace(tzinfo=value.tzinfo or dt.UTC).astimezone(dt.UTC) == dt.datetime(
        2024, 1, 1, 0, 0, tzinfo=dt.UTC
    )
