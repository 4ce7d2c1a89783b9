"""The SSE parser: the specification's rules, and any chunking gives the same events."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reader.sse import OVERSIZED, Event, SSEParser

from .helpers.paths import SHARED_DATA

SAMPLE = (
    b":ok\r\n\r\n"
    b'event: message\r\nid: [1]\r\ndata: {"a":1}\r\n\r\n'
    b"data: first\ndata: second\n\n"
    b": a comment\rretry: 2500\rid: [3]\rdata:no-space\r\r"
    b'event: error\ndata: {"e":1}\n\n'
    b"id\ndata: x\n\n"  # a bare "id" field resets the last id to ""
)


def parse(chunks: list[bytes], max_line: int | None = None) -> tuple[list[Event], SSEParser]:
    parser = SSEParser(max_line=max_line)
    events: list[Event] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events, parser


def test_the_specification_rules() -> None:
    events, parser = parse([SAMPLE])
    assert [(e.event, e.data, e.id) for e in events] == [
        ("message", '{"a":1}', "[1]"),
        ("message", "first\nsecond", "[1]"),  # the last id persists
        ("message", "no-space", "[3]"),
        ("error", '{"e":1}', "[3]"),
        ("message", "x", ""),
    ]
    assert parser.retry_ms == 2500
    assert parser.comments == 2


def test_an_event_without_data_is_not_dispatched_and_ids_with_nul_are_ignored() -> None:
    events, parser = parse([b"event: ping\n\nid: a\x00b\ndata: y\n\n"])
    assert [(e.event, e.data, e.id) for e in events] == [("message", "y", None)]


def test_a_line_over_the_limit_becomes_an_oversized_event_and_the_stream_goes_on() -> None:
    big = b"data: " + b"x" * 5000 + b"\n\n"
    events, parser = parse([b"id: [9]\n", big[:3000], big[3000:], b"data: ok\n\n"], max_line=1000)
    assert events[0].event == OVERSIZED and events[0].size == len(big) - 2
    assert events[0].data.startswith("data: xxx") and events[0].id == "[9]"
    assert [(e.event, e.data) for e in events[1:]] == [("message", "ok")]
    assert parser.oversized == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SAMPLE)), max_size=40))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    edges = [0, *sorted(cuts), len(SAMPLE)]
    chunks = [SAMPLE[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    assert parse(chunks)[0] == parse([SAMPLE])[0]


REAL_SSE = SHARED_DATA / "recentchange" / "2024-09-01_harshachelva-stream-wikimedia.sse"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4096), min_size=1, max_size=8))
def test_any_chunking_of_a_real_capture_gives_the_same_events(sizes: list[int]) -> None:
    raw = Path(REAL_SSE).read_bytes()
    whole, _ = parse([raw])
    chunks, pos, k = [], 0, 0
    while pos < len(raw):
        step = sizes[k % len(sizes)]
        chunks.append(raw[pos : pos + step])
        pos += step
        k += 1
    assert parse(chunks)[0] == whole
    assert len(whole) == 864 - 1  # the last message of the capture has no data line


# LF-only streams take a fast path (one split per chunk); it must agree with the general
# line-by-line path on everything: events, ids, comments, over-long lines in any chunking.
LF_LINES = st.lists(
    st.one_of(
        st.sampled_from([b"", b"", b": keepalive", b"event: message", b"id", b"retry: 7"]),
        st.binary(max_size=40).map(lambda b: b"data: " + b.replace(b"\n", b"").replace(b"\r", b"")),
        st.integers(min_value=0, max_value=120).map(lambda n: b"id: [" + b"7" * n + b"]"),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(
    LF_LINES,
    st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=6),
    st.sampled_from([None, 48]),
)
def test_the_lf_fast_path_agrees_with_the_general_path(
    lines: list[bytes], sizes: list[int], max_line: int | None
) -> None:
    raw = b"\n".join(lines) + b"\n"
    chunks, pos, k = [], 0, 0
    while pos < len(raw):
        chunks.append(raw[pos : pos + sizes[k % len(sizes)]])
        pos += sizes[k % len(sizes)]
        k += 1
    fast, general = SSEParser(max_line=max_line), SSEParser(max_line=max_line)
    got = [e for chunk in chunks for e in fast.feed(chunk)]
    want = [e for chunk in chunks for e in general._feed(chunk)]
    assert got == want
    state = ("last_id", "retry_ms", "comments", "oversized")
    assert [getattr(fast, a) for a in state] == [getattr(general, a) for a in state]
