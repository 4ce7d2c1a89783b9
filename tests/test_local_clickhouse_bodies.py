"""Hostile request bodies against a real ``wiki-events clickhouse``: decompression bombs
(bounded memory, other clients still served, ClickHouse's error past the limit) and
compressed bodies cut short (an error and no rows, never a 200)."""

from __future__ import annotations

import gzip
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import brotli
import httpx
import lz4.frame
import pytest
import zstandard

from .helpers.clickhouse import ClickHouseProcess

LIMIT = 64 << 20  # the server's max decompressed body size in these tests
BOMB = 256 << 20  # zeros each bomb expands to


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _compress_zeros(
    make: Callable[[], tuple[Callable[[bytes], bytes], Callable[[], bytes]]],
) -> bytes:
    feed, finish = make()
    block = bytes(1 << 20)
    return b"".join(feed(block) for _ in range(BOMB >> 20)) + finish()


def _gzip() -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    obj = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return obj.compress, obj.flush


def _zstd() -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    obj = zstandard.ZstdCompressor(level=3).compressobj()
    return obj.compress, obj.flush


def _brotli() -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    obj = brotli.Compressor(quality=5)
    return obj.process, obj.finish


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {
        "gzip": _compress_zeros(_gzip),
        "zstd": _compress_zeros(_zstd),
        "br": _compress_zeros(_brotli),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseProcess]:
    mp = pytest.MonkeyPatch()
    mp.setenv("LOCAL_CLICKHOUSE_MAX_DECOMPRESSED", str(LIMIT))
    try:
        proc = ClickHouseProcess(tmp_path_factory.mktemp("bodies") / "data").start()
    finally:
        mp.undo()
    yield proc
    proc.stop()


def sql(server: ClickHouseProcess, query: str) -> httpx.Response:
    return httpx.post(server.url, content=query, timeout=60)


@pytest.mark.parametrize("encoding", ["zstd", "br", "gzip"])
def test_a_bomb_is_refused_with_bounded_memory_and_others_served(
    server: ClickHouseProcess, bombs: dict[str, bytes], encoding: str
) -> None:
    body = bombs[encoding]
    assert len(body) < 1 << 20  # a small body ...
    table = f"null_{uuid.uuid4().hex[:8]}"
    sql(server, f"CREATE TABLE {table} (a UInt8) ENGINE = Null")
    assert server.proc is not None
    pid = server.proc.pid
    before = status_kib(pid, "VmRSS")

    answered: list[float] = []
    stop = threading.Event()

    def other_client() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                r = client.post(server.url, content="SELECT 1")
                assert r.text == "1\n"
                answered.append(time.monotonic())

    other = threading.Thread(target=other_client)
    other.start()
    time.sleep(0.2)
    started = time.monotonic()
    r = httpx.post(
        server.url,
        params={"query": f"INSERT INTO {table} FORMAT RowBinary"},
        content=body,
        headers={"Content-Encoding": encoding},
        timeout=120,
    )
    ended = time.monotonic()
    stop.set()
    other.join()
    # ... that expands past the limit: ClickHouse's error, not a crash or a hang
    assert r.status_code == 400, r.text
    assert r.headers["X-ClickHouse-Exception-Code"] == "39", r.text
    assert "TOO_LARGE_SIZE_COMPRESSED" in r.text and str(LIMIT) in r.text
    # the server never held the bomb: its peak memory grew by far less than the limit
    peak = status_kib(pid, "VmHWM")
    assert peak - before < 160 * 1024, (before, peak)
    # another client was answered while the bomb was being decoded
    assert any(started < t < ended for t in answered), (started, ended, answered[-3:])
    assert sql(server, "SELECT 2").text == "2\n"


def test_a_bomb_as_a_query_body_is_refused(
    server: ClickHouseProcess, bombs: dict[str, bytes]
) -> None:
    r = httpx.post(
        server.url, content=bombs["zstd"], headers={"Content-Encoding": "zstd"}, timeout=120
    )
    assert r.headers["X-ClickHouse-Exception-Code"] in ("39", "229"), r.text
    assert sql(server, "SELECT 3").text == "3\n"


def test_a_body_under_the_limit_passes(server: ClickHouseProcess) -> None:
    table = f"t_{uuid.uuid4().hex[:8]}"
    sql(server, f"CREATE TABLE {table} (a UInt8) ENGINE = MergeTree ORDER BY tuple()")
    body = zstandard.ZstdCompressor().compress(bytes(LIMIT - 1000))
    r = httpx.post(
        server.url,
        params={"query": f"INSERT INTO {table} FORMAT RowBinary"},
        content=body,
        headers={"Content-Encoding": "zstd"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    assert sql(server, f"SELECT count(), sum(a) FROM {table}").text == f"{LIMIT - 1000}\t0\n"


# -- 5. a cut compressed body is an error and stores nothing -----------------------------

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": lambda b: zlib.compress(b, wbits=-zlib.MAX_WBITS),
    "br": brotli.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "lz4": lz4.frame.compress,
}


@pytest.mark.parametrize("method", sorted(COMPRESS))
@pytest.mark.parametrize("keep", [0.5, 0.9, -1])
def test_a_truncated_compressed_insert_is_an_error_and_stores_nothing(
    server: ClickHouseProcess, method: str, keep: float
) -> None:
    table = f"t_{uuid.uuid4().hex[:8]}"
    sql(server, f"CREATE TABLE {table} (a UInt32, s String) ENGINE = MergeTree ORDER BY a")
    rows = b"".join(b"%d\trow number %d\n" % (i, i) for i in range(20000))
    whole = COMPRESS[method](rows)
    cut = whole[: int(len(whole) * keep)] if keep > 0 else whole[:-1]
    r = httpx.post(
        server.url,
        params={"query": f"INSERT INTO {table} FORMAT TSV"},
        content=cut,
        headers={"Content-Encoding": method.split("-")[0]},
        timeout=60,
    )
    assert r.status_code != 200, r.text
    assert r.headers["X-ClickHouse-Exception-Code"] in ("271", "33"), r.text
    assert sql(server, f"SELECT count() FROM {table}").text == "0\n"
    # the whole body still works
    r = httpx.post(
        server.url,
        params={"query": f"INSERT INTO {table} FORMAT TSV"},
        content=whole,
        headers={"Content-Encoding": method.split("-")[0]},
    )
    assert r.status_code == 200, r.text
    assert sql(server, f"SELECT count() FROM {table}").text == "20000\n"


def test_concatenated_frames_and_members_are_one_body(server: ClickHouseProcess) -> None:
    table = f"t_{uuid.uuid4().hex[:8]}"
    sql(server, f"CREATE TABLE {table} (a UInt32) ENGINE = MergeTree ORDER BY a")
    parts = [b"".join(b"%d\n" % i for i in range(k * 1000, (k + 1) * 1000)) for k in range(3)]
    for method, compress in (
        ("gzip", gzip.compress),
        ("lz4", lz4.frame.compress),
        ("zstd", zstandard.ZstdCompressor().compress),
    ):
        body = b"".join(compress(p) for p in parts)
        r = httpx.post(
            server.url,
            params={"query": f"INSERT INTO {table} FORMAT TSV"},
            content=body,
            headers={"Content-Encoding": method},
        )
        assert r.status_code == 200, (method, r.text)
    assert sql(server, f"SELECT count(), uniqExact(a) FROM {table}").text == "9000\t3000\n"
