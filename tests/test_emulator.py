"""The emulator serves a recording's bytes as recorded: unit tests, no services."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from reader.emulator import Emulator, load
from reader.sse import SSEParser

from .conftest import RAW

GOOD = RAW.read_bytes().splitlines()[:2]
NESTED = b'{"meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
NUMERIC_DT = json.dumps({"meta": {"id": "n1", "dt": 1724299409}, "wiki": "enwiki"}).encode()
SEPARATORS = json.dumps(
    {"meta": {"id": "s1", "dt": "2024-08-22T04:03:30Z"}, "comment": "a\u2028b\u2029c\u0085d"},
    ensure_ascii=False,
).encode()
NOT_UTF8 = GOOD[0].replace(b'"meta"', b'"\xff\xfe": 1, "meta"', 1)


def recording(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "replay.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(
    "line", [NESTED, NUMERIC_DT, SEPARATORS, NOT_UTF8, b"{not json"], ids=lambda b: b[:12]
)
def test_a_line_is_one_event_kept_byte_for_byte(tmp_path: Path, line: bytes) -> None:
    records = load(recording(tmp_path, [GOOD[0], line, GOOD[1]]))
    assert [r.data for r in records] == [GOOD[0], line, GOOD[1]]


def test_a_line_without_a_usable_meta_dt_keeps_the_time_before_it(tmp_path: Path) -> None:
    first, numeric, nested = load(recording(tmp_path, [GOOD[0], NUMERIC_DT, NESTED]))
    assert numeric.ts_ms == nested.ts_ms == first.ts_ms
    assert numeric.meta_id == "n1" and nested.meta_id is None


def test_a_crlf_file_and_blank_lines_are_lines_too(tmp_path: Path) -> None:
    path = tmp_path / "crlf.ndjson"
    path.write_bytes(GOOD[0] + b"\r\n\r\n" + GOOD[1] + b"\r\n")
    assert [r.meta_id for r in load(path)] == [json.loads(g)["meta"]["id"] for g in GOOD]


def test_the_stream_serves_each_event_as_recorded(tmp_path: Path) -> None:
    lines = [GOOD[0], SEPARATORS, NOT_UTF8, NESTED, NUMERIC_DT, GOOD[1]]
    emulator = Emulator(recording(tmp_path, lines))
    emulator.closing = True  # the end of the recording ends the response

    async def fetch() -> bytes:
        transport = httpx.ASGITransport(app=emulator.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
            return (await client.get("/v2/stream/recentchange")).content

    body = asyncio.run(fetch())
    events = SSEParser(max_line=1 << 20).feed(body + b"\n")
    assert [e.raw for e in events] == lines
