"""The emulator serves a recording's bytes as recorded: unit tests, no services."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from reader.emulator import Emulator, load
from reader.emulator import Options as ReplayOptions
from reader.sse import SSEParser
from reader.stream import resume_id
from wiki_core.timefmt import iso_ms

from .helpers.paths import RAW

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


def served(emulator: Emulator, last_event_id: str | None = None) -> list:  # type: ignore[type-arg]
    emulator.closing = True  # the end of the recording ends the response

    async def fetch() -> bytes:
        transport = httpx.ASGITransport(app=emulator.app())
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
            return (await client.get("/v2/stream/recentchange", headers=headers)).content

    return SSEParser(max_line=1 << 20).feed(asyncio.run(fetch()) + b"\n")


def test_a_reconnect_with_the_last_id_resumes_at_the_end(tmp_path: Path) -> None:
    old = json.loads(GOOD[1])
    old["meta"]["dt"] = "2016-08-16T02:10:00Z"  # the last event is years older than the rest
    lines = [*RAW.read_bytes().splitlines()[:50], json.dumps(old).encode()]
    emulator = Emulator(recording(tmp_path, lines))
    first = served(emulator)
    assert len(first) == 51 and first[-1].id is not None
    assert served(emulator, first[-1].id) == []  # nothing again, not the whole file


def test_a_resume_overlap_rereads_only_the_last_second(tmp_path: Path) -> None:
    emulator = Emulator(recording(tmp_path, RAW.read_bytes().splitlines()[:200]))
    first = served(emulator)
    assert first[-1].id is not None
    again = served(emulator, resume_id(first[-1].id, overlap_ms=1000))
    newest = max(iso_ms(json.loads(e.raw)["meta"]["dt"]) for e in first)
    assert 0 < len(again) < 100  # the events of the last second or two, of 200
    assert [e.raw for e in again] == [e.raw for e in first[-len(again) :]]
    assert all(newest - iso_ms(json.loads(e.raw)["meta"]["dt"]) < 60_000 for e in again)


def test_a_looped_pass_follows_the_last_one_however_old_a_late_event_is(
    tmp_path: Path,
) -> None:
    """A late event dated years back does not stretch the passes into the future (the
    reader would quarantine every looped event as future-meta-dt)."""
    old = json.loads(GOOD[1])
    old["meta"]["dt"] = "2016-08-16T02:10:00Z"
    lines = [*RAW.read_bytes().splitlines()[:50], json.dumps(old).encode()]
    emulator = Emulator(recording(tmp_path, lines), ReplayOptions(loop=True))
    size = len(emulator.log)
    first = [emulator.log.get(i) for i in range(size)]
    second = [emulator.log.get(size + i) for i in range(size)]
    newest = max(r.ts_ms for r in first if r is not None)
    assert second[0] is not None and 0 < second[0].ts_ms - newest <= 61_000
    assert {r.meta_id for r in first if r}.isdisjoint(r.meta_id for r in second if r)
    assert emulator.warning is None  # 2024's passes reach today in thousands of passes


def test_looping_a_concatenation_of_years_says_the_passes_go_into_the_future(
    tmp_path: Path,
) -> None:
    late = json.loads(GOOD[1])
    late["meta"]["dt"] = "2026-02-26T15:49:39Z"  # a second recording, 18 months later
    lines = [*GOOD, json.dumps(late).encode()]
    looped = Emulator(recording(tmp_path, lines), ReplayOptions(loop=True))
    assert looped.warning is not None and "pass 2 and later" in looped.warning
    assert looped.log.future_lap(iso_ms("2026-02-26T15:49:39Z")) == 1
    assert Emulator(recording(tmp_path, lines)).warning is None  # once: nothing to say
