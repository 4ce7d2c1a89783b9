"""Every query the dashboard runs, every value a server-side parameter, every answer
limited in rows: gold, the dumps' ledger, and silver's page-level rows by their primary
key (page views for the exact top pages, the lookup page and the drill-down; media
counts for the exact top media files).

``Gold`` wraps a clickhouse-connect client (the read-only dashboard user in production)
and caches each answer for the refresh interval, so a hundred viewers of the same view
cost ClickHouse one query per panel per interval; the cache is bounded in bytes.

Top-N lists are exact: the candidates come from gold's approximate topK states (Filtered
Space-Saving: fast, but its counts are bounds, and merged states undercount too), the
counts shown are the candidates' exact sums, ordered by them.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
# one definition of an edit on every page: edits and page creations; log entries are
# "actions"; "events" are every change the stream reports
_EDITS = "type IN ('edit', 'new')"

# the newest event not dated in the future (the judge lets through up to 10 min ahead):
# a wiki whose last event is ahead of this clock is left out, so it cannot say "0 s old"
FRESHNESS = """
SELECT maxIf(last_event_at, last_event_at <= now64(3)) AS newest,
       max(last_ingested_at) AS last_insert,
       now64(3) AS now, sum(events) AS events, min(first_event_at) AS first
FROM gold.wiki_totals
LIMIT {limit:UInt32}
"""
# Only names a wiki can have: one of 10,000 characters (bad data in gold) would freeze
# the picker in the browser, and could not be picked through the URL anyway.


def _wiki_options(table: str, weight: str) -> str:
    """The wiki picker's names, busiest first, from a gold table."""
    return f"""
SELECT wiki, sum({weight}) AS weight FROM gold.{table}
WHERE match(wiki, {{pattern:String}})
GROUP BY wiki ORDER BY weight DESC LIMIT 5000
"""


WIKI_OPTIONS = _wiki_options("wiki_totals", "events")
# which of the picked wikis gold knows (a page says so when one is not)
KNOWN_WIKIS = f"""
SELECT wiki FROM gold.wiki_totals WHERE has({{wikis:Array(String)}}, wiki)
GROUP BY wiki {_LIMIT}
"""
# the hours of the window in which the stream delivered anything (a gap: the pipeline
# was not running, or the recording does not cover it)
HOURS_WITH_EVENTS = f"""
SELECT hour FROM gold.events_per_hour WHERE {_HOURS}
GROUP BY hour HAVING sum(events) > 0 ORDER BY hour {_LIMIT}
"""


def _totals(keys: str, where: str, tail: str) -> tuple[str, str, str]:
    """Events per ``keys`` in the window, in three forms for three lengths of window
    (the edits page's ``_for_window`` picks): the minute rows (exact; ~360 rows a
    minute); the window's whole hours from the hourly rows and only its ragged ends from
    the minute rows (exact too: a day is ~76k rows, not ~515k: 14 ms, not 20; under ~6
    hours the minutes alone are quicker); the hours overlapping the window (past a day;
    the panels say so). A window inside one hour has no whole hour: its minutes are all
    read."""
    totals = f"SELECT {keys}sum(events) AS events FROM"
    first, last = (
        f"toStartOfHour({t})" for t in ("{start:DateTime} + INTERVAL 3599 SECOND", "{end:DateTime}")
    )
    return (
        f"{totals} gold.events_per_minute_wiki WHERE {_MINUTES} AND {where} {tail}",
        f"""
{totals} (
    SELECT wiki, user_kind, events FROM gold.events_per_hour_wiki
    WHERE hour >= {first} AND hour < {last} AND {where}
    UNION ALL
    SELECT wiki, user_kind, events FROM gold.events_per_minute_wiki
    WHERE {_MINUTES} AND (minute < {first} OR minute >= {last}) AND {where}
)
{tail}
""",
        f"{totals} gold.events_per_hour_wiki WHERE {_HOURS} AND {where} {tail}",
    )


# the window's events for the filters (none: the page says so)
EVENTS_IN_VIEW, EVENTS_IN_VIEW_HOURS, EVENTS_IN_VIEW_HOURLY = _totals(
    "", f"{_WIKIS} AND {_KINDS}", _LIMIT
)


def _per_minute(table: str, where: str) -> str:
    """A minute series by user kind (quiet minutes as 0, each kind its own column)."""
    return f"""
SELECT minute,
       sumIf(events, user_kind = 'registered') AS registered,
       sumIf(events, user_kind = 'anonymous') AS anonymous,
       sumIf(events, user_kind = 'bot') AS bot
FROM gold.{table}
WHERE {_MINUTES} AND {where} GROUP BY minute {_FILL_MINUTES} {_LIMIT}
"""


PER_MINUTE = _per_minute("events_per_minute", _KINDS)
PER_MINUTE_WIKIS = _per_minute("events_per_minute_wiki", f"{_WIKIS} AND {_KINDS}")

_BUCKETS = {
    "hour": ("hour", "toStartOfHour({start:DateTime})", 3600),
    "day": ("toStartOfDay(hour)", "toStartOfDay({start:DateTime})", 86400),
}


def _series(table: str, bucket: str, values: str, where: str) -> str:
    """A series from an hourly table by hour or by day, quiet buckets as 0."""
    key, first, step = _BUCKETS[bucket]
    return f"""
SELECT {key} AS {bucket}, {values} FROM gold.{table}
WHERE {_HOURS} AND {where} GROUP BY {bucket}
ORDER BY {bucket} WITH FILL FROM {first} TO {{end:DateTime}} STEP {step} {_LIMIT}
"""


_BY_KIND = (
    "sumIf(events, user_kind = 'registered') AS registered, "
    "sumIf(events, user_kind = 'anonymous') AS anonymous, "
    "sumIf(events, user_kind = 'bot') AS bot"
)
_BYTES = "sum(bytes_added) AS added, sum(bytes_removed) AS removed"
_DRILL = "wiki = {wiki:String} AND " + _KINDS
# by bucket: all wikis, picked wikis, bytes, the drill-down wiki (its hours sorted by wiki)
SERIES = {
    bucket: (
        _series("events_per_hour", bucket, _BY_KIND, _KINDS),
        _series("events_per_hour_wiki", bucket, _BY_KIND, f"{_WIKIS} AND {_KINDS}"),
        _series("events_per_hour_wiki", bucket, _BYTES, f"{_WIKIS} AND {_KINDS}"),
        _series("wiki_events_per_hour", bucket, _BY_KIND, _DRILL),
    )
    for bucket in _BUCKETS
}
PER_HOUR, PER_HOUR_WIKIS, BYTES, DRILL_HOUR = SERIES["hour"]
PER_DAY, PER_DAY_WIKIS, BYTES_DAILY, DRILL_DAY = SERIES["day"]
TOP_WIKIS, TOP_WIKIS_HOURS, TOP_WIKIS_HOURLY = _totals(
    "wiki, ", _KINDS, "GROUP BY wiki ORDER BY events DESC, wiki LIMIT 15"
)
USER_KINDS, USER_KINDS_HOURS, USER_KINDS_HOURLY = _totals(
    "user_kind, ", f"{_WIKIS} AND {_KINDS}", f"GROUP BY user_kind ORDER BY user_kind {_LIMIT}"
)
TYPE_MIX = f"""
SELECT type, sum(events) AS events FROM gold.events_per_hour_wiki
WHERE {_HOURS} AND {_WIKIS} AND {_KINDS} GROUP BY type ORDER BY events DESC, type {_LIMIT}
"""
# The top pages and editors: the same columns and ranking whichever table and window
_PAGE_SUMS = "SELECT wiki, title, sum(edits) AS edits, sum(byte_delta) AS byte_delta"
_PAGE_RANK = "GROUP BY wiki, title ORDER BY edits DESC, wiki, title LIMIT 10"
_EDITOR_SUMS = """SELECT wiki, user, any(user_kind) AS kind, sum(edits) AS edits,
       sum(actions) AS actions, sum(bytes_added) AS bytes_added,
       sum(bytes_removed) AS bytes_removed"""
_EDITOR_RANK = "GROUP BY wiki, user HAVING edits > 0 ORDER BY edits DESC, wiki, user LIMIT 10"
# Picked wikis: the wiki is part of the primary key, the window's rows are few: exact.
TOP_PAGES = f"""
{_PAGE_SUMS}
FROM gold.page_edits_per_hour
WHERE {_HOURS} AND {_WIKIS} AND {_KINDS}
{_PAGE_RANK}
"""
TOP_EDITORS = f"""
{_EDITOR_SUMS}
FROM gold.editor_edits_per_hour
WHERE {_HOURS} AND {_WIKIS} AND {_KINDS}
{_EDITOR_RANK}
"""
# All wikis: two phases. The candidates from gold's approximate topK states, then their
# edits summed exactly and ordered by that sum: the counts shown are exact, topK only
# picks whom to count. Must match the dbt var top_candidates, and the load factor
# top_load_factor: both are part of the states' type (a test checks).
TOP_CANDIDATES = 100
TOP_LOAD_FACTOR = 3
_TOPK = f"topKWeightedMerge({TOP_CANDIDATES}, {TOP_LOAD_FACTOR}, 'counts')"
# Up to a day: the hours' states (gold.top_pages_per_hour), then the window's page rows
# (gold.page_edits_per_hour, sorted by hour). The titles (users) alone go first, in
# PREWHERE: a String set test reads and filters the window's rows in half the time of
# the (wiki, title) tuple test, which then runs on the few rows left (a day of 44k page
# rows an hour: 100 ms -> 60 ms).
TOP_PAGES_ALL = f"""
WITH candidates AS (
    SELECT arrayJoin({_TOPK}(pages)).1 AS page
    FROM gold.top_pages_per_hour WHERE {_HOURS} AND {_KINDS}
)
{_PAGE_SUMS}
FROM gold.page_edits_per_hour
PREWHERE {_HOURS} AND title IN (SELECT page.2 FROM candidates)
WHERE {_KINDS} AND (wiki, title) IN candidates
{_PAGE_RANK}
"""
TOP_EDITORS_ALL = f"""
WITH candidates AS (
    SELECT arrayJoin({_TOPK}(editors)).1 AS editor
    FROM gold.top_editors_per_hour WHERE {_HOURS} AND {_KINDS}
)
{_EDITOR_SUMS}
FROM gold.editor_edits_per_hour
PREWHERE {_HOURS} AND user IN (SELECT editor.2 FROM candidates)
WHERE {_KINDS} AND (wiki, user) IN candidates
{_EDITOR_RANK}
"""
# Longer: a window's page rows grow with it (a week: 7.4M rows, 240 ms). The candidates
# from a day's states (gold.top_pages_per_day) for the window's whole days and an hour's
# for the rest (a week merges ~70 states, not ~500), their edits from the rows sorted by
# page (gold.page_edits_by_page: the candidates' granules only, whatever the window).
_WHOLE_DAY = (
    "{day} >= toStartOfHour({{start:DateTime}}) AND {day} <= {{end:DateTime}} - INTERVAL 1 DAY"
)


def _long_candidates(what: str) -> str:
    """The window's candidates (column ``what`` of gold.top_{what}_per_day and _per_hour)."""
    return f"""candidates AS (
    SELECT arrayJoin({_TOPK}({what})).1 AS candidate FROM (
        SELECT {what} FROM gold.top_{what}_per_day
        WHERE {_WHOLE_DAY.format(day="day")} AND {_KINDS}
        UNION ALL
        SELECT {what} FROM gold.top_{what}_per_hour
        WHERE {_HOURS} AND {_KINDS} AND NOT ({_WHOLE_DAY.format(day="toStartOfDay(hour)")})
    )
)"""


TOP_PAGES_ALL_LONG = f"""
WITH {_long_candidates("pages")}
{_PAGE_SUMS}
FROM gold.page_edits_by_page
WHERE (wiki, title) IN candidates AND {_HOURS} AND {_KINDS}
{_PAGE_RANK}
"""
TOP_EDITORS_ALL_LONG = f"""
WITH {_long_candidates("editors")}
{_EDITOR_SUMS}
FROM gold.editor_edits_by_editor
WHERE (wiki, user) IN candidates AND {_HOURS} AND {_KINDS}
{_EDITOR_RANK}
"""
# "Usual" is the average of the same weekday and hour in the other weeks observed, among
# the last USUAL_WEEKS: those hours are named one by one, so each read is a few primary
# key lookups, however long gold's history (a scan of every hour of a weekday and hour
# took 0.9-1.7 s over 90 days). An hour counts as observed when the stream delivered
# anything in it.
USUAL_WEEKS = 13
_SLOT = "toStartOfHour({end:DateTime} - INTERVAL 1 MINUTE)"
_SLOTS = f"arrayMap(k -> {_SLOT} - toIntervalWeek(k), range(1, {USUAL_WEEKS + 1}))"
_OBSERVED = f"""(
    SELECT count() FROM (
        SELECT hour FROM gold.events_per_hour WHERE has({_SLOTS}, hour)
        GROUP BY hour HAVING sum(events) > 0
    )
)"""
# The last hour of the window against the wiki's own usual for this weekday and hour:
# a spike has at least SPIKE_MIN_EVENTS events and SPIKE_MIN_RATIO times the usual. The
# editors filter applies to both sides, the wiki filter to the wikis listed.
SPIKE_MIN_EVENTS = 20
SPIKE_MIN_RATIO = 3.0
SPIKES = f"""
WITH {_OBSERVED} AS observed,
current AS (
    SELECT wiki, sum(events) AS events FROM gold.events_per_minute_wiki
    WHERE minute >= {{end:DateTime}} - INTERVAL 1 HOUR AND minute < {{end:DateTime}}
      AND {_WIKIS} AND {_KINDS}
    GROUP BY wiki
),
baseline AS (
    SELECT wiki, sum(events) / greatest(observed, 1) AS usual
    FROM gold.events_per_hour_wiki
    WHERE has({_SLOTS}, hour) AND {_WIKIS} AND {_KINDS}
    GROUP BY wiki
)
SELECT wiki, current.events AS events, baseline.usual AS baseline,
       current.events / greatest(baseline.usual, 1) AS ratio
FROM current INNER JOIN baseline USING (wiki)
WHERE current.events >= {{min_events:UInt32}} AND ratio >= {{min_ratio:Float64}}
  AND observed >= 1
ORDER BY ratio DESC, wiki LIMIT 10
"""
DRILL_MINUTE = _per_minute("events_per_minute_wiki", _DRILL)
# the drill-down wiki's usual week: its average events per weekday and hour over the
# weeks observed among the last USUAL_WEEKS (wiki_weekday_hour_profile's average, over a
# bounded span), from the hours sorted by wiki (gold.wiki_events_per_hour: one wiki's
# ~2,200 hours, not every wiki's ~4M rows of them)
HEATMAP = f"""
WITH slots AS (
    SELECT toDayOfWeek(hour) AS weekday, toHour(hour) AS hour_of_day, count() AS weeks
    FROM (
        SELECT hour FROM gold.events_per_hour
        WHERE hour >= {{end:DateTime}} - INTERVAL {USUAL_WEEKS} WEEK AND hour < {{end:DateTime}}
        GROUP BY hour HAVING sum(events) > 0
    )
    GROUP BY weekday, hour_of_day
)
SELECT weekday, hour_of_day, sum(events) / any(slots.weeks) AS avg_events
FROM gold.wiki_events_per_hour
INNER JOIN slots ON toDayOfWeek(hour) = slots.weekday AND toHour(hour) = slots.hour_of_day
WHERE hour >= {{end:DateTime}} - INTERVAL {USUAL_WEEKS} WEEK AND hour < {{end:DateTime}}
  AND wiki = {{wiki:String}}
GROUP BY weekday, hour_of_day {_LIMIT}
"""


# -- "now": the headline figures, at the window's end ------------------------------------
# edits (edits and page creations) per minute over the last NOW_MINUTES minutes, by
# user kind and wiki (gold.edits_per_minute_wiki), and over the last hour
NOW_MINUTES = 10
NOW = f"""
SELECT
    sumIf(edits, minute >= {{end:DateTime}} - INTERVAL {NOW_MINUTES} MINUTE
                 AND {_KINDS}) / {NOW_MINUTES} AS per_minute,
    sumIf(edits, user_kind = 'bot') AS hour_bot_edits,
    sum(edits) AS hour_edits,
    uniqExactIf(wiki, {_KINDS} AND edits > 0) AS active_wikis
FROM gold.edits_per_minute_wiki
WHERE minute >= {{end:DateTime}} - INTERVAL 1 HOUR AND minute < {{end:DateTime}} AND {_WIKIS}
{_LIMIT}
"""
# the usual edits per minute for this weekday and hour: the slot's edits in the other
# weeks observed (among the last USUAL_WEEKS), averaged over those weeks, per minute
NOW_USUAL = f"""
SELECT {_OBSERVED} AS weeks, sum(events) / greatest(weeks, 1) / 60 AS usual_per_minute
FROM gold.events_per_hour_wiki
WHERE has({_SLOTS}, hour) AND {_EDITS} AND {_WIKIS} AND {_KINDS}
{_LIMIT}
"""
# the views of the newest loaded hour (the dumps, when built), for the picked wikis
NOW_VIEWS = f"""
SELECT hour, sum(views) AS views FROM gold.pageviews_hour_wiki
WHERE hour = (SELECT max(hour) FROM gold.pageviews_hour_wiki WHERE {_WIKIS}) AND {_WIKIS}
GROUP BY hour {_LIMIT}
"""
# The latest notable edits of the window (gold.notable_edits: edits and page creations
# of at least the dbt var notable_bytes bytes either way), newest first
NOTABLE_LIMIT = 20
NOTABLE = f"""
SELECT event_time, wiki, type, title, user, user_kind, byte_delta,
       revision_old, revision_new
FROM gold.notable_edits
WHERE event_time >= {{start:DateTime}} AND event_time < {{end:DateTime}}
  AND {_WIKIS} AND {_KINDS}
ORDER BY event_time DESC, wiki, title LIMIT {NOTABLE_LIMIT}
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
DRILL_VIEWS_MODELS = ["dumps_freshness", "pageviews_hour_wiki", "page_edits_per_hour"]
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
    "pageviews_day_wiki",
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
# What each source holds, for the panels' coverage: how long each table keeps its rows
# (its TTL, read from the schema: the dbt vars dumps_*_days), and what the ledger
# publishes (every gold read of the dumps shows the published loads only).
RETENTION_TABLES = {
    "hourly": ("gold", "pageviews_hour_wiki_loads"),
    "daily": ("gold", "pageviews_day_wiki_loads"),
    "top_pages": ("gold", "top_pages_day_loads"),
    "media": ("gold", "media_day_loads"),
    "top_media": ("gold", "top_media_day_loads"),
    "page_rows": ("silver", "pageviews"),
    "media_rows": ("silver", "mediacounts"),
}
# (the databases and names alone are what system.tables is read by: with the pairs
# only, it made every table's definition, 94 ms against 14 on a small warehouse)
RETENTIONS = f"""
SELECT database, name, engine_full FROM system.tables
WHERE database IN {{databases:Array(String)}} AND name IN {{names:Array(String)}}
  AND (database, name) IN {{tables:Array(Tuple(String, String))}} {_LIMIT}
"""
RETENTIONS_PARAMS = {
    "databases": sorted({db for db, _ in RETENTION_TABLES.values()}),
    "names": sorted({name for _, name in RETENTION_TABLES.values()}),
    "tables": list(RETENTION_TABLES.values()),
}
# per dataset, the first and last period published (a pageviews file's period is the
# hour in its name), and the same for the loads silver still holds page rows of (rows
# kept N days from loading: the loads finished in the last N days)
LOADED = f"""
SELECT dataset, min(period) AS first, max(period) AS last, count() AS files
FROM bronze.dumps_visible GROUP BY dataset {_LIMIT}
"""
ROWS_LOADED = f"""
SELECT dataset, min(period) AS first, max(period) AS last FROM bronze.dumps_files FINAL
WHERE state = 'done' AND load_id IN (SELECT load_id FROM bronze.dumps_visible)
  AND finished_at >= now() - toIntervalDay({{days:UInt32}})
  AND dataset = {{dataset:String}}
GROUP BY dataset {_LIMIT}
"""
READERS_WIKI_OPTIONS = _wiki_options("pageviews_day_wiki", "views")
# the daily totals keep a wiki longest: a wiki is known while any of its days is kept
READERS_KNOWN_WIKIS = f"""
SELECT wiki FROM gold.pageviews_day_wiki WHERE has({{wikis:Array(String)}}, wiki)
GROUP BY wiki {_LIMIT}
"""
# desktop, mobile, and other (access unknown: the empty domain code, Wikifunctions);
# not `sum(views) AS views`: the alias would shadow the column in the sumIf calls
_SPLIT = (
    "sumIf(views, access = 'desktop') AS desktop, sumIf(views, access = 'mobile') AS mobile, "
    "total - desktop - mobile AS other"
)
_ACCESS = f"sum(views) AS total, {_SPLIT}"
_DAY_ACCESS = (
    "sum(views) AS total, sum(desktop_views) AS desktop, sum(mobile_views) AS mobile, "
    "total - desktop - mobile AS other"
)
_DAYS_OF_WINDOW = "day >= toDate({start:DateTime}) AND day < toDate({end:DateTime} - 1) + 1"


# Views per hour (per day past a week), desktop and mobile apart. Not filled with 0: an
# hour without views is an hour whose file is not loaded, not a quiet hour.
def _views_series(bucket: str, key: str) -> str:
    return f"""
SELECT {key} AS {bucket}, {_ACCESS} FROM gold.pageviews_hour_wiki
WHERE {_HOURS} AND {_WIKIS} GROUP BY {bucket} ORDER BY {bucket} {_LIMIT}
"""


VIEWS_HOUR = _views_series("hour", "hour")
VIEWS_DAY = _views_series("day", "toStartOfDay(hour)")
# past the hourly table's retention, the daily totals (with how many of the day's 24
# hours are loaded)
VIEWS_DAILY = f"""
SELECT day, {_DAY_ACCESS}, max(hours) AS hours FROM gold.pageviews_day_wiki
WHERE {_DAYS_OF_WINDOW} AND {_WIKIS} GROUP BY day ORDER BY day {_LIMIT}
"""
# the hours of the window with any views loaded (of any wiki): a picked wiki missing in
# one of them was left out of that hour's file by a filtered load (--wiki, --project)
LOADED_HOURS = f"""
SELECT hour FROM gold.pageviews_hour_wiki WHERE {_HOURS}
GROUP BY hour ORDER BY hour {_LIMIT}
"""
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
VIEWS_WIKIS_DAILY = f"""
SELECT day, wiki, sum(views) AS views FROM gold.pageviews_day_wiki
WHERE {_DAYS_OF_WINDOW} AND wiki IN (
    SELECT wiki FROM gold.pageviews_day_wiki WHERE {_DAYS_OF_WINDOW} AND {_WIKIS}
    GROUP BY wiki ORDER BY sum(views) DESC, wiki LIMIT 8
)
GROUP BY day, wiki ORDER BY wiki, day {_LIMIT}
"""
# by bucket: the views series, and the busiest wikis' series
VIEWS = {
    "hour": (VIEWS_HOUR, VIEWS_WIKIS_HOUR),
    "day": (VIEWS_DAY, VIEWS_WIKIS_DAY),
    "daily": (VIEWS_DAILY, VIEWS_WIKIS_DAILY),
}
VIEWS_BY_WIKI = f"""
SELECT wiki, {_ACCESS}
FROM gold.pageviews_hour_wiki WHERE {_HOURS} AND {_WIKIS}
GROUP BY wiki ORDER BY total DESC, wiki LIMIT 15
"""
VIEWS_BY_WIKI_DAILY = f"""
SELECT wiki, {_DAY_ACCESS}
FROM gold.pageviews_day_wiki WHERE {_DAYS_OF_WINDOW} AND {_WIKIS}
GROUP BY wiki ORDER BY total DESC, wiki LIMIT 15
"""
_DAYS = "day >= {first_day:Date} AND day < {end_day:Date}"
# media traffic per day by type, and by hosting wiki (the busiest 8; `host`, not an
# alias `wiki`, which would shadow the column in the WHERE: files hosted nowhere, '',
# would never be listed); the wiki filter is the hosting wiki's (Commons hosts most
# files every wiki shows)
MEDIA_TYPES = f"""
SELECT day, media_type, sum(bytes) AS bytes, sum(transfers) AS transfers FROM gold.media_day
WHERE {_DAYS} AND {_WIKIS} GROUP BY day, media_type ORDER BY media_type, day {_LIMIT}
"""
MEDIA_WIKIS = f"""
SELECT day, if(wiki = '', '(none)', wiki) AS host, sum(bytes) AS bytes FROM gold.media_day
WHERE {_DAYS} AND wiki IN (
    SELECT wiki FROM gold.media_day WHERE {_DAYS} AND {_WIKIS}
    GROUP BY wiki ORDER BY sum(bytes) DESC, wiki LIMIT 8
)
GROUP BY day, host ORDER BY host, day {_LIMIT}
"""
# the wikis whose top pages a day shows when none is picked: the day's busiest
TOP_PAGES_WIKIS = 3
BUSIEST_ON_DAY = f"""
SELECT wiki FROM gold.pageviews_day_wiki WHERE day = {{day:Date}}
GROUP BY wiki ORDER BY sum(views) DESC, wiki LIMIT {TOP_PAGES_WIKIS}
"""
# how many of the day's 24 hours are loaded, for the wikis listed
DAY_HOURS = f"""
SELECT max(hours) AS hours FROM gold.pageviews_day_wiki
WHERE day = {{day:Date}} AND has({{wikis:Array(String)}}, wiki) {_LIMIT}
"""
# of a day's published pageviews files (their periods in [first, last)), how many
# silver still holds the page rows of (loaded in the last `days` days)
DAY_ROWS_HELD = f"""
SELECT countIf(finished_at >= now() - toIntervalDay({{days:UInt32}})) AS held, count() AS loaded
FROM bronze.dumps_files FINAL
WHERE dataset = 'pageviews' AND state = 'done'
  AND load_id IN (SELECT load_id FROM bronze.dumps_visible)
  AND period >= {{first:DateTime}} AND period < {{last:DateTime}}
{_LIMIT}
"""
TOP_PAGES_SHOWN = 10
# The main page and special pages lead every wiki's views and say little (the Pageviews
# tool's Topviews leaves them out too): left out unless asked for. The dumps write `_`
# for spaces; `-` stands for titles they could not keep.
_LEFT_OUT = """(
    NOT {special:Bool} AND (
        has({main_pages:Array(String)}, title)
        OR match(title, {special_pattern:String})
    )
)"""
# Two phases, exact: the candidates are the day's topK states' (gold.top_pages_day, per
# wiki), their views summed exactly from silver's page rows, read by silver.pageviews'
# primary key (hour, domain code, title: the day's 24 hours, the wiki's codes that day,
# the candidates). Only while silver holds the day's page rows (dumps_page_level_days).
TOP_PAGES_EXACT = f"""
WITH candidates AS (
    SELECT wiki, title FROM gold.top_pages_day
    WHERE day = {{day:Date}} AND has({{wikis:Array(String)}}, wiki) AND NOT {_LEFT_OUT}
),
codes AS (
    SELECT DISTINCT domain_code FROM silver.projectviews
    WHERE hour >= toDateTime({{day:Date}}) AND hour < toDateTime({{day:Date}}) + INTERVAL 1 DAY
      AND has({{wikis:Array(String)}}, wiki)
),
keys AS (
    SELECT toDateTime({{day:Date}}) + INTERVAL h HOUR AS hour, domain_code, title
    FROM (SELECT DISTINCT title FROM candidates) AS titles
    CROSS JOIN codes
    CROSS JOIN (SELECT arrayJoin(range(24)) AS h) AS hours
)
SELECT wiki, title, sum(views) AS views FROM silver.pageviews
WHERE (hour, domain_code, title) IN keys
  AND (wiki, title) IN candidates
  AND load_id IN (SELECT load_id FROM bronze.dumps_visible)
GROUP BY wiki, title
ORDER BY wiki, views DESC, title LIMIT {TOP_PAGES_SHOWN} BY wiki {_LIMIT}
"""
# Past silver's page rows, the topK merge's own counts: estimates (Space-Saving's count
# is an upper bound for one state; states merged can undercount too), labelled so.
TOP_PAGES_ESTIMATED = f"""
SELECT wiki, title, views FROM gold.top_pages_day
WHERE day = {{day:Date}} AND has({{wikis:Array(String)}}, wiki) AND NOT {_LEFT_OUT}
ORDER BY wiki, views DESC, title LIMIT {TOP_PAGES_SHOWN} BY wiki {_LIMIT}
"""
TOP_MEDIA_SHOWN = 15
# media: each file is one row per day in a load, so a file's day is exact in silver;
# the candidates (the day's topK, gold.top_media_day) go into PREWHERE, the day is the
# key's first column. While silver holds the day (dumps_media_file_days).
TOP_MEDIA_EXACT = f"""
SELECT base_name, sum(transfers) AS transfers, sum(bytes) AS bytes FROM silver.mediacounts
PREWHERE day = {{day:Date}}
    AND base_name IN (SELECT base_name FROM gold.top_media_day WHERE day = {{day:Date}})
WHERE load_id IN (SELECT load_id FROM bronze.dumps_visible) AND {_WIKIS}
GROUP BY base_name ORDER BY transfers DESC, base_name LIMIT {TOP_MEDIA_SHOWN}
"""
TOP_MEDIA_ESTIMATED = f"""
SELECT base_name, transfers FROM gold.top_media_day
WHERE day = {{day:Date}} ORDER BY transfers DESC, base_name LIMIT {TOP_MEDIA_SHOWN}
"""
# Edits (the live stream: edits and page creations) and views (the dumps) per wiki and
# hour, as gold.edits_views_hour_wiki defines them (a test checks they agree), with the
# window's filters inside each side: ClickHouse does not push a filter on the view
# through its FULL JOIN, so reading the view scans both tables whole.


def _edits_views(select: str) -> str:
    return f"""
WITH stream AS (
    SELECT hour, wiki, sum(events) AS edits FROM gold.events_per_hour_wiki
    WHERE {_HOURS} AND {_WIKIS} AND {_EDITS} GROUP BY hour, wiki
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
       edits * 1000 / views AS edits_per_1000_views
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
SELECT kind, hour, wiki, title, views, baseline_views AS usual_views, edits
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

# -- the lookup page (/lookup): pages side by side, views and edits per hour -------------
# the wiki's domain codes in the window's hours (from projectviews), then its pages'
# views per hour by silver.pageviews' primary key
LOOKUP_CODES = f"""
SELECT DISTINCT domain_code FROM silver.projectviews
WHERE {_HOURS} AND wiki = {{wiki:String}} {_LIMIT}
"""
LOOKUP_VIEWS = f"""
WITH keys AS (
    SELECT toStartOfHour({{start:DateTime}}) + INTERVAL h HOUR AS hour, code AS domain_code,
           page AS title
    FROM (SELECT arrayJoin(range(toUInt32(dateDiff('hour', toStartOfHour({{start:DateTime}}),
                                                   {{end:DateTime}} - 1) + 1))) AS h) AS hours
    CROSS JOIN (SELECT arrayJoin({{codes:Array(String)}}) AS code) AS codes
    CROSS JOIN (SELECT arrayJoin({{pages:Array(String)}}) AS page) AS pages
)
SELECT hour, title, sum(views) AS views FROM silver.pageviews
WHERE (hour, domain_code, title) IN keys AND hour < {{end:DateTime}}
  AND load_id IN (SELECT load_id FROM bronze.dumps_visible)
GROUP BY hour, title ORDER BY title, hour {_LIMIT}
"""
LOOKUP_EDITS = f"""
SELECT hour, title, sum(edits) AS edits FROM gold.page_edits_by_page
WHERE title IN {{titles:Array(String)}} AND wiki = {{wiki:String}} AND {_HOURS}
GROUP BY hour, title ORDER BY title, hour {_LIMIT}
"""
# the hours of the window with the wiki's views loaded (the lookup's views of 0 are
# quiet only there)
LOOKUP_LOADED = f"""
SELECT hour FROM gold.pageviews_hour_wiki WHERE {_HOURS} AND wiki = {{wiki:String}}
GROUP BY hour ORDER BY hour {_LIMIT}
"""


class Unavailable(Exception):
    """ClickHouse could not answer; the message says why, for the page."""


MAX_ROWS = 5_000
PARALLEL_QUERIES = 8
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


class _Running:
    """A query on its way: the callers that ask it meanwhile wait for its answer."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._table: Table | None = None
        self._error: Unavailable | None = None

    def done(self, table: Table) -> None:
        self._table = table
        self._event.set()

    def fail(self, error: Unavailable) -> None:
        self._error = error
        self._event.set()

    def wait(self) -> Table:
        self._event.wait()
        if self._error is not None:
            raise Unavailable(str(self._error))
        assert self._table is not None
        return self._table


class Gold:
    """Cached, parameterised reads of the gold tables.

    Every query binds ``limit`` (``max_rows`` + 1: a cut answer is marked
    ``truncated``). The cache keeps each answer for its ttl and holds at most
    ``cache_bytes`` (sizes measured by ``Table.size``) and ``cache_entries`` answers,
    dropping the least recently used first; an answer bigger than a quarter of the
    budget is not kept.

    A query asked again while the same one (same text and parameters) is running waits
    for that answer instead of running twice: a page's rows ask some of the same
    questions at the same moment (the busiest wikis, which models are built), and so do
    viewers whose pages load together.
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
        self._running: dict[_Key, _Running] = {}

    def run_all(
        self, queries: Sequence[tuple[str, dict[str, Any]]], ttl: float | None = None
    ) -> list[Table]:
        """Several independent queries side by side (a panel's row waits for its slowest
        query, not for their sum); their answers in order. Raises Unavailable."""
        if len(queries) < 2:
            return [self.run(sql, p, ttl) for sql, p in queries]
        # threads for this call only: none outlives its request
        with ThreadPoolExecutor(max_workers=min(len(queries), PARALLEL_QUERIES)) as pool:
            futures = [pool.submit(self.run, sql, p, ttl) for sql, p in queries]
            return [future.result() for future in futures]

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
            running = self._running.get(key)
            if running is None:
                self._running[key] = mine = _Running()
        if running is not None:
            return running.wait()
        try:
            table = self._query(sql, params)
        except BaseException as exc:
            with self._lock:
                del self._running[key]
            mine.fail(exc if isinstance(exc, Unavailable) else Unavailable(_describe(exc)))
            raise
        mine.done(table)
        expires = now + (self.cache_seconds if ttl is None else ttl)
        size = table.size() if expires > now else 0
        with self._lock:
            del self._running[key]
            self._forget(key)
            if expires > now and size <= self.max_cache_bytes // 4:
                self._cache[key] = (expires, table, size)
                self.cache_bytes += size
            while self._cache and (
                self.cache_bytes > self.max_cache_bytes or len(self._cache) > self.max_cache_entries
            ):
                self._forget(next(iter(self._cache)))
        return table

    def _query(self, sql: str, params: dict[str, Any]) -> Table:
        try:
            client = self._connect()
            result = client.query(sql, parameters=params)
        except Exception as exc:  # noqa: BLE001 - any failure is "ClickHouse unavailable"
            with self._lock:
                self._client = None
            raise Unavailable(_describe(exc)) from exc
        rows = [tuple(r) for r in result.result_rows]
        with self._lock:
            self.queries_run += 1
        return Table(list(result.column_names), rows[: self.max_rows], len(rows) > self.max_rows)

    def clear(self) -> None:
        """Forget every cached answer (a cold page, for tests and benchmarks)."""
        with self._lock:
            self._cache.clear()
            self.cache_bytes = 0

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
