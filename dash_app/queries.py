"""Every query the dashboard runs: gold only, every value a server-side parameter.

``Gold`` wraps a clickhouse-connect client (the read-only dashboard user in production)
and caches each answer for the refresh interval, so a hundred viewers of the same view
cost ClickHouse one query per panel per interval.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
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
_FILL_HOURS = (
    "ORDER BY hour WITH FILL FROM toStartOfHour({start:DateTime}) TO {end:DateTime} STEP 3600"
)

FRESHNESS = """
SELECT max(last_event_at) AS newest, max(last_ingested_at) AS last_insert,
       now64(3) AS now, sum(events) AS events
FROM gold.wiki_totals
"""
WIKI_OPTIONS = """
SELECT wiki, sum(events) AS events FROM gold.wiki_totals
GROUP BY wiki ORDER BY events DESC LIMIT 5000
"""
PER_MINUTE = f"""
SELECT minute, sum(events) AS events FROM gold.events_per_minute
WHERE {_MINUTES} AND {_KINDS} GROUP BY minute {_FILL_MINUTES}
"""
PER_MINUTE_WIKIS = f"""
SELECT minute, sum(events) AS events FROM gold.events_per_minute_wiki
WHERE {_MINUTES} AND {_WIKIS} AND {_KINDS} GROUP BY minute {_FILL_MINUTES}
"""
PER_HOUR = f"""
SELECT hour, sum(events) AS events FROM gold.events_per_hour
WHERE {_HOURS} AND {_KINDS} GROUP BY hour {_FILL_HOURS}
"""
PER_HOUR_WIKIS = f"""
SELECT hour, sum(events) AS events FROM gold.events_per_hour_wiki
WHERE {_HOURS} AND {_WIKIS} AND {_KINDS} GROUP BY hour {_FILL_HOURS}
"""
TOP_WIKIS = f"""
SELECT wiki, sum(events) AS events FROM gold.events_per_minute_wiki
WHERE {_MINUTES} AND {_KINDS} GROUP BY wiki ORDER BY events DESC, wiki LIMIT 15
"""
USER_KINDS = f"""
SELECT user_kind, sum(events) AS events FROM gold.events_per_minute_wiki
WHERE {_MINUTES} AND {_WIKIS} GROUP BY user_kind ORDER BY user_kind
"""
TYPE_MIX = f"""
SELECT type, sum(events) AS events FROM gold.events_per_hour_wiki
WHERE {_HOURS} AND {_WIKIS} AND {_KINDS} GROUP BY type ORDER BY events DESC
"""
BYTES = f"""
SELECT hour, sum(bytes_added) AS added, sum(bytes_removed) AS removed
FROM gold.events_per_hour_wiki
WHERE {_HOURS} AND {_WIKIS} AND {_KINDS} GROUP BY hour {_FILL_HOURS}
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
# top_candidates (a test checks).
TOP_CANDIDATES = 100
# The titles (users) alone go first, in PREWHERE: a String set test reads and filters the
# window's rows in half the time of the (wiki, title) tuple test, which then runs on the
# few rows left (a day of 44k page rows an hour: 100 ms -> 60 ms).
TOP_PAGES_ALL = f"""
WITH candidates AS (
    SELECT arrayJoin(topKWeightedMerge({TOP_CANDIDATES}, 3, 'counts')(pages)).1 AS page
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
    SELECT arrayJoin(topKWeightedMerge({TOP_CANDIDATES}, 3, 'counts')(editors)).1 AS editor
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
    SELECT arrayJoin(topKWeightedMerge({TOP_CANDIDATES}, 3, 'counts')(pages)) AS x
    FROM gold.top_pages_per_hour WHERE {_HOURS} AND {_KINDS}
)
ORDER BY edits DESC, wiki, title LIMIT 10
"""
TOP_EDITORS_APPROX = f"""
SELECT x.1.1 AS wiki, x.1.2 AS user, x.2 AS edits, x.3 AS error
FROM (
    SELECT arrayJoin(topKWeightedMerge({TOP_CANDIDATES}, 3, 'counts')(editors)) AS x
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
WHERE {_HOURS} AND {_WIKIS} GROUP BY user_kind ORDER BY user_kind
"""
# The last hour of the window against the wiki's own average for this weekday and hour
# in the other weeks observed, where at least one other week was observed.
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
WHERE {_MINUTES} AND wiki = {{wiki:String}}
  AND {_KINDS}
GROUP BY minute {_FILL_MINUTES}
"""
DRILL_HOUR = f"""
SELECT hour, sum(events) AS events FROM gold.events_per_hour_wiki
WHERE hour >= {{start:DateTime}} AND hour < {{end:DateTime}} AND wiki = {{wiki:String}}
  AND {_KINDS}
GROUP BY hour {_FILL_HOURS}
"""
HEATMAP = """
SELECT weekday, hour_of_day, avg_events FROM gold.wiki_weekday_hour_profile
WHERE wiki = {wiki:String}
"""


class Unavailable(Exception):
    """ClickHouse could not answer; the message says why, for the page."""


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def __bool__(self) -> bool:
        return bool(self.rows)


class Gold:
    """Cached, parameterised reads of the gold tables."""

    def __init__(self, client_factory: Callable[[], Any], cache_seconds: float = 10.0) -> None:
        self._factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[float, Table]] = {}
        self.cache_seconds = cache_seconds
        self.queries_run = 0

    def run(
        self, sql: str, params: dict[str, Any] | None = None, ttl: float | None = None
    ) -> Table:
        key = (sql, tuple(sorted((k, _hashable(v)) for k, v in (params or {}).items())))
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > now:
                return hit[1]
        try:
            client = self._connect()
            result = client.query(sql, parameters=params or {})
        except Exception as exc:  # noqa: BLE001 - any failure is "ClickHouse unavailable"
            with self._lock:
                self._client = None
            raise Unavailable(_describe(exc)) from exc
        table = Table(list(result.column_names), [tuple(r) for r in result.result_rows])
        with self._lock:
            self.queries_run += 1
            if len(self._cache) > 5000:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            self._cache[key] = (now + (self.cache_seconds if ttl is None else ttl), table)
        return table

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
