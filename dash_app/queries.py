"""Every query the dashboard runs: gold (and, for the drill-down's page views, silver's
page-level views read by their primary key), every value a server-side parameter, every
answer limited in rows.

``Gold`` wraps a clickhouse-connect client (the read-only dashboard user in production)
and caches each answer for the refresh interval, so a hundred viewers of the same view
cost ClickHouse one query per panel per interval; the cache is bounded in bytes.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# filters shared by the panel queries; {name:Type} is bound by the server
_WIKIS = "(empty({wikis:Array(String)}) OR has({wikis:Array(String)}, wiki))"
_KINDS = "has({kinds:Array(String)}, user_kind)"
_MINUTES = "minute >= {start:DateTime} AND minute < {end:DateTime}"
_HOURS = "hour >= toStartOfHour({start:DateTime}) AND hour < {end:DateTime}"
# quiet minutes and hours as 0, not as a line drawn across the gap
_FILL_MINUTES = "ORDER BY minute WITH FILL FROM {start:DateTime} TO {end:DateTime} STEP 60"
# every query returns at most MAX_ROWS rows; Gold binds limit = MAX_ROWS + 1, so one
# row more than that says the answer was cut
_LIMIT = "LIMIT {limit:UInt32}"

# the newest event not dated in the future (the judge lets through up to 10 min ahead):
# a wiki whose last event is ahead of this clock is left out, so it cannot say "0 s old"
FRESHNESS = """
SELECT maxIf(last_event_at, last_event_at <= now64(3)) AS newest,
       max(last_ingested_at) AS last_insert,
       now64(3) AS now, sum(events) AS events
FROM gold.wiki_totals
LIMIT {limit:UInt32}
"""
# Only names a wiki can have: one of 10,000 characters (bad data in gold) would freeze
# the picker in the browser, and could not be picked through the URL anyway.


def _wiki_options(table: str, weight: str) -> str:
    """The wiki picker's names, busiest first, from a gold table."""
    return f"""
SELECT wiki, sum({weight}) AS weight FROM gold.{table}
WHERE match(wiki, concat('^', {{pattern:String}}, '$'))
GROUP BY wiki ORDER BY weight DESC LIMIT 5000
"""


WIKI_OPTIONS = _wiki_options("wiki_totals", "events")
# which of the picked wikis gold knows (a page says so when one is not)
KNOWN_WIKIS = f"""
SELECT wiki FROM gold.wiki_totals WHERE has({{wikis:Array(String)}}, wiki)
GROUP BY wiki {_LIMIT}
"""
PER_MINUTE = f"""
SELECT minute, sum(events) AS events FROM gold.events_per_minute
WHERE {_MINUTES} AND {_KINDS} GROUP BY minute {_FILL_MINUTES} {_LIMIT}
"""
PER_MINUTE_WIKIS = f"""
SELECT minute, sum(events) AS events FROM gold.events_per_minute_wiki
WHERE {_MINUTES} AND {_WIKIS} AND {_KINDS} GROUP BY minute {_FILL_MINUTES} {_LIMIT}
"""


def _series(table: str, bucket: str, values: str, where: str) -> str:
    """A series from an hourly table by hour or by day, quiet buckets as 0."""
    key, first, step = {
        "hour": ("hour", "toStartOfHour({start:DateTime})", 3600),
        "day": ("toStartOfDay(hour)", "toStartOfDay({start:DateTime})", 86400),
    }[bucket]
    return f"""
SELECT {key} AS {bucket}, {values} FROM gold.{table}
WHERE {_HOURS} AND {where} GROUP BY {bucket}
ORDER BY {bucket} WITH FILL FROM {first} TO {{end:DateTime}} STEP {step} {_LIMIT}
"""


_EVENTS = "sum(events) AS events"
_BYTES = "sum(bytes_added) AS added, sum(bytes_removed) AS removed"
_DRILL = "wiki = {wiki:String} AND " + _KINDS
PER_HOUR = _series("events_per_hour", "hour", _EVENTS, _KINDS)
PER_DAY = _series("events_per_hour", "day", _EVENTS, _KINDS)
PER_HOUR_WIKIS = _series("events_per_hour_wiki", "hour", _EVENTS, f"{_WIKIS} AND {_KINDS}")
PER_DAY_WIKIS = _series("events_per_hour_wiki", "day", _EVENTS, f"{_WIKIS} AND {_KINDS}")
BYTES = _series("events_per_hour_wiki", "hour", _BYTES, f"{_WIKIS} AND {_KINDS}")
BYTES_DAILY = _series("events_per_hour_wiki", "day", _BYTES, f"{_WIKIS} AND {_KINDS}")
DRILL_HOUR = _series("events_per_hour_wiki", "hour", _EVENTS, _DRILL)
DRILL_DAY = _series("events_per_hour_wiki", "day", _EVENTS, _DRILL)
# the series panels' query by bucket (minutes come from the minute tables)
SERIES = {
    "hour": (PER_HOUR, PER_HOUR_WIKIS, BYTES, DRILL_HOUR),
    "day": (PER_DAY, PER_DAY_WIKIS, BYTES_DAILY, DRILL_DAY),
}
TOP_WIKIS = f"""
SELECT wiki, sum(events) AS events FROM gold.events_per_minute_wiki
WHERE {_MINUTES} AND {_KINDS} GROUP BY wiki ORDER BY events DESC, wiki LIMIT 15
"""
USER_KINDS = f"""
SELECT user_kind, sum(events) AS events FROM gold.events_per_minute_wiki
WHERE {_MINUTES} AND {_WIKIS} GROUP BY user_kind ORDER BY user_kind {_LIMIT}
"""
TYPE_MIX = f"""
SELECT type, sum(events) AS events FROM gold.events_per_hour_wiki
WHERE {_HOURS} AND {_WIKIS} AND {_KINDS} GROUP BY type ORDER BY events DESC {_LIMIT}
"""
TOP_PAGES = f"""
SELECT wiki, title, sum(edits) AS edits, sum(byte_delta) AS byte_delta
FROM gold.page_edits_per_hour
WHERE {_HOURS} AND {_WIKIS} AND {_KINDS}
GROUP BY wiki, title ORDER BY edits DESC, wiki, title LIMIT 10
"""
TOP_EDITORS = f"""
SELECT wiki, user, any(user_kind) AS kind, sum(edits) AS edits,
       sum(bytes_added) AS bytes_added, sum(bytes_removed) AS bytes_removed
FROM gold.editor_edits_per_hour
WHERE {_HOURS} AND {_WIKIS} AND {_KINDS}
GROUP BY wiki, user ORDER BY edits DESC, wiki, user LIMIT 10
"""
# All wikis: the candidates from the hourly topK states (gold.top_pages_per_hour, a few
# thousand states for a week), then their edits summed exactly. Must match the dbt var
# top_candidates, and the load factor top_load_factor: both are part of the states' type
# (a test checks).
TOP_CANDIDATES = 100
TOP_LOAD_FACTOR = 3
_TOPK = f"topKWeightedMerge({TOP_CANDIDATES}, {TOP_LOAD_FACTOR}, 'counts')"
# The titles (users) alone go first, in PREWHERE: a String set test reads and filters the
# window's rows in half the time of the (wiki, title) tuple test, which then runs on the
# few rows left (a day of 44k page rows an hour: 100 ms -> 60 ms).
TOP_PAGES_ALL = f"""
WITH candidates AS (
    SELECT arrayJoin({_TOPK}(pages)).1 AS page
    FROM gold.top_pages_per_hour WHERE {_HOURS} AND {_KINDS}
)
SELECT wiki, title, sum(edits) AS edits, sum(byte_delta) AS byte_delta
FROM gold.page_edits_per_hour
PREWHERE {_HOURS} AND title IN (SELECT page.2 FROM candidates)
WHERE {_KINDS} AND (wiki, title) IN candidates
GROUP BY wiki, title ORDER BY edits DESC, wiki, title LIMIT 10
"""
TOP_EDITORS_ALL = f"""
WITH candidates AS (
    SELECT arrayJoin({_TOPK}(editors)).1 AS editor
    FROM gold.top_editors_per_hour WHERE {_HOURS} AND {_KINDS}
)
SELECT wiki, user, any(user_kind) AS kind, sum(edits) AS edits,
       sum(bytes_added) AS bytes_added, sum(bytes_removed) AS bytes_removed
FROM gold.editor_edits_per_hour
PREWHERE {_HOURS} AND user IN (SELECT editor.2 FROM candidates)
WHERE {_KINDS} AND (wiki, user) IN candidates
GROUP BY wiki, user ORDER BY edits DESC, wiki, user LIMIT 10
"""
# Windows longer than a day, all wikis: the ranking and the counts straight from the
# merged topK states (a few hundred for a week). count is an upper bound and
# count - error a lower one; the page shows both when they differ.
TOP_PAGES_APPROX = f"""
SELECT x.1.1 AS wiki, x.1.2 AS title, x.2 AS edits, x.3 AS error
FROM (
    SELECT arrayJoin({_TOPK}(pages)) AS x
    FROM gold.top_pages_per_hour WHERE {_HOURS} AND {_KINDS}
)
ORDER BY edits DESC, wiki, title LIMIT 10
"""
TOP_EDITORS_APPROX = f"""
SELECT x.1.1 AS wiki, x.1.2 AS user, x.2 AS edits, x.3 AS error
FROM (
    SELECT arrayJoin({_TOPK}(editors)) AS x
    FROM gold.top_editors_per_hour WHERE {_HOURS} AND {_KINDS}
)
ORDER BY edits DESC, wiki, user LIMIT 10
"""
# Longer than a day: hourly rows instead of minute rows (24x fewer), hours overlapping
TOP_WIKIS_HOURLY = f"""
SELECT wiki, sum(events) AS events FROM gold.events_per_hour_wiki
WHERE {_HOURS} AND {_KINDS} GROUP BY wiki ORDER BY events DESC, wiki LIMIT 15
"""
USER_KINDS_HOURLY = f"""
SELECT user_kind, sum(events) AS events FROM gold.events_per_hour_wiki
WHERE {_HOURS} AND {_WIKIS} GROUP BY user_kind ORDER BY user_kind {_LIMIT}
"""
# The last hour of the window against the wiki's own average for this weekday and hour
# in the other weeks observed, where at least one other week was observed: a spike has
# at least SPIKE_MIN_EVENTS events and SPIKE_MIN_RATIO times the average.
SPIKE_MIN_EVENTS = 20
SPIKE_MIN_RATIO = 3.0
SPIKES = """
WITH toStartOfHour({end:DateTime} - INTERVAL 1 MINUTE) AS slot,
current AS (
    SELECT wiki, sum(events) AS events FROM gold.events_per_minute_wiki
    WHERE minute >= {end:DateTime} - INTERVAL 1 HOUR AND minute < {end:DateTime}
    GROUP BY wiki
),
-- the same weekday and hour in the other weeks observed (an hour counts as observed
-- when the stream delivered anything in it): the profile of wiki_weekday_hour_profile,
-- computed for this one slot only
weeks AS (
    SELECT count() AS observed FROM (
        SELECT hour FROM gold.events_per_hour
        WHERE toDayOfWeek(hour) = toDayOfWeek(slot) AND toHour(hour) = toHour(slot)
          AND hour != slot
        GROUP BY hour HAVING sum(events) > 0
    )
),
baseline AS (
    SELECT wiki, sum(events) / greatest((SELECT observed FROM weeks), 1) AS usual
    FROM gold.events_per_hour_wiki
    WHERE toDayOfWeek(hour) = toDayOfWeek(slot) AND toHour(hour) = toHour(slot)
      AND hour != slot
    GROUP BY wiki
)
SELECT wiki, current.events AS events, round(baseline.usual, 1) AS baseline,
       round(current.events / greatest(baseline.usual, 1), 1) AS ratio
FROM current INNER JOIN baseline USING (wiki)
WHERE current.events >= {min_events:UInt32} AND ratio >= {min_ratio:Float64}
  AND (SELECT observed FROM weeks) >= 1
ORDER BY ratio DESC, wiki LIMIT 10
"""
DRILL_MINUTE = f"""
SELECT minute, sum(events) AS events FROM gold.events_per_minute_wiki
WHERE {_MINUTES} AND {_DRILL}
GROUP BY minute {_FILL_MINUTES} {_LIMIT}
"""
HEATMAP = f"""
SELECT weekday, hour_of_day, avg_events FROM gold.wiki_weekday_hour_profile
WHERE wiki = {{wiki:String}} {_LIMIT}
"""


# -- the drill-down's "views of the pages edited in the last hour" (the dumps, opt-in) ----
# The drill-down wiki's pages edited in the hours overlapping the window's last 60 minutes
# (gold.page_edits_per_hour: the live stream), the DRILL_PAGES most edited, with their
# views in one hour of the page-view dumps: the newest hour loaded for that wiki that
# began before the window's end, at most DRILL_LOOKBACK_HOURS before it (the dumps lag
# real time by one to a few hours, so it is rarely the hour of the edits).
DRILL_PAGES = 20
DRILL_LOOKBACK_HOURS = 6
# the dumps' gold this panel needs (built only by `dbt build --vars '{dumps: true}'`)
DRILL_VIEWS_MODELS = ["dumps_freshness", "pageviews_hour_wiki"]
DRILL_EDITED = f"""
SELECT title, sum(edits) AS edits, count() OVER () AS pages FROM gold.page_edits_per_hour
WHERE hour >= toStartOfHour({{end:DateTime}} - INTERVAL 1 HOUR) AND hour < {{end:DateTime}}
  AND {_DRILL}
GROUP BY title ORDER BY edits DESC, title LIMIT {DRILL_PAGES}
"""
DRILL_VIEWS_HOUR = f"""
SELECT hour FROM gold.pageviews_hour_wiki
WHERE wiki = {{wiki:String}} AND hour < {{end:DateTime}}
  AND hour >= {{end:DateTime}} - INTERVAL {DRILL_LOOKBACK_HOURS} HOUR
GROUP BY hour ORDER BY hour DESC LIMIT 1
"""
# The wiki's domain codes in that hour (`en`, `en.m`), from the hour's projectviews
# file (a row per code, decoded as silver.pageviews decodes them): with them the page
# rows below are found by silver.pageviews' whole primary key (hour, domain_code, title).
DRILL_CODES = f"""
SELECT DISTINCT domain_code FROM silver.projectviews
WHERE hour = {{hour:DateTime}} AND wiki = {{wiki:String}} {_LIMIT}
"""


def _page_views(codes: str) -> str:
    """The views of the given pages (titles with `_`, as the dumps write them) in one
    hour of one wiki, from the published loads only (dumps_visible, as every gold read of
    the dumps). Without the codes (no projectviews for that hour) the key still narrows
    the read to the hour and, within each code's rows, to the titles."""
    return f"""
SELECT replaceAll(title, '_', ' ') AS page, sum(views) AS views FROM silver.pageviews
WHERE hour = {{hour:DateTime}} AND wiki = {{wiki:String}} {codes}
  AND title IN {{pages:Array(String)}}
  AND load_id IN (SELECT load_id FROM bronze.dumps_visible)
GROUP BY page {_LIMIT}
"""


DRILL_VIEWS = _page_views("AND domain_code IN {codes:Array(String)}")
DRILL_VIEWS_ANY_CODE = _page_views("")


# -- the readers page (/readers): the dumps' gold, and its meeting with the live edits ---
# The gold the readers page reads; built only by `dbt build --vars '{dumps: true}'`.
READERS_MODELS = [
    "dumps_freshness",
    "pageviews_hour_wiki",
    "media_day",
    "top_pages_day",
    "top_media_day",
    "edits_views_hour_wiki",
    "pages_read_and_edited_hour",
    "page_attention_spikes_hour",
]
READERS_BUILT = f"""
SELECT name FROM system.tables
WHERE database = 'gold' AND has({{models:Array(String)}}, name) {_LIMIT}
"""
DUMPS_FRESHNESS = f"""
SELECT dataset, files, newest_file, data_until, seconds_behind FROM gold.dumps_freshness
{_LIMIT}
"""
READERS_WIKI_OPTIONS = _wiki_options("pageviews_day_wiki", "views")
READERS_KNOWN_WIKIS = f"""
SELECT wiki FROM gold.pageviews_hour_wiki WHERE has({{wikis:Array(String)}}, wiki)
GROUP BY wiki {_LIMIT}
"""
# desktop, mobile, and other (access unknown: the empty domain code, Wikifunctions);
# not `sum(views) AS views`: the alias would shadow the column in the sumIf calls
_SPLIT = (
    "sumIf(views, access = 'desktop') AS desktop, sumIf(views, access = 'mobile') AS mobile, "
    "total - desktop - mobile AS other"
)
_ACCESS = f"sum(views) AS total, {_SPLIT}"


# Views per hour (per day past a week), desktop and mobile apart. Not filled with 0: an
# hour without views is an hour whose file is not loaded, not a quiet hour.
def _views_series(bucket: str, key: str) -> str:
    return f"""
SELECT {key} AS {bucket}, {_ACCESS} FROM gold.pageviews_hour_wiki
WHERE {_HOURS} AND {_WIKIS} GROUP BY {bucket} ORDER BY {bucket} {_LIMIT}
"""


VIEWS_HOUR = _views_series("hour", "hour")
VIEWS_DAY = _views_series("day", "toStartOfDay(hour)")
# the window's busiest wikis (or the picked ones), by views
_TOP_VIEWED = f"""
SELECT wiki FROM gold.pageviews_hour_wiki WHERE {_HOURS} AND {_WIKIS}
GROUP BY wiki ORDER BY sum(views) DESC, wiki LIMIT 8
"""


def _views_wikis(bucket: str, key: str) -> str:
    return f"""
SELECT {key} AS {bucket}, wiki, sum(views) AS views FROM gold.pageviews_hour_wiki
WHERE {_HOURS} AND wiki IN ({_TOP_VIEWED})
GROUP BY {bucket}, wiki ORDER BY wiki, {bucket} {_LIMIT}
"""


VIEWS_WIKIS_HOUR = _views_wikis("hour", "hour")
VIEWS_WIKIS_DAY = _views_wikis("day", "toStartOfDay(hour)")
# by bucket: the views series, and the busiest wikis' series
VIEWS = {"hour": (VIEWS_HOUR, VIEWS_WIKIS_HOUR), "day": (VIEWS_DAY, VIEWS_WIKIS_DAY)}
VIEWS_BY_WIKI = f"""
SELECT wiki, {_ACCESS}
FROM gold.pageviews_hour_wiki WHERE {_HOURS} AND {_WIKIS}
GROUP BY wiki ORDER BY total DESC, wiki LIMIT 15
"""
_DAYS = "day >= {first_day:Date} AND day < {end_day:Date}"
_FILL_DAYS = "ORDER BY day WITH FILL FROM {first_day:Date} TO {end_day:Date}"
# media traffic per day by type, and by hosting wiki (the busiest 8); the wiki filter
# is the hosting wiki's (Commons hosts most files every wiki shows)
MEDIA_TYPES = f"""
SELECT day, media_type, sum(bytes) AS bytes, sum(transfers) AS transfers FROM gold.media_day
WHERE {_DAYS} AND {_WIKIS} GROUP BY day, media_type ORDER BY media_type, day {_LIMIT}
"""
MEDIA_WIKIS = f"""
SELECT day, if(wiki = '', '(none)', wiki) AS wiki, sum(bytes) AS bytes FROM gold.media_day
WHERE {_DAYS} AND wiki IN (
    SELECT wiki FROM gold.media_day WHERE {_DAYS} AND {_WIKIS}
    GROUP BY wiki ORDER BY sum(bytes) DESC, wiki LIMIT 8
)
GROUP BY day, wiki ORDER BY wiki, day {_LIMIT}
"""
MEDIA_TOTAL = f"""
SELECT day, sum(bytes) AS bytes, sum(transfers) AS transfers FROM gold.media_day
WHERE {_DAYS} AND {_WIKIS} GROUP BY day {_FILL_DAYS} {_LIMIT}
"""
TOP_PAGES_DAY = f"""
SELECT wiki, rank, replaceAll(title, '_', ' ') AS title, views FROM gold.top_pages_day
WHERE day = {{day:Date}} AND {_WIKIS} AND rank <= 10
ORDER BY views DESC, wiki, rank LIMIT 20
"""
TOP_MEDIA_DAY = f"""
SELECT rank, base_name AS file, transfers FROM gold.top_media_day
WHERE day = {{day:Date}} AND rank <= 15 ORDER BY rank {_LIMIT}
"""
# Edits (the live stream: `edit` + `new`) and views (the dumps) per wiki and hour, as
# gold.edits_views_hour_wiki defines them (a test checks they agree), with the window's
# filters inside each side: ClickHouse does not push a filter on the view through its
# FULL JOIN, so reading the view scans both tables whole.


def _edits_views(select: str) -> str:
    return f"""
WITH stream AS (
    SELECT hour, wiki, sum(events) AS edits FROM gold.events_per_hour_wiki
    WHERE {_HOURS} AND {_WIKIS} AND type IN ('edit', 'new') GROUP BY hour, wiki
),
dumps AS (
    SELECT hour, wiki, sum(views) AS views FROM gold.pageviews_hour_wiki
    WHERE {_HOURS} AND {_WIKIS} GROUP BY hour, wiki
)
{select}"""


EDITS_VIEWS_HOUR = _edits_views(
    f"""SELECT hour, sum(stream.edits) AS edits, sum(dumps.views) AS views
FROM stream FULL OUTER JOIN dumps USING (hour, wiki)
GROUP BY hour
ORDER BY hour WITH FILL FROM toStartOfHour({{start:DateTime}}) TO {{end:DateTime}} STEP 3600
{_LIMIT}
"""
)
# per wiki over the hours whose views are loaded, edits per 1,000 views
EDITS_VIEWS_WIKI = _edits_views(
    """SELECT wiki, sum(edits) AS edits, sum(views) AS views,
       round(edits * 1000 / views, 3) AS edits_per_1000_views
FROM (
    SELECT wiki, stream.edits AS edits, dumps.views AS views
    FROM stream RIGHT JOIN dumps USING (hour, wiki) WHERE dumps.views > 0
)
GROUP BY wiki ORDER BY views DESC, wiki LIMIT 15
"""
)
READ_AND_EDITED = f"""
SELECT hour, wiki, title, views, edits FROM gold.pages_read_and_edited_hour
WHERE {_HOURS} AND {_WIKIS} ORDER BY views DESC, hour, wiki, title LIMIT 10
"""
# both kinds in one pass (the views spikes are stored per loaded hour; the view reads
# the edits and the heavily edited pages' views when asked), 10 of each
ATTENTION_SPIKES = f"""
SELECT kind, hour, wiki, title, views, round(baseline_views, 1) AS usual_views, edits
FROM gold.page_attention_spikes_hour
WHERE {_HOURS} AND {_WIKIS}
  -- the view knows which hours are loaded, not which wikis: a file loaded with --wiki
  -- says nothing of the other wikis' pages, whose 0 views are unknown, not quiet
  AND (hour, wiki) IN (
      SELECT hour, wiki FROM gold.pageviews_hour_wiki WHERE {_HOURS} AND {_WIKIS}
  )
ORDER BY kind, if(kind = 'views_without_edits', views, edits) DESC, hour, wiki, title
LIMIT 10 BY kind {_LIMIT}
"""


class Unavailable(Exception):
    """ClickHouse could not answer; the message says why, for the page."""


MAX_ROWS = 5_000
CACHE_BYTES = 64 * 2**20
CACHE_ENTRIES = 5_000


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False  # the query had more than Gold.max_rows rows

    def column(self, name: str) -> list[Any]:
        if not self.rows and name not in self.columns:
            return []  # an empty answer may come without its column names
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def __bool__(self) -> bool:
        return bool(self.rows)

    def size(self) -> int:
        """Bytes this table holds in Python (the list, the tuples and their values)."""
        return (
            sys.getsizeof(self.rows)
            + sum(map(sys.getsizeof, self.columns))
            + sum(sys.getsizeof(row) + sum(map(sys.getsizeof, row)) for row in self.rows)
        )


_Key = tuple[str, tuple[tuple[str, Any], ...]]


class Gold:
    """Cached, parameterised reads of the gold tables.

    Every query binds ``limit`` (``max_rows`` + 1: a cut answer is marked
    ``truncated``). The cache keeps each answer for its ttl and holds at most
    ``cache_bytes`` (sizes measured by ``Table.size``) and ``cache_entries`` answers,
    dropping the least recently used first; an answer bigger than a quarter of the
    budget is not kept.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        cache_seconds: float = 10.0,
        cache_bytes: int = CACHE_BYTES,
        max_rows: int = MAX_ROWS,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self._factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[_Key, tuple[float, Table, int]] = OrderedDict()
        self.cache_seconds = cache_seconds
        self.max_cache_bytes = cache_bytes
        self.max_cache_entries = cache_entries
        self.max_rows = max_rows
        self.cache_bytes = 0  # bytes of the answers held now
        self.queries_run = 0

    def run(
        self, sql: str, params: dict[str, Any] | None = None, ttl: float | None = None
    ) -> Table:
        params = {**(params or {}), "limit": self.max_rows + 1}
        key = (sql, tuple(sorted((k, _hashable(v)) for k, v in params.items())))
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > now:
                self._cache.move_to_end(key)
                return hit[1]
        try:
            client = self._connect()
            result = client.query(sql, parameters=params)
        except Exception as exc:  # noqa: BLE001 - any failure is "ClickHouse unavailable"
            with self._lock:
                self._client = None
            raise Unavailable(_describe(exc)) from exc
        rows = [tuple(r) for r in result.result_rows]
        table = Table(list(result.column_names), rows[: self.max_rows], len(rows) > self.max_rows)
        expires = now + (self.cache_seconds if ttl is None else ttl)
        size = table.size() if expires > now else 0
        with self._lock:
            self.queries_run += 1
            self._forget(key)
            if expires > now and size <= self.max_cache_bytes // 4:
                self._cache[key] = (expires, table, size)
                self.cache_bytes += size
            while self._cache and (
                self.cache_bytes > self.max_cache_bytes or len(self._cache) > self.max_cache_entries
            ):
                self._forget(next(iter(self._cache)))
        return table

    def cached_sizes(self) -> list[int]:
        """Each cached answer's size, measured again now (for tests of the accounting)."""
        with self._lock:
            return [table.size() for _, table, _ in self._cache.values()]

    def _forget(self, key: _Key) -> None:
        old = self._cache.pop(key, None)
        if old:
            self.cache_bytes -= old[2]

    def _connect(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client


def window_params(
    start: dt.datetime, end: dt.datetime, wikis: Sequence[str], kinds: Sequence[str]
) -> dict[str, Any]:
    return {"start": start, "end": end, "wikis": list(wikis), "kinds": list(kinds)}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _describe(exc: BaseException) -> str:
    from clickhouse_connect.driver.exceptions import OperationalError

    text = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
    unreachable = isinstance(exc, OperationalError | OSError)
    return f"{'is unreachable' if unreachable else 'refused a query'}: {text}"
