"""``wiki-events stream``: follow EventStreams and publish every event to RabbitMQ.

Two threads. The HTTP thread follows the SSE stream with httpx (reconnecting with
backoff, resuming with ``Last-Event-ID``) and puts parsed events on a bounded queue.
The main thread owns the RabbitMQ connection (pika is not thread-safe): it judges each
event (``wiki_core.event.judge``: the one judge), batches the verdicts by wiki, hands the
batch to its sink (the publisher, with confirms, or bronze directly), and only then
checkpoints the id of the last event handled — so after any crash the stream resumes at
or before the first event RabbitMQ does not have. Events published twice that way are
dropped by the loader.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from wiki_core.backoff import backoff
from wiki_core.config import user_agent
from wiki_core.event import CANARY, Reject, Valid, judge
from wiki_core.metrics import Metric, counter, gauge
from wiki_core.timefmt import ms_text, parse_iso
from wiki_core.topology import Batch, Sink
from wiki_core.unreachable import cause

from .checkpoint import Checkpoint
from .sse import OVERSIZED, Event, SSEParser

log = logging.getLogger("reader")

DEFAULT_MAX_LINE = 1 << 20
# rejects remembered to quarantine each distinct input once (32 bytes each, ~1 MB)
SEEN_REJECTS = 10_000


class FatalStreamError(RuntimeError):
    """The stream cannot go on without the user doing something (403, a bad request)."""


@dataclass
class Options:
    url: str
    contact: str = ""
    since: str | None = None  # ISO time, epoch ms, or a duration like "2h"
    reset: bool = False  # ignore the checkpoint
    wikis: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    idle_timeout: float = 60.0
    max_backoff: float = 60.0
    max_line: int = DEFAULT_MAX_LINE
    # a flush every 5000 events (or 8 MB, or `linger` seconds): one message per wiki, so
    # bigger flushes make bigger messages and bigger inserts downstream (measured end to
    # end, bench/bench_pipeline.py: 5.1k events/s with 1000, 6.6k with 5000)
    batch_events: int = 5000
    batch_bytes: int = 8 << 20
    linger: float = 0.25
    log_every: float = 5.0
    resume_overlap_ms: int = 1000


def resume_id(last_id: str, overlap_ms: int) -> str:
    """The Last-Event-ID to send back: the one received, timestamps moved back.

    EventStreams resumes at the *first* Kafka message whose timestamp is >= the one in
    the id, and the id carries the last event's time + 1 ms. Events that share that
    millisecond — and with whole-second ``meta.dt`` (2024 and before) that is the rest
    of the second — come after the last event and are skipped: measured here, a restart
    lost 28 of 2,387 events. Any overlap >= 1 ms makes the last event itself qualify,
    so the resume starts at or before it and nothing after it is skipped; the events
    read twice are dropped by ``meta.id`` in the loader. Offsets are left as they are.
    """
    try:
        assignments = json.loads(last_id)
    except ValueError:
        return last_id
    if not isinstance(assignments, list):
        return last_id
    for entry in assignments:
        if isinstance(entry, dict) and isinstance(entry.get("timestamp"), int):
            entry["timestamp"] = max(0, entry["timestamp"] - overlap_ms)
    return json.dumps(assignments, separators=(",", ":"))


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_ms(value: str, now: float | None = None) -> int:
    """``2h`` / ``30m`` / ``1d`` ago, an ISO time, or epoch milliseconds."""
    now = time.time() if now is None else now
    value = value.strip()
    if value.isdigit():
        return int(value)
    match = _DURATION.match(value)
    if match:
        return int((now - float(match.group(1)) * _UNIT[match.group(2)]) * 1000)
    try:
        when = parse_iso(value)
    except ValueError:
        raise ValueError(
            f"--since {value!r}: give an ISO time (2026-11-22T10:00:00Z), epoch "
            "milliseconds, or a duration such as 90s, 30m, 2h, 1d"
        ) from None
    return int(when.timestamp() * 1000)


@dataclass
class Stats:
    received: int = 0
    published: int = 0
    canaries: int = 0
    filtered: int = 0
    reconnects: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    newest_ms: int | None = None  # the newest meta.dt published
    started: float = field(default_factory=time.monotonic)

    def metrics(self) -> list[Metric]:
        """The counters for Prometheus (``METRICS_PORT``), read when scraped."""
        return [
            counter("wiki_reader_events_received", "Events read from the stream.", self.received),
            counter("wiki_reader_events_published", "Events the sink confirmed.", self.published),
            counter("wiki_reader_canaries", "Canary events dropped.", self.canaries),
            counter("wiki_reader_filtered", "Events left out by --wiki / --type.", self.filtered),
            counter("wiki_reader_reconnects", "Reconnections to the stream.", self.reconnects),
            counter("wiki_reader_quarantined", "Events quarantined, by reason.", self.quarantined),
            gauge(
                "wiki_reader_newest_event_timestamp_seconds",
                "meta.dt of the newest event published (0: none yet).",
                (self.newest_ms or 0) / 1000,
            ),
        ]

    def line(self, rate: float) -> str:
        newest, lag = "None", ""
        if self.newest_ms is not None:
            newest = ms_text(self.newest_ms)
            lag = f" lag={time.time() - self.newest_ms / 1000:.1f}s"
        quarantined = sum(self.quarantined.values())
        return (
            f"events/s={rate:.0f} received={self.received} published={self.published} "
            f"newest={newest}{lag} reconnects={self.reconnects} "
            f"quarantined={quarantined} canaries={self.canaries} filtered={self.filtered}"
        )


class _HttpFollower(threading.Thread):
    """Follows the SSE stream forever, reconnecting; puts each chunk's events on ``out``,
    as a list."""

    def __init__(
        self,
        opts: Options,
        start_id: str | None,
        out: queue.Queue[object],
        stats: Stats,
        stop: threading.Event,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(name="sse", daemon=True)
        self.opts = opts
        self.last_id = start_id
        self.out = out
        self.stats = stats
        self.stop_event = stop
        self.transport = transport
        self._offline_hint_given = False

    def run(self) -> None:
        try:
            self._follow()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.out.put(exc)

    def _follow(self) -> None:
        opts = self.opts
        attempt = 0
        retry_ms: int | None = None
        headers = {"User-Agent": user_agent(opts.contact), "Accept": "text/event-stream"}
        timeout = httpx.Timeout(10.0, read=opts.idle_timeout)
        with httpx.Client(
            timeout=timeout, transport=self.transport, follow_redirects=True
        ) as client:
            while not self.stop_event.is_set():
                params = {}
                request_headers = dict(headers)
                if self.last_id:
                    request_headers["Last-Event-ID"] = resume_id(
                        self.last_id, opts.resume_overlap_ms
                    )
                elif opts.since:
                    params["since"] = str(since_ms(opts.since))
                got_events = False
                try:
                    with client.stream(
                        "GET", opts.url, headers=request_headers, params=params
                    ) as response:
                        self._check_status(response)
                        parser = SSEParser(max_line=opts.max_line)
                        parser.last_id = self.last_id
                        for chunk in response.iter_bytes():
                            # a chunk's events go as one item: a hand-off between the
                            # threads per event cost more than parsing the event
                            parsed = parser.feed(chunk)
                            if parsed:
                                got_events = True
                                self.out.put(parsed)
                                self.last_id = parsed[-1].id or self.last_id
                            retry_ms = parser.retry_ms or retry_ms
                            if self.stop_event.is_set():
                                return
                    # The server closed the stream: routine (about every 15 minutes).
                    log.info("stream closed by the server; resuming")
                    attempt = 0 if got_events else attempt + 1
                except httpx.ReadTimeout:
                    log.warning(
                        "no bytes for %.0fs: treating the connection as dead", opts.idle_timeout
                    )
                    attempt += 1
                except _Retry as exc:
                    log.warning("%s", exc)
                    attempt = max(attempt + 1, exc.min_attempt)
                except httpx.TransportError as exc:
                    if self.stop_event.is_set():
                        return  # closed under us while stopping
                    attempt = 0 if got_events else attempt + 1
                    self._say_unreachable(exc, attempt)
                self.stats.reconnects += 1
                delay = backoff(attempt, opts.max_backoff) if attempt else 0.0
                if retry_ms is not None:
                    delay = max(delay, retry_ms / 1000)
                self.stop_event.wait(delay)

    def _say_unreachable(self, exc: httpx.TransportError, attempt: int) -> None:
        """Where, why, and (the first time) what to do without a network."""
        text = f"cannot reach the stream at {self.opts.url} ({cause(exc)})"
        if not self._offline_hint_given:
            self._offline_hint_given = True
            text += (
                "; retrying with backoff. Without a network, replay recorded events: "
                "`wiki-events up --replay FILE` (or `wiki-events replay FILE` and "
                "STREAM_URL pointing at it)"
            )
        else:
            text += f"; retry {attempt}"
        log.warning("%s", text)

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status == 200:
            return
        body = response.read().decode(errors="replace")[:500]
        if status == 403:
            raise FatalStreamError(
                "EventStreams refused the connection (HTTP 403). Wikimedia requires a "
                "User-Agent naming the tool and a contact: set WIKI_EVENTS_CONTACT to your "
                f"email or a URL (sent: {user_agent(self.opts.contact)!r})."
            )
        if status == 429:
            raise _Retry(
                "EventStreams says too many connections from this address "
                "(HTTP 429): run one reader per IP; backing off",
                min_attempt=6,
            )
        if status >= 500:
            raise _Retry(f"EventStreams answered HTTP {status}; backing off")
        raise FatalStreamError(f"EventStreams answered HTTP {status} for {self.opts.url}: {body}")


class _Retry(Exception):
    def __init__(self, message: str, min_attempt: int = 1) -> None:
        super().__init__(message)
        self.min_attempt = min_attempt


class Reader:
    """Validates, batches and publishes events; checkpoints what RabbitMQ confirmed."""

    def __init__(
        self,
        opts: Options,
        publisher: Sink,
        checkpoint: Checkpoint,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.opts = opts
        self.publisher = publisher
        self.checkpoint = checkpoint
        self.transport = transport
        self.stats = Stats()
        self.stop_event = threading.Event()
        self._batch = Batch()
        self._seen_rejects: OrderedDict[bytes, None] = OrderedDict()  # bounded: SEEN_REJECTS
        self._batch_events = 0
        self._batch_bytes = 0
        self._last_id: str | None = None  # id of the last event handled, not yet saved

    def stop(self) -> None:
        self.stop_event.set()

    def run(self, until: Callable[[Stats], bool] | None = None) -> Stats:
        start_id = None if self.opts.reset else self.checkpoint.load()
        if start_id:
            log.info("resuming from checkpoint %s", start_id)
        elif self.opts.since:
            log.info("no checkpoint: starting from --since %s", self.opts.since)
        if not self.opts.contact:
            log.warning(
                "WIKI_EVENTS_CONTACT is not set: Wikimedia's User-Agent policy asks "
                "for a contact (email or URL), and may answer 403 without one"
            )
        self.publisher.connect()
        # lists of events, one per chunk read (tens of events each); or the follower's error
        events: queue.Queue[object] = queue.Queue(maxsize=500)
        follower = _HttpFollower(
            self.opts, start_id, events, self.stats, self.stop_event, self.transport
        )
        follower.start()
        last_flush = last_log = time.monotonic()
        logged_received = 0
        try:
            while not self.stop_event.is_set():
                try:
                    item = events.get(timeout=min(self.opts.linger, 0.25))
                except queue.Empty:
                    item = None
                while isinstance(item, list):
                    for event in item:
                        self._handle(event)
                    if self._batch_events >= self.opts.batch_events:
                        break
                    try:  # drain what is already there without waiting
                        item = events.get_nowait()
                    except queue.Empty:
                        break
                if isinstance(item, BaseException):
                    raise item
                now = time.monotonic()
                if (
                    self._batch_events >= self.opts.batch_events
                    or self._batch_bytes >= self.opts.batch_bytes
                    or now - last_flush >= self.opts.linger
                ):
                    self.flush()
                    last_flush = now
                self.publisher.tick()
                if now - last_log >= self.opts.log_every:
                    rate = (self.stats.received - logged_received) / (now - last_log)
                    log.info("%s", self.stats.line(rate))
                    last_log, logged_received = now, self.stats.received
                if until is not None and until(self.stats):
                    break
        finally:
            self.stop_event.set()
            try:
                self.flush()
            finally:
                self.publisher.close()
                elapsed = max(time.monotonic() - self.stats.started, 1e-9)
                log.info("summary: %s", self.stats.line(self.stats.received / elapsed))
        return self.stats

    def _handle(self, event: Event) -> None:
        self.stats.received += 1
        if event.event == OVERSIZED:
            self._quarantined(Reject("oversized", f"{event.size} bytes", event.raw))
        elif event.event == "error":
            log.warning("EventStreams sent an error event: %s", event.data[:500])
            self._quarantined(Reject("server-error-event", "", event.raw))
        elif event.event != "message":
            self.stats.filtered += 1
        else:
            self._message(event)
        if event.id:
            self._last_id = event.id

    def _message(self, event: Event) -> None:
        raw = event.raw  # bytes as they arrived: judged and passed on without a decode
        if event.size > self.opts.max_line:
            self._quarantined(Reject("oversized", f"{event.size} bytes", raw[:4096]))
            return
        verdict = judge(raw)
        if verdict is CANARY:
            self.stats.canaries += 1
            return
        if isinstance(verdict, Reject):
            self._quarantined(verdict)
            return
        assert isinstance(verdict, Valid)
        if self.opts.wikis and verdict.wiki not in self.opts.wikis:
            self.stats.filtered += 1
            return
        if self.opts.types and verdict.type not in self.opts.types:
            self.stats.filtered += 1
            return
        self._batch.events.setdefault(_routing_key(verdict.wiki), []).append(verdict)
        self._batch_events += 1
        self._batch_bytes += len(verdict.raw)
        if self.stats.newest_ms is None or verdict.millis > self.stats.newest_ms:
            self.stats.newest_ms = verdict.millis

    def _quarantined(self, reject: Reject) -> None:
        reject.source = "reader"
        reject.raw = reject.raw[: self.opts.max_line]
        # once per distinct input: a resume re-reads its overlap, bad lines included
        key = hashlib.sha256(reject.raw).digest()
        if key in self._seen_rejects:
            self._seen_rejects.move_to_end(key)
            return
        self._seen_rejects[key] = None
        if len(self._seen_rejects) > SEEN_REJECTS:
            self._seen_rejects.popitem(last=False)
        self.stats.quarantined[reject.reason] += 1
        self._batch.rejects.append(reject)
        self._batch_events += 1

    def flush(self) -> None:
        """Hand everything judged so far to the sink, then checkpoint the last id."""
        batch, self._batch = self._batch, Batch()
        self._batch_events = self._batch_bytes = 0
        if len(batch):
            self.publisher.publish(batch)
            self.stats.published += sum(len(events) for events in batch.events.values())
        if self._last_id is not None:
            self.checkpoint.save(self._last_id)
            self._last_id = None


def _routing_key(wiki: str) -> str:
    """The wiki (judged: a database name), or ``unknown`` for an event without one."""
    return wiki or "unknown"
