"""The dumps loader: each published file into ClickHouse exactly once.

Python moves bytes; ClickHouse parses them. A file is downloaded with httpx as a stream,
decompressed as a stream (gzip, bz2; the loader checks the end of the compressed stream
and its CRC itself, which tells a truncated or corrupt file from a good one) and piped
straight into ``INSERT INTO bronze.load_<id> FORMAT LineAsString``: no line is looked
at in Python, memory is a few chunks whatever the file's size.

Nothing a site sends is trusted to be what the index promised (``Limits``): a
decompression step yields at most ``PIECE`` bytes, and a file fails, as a corrupt one
does, when it decompresses past a ratio of its listed size or a ceiling, holds an
over-long line, sends more bytes than listed, or outlasts its time; a redirect off the
dumps site (another host or scheme, a private address) is refused before it is asked.

Exactly once, with materialized views that fire on every insert
-------------------------------------------------------------------
Materialized views turn each inserted block into silver and gold rows at once, so a
load killed half-way (kill -9, a cut download, a corrupt tail) has already put half a
file's rows into every layer, and no insert can be taken back. Three alternatives were
weighed:

1. Stage the whole file in a table without views, then copy it into bronze with one
   ``INSERT ... SELECT``. The copy is not atomic either: it is inserted block by block,
   the views fire per block, and a crash of the server (or of a client that cancels)
   during the copy leaves part of it. It also writes every row twice.
2. Partition every gold table by file and swap partitions in (``REPLACE PARTITION``).
   Atomic per table, but not across the dozen gold tables; and daily tables summed over
   24 hourly files cannot be partitioned by file without 8,760 partitions a year.
3. **Tag every row with its load, and publish a load by one row in the ledger** (chosen).
   Each load gets a fresh ``load_id``; the per-load Null table ``bronze.load_<id>``
   carries a materialized view that stamps ``load_id`` (and the file's hour or day) on
   every row it passes to bronze, and the id travels on through silver into gold, where
   it is part of every sorting key (so SummingMergeTree never folds two loads into one
   row). Gold is read through views that keep only the loads listed in
   ``bronze.dumps_visible``: per file, the newest load whose ledger state is ``done``.
   That state is written by a single-row insert, which ClickHouse applies atomically,
   after the loader has checked the whole file arrived (bytes against
   ``Content-Length``, the compressed stream's end and CRC, the rows ClickHouse counted
   against the lines the loader counted). Before that row exists, nothing of the load is
   visible; after it, all of it is.

So, for each kind of failure:

- kill -9 (or a power cut) anywhere before the ``done`` row: the load stays ``loading``;
  its rows are invisible. The next run marks it ``failed`` ("abandoned"), deletes its
  rows from every table that has a ``load_id`` column, and loads the file again.
- after the ``done`` row, before the clean-up: the file is visible once (the new load);
  the superseded load's rows are invisible and the next run deletes them.
- a cut download: resumed with ``Range`` + ``If-Range`` into the same insert when the
  server allows; otherwise (or if the file changed meanwhile) the load fails and the
  file is retried as a new load, with backoff.
- a truncated or corrupt file: the load is marked ``failed`` with the reason; its rows
  are deleted; nothing is visible. The next run tries again (the site may fix it).
- a republished file (another size or date in the index): a new load; when it is
  ``done``, the old load is ``superseded`` in the same instant (the visible view takes
  the newest ``done``) and its rows are deleted.

One loader per dataset at a time: a run marks every ``loading`` load it finds as
abandoned. (``wiki-events pageviews --follow`` is that one loader in production.)

Bad lines (the fact sheet's quirks, malformed rows) are not failures: bronze keeps them
with a ``fault``, silver leaves them out, ``bronze.dumps_rejects`` counts them per load
and reason, with one example. A load filtered with ``--wiki`` / ``--project`` counts the
lines its filter leaves out (``bronze.dumps_left_out``), so it is checked like any other:
rows kept + lines left out = lines sent; the ledger records the rows kept.

Once a pageviews load is published (its ``done`` row), the loader computes the attention
spikes of its hour (and of the loaded hours in the 24 after it) into gold
(``dumps/spikes.py``), tagged with its ``load_id``: purged with it, and a failure there
costs the spikes (made later by ``spikes.catch_up``), never the load.
"""

from __future__ import annotations

import bz2
import datetime as dt
import email.utils
import html as htmllib
import ipaddress
import logging
import re
import socket
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from wiki_core.config import (
    SettingError,
    Settings,
    clickhouse_client,
    environment,
    number,
    user_agent,
    whole_number,
)
from wiki_core.unreachable import sentence

from . import schema, spikes
from .domains import codes_for_wiki

log = logging.getLogger("dumps")

HOUR = dt.timedelta(hours=1)
# what to do when the dumps site does not answer (a laptop without a network, a typo)
REMEDY = (
    "check DUMPS_URL (or point it at a mirror, or at a local site serving files at hand, "
    "and load them with --from/--to)"
)
DAY = dt.timedelta(days=1)


class LoadFailed(Exception):
    """The file could not be loaded whole; the message says why."""


class Refused(LoadFailed):
    """A request the loader will not make (a redirect off the dumps site, a scheme that
    is not the site's): never retried."""


class Interrupted(LoadFailed):
    """Asked to stop (SIGTERM, Ctrl-C, ``up`` stopping) mid-file or while waiting to
    retry: the file's load is ``failed`` (nothing of it visible) and is loaded again at
    the next start."""


class Restart(Exception):
    """The download cannot resume where it stopped: start the file again."""


@dataclass(frozen=True)
class Dataset:
    name: str  # ledger / table name
    step: dt.timedelta
    folder: Callable[[dt.datetime], str]
    file: Callable[[dt.datetime], str]
    compression: str  # gzip, bz2, none
    first: dt.datetime  # the first period Wikimedia published (the fact sheet)

    def count(self, start: dt.datetime, end: dt.datetime) -> int:
        """How many periods [start, end) holds (counted, not listed: any range is cheap)."""
        return max(0, -((start - end) // self.step))


PAGEVIEWS = Dataset(
    "pageviews",
    HOUR,
    lambda t: f"pageviews/{t:%Y}/{t:%Y-%m}/",
    lambda t: f"pageviews-{t:%Y%m%d-%H}0000.gz",
    "gzip",
    dt.datetime(2015, 5, 1, tzinfo=dt.UTC),  # "since May 2015"
)
PROJECTVIEWS = Dataset(
    "projectviews",
    HOUR,
    lambda t: f"pageviews/{t:%Y}/{t:%Y-%m}/",
    lambda t: f"projectviews-{t:%Y%m%d-%H}0000",
    "none",
    dt.datetime(2015, 5, 1, tzinfo=dt.UTC),
)
MEDIACOUNTS = Dataset(
    "mediacounts",
    DAY,
    lambda t: f"mediacounts/daily/{t:%Y}/",
    lambda t: f"mediacounts.{t:%Y-%m-%d}.v00.tsv.bz2",
    "bz2",
    dt.datetime(2015, 1, 1, tzinfo=dt.UTC),  # "backfilled from 2015-01-01"
)
DATASETS = {d.name: d for d in (PAGEVIEWS, PROJECTVIEWS, MEDIACOUNTS)}


# -- the dumps site's index pages ------------------------------------------------------------

_ENTRY = re.compile(
    r'<a href="([^"]+)">[^<]*</a>\s+(\d{2}-\w{3}-\d{4} \d{2}:\d{2})\s+(-|\d+)\r?$', re.M
)
# any link: Apache's tables and lists, Python's http.server, a hand-made page
_HREF = re.compile(r"""<a\s[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
UNKNOWN = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # a date the index does not say
MAX_INDEX_BYTES = 32 << 20  # an index page (a month of hours: ~200 KB)
MAX_INDEX_ENTRIES = 200_000


@dataclass(frozen=True)
class Listed:
    name: str
    size: int  # -1: the index does not say exactly (asked of the file: HEAD)
    modified: dt.datetime  # to the minute, UTC

    @property
    def known(self) -> bool:
        return self.size >= 0


def parse_index(html: str) -> dict[str, Listed]:
    """The files of an index page (folders left out). nginx's autoindex says each file's
    size in bytes and its date in UTC: taken as listed. Any other page (Apache's fancy
    index, whose sizes are rounded and dates local; Python's http.server; a plain list
    of links) names the files only: their size and date are asked of the file itself
    (``Loader.listed``: HEAD)."""
    out = {}
    for href, when, size in _ENTRY.findall(html):
        if size == "-" or href.endswith("/"):
            continue
        name = httpx.URL(href).path  # percent-decoded
        modified = dt.datetime.strptime(when, "%d-%b-%Y %H:%M").replace(tzinfo=dt.UTC)
        out[name] = Listed(name, int(size), modified)
    for found in _HREF.finditer(html):
        href = htmllib.unescape(found.group(1) if found.group(1) is not None else found.group(2))
        if not href or href.endswith("/") or "?" in href or "#" in href:
            continue  # a folder, a sorting link (Apache's ?C=N;O=D), an anchor
        try:
            name = httpx.URL(href).path.rsplit("/", 1)[-1]
        except httpx.InvalidURL:
            continue
        if name and name not in out:
            out[name] = Listed(name, -1, UNKNOWN)
        if len(out) > MAX_INDEX_ENTRIES:
            raise LoadFailed(f"the index lists more than {MAX_INDEX_ENTRIES:,} files")
    return out


# -- streaming: download, decompress, count ------------------------------------------------


PIECE = 1 << 20  # the most one decompression step may produce (bytes)


class _Decoder:
    """A stream decompressor whose every step is bounded: ``feed`` yields pieces of at
    most ``PIECE`` bytes, however much a network chunk would expand to, so memory stays
    a few pieces whatever the file holds (a bomb is stopped by the caller's limits)."""

    def __init__(self, compression: str) -> None:
        self.compression = compression
        self._obj: Any = None
        self._new()

    def _new(self) -> None:
        if self.compression == "gzip":
            self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.compression == "bz2":
            self._obj = bz2.BZ2Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._obj is None:
            if data:
                yield data
            return
        while True:
            if self._obj.eof:  # a further member (gzip -c a b > c; pbzip2), or none yet
                if not data:
                    return
                self._new()
            try:
                out = self._obj.decompress(data, PIECE)
            except (zlib.error, OSError, EOFError) as exc:
                raise LoadFailed(f"corrupt {self.compression} stream: {exc}") from exc
            if out:
                yield out
            if self._obj.eof:
                data = self._obj.unused_data
            elif self.compression == "bz2":
                if self._obj.needs_input:
                    return
                data = b""  # output was cut at PIECE: more to come from what it holds
            else:
                data = self._obj.unconsumed_tail
                if not data and len(out) < PIECE:
                    return

    def finish(self) -> None:
        if self._obj is not None and not self._obj.eof:
            raise LoadFailed(f"truncated {self.compression} stream: the file ends mid-stream")


class _Lines:
    """Counts lines and refuses one longer than ``limit`` bytes, as the bytes pass (no
    line is split or kept: the longest run between newlines is measured with jumps of
    ``limit`` bytes, so the cost is a few ``find`` calls per piece)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.run = 0  # bytes since the last newline

    def feed(self, data: bytes) -> None:
        last = data.rfind(b"\n")
        if last < 0:
            self._check(self.run + len(data), self.count + 1)
            self.run += len(data)
            return
        first = data.find(b"\n")
        self._check(self.run + first, self.count + 1)
        at = first
        while at < last:  # from a newline, the last one within ``limit`` + 1 bytes on
            nxt = data.rfind(b"\n", at + 1, at + self.limit + 2)
            if nxt < 0:
                self._check(self.limit + 1, self.count + data.count(b"\n", 0, at) + 2)
            at = nxt
        self.count += data.count(b"\n")
        self.run = len(data) - last - 1
        self._check(self.run, self.count + 1)  # the line this piece leaves open

    def finish(self) -> None:
        if self.run:
            self.count += 1  # a last line without its newline still is a line

    def _check(self, length: int, line: int) -> None:
        if length > self.limit:
            raise LoadFailed(
                f"line {line:,} is longer than {self.limit:,} bytes (DUMPS_MAX_LINE_BYTES)"
            )


@dataclass
class Progress:
    files_done: int = 0
    files_total: int = 0
    bytes: int = 0
    rows: int = 0
    started: float = field(default_factory=time.monotonic)
    current: str = ""
    current_bytes: int = 0
    current_size: int = 0
    last_print: float = 0.0

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.rows / elapsed
        byte_rate = self.bytes / elapsed
        eta = ""
        if self.files_total and self.files_done:
            per_file = elapsed / (self.files_done + self._fraction())
            left = per_file * (self.files_total - self.files_done - self._fraction())
            eta = f" · ETA {left:,.0f} s"
        return (
            f"files {self.files_done}/{self.files_total} · {self.bytes / 1e6:,.1f} MB "
            f"({byte_rate / 1e6:,.1f} MB/s) · {self.rows:,} rows ({rate:,.0f} rows/s){eta}"
            + (f" · {self.current}" if self.current else "")
        )

    def _fraction(self) -> float:
        return self.current_bytes / self.current_size if self.current_size else 0.0


@dataclass
class Options:
    base_url: str
    contact: str = ""
    wikis: frozenset[str] = frozenset()  # --wiki: keep only these wikis (dbnames)
    projects: frozenset[str] = frozenset()  # --project: keep only these domain codes
    retries: int = 4
    backoff: float = 2.0  # seconds, doubled per attempt
    timeout: float = 60.0
    poll: float = 300.0  # --follow: seconds between looks for the next file
    block_rows: int | None = None  # rows per insert block (None: the server's default)
    cluster: str = ""  # CLICKHOUSE_CLUSTER: the bronze DDL ON CLUSTER, Replicated engines
    progress: Callable[[str], None] | None = None
    limits: Limits = field(default_factory=lambda: Limits())


GIB = 1 << 30


@dataclass(frozen=True)
class Limits:
    """What one file may cost, whatever the site sends (README: the dumps' limits).

    Decompressed bytes: at most ``max_ratio`` times the size the index lists and at most
    ``max_decoded``; a line at most ``max_line`` bytes; the body at most the listed size
    (+ ``SIZE_SLACK``); the whole file within ``file_seconds`` + listed size /
    ``min_rate``. Redirects: only to the site's own scheme, host and port, or to a host of
    ``redirect_hosts`` (same scheme) whose addresses are public."""

    max_ratio: float = 50.0  # DUMPS_MAX_RATIO (real files: 4-10)
    max_decoded: int = 64 * GIB  # DUMPS_MAX_DECODED_GB
    max_line: int = 65536  # DUMPS_MAX_LINE_BYTES (real lines: under 2 KB)
    file_seconds: float = 600.0  # DUMPS_FILE_SECONDS
    min_rate: float = 50_000.0  # DUMPS_MIN_BYTES_PER_SECOND
    redirect_hosts: frozenset[str] = frozenset()  # DUMPS_REDIRECT_HOSTS: host or host:port

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Limits:
        if env is None:
            env = environment()
        limits = cls(
            max_ratio=number(env, "DUMPS_MAX_RATIO", cls.max_ratio),
            max_decoded=int(number(env, "DUMPS_MAX_DECODED_GB", cls.max_decoded / GIB) * GIB),
            max_line=whole_number(env, "DUMPS_MAX_LINE_BYTES", cls.max_line),
            file_seconds=number(env, "DUMPS_FILE_SECONDS", cls.file_seconds),
            min_rate=number(env, "DUMPS_MIN_BYTES_PER_SECOND", cls.min_rate),
            redirect_hosts=frozenset(
                h.strip().lower()
                for h in env.get("DUMPS_REDIRECT_HOSTS", "").split(",")
                if h.strip()
            ),
        )
        for name, value in (
            ("DUMPS_MAX_RATIO", limits.max_ratio),
            ("DUMPS_MAX_DECODED_GB", limits.max_decoded),
            ("DUMPS_MAX_LINE_BYTES", limits.max_line),
            ("DUMPS_FILE_SECONDS", limits.file_seconds),
            ("DUMPS_MIN_BYTES_PER_SECOND", limits.min_rate),
        ):
            if not value > 0:
                raise SettingError(f"{name}={env.get(name)!r} must be above 0")
        return limits

    def decoded(self, listed: int, compression: str) -> int:
        """The most a file listed at ``listed`` bytes may decompress to."""
        if compression == "none":
            return min(self.max_decoded, listed + SIZE_SLACK)
        return min(self.max_decoded, int(self.max_ratio * max(listed, 1)))

    def seconds(self, listed: int) -> float:
        return self.file_seconds + listed / self.min_rate


SIZE_SLACK = 1 << 20  # bytes a body may exceed its listed size by (a listing's rounding)


class Loader:
    def __init__(self, client: Any, opts: Options) -> None:
        self.ch = client
        self.opts = opts
        self.http = httpx.Client(
            base_url=opts.base_url.rstrip("/") + "/",
            headers={"User-Agent": user_agent(opts.contact, "dumps")},
            timeout=httpx.Timeout(opts.timeout, connect=10),
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
            follow_redirects=True,
            max_redirects=5,
            event_hooks={"request": [self._allowed]},
        )
        self.progress = Progress()
        self._indexes: dict[str, tuple[float, dict[str, Listed]]] = {}
        self._stop: Callable[[], bool] = lambda: False  # run()'s: ends waits and downloads
        schema.migrate(self.ch, opts.cluster)

    def close(self) -> None:
        self.http.close()

    def _allowed(self, request: httpx.Request) -> None:
        """Every request, redirects included (httpx calls this before each): to the
        dumps site itself, or over the same scheme to a host the operator listed whose
        addresses are public. Anything else is refused, and not retried."""
        site = self.http.base_url
        url = request.url
        if (url.scheme, url.host, url.port) == (site.scheme, site.host, site.port):
            return
        where = f"{url.scheme}://{url.netloc.decode()}"
        if url.scheme != site.scheme:
            raise Refused(
                f"refused a redirect to {where}: not the dumps site's scheme ({site.scheme})"
            )
        hosts = self.opts.limits.redirect_hosts
        if url.host not in hosts and url.netloc.decode().lower() not in hosts:
            raise Refused(
                f"refused a redirect to {where}: not the dumps site "
                f"({site.host}; list mirrors in DUMPS_REDIRECT_HOSTS)"
            )
        private = _private_address(url.host)
        if private:
            raise Refused(f"refused a redirect to {where}: {private}")

    # -- the ledger ------------------------------------------------------------------------

    def _ledger(self, **row: Any) -> None:
        now = dt.datetime.now(dt.UTC)
        row.setdefault("finished_at", now)
        cols = list(row) + ["updated_at"]
        values = [row[c] for c in row] + [now]
        params = {f"p{i}": v for i, v in enumerate(values)}
        types = {
            "dataset": "String",
            "name": "String",
            "load_id": "UInt64",
            "period": "DateTime('UTC')",
            "url": "String",
            "size": "UInt64",
            "last_modified": "DateTime('UTC')",
            "etag": "String",
            "state": "String",
            "rows": "UInt64",
            "rejected": "UInt64",
            "message": "String",
            "started_at": "DateTime64(3, 'UTC')",
            "finished_at": "DateTime64(3, 'UTC')",
            "updated_at": "DateTime64(3, 'UTC')",
        }
        select = ", ".join(f"{{p{i}:{types[c]}}}" for i, c in enumerate(cols))
        self.ch.command(
            f"INSERT INTO {schema.LEDGER} ({', '.join(cols)}) SELECT {select}", parameters=params
        )

    def loads(self, dataset: str, name: str) -> list[dict[str, Any]]:
        result = self.ch.query(
            f"SELECT * FROM {schema.LEDGER} FINAL WHERE dataset = {{d:String}} "
            "AND name = {n:String} ORDER BY started_at",
            parameters={"d": dataset, "n": name},
        )
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def recover(self, datasets: list[str]) -> None:
        """Loads of these datasets a killed run left ``loading`` become ``failed``; rows of
        every load that is not visible are deleted; per-load tables left behind dropped.
        (Only these datasets: the pageviews and mediacounts followers run side by side.)"""
        loading = self.ch.query(
            f"SELECT * FROM {schema.LEDGER} FINAL WHERE state = 'loading' "
            "AND dataset IN {d:Array(String)}",
            parameters={"d": datasets},
        )
        for values in loading.result_rows:
            row = dict(zip(loading.column_names, values, strict=True))
            log.warning(
                "%s: load %d was interrupted; its rows are removed", row["name"], row["load_id"]
            )
            self._ledger(
                **{
                    **_ident(row),
                    "state": "failed",
                    "message": "abandoned: the loader stopped mid-file",
                }
            )
            self._drop_source(f"bronze.load_{int(row['load_id'])}")
        self.purge()

    def purge(self) -> None:
        """Delete the rows of loads that are not (or no longer) visible, everywhere."""
        dead = self.ch.query(
            f"SELECT load_id FROM {schema.LEDGER} FINAL WHERE load_id NOT IN "
            f"(SELECT load_id FROM {schema.VISIBLE}) AND state != 'loading' "
            f"AND message NOT LIKE '%(purged)'"
        ).result_rows
        if not dead:
            return
        tables = self.ch.query(
            "SELECT database, table FROM system.columns WHERE name = 'load_id' "
            "AND database IN ('bronze', 'silver', 'gold') "
            "AND table NOT IN ('dumps_files', 'dumps_rejects', 'dumps_visible') "
            "AND table IN (SELECT name FROM system.tables WHERE engine LIKE '%MergeTree')"
        ).result_rows
        ids = ",".join(str(int(r[0])) for r in dead)
        for db, table in tables:
            self.ch.command(
                f"ALTER TABLE `{db}`.`{table}` DELETE WHERE load_id IN ({ids})",
                settings={"mutations_sync": 2},
            )
        for row in self._rows(f"SELECT * FROM {schema.LEDGER} FINAL WHERE load_id IN ({ids})"):
            self._ledger(
                **{
                    **_ident(row),
                    "state": row["state"],
                    "message": (row["message"] + " (purged)").strip(),
                    "finished_at": row["finished_at"],
                }
            )

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        result = self.ch.query(sql)
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    # -- listing ------------------------------------------------------------------------------

    def listing(self, folder: str, fresh: bool = False) -> dict[str, Listed]:
        cached = self._indexes.get(folder)
        if cached and not fresh and time.monotonic() - cached[0] < 60:
            return cached[1]
        status, _, body = self._get(folder, most=MAX_INDEX_BYTES)
        if status >= 400 and status != 404:
            raise LoadFailed(f"{folder}: HTTP {status}")
        files = {} if status == 404 else parse_index(body.decode("utf-8", "replace"))
        self._indexes[folder] = (time.monotonic(), files)
        return files

    def listed(self, dataset: Dataset, period: dt.datetime, fresh: bool = False) -> Listed | None:
        """The period's file as its folder's index lists it, None when it is not there.
        When the index does not give its size and date (not nginx's), the file is asked
        (HEAD; GET's headers where HEAD is not allowed): a 404 is "not there"."""
        name = dataset.file(period)
        found = self.listing(dataset.folder(period), fresh=fresh).get(name)
        if found is None or found.known:
            return found
        url = dataset.folder(period) + name
        status, headers, _ = self._get(url, method="HEAD", most=0)
        if status in (405, 501):  # no HEAD here: a GET's headers, its body left unread
            status, headers, _ = self._get(url, most=0)
        if status == 404:
            return None
        size = _content_length(headers)
        if status != 200 or size < 0:
            raise LoadFailed(
                f"{url}: the index gives no size and the file's headers neither "
                f"(HTTP {status}, no Content-Length)"
            )
        modified = headers.get("last-modified")
        when = email.utils.parsedate_to_datetime(modified) if modified else UNKNOWN
        return Listed(name, size, _minute(when))

    def _get(
        self, url: str, method: str = "GET", most: int = MAX_INDEX_BYTES
    ) -> tuple[int, httpx.Headers, bytes]:
        """(status, headers, body) of a small page, retried on 5xx, 429 and broken
        connections; a body past ``most`` bytes is not read (``most`` 0: none is)."""
        for attempt in range(self.opts.retries + 1):
            try:
                with self.http.stream(method, url) as response:
                    status = response.status_code
                    if status < 500 and status != 429:
                        body = bytearray()
                        if status < 400 and most:
                            for chunk in response.iter_bytes():
                                body += chunk
                                if len(body) > most:
                                    raise LoadFailed(
                                        f"{url}: the page is larger than {most:,} bytes"
                                    )
                        return status, response.headers, bytes(body)
                problem = f"HTTP {status}"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                if attempt == self.opts.retries:
                    raise LoadFailed(
                        sentence("the dumps site", str(self.http.base_url.join(url)), exc, REMEDY)
                    ) from exc
            if attempt == self.opts.retries:
                raise LoadFailed(f"{self.http.base_url.join(url)}: {problem}")
            wait = self.opts.backoff * 2**attempt
            log.warning("%s: %s; retry in %.1f s", url, problem, wait)
            self._pause(wait)
        raise AssertionError("unreachable")

    # -- one file -------------------------------------------------------------------------------

    def load_file(self, dataset: Dataset, period: dt.datetime, listed: Listed) -> str:
        """Load one file unless the ledger has it (same size and date). Returns what happened:
        ``skipped``, ``loaded``, ``replaced``, ``failed``, ``stopped`` (asked to stop
        mid-file: failed, loaded again at the next start)."""
        name = listed.name
        previous = [r for r in self.loads(dataset.name, name) if r["state"] == "done"]
        if previous:
            last = previous[-1]
            same_date = _minute(last["last_modified"]) == listed.modified
            if int(last["size"]) == listed.size and same_date:
                return "skipped"
            log.info(
                "%s: republished (%d -> %d bytes); loading it again",
                name,
                last["size"],
                listed.size,
            )
        outcome = "failed"
        for attempt in range(self.opts.retries + 1):
            try:
                self._load_once(dataset, period, listed)
                outcome = "replaced" if previous else "loaded"
                break
            except Restart as exc:
                log.warning("%s: %s; starting the file again", name, exc)
                if attempt == self.opts.retries:
                    break
                try:
                    self._pause(self.opts.backoff * 2**attempt)
                except Interrupted:
                    outcome = "stopped"
                    break
            except Interrupted as exc:
                log.warning("%s: %s", name, exc)
                outcome = "stopped"
                break
            except LoadFailed as exc:
                log.error("%s: %s", name, exc)
                break
        self.purge()
        return outcome

    def _load_once(self, dataset: Dataset, period: dt.datetime, listed: Listed) -> None:
        load_id = time.time_ns() // 1000
        url = dataset.folder(period) + listed.name
        started = dt.datetime.now(dt.UTC)
        ident = {
            "dataset": dataset.name,
            "name": listed.name,
            "load_id": load_id,
            "period": period,
            "url": url,
            "started_at": started,
        }
        self._ledger(**ident, size=listed.size, last_modified=listed.modified, state="loading")
        source = f"bronze.load_{load_id}"
        try:
            self._prepare(dataset, source, load_id, period)
            lines, meta = self._stream_into(source, dataset, url, listed)
            rows, rejected = self._verify(dataset, load_id, period, lines)
        except (Restart, LoadFailed) as exc:
            self._ledger(
                **ident,
                size=listed.size,
                last_modified=listed.modified,
                state="failed",
                message=str(exc),
            )
            raise
        except Exception as exc:
            self._ledger(
                **ident,
                size=listed.size,
                last_modified=listed.modified,
                state="failed",
                message=f"{type(exc).__name__}: {exc}"[:1000],
            )
            raise LoadFailed(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
        finally:
            self._drop_source(source)
        # the one atomic step: from this row on, the load is what gold shows for the file
        self._ledger(
            **ident,
            size=meta["size"] if meta["size"] >= 0 else listed.size,  # no Content-Length: as listed
            last_modified=meta["last_modified"] or listed.modified,
            etag=meta["etag"],
            state="done",
            rows=rows,
            rejected=rejected,
        )
        for old in self.loads(dataset.name, listed.name):
            if old["load_id"] != load_id and old["state"] == "done":
                self._ledger(
                    **_ident(old), state="superseded", message=f"replaced by load {load_id}"
                )
        self.progress.rows += rows
        log.info("%s: %d rows (%d rejected) as load %d", listed.name, rows, rejected, load_id)
        if dataset is PAGEVIEWS:
            self._spikes(load_id, listed.name, period)

    def _catch_up(self) -> None:
        try:
            spikes.catch_up(self.ch)
        except Exception as exc:  # noqa: BLE001 - the views are loaded; spikes wait
            log.warning("attention spikes not caught up: %s", str(exc).splitlines()[0][:300])

    def _spikes(self, load_id: int, name: str, period: dt.datetime) -> None:
        """The hour's attention spikes, once its views are published: their cost (up to a
        minute of CPU with a day of page rows before the hour) never holds the views back,
        and a failure here costs the spikes, not the load. A computation shows from its
        marker row on, so until it lands the hour shows none; one that failed is made by
        ``spikes.catch_up``, run at start and whenever ``--follow`` waits."""
        try:
            spikes.for_load(self.ch, load_id, name, period)
        except Exception as exc:  # noqa: BLE001 - logged; catch_up computes it later
            log.warning(
                "%s: its attention spikes were not computed (%s); computed later by the "
                "follower's catch-up or the next start",
                name,
                str(exc).splitlines()[0][:300] if str(exc) else repr(exc),
            )

    def _prepare(self, dataset: Dataset, source: str, load_id: int, period: dt.datetime) -> None:
        select = schema.PARSE[dataset.name].format(
            load_id=f"toUInt64({load_id})",
            period=f"'{period:%Y-%m-%d %H:%M:%S}'",
            source=source,
        )
        where = self._filter(dataset)
        self.ch.command(f"CREATE TABLE {source} (line String) ENGINE = Null")
        if where:  # the lines the filter leaves out are counted: sent = kept + left out
            self.ch.command(
                f"CREATE MATERIALIZED VIEW {source}_left_out TO {schema.LEFT_OUT} AS "
                f"SELECT toUInt64({load_id}) AS load_id, count() AS lines "
                f"FROM ({select}) WHERE NOT ({where})"
            )
            select = f"SELECT * FROM ({select}) WHERE {where}"
        self.ch.command(
            f"CREATE MATERIALIZED VIEW {source}_mv TO bronze.{dataset.name} AS {select}"
        )

    def _drop_source(self, source: str) -> None:
        """A load's Null table and the views on it (``_prepare``)."""
        for name in (f"{source}_mv", f"{source}_left_out", source):
            self.ch.command(f"DROP TABLE IF EXISTS {name}")

    def _filter(self, dataset: Dataset) -> str:
        """--wiki / --project as a WHERE on the parsed row (bad lines always pass)."""
        if dataset.name not in ("pageviews", "projectviews"):
            return ""
        conds = []
        if self.opts.projects:
            codes = ", ".join(_sql_str(p) for p in sorted(self.opts.projects))
            conds.append(f"domain_code IN ({codes})")
        if self.opts.wikis:
            wanted = sorted({c for w in self.opts.wikis for c in codes_for_wiki(w)})
            conds.append(f"domain_code IN ({', '.join(_sql_str(c) for c in wanted)})")
        if not conds:
            return ""
        return "fault != '' OR (" + " AND ".join(conds) + ")"

    def _stream_into(
        self, source: str, dataset: Dataset, url: str, listed: Listed
    ) -> tuple[int, dict[str, Any]]:
        """Download, decompress and insert; returns (lines sent, the file's headers).
        Every byte is bounded (``Limits``): a file past a limit fails with the limit's
        name, before ClickHouse or the disk pay for more."""
        limits = self.opts.limits
        decoder = _Decoder(dataset.compression)
        lines = _Lines(limits.max_line)
        ceiling = limits.decoded(listed.size, dataset.compression)
        deadline = time.monotonic() + limits.seconds(listed.size)
        meta: dict[str, Any] = {}
        decoded = 0
        progress = self.progress
        progress.current, progress.current_size, progress.current_bytes = (
            listed.name,
            listed.size,
            0,
        )

        def body() -> Iterator[bytes]:
            nonlocal decoded
            for chunk in self._download(url, meta, listed.size + SIZE_SLACK, deadline):
                progress.bytes += len(chunk)
                progress.current_bytes += len(chunk)
                for data in decoder.feed(chunk):
                    decoded += len(data)
                    if decoded > ceiling:
                        raise LoadFailed(
                            f"decompresses to more than {ceiling:,} bytes "
                            f"(DUMPS_MAX_RATIO {limits.max_ratio:g} x the listed "
                            f"{listed.size:,} bytes, at most DUMPS_MAX_DECODED_GB "
                            f"{limits.max_decoded / GIB:g} GiB)"
                        )
                    lines.feed(data)
                    yield data
                _past(deadline, limits, listed)
                if self._stop():
                    raise Interrupted("stopped mid-file; it is loaded again at the next start")
                self._tick()
            decoder.finish()
            lines.finish()

        settings = {}
        if self.opts.block_rows:
            settings = {
                "max_insert_block_size": self.opts.block_rows,
                "min_insert_block_size_rows": self.opts.block_rows,
            }
        self.ch.raw_insert(
            source, ["line"], insert_block=body(), fmt="LineAsString", settings=settings
        )
        progress.current = ""
        return lines.count, meta

    def _download(
        self, url: str, meta: dict[str, Any], most: int, deadline: float
    ) -> Iterator[bytes]:
        """The file's bytes, at most ``most`` of them; a broken connection resumes with
        Range when allowed."""
        offset, size, attempts = 0, None, 0
        while True:
            headers = {}
            if offset:
                headers = {"Range": f"bytes={offset}-"}
                if meta["validator"]:  # else the Content-Range's length is checked below
                    headers["If-Range"] = meta["validator"]
            try:
                with self.http.stream("GET", url, headers=headers) as response:
                    if response.status_code == 404:
                        raise LoadFailed(f"{url}: 404, gone since it was listed")
                    if response.status_code >= 400:
                        raise httpx.HTTPStatusError(
                            f"HTTP {response.status_code}",
                            request=response.request,
                            response=response,
                        )
                    if offset and response.status_code != 206:
                        raise Restart(
                            f"cut at byte {offset:,}; the server sent the whole file again "
                            "(no Range, or the file changed)"
                        )
                    if offset and not _resumes(response.headers, offset, size):
                        raise Restart(
                            f"cut at byte {offset:,}; the server's range is not the rest of "
                            f"the same file ({response.headers.get('content-range')!r})"
                        )
                    if not offset:
                        size = _content_length(response.headers)
                        if size > most:
                            raise LoadFailed(
                                f"the server sends {size:,} bytes, more than the "
                                f"{most - SIZE_SLACK:,} the index lists"
                            )
                        meta["size"] = size
                        meta["etag"] = response.headers.get("etag", "")
                        meta["validator"] = if_range_validator(response.headers)
                        modified = response.headers.get("last-modified")
                        meta["last_modified"] = (  # None: as listed
                            email.utils.parsedate_to_datetime(modified) if modified else None
                        )
                    for chunk in response.iter_raw():
                        offset += len(chunk)
                        if offset > most:
                            raise LoadFailed(
                                f"the body goes on past {most:,} bytes, more than the "
                                f"{most - SIZE_SLACK:,} the index lists"
                            )
                        yield chunk
                if size is not None and size >= 0 and offset != size:
                    raise httpx.ReadError(f"short body: {offset} of {size} bytes")
                return
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                attempts += 1
                if attempts > self.opts.retries:
                    raise LoadFailed(
                        f"download failed at byte {offset:,} after {attempts} attempts: {exc}"
                    ) from exc
                wait = self.opts.backoff * 2 ** (attempts - 1)
                if time.monotonic() + wait > deadline:
                    raise LoadFailed(
                        f"download failed at byte {offset:,} ({exc}) and no time is left "
                        "to resume (DUMPS_FILE_SECONDS, DUMPS_MIN_BYTES_PER_SECOND)"
                    ) from exc
                log.warning("%s: %s at byte %d; resuming in %.1f s", url, exc, offset, wait)
                self._pause(wait)

    def _verify(
        self, dataset: Dataset, load_id: int, period: dt.datetime, lines: int
    ) -> tuple[int, int]:
        """Rows ClickHouse holds for the load against the lines sent; rejects recorded.
        (The file's period narrows the reads to the load's granules: bronze is sorted by
        period, then load.)"""
        table = f"bronze.{dataset.name}"
        when = (
            f"day = '{period:%Y-%m-%d}'"
            if dataset.step == DAY
            else (f"file_hour = '{period:%Y-%m-%d %H:%M:%S}'")
        )
        this_load = f"{when} AND load_id = {load_id}"
        counted = self.ch.query(
            f"SELECT count(), countIf(fault != '') FROM {table} WHERE {this_load}"
        ).result_rows
        rows, rejected = int(counted[0][0]), int(counted[0][1])
        left_out = 0  # by --wiki / --project: counted by the load's second view
        if self._filter(dataset):
            left_out = int(
                self.ch.command(
                    f"SELECT sum(lines) FROM {schema.LEFT_OUT} WHERE load_id = {load_id}"
                )
            )
        if rows + left_out != lines:
            kept = f" and left out {left_out:,} (--wiki / --project)" if left_out else ""
            raise LoadFailed(f"ClickHouse holds {rows:,} rows{kept} of {lines:,} lines sent")
        if rejected:
            self.ch.command(
                f"INSERT INTO {schema.REJECTS} (load_id, dataset, name, reason, lines, example) "
                f"SELECT load_id, {_sql_str(dataset.name)}, "
                f"(SELECT any(name) FROM {schema.LEDGER} WHERE load_id = {load_id}), "
                "fault, count(), substring(any(line), 1, 4096) "  # an example, cut to 4 KB
                f"FROM {table} WHERE {this_load} AND fault != '' GROUP BY load_id, fault"
            )
        return rows, rejected

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` before a retry, unless asked to stop (then ``Interrupted``)."""
        _sleep(seconds, self._stop)
        if self._stop():
            raise Interrupted("stopped while waiting to retry")

    def _tick(self) -> None:
        now = time.monotonic()
        if self.opts.progress and now - self.progress.last_print >= 1.0:
            self.progress.last_print = now
            self.opts.progress(self.progress.line())

    # -- ranges and follow ------------------------------------------------------------------

    def run(
        self,
        datasets: list[Dataset],
        start: dt.datetime,
        end: dt.datetime | None,
        follow: bool = False,
        stop: Callable[[], bool] = lambda: False,
    ) -> dict[str, int]:
        """Load every file of ``datasets`` for periods in [start, end). ``follow``: then
        keep waiting for each next period (``end`` None = open ended)."""
        counts: dict[str, int] = {}
        self._stop = stop
        try:
            self._walk(datasets, start, end, follow, counts)
        except Interrupted as exc:  # between files, or a listing's retry: nothing begun
            log.info("%s", exc)
        return counts

    def _walk(
        self,
        datasets: list[Dataset],
        start: dt.datetime,
        end: dt.datetime | None,
        follow: bool,
        counts: dict[str, int],
    ) -> None:
        stop = self._stop
        self.recover([d.name for d in datasets])
        if PAGEVIEWS in datasets:
            self._catch_up()
        step = datasets[0].step
        period = start
        self.progress.files_total = len(datasets) * (datasets[0].count(start, end) if end else 0)
        while not stop():
            if end is not None and period >= end and not follow:
                break
            if end is not None and period >= end and follow:
                end = None
            ready = True
            for dataset in datasets:
                name = dataset.file(period)
                listed = self.listed(dataset, period, fresh=follow)
                if listed is None:
                    if follow and period >= _latest_published(step):
                        ready = False  # not yet: the site publishes hours later
                        break
                    counts["missing"] = counts.get("missing", 0) + 1
                    log.warning("%s: not published (404 / not listed)", name)
                    continue
                outcome = self.load_file(dataset, period, listed)
                counts[outcome] = counts.get(outcome, 0) + 1
                if outcome == "stopped":
                    return
                self.progress.files_done += 1
                self._tick()
            if not ready:
                if not follow:
                    break
                if PAGEVIEWS in datasets:
                    self._catch_up()
                _sleep(self.opts.poll, stop)
                continue
            period += step


def if_range_validator(headers: httpx.Headers) -> str:
    """What a resumed download may send as ``If-Range`` (RFC 9110 13.1.5): the strong
    ETag; without one, the Last-Modified date if it is a strong validator (8.8.2.2: at
    least a second before the response's Date); else nothing (no If-Range is sent, and
    the range's Content-Range must name the same length, see ``_resumes``)."""
    tag = headers.get("etag", "")
    if tag and not tag.startswith("W/"):
        return tag
    modified, date = headers.get("last-modified"), headers.get("date")
    if not modified or not date:
        return ""
    try:
        strong = email.utils.parsedate_to_datetime(date) - email.utils.parsedate_to_datetime(
            modified
        ) >= dt.timedelta(seconds=1)
    except (TypeError, ValueError):
        return ""
    return modified if strong else ""


_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def _resumes(headers: httpx.Headers, offset: int, size: int | None) -> bool:
    """Whether a 206 is the rest of the file from ``offset``: its Content-Range starts
    there and names the length the first response had."""
    found = _CONTENT_RANGE.fullmatch(headers.get("content-range", "").strip())
    if not found or int(found.group(1)) != offset:
        return False
    return size is None or size < 0 or found.group(2) == str(size)


def _content_length(headers: httpx.Headers) -> int:
    """The body's announced length; -1 when none (or one that is not a number)."""
    try:
        return int(headers.get("content-length", -1))
    except ValueError:
        return -1


def _past(deadline: float, limits: Limits, listed: Listed) -> None:
    if time.monotonic() > deadline:
        raise LoadFailed(
            f"took more than {limits.seconds(listed.size):,.0f} s (DUMPS_FILE_SECONDS "
            f"{limits.file_seconds:g} + the listed {listed.size:,} bytes at "
            f"DUMPS_MIN_BYTES_PER_SECOND {limits.min_rate:g})"
        )


def _private_address(host: str) -> str:
    """Why ``host`` is not a public address (loopback, private, link-local, ...): each
    address it resolves to is checked; "" when all are public."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"{host} does not resolve ({exc})"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global or address.is_multicast:
            return f"{host} is {address}, not a public address"
    return ""


def _latest_published(step: dt.timedelta) -> dt.datetime:
    """Periods from this one on may simply not be published yet (a 404 means 'not yet')."""
    now = dt.datetime.now(dt.UTC)
    slack = dt.timedelta(hours=12) if step == HOUR else dt.timedelta(days=2)
    return now - slack


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not stop() and time.monotonic() < deadline:
        time.sleep(min(0.2, seconds))


def _minute(value: Any) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.replace(second=0, microsecond=0)  # type: ignore[no-any-return]


def _ident(row: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "dataset",
        "name",
        "load_id",
        "period",
        "url",
        "size",
        "last_modified",
        "etag",
        "rows",
        "rejected",
        "started_at",
    )
    return {k: row[k] for k in keep}


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def loader_from_env(**kwargs: Any) -> Loader:
    settings = Settings.from_env()
    opts = Options(
        base_url=settings.dumps_url,
        contact=settings.contact,
        cluster=settings.cluster,
        limits=Limits.from_env(),
        **kwargs,
    )
    client = clickhouse_client(
        settings.dumps_clickhouse_url or settings.clickhouse_url, send_receive_timeout=600
    )
    return Loader(client, opts)


def print_progress(line: str) -> None:
    sys.stderr.write("\r" + line[:200].ljust(120))
    sys.stderr.flush()
