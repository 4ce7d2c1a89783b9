"""The readers page (``/readers``): what Wikimedia's readers do, from the hourly pageviews
and daily mediacounts dumps, set against what its editors do (the live stream).

The same header, controls (wikis, window, auto-refresh; the editors filter does not apply
here and is hidden) and URL state as the edits page; each dataset has its own freshness,
and windows end where the loaded page views end. The dumps' models are opt-in
(``dbt build --vars '{dumps: true}'``): when they are not built, or no file is loaded,
the page says so and what to run, without a callback exception.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dash import Dash, Input, Output, dcc, html

from wiki_core.timefmt import age_text, naive_utc

from .. import controls, figures, guard
from .. import page_parts as parts
from .. import queries as q
from ..queries import Gold, Table, Unavailable
from ..state import MAX_RANGE, REFRESH, ViewState, resolution

PATH = "/readers"
NAME = "Readers"
TITLE = "wiki-events · readers"
ORDER = 1

PREFIX = "readers-"
PARALLEL_QUERIES = 4
# the media panels show whole days: the window's, and at least the last MEDIA_DAYS
MEDIA_DAYS = 7
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)

GRAPHS = ["views-hour", "views-wikis", "views-access", "media-types", "media-wikis", "edits-views"]
TABLES = [
    "edits-views-wikis",
    "read-and-edited",
    "views-without-edits",
    "edits-without-views",
    "top-pages",
    "top-media",
]
TABLE_COLUMNS = {
    "edits-views-wikis": ["wiki", "edits", "views", "edits_per_1000_views"],
    "read-and-edited": ["hour", "wiki", "title", "views", "edits"],
    "views-without-edits": ["hour", "wiki", "title", "views", "usual_views"],
    "edits-without-views": ["hour", "wiki", "title", "edits", "views"],
    "top-pages": ["wiki", "rank", "title", "views"],
    "top-media": ["rank", "file", "transfers"],
}
TABLE_TITLES = {
    "edits-views-wikis": "Edits per 1,000 views, per wiki (hours with views loaded)",
    "read-and-edited": "Heavily read and heavily edited in the same hour",
    "views-without-edits": "Views spiking without an edit",
    "edits-without-views": "Edited heavily, hardly read",
    "top-pages": "Top pages of the day",
    "top-media": "Top media files of the day",
}
TABLE_EMPTY = {
    "edits-views-wikis": "no hour of this window has both views loaded and these wikis",
    "read-and-edited": "no page was both heavily read and heavily edited in one hour",
    "views-without-edits": "no page's views spiked without an edit",
    "edits-without-views": "no heavily edited page went unread",
    "top-pages": "no page views loaded for this day",
    "top-media": "no media counts loaded for this day",
}
# read from gold views over silver's page-level rows (7 days), joined with the edits:
# the heaviest queries of the page, allowed to fail alone
PAGE_LEVEL = {"read-and-edited", "attention"}
# ... and slow (bench/bench_readers.py): their answers are kept at least this long; they
# change when an hour's file loads, and with the edits of pages in loaded hours
PAGE_LEVEL_TTL = 300
TEXTS = ["freshness", "window", "banner", "top-pages-title", "top-media-title"]
OUTPUTS = {
    **{g: Output(PREFIX + g, "figure") for g in GRAPHS},
    **{t: Output(PREFIX + t, "data") for t in TABLES},
    **{f"{t}-note": Output(f"{PREFIX}{t}-note", "children") for t in TABLES},
    **{name: Output(PREFIX + name, "children") for name in TEXTS},
    "banner-style": Output(PREFIX + "banner", "style"),
    "tick-interval": Output(PREFIX + "tick", "interval"),
    "tick-disabled": Output(PREFIX + "tick", "disabled"),
}
INPUT_RULES: dict[str, guard.Check] = {
    **controls.input_rules(PREFIX),
    f"{PREFIX}tick.n_intervals": guard.count(),
}


class NotBuilt(Exception):
    """The dumps' gold models are not in ClickHouse (dbt ran without ``dumps: true``)."""


class NoFiles(Exception):
    """The models are built, but no pageviews or mediacounts file is loaded."""


def layout(**_query: Any) -> html.Div:
    def row(*items: html.Div) -> html.Div:
        return html.Div(list(items), className="row")

    def table(name: str, width: str = "49%") -> html.Div:
        return parts.table(PREFIX + name, TABLE_TITLES[name], TABLE_COLUMNS[name], width)

    return html.Div(
        [
            controls.location(PREFIX),
            dcc.Interval(id=PREFIX + "tick", interval=parts.RETRY_MS, disabled=True),
            parts.header(
                PATH, "Page views and media traffic, beside the edits", "readers-freshness"
            ),
            parts.banner(PREFIX + "banner"),
            controls.controls(PREFIX, users=False),
            html.Div(id=PREFIX + "window", className="window"),
            html.H2("Page views"),
            row(parts.panel(PREFIX + "views-hour"), parts.panel(PREFIX + "views-wikis")),
            html.H2("Edits and views"),
            row(parts.panel(PREFIX + "edits-views", "59%"), table("edits-views-wikis", "39%")),
            row(table("read-and-edited", "99%")),
            row(table("views-without-edits"), table("edits-without-views")),
            html.H2("Top pages and media"),
            row(parts.panel(PREFIX + "views-access", "39%"), table("top-pages", "59%")),
            row(parts.panel(PREFIX + "media-types"), parts.panel(PREFIX + "media-wikis")),
            row(table("top-media", "99%")),
        ],
        className="page",
    )


def freshness_text(
    fresh: dict[str, tuple[Any, ...]], edits_newest: dt.datetime | None, now: dt.datetime
) -> str:
    """Each dataset's own freshness: "views up to 2026-12-01 14:00 UTC, 2.0 h behind ·
    media counts up to 2026-11-30, 31.2 h behind · newest edit 12 s ago"."""
    texts = []
    for dataset, name in (("pageviews", "views"), ("mediacounts", "media counts")):
        if dataset not in fresh:
            texts.append(f"no {name} loaded")
            continue
        until = naive_utc(fresh[dataset][3])
        # an hour's views reach the hour's end; a day's media counts, the day's end
        shown = f"{parts.when(until)} UTC" if dataset == "pageviews" else str((until - DAY).date())
        texts.append(f"{name} up to {shown}, {age_text((now - until).total_seconds())} behind")
    if edits_newest:
        texts.append(f"newest edit {age_text((now - edits_newest).total_seconds())} ago")
    return " · ".join(texts)


def load_commands(now: dt.datetime) -> tuple[str, str]:
    """What to run to load the last full day of page views, and recent media counts."""
    today = now.date()
    views = f"wiki-events pageviews --from {today - DAY}T00 --to {today}T00"
    media = f"wiki-events mediacounts --from {today - 3 * DAY} --to {today - DAY}"
    return views, media


def media_days(
    state: ViewState, start: dt.datetime, end: dt.datetime, media_until: dt.datetime
) -> tuple[dt.date, dt.date]:
    """[first, end) days of the media panels: up to the newest loaded day (or the custom
    window's end), the window's days and at least MEDIA_DAYS, at most MAX_RANGE."""
    end_day = media_until.date()
    if state.range == "custom":
        end_day = min(end_day, (end - dt.timedelta(seconds=1)).date() + DAY)
    days = min(max(MEDIA_DAYS, -(-(end - start) // DAY)), MAX_RANGE.days)
    return end_day - days * DAY, end_day


def build_view(gold: Gold, state: ViewState) -> dict[str, Any]:
    """Everything the page shows for a view, keyed by OUTPUTS' names (all but the
    timer's). Raises Unavailable, NotBuilt, NoFiles."""
    ttl = REFRESH[state.refresh] or gold.cache_seconds

    def run(sql: str, p: dict[str, Any] | None = None) -> Table:
        return gold.run(sql, p, ttl=ttl)

    built = set(run(q.READERS_BUILT, {"models": q.READERS_MODELS}).column("name"))
    missing = [m for m in q.READERS_MODELS if m not in built]
    if missing:
        raise NotBuilt(", ".join(missing))
    fresh = {row[0]: row for row in run(q.DUMPS_FRESHNESS).rows if row[1]}
    if "pageviews" not in fresh and "mediacounts" not in fresh:
        raise NoFiles()
    edits = run(q.FRESHNESS)
    edits_newest = naive_utc(edits.rows[0][0]) if edits and edits.rows[0][3] else None
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    views_until = naive_utc(fresh["pageviews"][3]) if "pageviews" in fresh else None
    # windows end where the loaded views end (bounded_window ends at the next minute)
    start, end, range_note = state.bounded_window(
        views_until - dt.timedelta(minutes=1) if views_until else None
    )
    media_until = naive_utc(fresh["mediacounts"][3]) if "mediacounts" in fresh else end
    first_day, end_day = media_days(state, start, end, media_until)
    bucket = "day" if resolution(end - start) == "day" else "hour"
    params = q.window_params(start, end, state.wikis, [])
    media = {"first_day": first_day, "end_day": end_day, "wikis": list(state.wikis)}
    views_day = (end - dt.timedelta(seconds=1)).date()
    media_day = end_day - DAY
    queries: dict[str, tuple[str, dict[str, Any]]] = {
        "views-hour": (q.VIEWS[bucket][0], params),
        "views-wikis": (q.VIEWS[bucket][1], params),
        "views-access": (q.VIEWS_BY_WIKI, params),
        "media-types": (q.MEDIA_TYPES, media),
        "media-wikis": (q.MEDIA_WIKIS, media),
        "edits-views": (q.EDITS_VIEWS_HOUR, params),
        "edits-views-wikis": (q.EDITS_VIEWS_WIKI, params),
        "read-and-edited": (q.READ_AND_EDITED, params),
        "attention": (q.ATTENTION_SPIKES, params),
        "top-pages": (q.TOP_PAGES_DAY, {"day": views_day, "wikis": list(state.wikis)}),
        "top-media": (q.TOP_MEDIA_DAY, {"day": media_day}),
    }
    if state.wikis:
        queries["known"] = (q.READERS_KNOWN_WIKIS, params)
    failed: dict[str, str] = {}

    def run_soft(key: str, sql: str, p: dict[str, Any]) -> Table:
        """The page-level tables read big views (silver's pages joined with the edits):
        one that fails says so in its note, and the rest of the page still shows."""
        if key not in PAGE_LEVEL:
            return run(sql, p)
        try:
            return gold.run(sql, p, ttl=max(ttl, PAGE_LEVEL_TTL))
        except Unavailable as exc:
            failed[key] = f"not available: ClickHouse {exc}"
            return Table([], [])

    with ThreadPoolExecutor(max_workers=PARALLEL_QUERIES) as pool:
        pending = {key: pool.submit(run_soft, key, sql, p) for key, (sql, p) in queries.items()}
        got = {key: future.result() for key, future in pending.items()}
    attention = got.pop("attention")
    for kind in ("views_without_edits", "edits_without_views"):
        name = kind.replace("_", "-")
        got[name] = Table(attention.columns[1:], [r[1:] for r in attention.rows if r[0] == kind])
        if "attention" in failed:
            failed[name] = failed["attention"]

    scope = ", ".join(state.wikis) if state.wikis else "all wikis"
    label = f"{parts.when(start)} – {parts.when(end)} UTC"
    per = {"hour": "per hour", "day": "per day"}[bucket]
    views_cmd, media_cmd = load_commands(now)
    views_note = figures.EMPTY_VIEWS if views_until else f"no page views loaded: run {views_cmd}"
    media_note = (
        "no media traffic these days"
        if "mediacounts" in fresh
        else f"no media counts: run {media_cmd}"
    )
    hosted = "" if not state.wikis else f" (files hosted on {scope})"
    view: dict[str, Any] = {
        "freshness": freshness_text(fresh, edits_newest, now),
        "window": f"{scope} · {label} · media counts {first_day} – {end_day - DAY}",
        "views-hour": _noted(
            figures.views_by_access(
                got["views-hour"], bucket, f"Page views {per}, desktop and mobile", (start, end)
            ),
            views_note,
        ),
        "views-wikis": _noted(
            figures.by_key(
                got["views-wikis"], bucket, "wiki", "views", f"Page views {per}, the busiest wikis"
            ),
            views_note,
        ),
        "views-access": _noted(
            figures.access_bars(got["views-access"], "Page views per wiki in the window"),
            views_note,
        ),
        "media-types": figures.by_key(
            got["media-types"],
            "day",
            "media_type",
            "bytes",
            f"Media bytes served per day, by type{hosted}",
            kind="bars",
            note=media_note,
        ),
        "media-wikis": figures.by_key(
            got["media-wikis"],
            "day",
            "wiki",
            "bytes",
            "Media bytes served per day, by hosting wiki",
            note=media_note,
        ),
        "edits-views": figures.edits_and_views(
            got["edits-views"], "Views (bars) and edits (line) per hour"
        ),
        "top-pages-title": f"Top pages on {views_day}",
        "top-media-title": f"Top media files on {media_day} (all wikis)",
    }
    for t in TABLES:
        rows = parts.records(got[t].columns, [_hour_text(r) for r in got[t].rows])
        view[t] = rows
        view[f"{t}-note"] = failed.get(t) or ("" if rows else TABLE_EMPTY[t])
    if not views_until:
        view["top-pages-note"] = f"no page views loaded: run {views_cmd}"
    if "mediacounts" not in fresh:
        view["top-media-note"] = f"no media counts loaded: run {media_cmd}"

    messages = [range_note] if range_note else []
    known = set(got["known"].column("wiki")) if state.wikis else set()
    unknown = [w for w in state.wikis if w not in known]
    if unknown:
        messages.append(
            f"No page views of {', '.join(unknown)} are loaded: pick one from the list."
        )
    if not views_until:
        messages.append(f"No page views loaded yet: run `{views_cmd}`.")
    elif not any(got["views-hour"].column("total")) and len(unknown) < len(state.wikis or [""]):
        messages.append(f"No page views for this view ({scope} · {label}): pick a longer window.")
    if "mediacounts" not in fresh:
        messages.append(f"No media counts loaded yet: run `{media_cmd}`.")
    view["banner"] = " ".join(messages)
    view["banner-style"] = parts.SHOWN if messages else parts.HIDDEN
    return view


def render(gold: Gold, search: str | None) -> dict[str, Any]:
    """The page's callback: every output for the view in the URL; no data, models not
    built or ClickHouse down are messages, never an exception."""
    state = ViewState.from_search(search)
    every = REFRESH[state.refresh]
    try:
        view = build_view(gold, state)
    except (Unavailable, NotBuilt, NoFiles) as exc:
        views_cmd, media_cmd = load_commands(dt.datetime.now(dt.UTC))
        if isinstance(exc, NotBuilt):
            message = (
                "The page-view and media models are not built (they are opt-in; missing: "
                f"gold.{exc}). Load some files (`{views_cmd}`, `{media_cmd}`), then build "
                "them: `cd wiki_dbt && dbt build --vars '{dumps: true}'`. "
                "This page checks again every few seconds."
            )
        elif isinstance(exc, NoFiles):
            message = (
                f"No page-view or media files loaded yet: run `{views_cmd}` and "
                f"`{media_cmd}` (add `--follow` to keep up). "
                "This page checks again every few seconds."
            )
        else:
            message = f"ClickHouse {exc}. Retrying every {parts.RETRY_MS // 1000} s."
        return parts.failed_view(
            GRAPHS,
            TABLES,
            message,
            {
                "window": "",
                "top-pages-title": TABLE_TITLES["top-pages"],
                "top-media-title": TABLE_TITLES["top-media"],
            },
        )
    return {**view, "tick-interval": (every or 60) * 1000, "tick-disabled": not every}


def register_callbacks(app: Dash, gold: Gold) -> None:
    controls.register(app, gold, PREFIX, q.READERS_WIKI_OPTIONS)

    @app.callback(
        output=OUTPUTS,
        inputs={
            "search": Input(PREFIX + "url", "search"),
            "tick": Input(PREFIX + "tick", "n_intervals"),
        },
    )
    def update(search: str | None, tick: int | None) -> dict[str, Any]:
        return render(gold, search)


def _noted(figure: figures.Figure, note: str) -> figures.Figure:
    """An empty chart's reason replaced by ``note`` (e.g. what to run to load data)."""
    for annotation in figure["layout"].get("annotations", []):
        annotation["text"] = note
    return figure


def _hour_text(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Hours in a table as `2026-12-01 14:00`, dates as `2026-12-01`."""
    return tuple(parts.when(naive_utc(v)) if isinstance(v, dt.datetime) else v for v in row)
