"""A local EventStreams: replays a recorded NDJSON or SSE file the way the service sends it.

What it reproduces (see ``shared/data/eventstreams-protocol.md``):

- ``GET /v2/stream/recentchange`` (or ``mediawiki.recentchange``): ``:ok`` first, then
  ``event: message`` / ``id:`` / ``data:`` per event; an unknown stream is HTTP 400;
- ``id:`` as EventStreams writes it: a JSON array with the active topic's
  ``{"topic", "partition": 0, "timestamp": <meta.dt in ms + 1>}`` and the idle
  topic's ``"offset": -1``;
- positions as Kafka finds them: ``Last-Event-ID`` (offset beats timestamp) or
  ``?since=`` (ms or a date) is turned into the *earliest* offset at which the topic's
  time (the newest ``meta.dt`` so far, which the ids carry) is ``>=`` the one asked for,
  so a resume may repeat the events of the reader's overlap, as the real one does, and
  a reconnect at the end of a recording resumes at its end;
- forced disconnects every N events or S seconds, and a speed: real time by
  ``meta.dt``, N times faster, a fixed rate, or as fast as possible;
- ``loop``: the file again and again, each pass with fresh ``meta.id``\\ s and
  ``meta.dt`` shifted past the previous pass, for long runs and benchmarks.

Every event is served as the bytes recorded: an NDJSON file is split on ``\n`` only
(U+2028 or U+0085 inside a JSON string stays inside its event), nothing is decoded, and
lines that are not JSON, not UTF-8, nested past any parser's depth or with a ``meta.dt``
that is no time are sent as they are, so a reader's quarantine can be tested.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import functools
import hashlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from wiki_core.event import FUTURE_TOLERANCE_MS
from wiki_core.timefmt import iso_ms

from .sse import SSEParser

STREAMS = {"recentchange", "mediawiki.recentchange"}
TOPICS = ("eqiad.mediawiki.recentchange", "codfw.mediawiki.recentchange")


@dataclass(frozen=True)
class Record:
    data: bytes  # the event as recorded
    ts_ms: int  # the Kafka timestamp: meta.dt in milliseconds
    meta_id: str | None


def load(path: str | Path) -> list[Record]:
    """The events of an NDJSON or raw SSE capture, in file (= Kafka offset) order."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".sse":
        parser = SSEParser()
        payloads = [e.raw for e in parser.feed(raw + b"\n\n") if e.event == "message"]
    else:
        payloads = [line for line in raw.split(b"\n") if line.strip()]
    records: list[Record] = []
    last_ts = 0
    for data in payloads:
        ts, meta_id = last_ts, None
        meta = _meta(data)
        if meta is not None:
            when, event_id = meta.get("dt"), meta.get("id")
            try:
                ts = iso_ms(when) if isinstance(when, str) else ts
            except ValueError:
                pass  # sent as it is; the reader quarantines it
            meta_id = event_id if isinstance(event_id, str) else None
        last_ts = ts
        records.append(Record(data, ts, meta_id))
    if not records:
        raise ValueError(f"{path}: no events")
    return records


class Log:
    """The replayed topic: records by offset; with ``loop``, pass k repeats the file with
    fresh ids and times shifted by k × (span of the topic's time + 1 s).

    The span is that of the topic's time (the newest ``meta.dt`` so far), from the first
    record to the last: a late event dated years back (the recordings hold one from 2016
    after 2024's) does not stretch it, so the passes follow each other as a live stream's
    hours do instead of jumping years into the future, where the reader quarantines
    them (``future-meta-dt``)."""

    def __init__(self, records: list[Record], loop: bool) -> None:
        self.records = records
        self.loop = loop
        self.size = len(records)
        stamps = [r.ts_ms for r in records]
        # The topic's time: the newest meta.dt so far, in offset order. Ids carry it and
        # offsets-for-times bisect it (the earliest offset at which it is >= t), so a
        # resume with the last id lands at the end however old the last event's own
        # meta.dt is: one dated 2016 at the end of a file sent a resume back to the start.
        self._time = list(itertools.accumulate(stamps, max))
        self._max_ts = self._time[-1]
        self.shift = self._max_ts - self._time[0] + 1000

    def __len__(self) -> int:
        return self.size

    def future_lap(self, now_ms: int, tolerance_ms: int = FUTURE_TOLERANCE_MS) -> int | None:
        """With ``loop``: the first pass dated past ``now_ms`` + ``tolerance_ms`` (the
        reader quarantines its events as from the future), when it is near enough to
        matter (within 1,000 passes); None otherwise."""
        if not self.loop:
            return None
        lap = max(0, (now_ms + tolerance_ms - self._max_ts) // self.shift + 1)
        return lap if lap <= 1000 else None

    def get(self, offset: int) -> Record | None:
        lap, index = divmod(offset, self.size)
        if lap and not self.loop:
            return None
        record = self.records[index]
        if lap == 0:
            return record
        return _fresh(record, lap, self.shift * lap)

    def time_at(self, offset: int) -> int:
        """The topic's time at ``offset``: what its id carries."""
        lap, index = divmod(offset, self.size)
        return self._time[index] + lap * self.shift

    def offset_for_time(self, ts_ms: int) -> int | None:
        lap = 0
        if self.loop and ts_ms > self._max_ts:
            lap = (ts_ms - self._max_ts - 1) // self.shift + 1
        index = bisect.bisect_left(self._time, ts_ms - lap * self.shift)
        if index >= self.size:
            return None if not self.loop else (lap + 1) * self.size
        return lap * self.size + index


def _meta(data: bytes) -> dict[str, object] | None:
    """The event's ``meta`` object, or None when it has none (or is not JSON at all)."""
    try:
        event = orjson.loads(data)  # too deeply nested: a JSONDecodeError, not a crash
    except orjson.JSONDecodeError:
        return None
    meta = event.get("meta") if isinstance(event, dict) else None
    return meta if isinstance(meta, dict) else None


def _fresh(record: Record, lap: int, shift_ms: int) -> Record:
    try:
        event = orjson.loads(record.data)
    except orjson.JSONDecodeError:
        return record
    meta = event.get("meta") if isinstance(event, dict) else None
    if not isinstance(meta, dict):
        return record
    meta["id"] = uuid5_text(f"{meta.get('id') or ''}/{lap}")
    ts = record.ts_ms + shift_ms
    seconds, ms = divmod(ts, 1000)
    meta["dt"] = f"{_second_text(seconds)}.{ms:03d}Z"
    if isinstance(event.get("timestamp"), int):
        event["timestamp"] = seconds
    return Record(orjson.dumps(event), ts, meta["id"])


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


def uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(uuid.NAMESPACE_URL, name))`` without building UUID objects: the
    looped replay makes one per event, and uuid5 was a fifth of the emulator's time."""
    hx = hashlib.sha1(_URL_NAMESPACE + name.encode()).hexdigest()
    variant = "89ab"[int(hx[16], 16) & 3]
    return f"{hx[:8]}-{hx[8:12]}-5{hx[13:16]}-{variant}{hx[17:20]}-{hx[20:32]}"


@functools.lru_cache(maxsize=4096)
def _second_text(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Options:
    speed: float = 0.0  # 0: as fast as possible; 1: real time by meta.dt; N: N× faster
    rate: float = 0.0  # events per second, overrides speed when > 0
    disconnect_every: int = 0  # close the stream after N events (0: never)
    disconnect_seconds: float = 0.0
    loop: bool = False
    topic: str = TOPICS[0]


class Emulator:
    def __init__(self, path: str | Path, options: Options | None = None) -> None:
        self.options = options or Options()
        self.log = Log(load(path), self.options.loop)
        self.closing = False  # set before shutting the server down: open streams end
        lap = self.log.future_lap(int(time.time() * 1000))
        # what to tell the user at start: a looped pass that would be quarantined whole
        self.warning = (
            None
            if lap is None
            else f"with --loop, pass {lap + 1} and later are dated in the future (the "
            f"recording's time spans {self.log.shift / 86_400_000:.1f} days per pass): the "
            "reader quarantines their events as future-meta-dt. Loop a recording of one "
            "stretch of time, not a concatenation of years."
        )
        # an event's id, dumped once with the timestamp put in per event (a json.dumps per
        # event was a tenth of the emulator's time at full speed)
        other = TOPICS[1] if self.options.topic == TOPICS[0] else TOPICS[0]
        template = json.dumps(
            [
                {"topic": self.options.topic, "partition": 0, "timestamp": 0},
                {"topic": other, "partition": 0, "offset": -1},
            ],
            separators=(",", ":"),
        )
        self._id_parts = template.split('"timestamp":0', 1)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v2/stream/{streams}", self.stream)])

    def _id(self, ts_ms: int) -> str:
        head, tail = self._id_parts
        return f'{head}"timestamp":{ts_ms + 1}{tail}'

    def _start(self, request: Request) -> int | Response:
        last = request.headers.get("last-event-id")
        if last:
            try:
                assignments = json.loads(last)
                mine = [a for a in assignments if a.get("topic") == self.options.topic]
            except (ValueError, AttributeError, TypeError):
                return _error(400, "invalid_last_event_id", f"Invalid Last-Event-ID: {last}")
            for a in mine:
                if isinstance(a.get("offset"), int) and a["offset"] >= 0:
                    return int(a["offset"]) + 1
                if isinstance(a.get("timestamp"), int):
                    found = self.log.offset_for_time(a["timestamp"])
                    return len(self.log) if found is None else found
        since = request.query_params.get("since")
        if since:
            try:
                ts = int(since) if since.isdigit() else iso_ms(since)
            except ValueError:
                return _error(400, "invalid_timestamp", f"Invalid since timestamp: {since}")
            found = self.log.offset_for_time(ts)
            return len(self.log) if found is None else found
        return 0  # a replay's "latest" is the start of the recording

    async def stream(self, request: Request) -> Response:
        streams = set(request.path_params["streams"].split(","))
        if not streams <= STREAMS:
            return _error(400, "not_found", f"Stream(s) {sorted(streams - STREAMS)} not found")
        start = self._start(request)
        if isinstance(start, Response):
            return start
        return StreamingResponse(self._events(start), media_type="text/event-stream")

    async def _events(self, offset: int) -> AsyncIterator[bytes]:
        opts = self.options
        yield b":ok\n\n"
        began = time.monotonic()
        first_ts: int | None = None
        sent = 0
        batch: list[bytes] = []
        while True:
            record = self.log.get(offset)
            if record is None:
                break
            if opts.rate > 0:
                delay = began + sent / opts.rate - time.monotonic()
            elif opts.speed > 0:
                first_ts = record.ts_ms if first_ts is None else first_ts
                delay = began + (record.ts_ms - first_ts) / 1000 / opts.speed - time.monotonic()
            else:
                delay = 0.0
            if delay > 0:
                if batch:
                    yield b"".join(batch)
                    batch.clear()
                await asyncio.sleep(delay)
            event_id = self._id(self.log.time_at(offset)).encode()
            batch.append(b"event: message\nid: %s\n%s\n" % (event_id, _data_lines(record.data)))
            offset += 1
            sent += 1
            if len(batch) >= 256:
                yield b"".join(batch)
                batch.clear()
                await asyncio.sleep(0)
            if opts.disconnect_every and sent >= opts.disconnect_every:
                break
            if opts.disconnect_seconds and time.monotonic() - began >= opts.disconnect_seconds:
                break
        if batch:
            yield b"".join(batch)
        if self.log.get(offset) is None and not opts.loop:
            # The end of the recording: hold the connection open like a quiet stream.
            while not self.closing:
                await asyncio.sleep(0.2)


def _data_lines(data: bytes) -> bytes:
    """The SSE ``data:`` lines of an event: one, or one per line of a multi-line event
    from an SSE recording."""
    if b"\n" not in data:
        return b"data: " + data + b"\n"
    return b"".join(b"data: " + line + b"\n" for line in data.split(b"\n"))


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"status": status, "type": kind, "title": message, "detail": message}, status_code=status
    )
