"""The wiki-events dashboard: ``wiki-events dash`` locally, ``gunicorn dash_app.app:server``
in production.

One page. The controls write the view into the URL; the URL drives the panels, so a
view can be shared by its address. Every panel reads gold through ``Gold`` (cached,
parameterised); when ClickHouse is unreachable or empty the page says so and keeps
retrying on its own.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dash import Dash, Input, Output, ctx, dash_table, dcc, html, no_update

from wiki_core.timefmt import age_text, naive_utc

from . import figures
from . import queries as q
from .queries import Gold, Table, Unavailable
from .state import RANGES, REFRESH, USER_FILTERS, ViewState

RETRY_MS = 5_000
PARALLEL_QUERIES = 4
# past this, panels read hourly rows and top-N lists come from topK states
LONG_WINDOW = dt.timedelta(hours=24)

GRAPHS = ["per-minute", "per-hour", "top-wikis", "user-kinds", "type-mix", "bytes",
          "drill-minute", "drill-hour", "heatmap"]  # fmt: skip
TABLES = ["top-pages", "top-editors", "spikes"]


def build_view(gold: Gold, state: ViewState) -> dict[str, Any]:
    """Everything the page shows for a view: figures, tables, texts. Raises Unavailable."""
    ttl = REFRESH[state.refresh] or gold.cache_seconds
    fresh = gold.run(q.FRESHNESS, ttl=ttl)
    newest, last_insert, now, total = fresh.rows[0] if fresh else (None, None, None, 0)
    if not total:
        raise NoData()
    newest = naive_utc(newest)
    start, end = state.window(newest)
    params = q.window_params(start, end, state.wikis, state.kinds)
    week_start = min(start, end - RANGES["7d"])
    hour_params = {**params, "start": week_start}

    def run(sql: str, p: dict[str, Any] = params) -> Table:
        return gold.run(sql, p, ttl=ttl)

    scope = ", ".join(state.wikis) if state.wikis else "all wikis"
    label = f"{_fmt(start)} – {_fmt(end)} UTC"
    long = end - start > LONG_WINDOW
    queries: dict[str, tuple[str, dict[str, Any]]] = {
        "per-minute": (q.PER_MINUTE_WIKIS if state.wikis else q.PER_MINUTE, params),
        "per-hour": (q.PER_HOUR_WIKIS if state.wikis else q.PER_HOUR, hour_params),
        # past a day, hourly rows (24x fewer) for the window's shares
        "top-wikis": (q.TOP_WIKIS_HOURLY if long else q.TOP_WIKIS, params),
        "user-kinds": (q.USER_KINDS_HOURLY if long else q.USER_KINDS, params),
        "type-mix": (q.TYPE_MIX, params),
        "bytes": (q.BYTES, params),
        "top-pages": (_pick(state, long, q.TOP_PAGES, q.TOP_PAGES_ALL, q.TOP_PAGES_APPROX), params),
        "top-editors": (
            _pick(state, long, q.TOP_EDITORS, q.TOP_EDITORS_ALL, q.TOP_EDITORS_APPROX),
            params,
        ),
        "spikes": (q.SPIKES, {"end": end, "min_events": 20, "min_ratio": 3.0}),
    }
    # the panels' queries run side by side: the page waits for the slowest, not the sum
    with ThreadPoolExecutor(max_workers=PARALLEL_QUERIES) as pool:
        pending = {key: pool.submit(run, sql, p) for key, (sql, p) in queries.items()}
        top = pending["top-wikis"].result()
        drill = state.wikis[0] if state.wikis else (top.rows[0][0] if top else "")
        drill_params = {"start": start, "end": end, "wiki": drill, "kinds": state.kinds}
        # minutes for at most the window's last day: past it the hour chart tells more
        minute_params = {**drill_params, "start": max(start, end - LONG_WINDOW)}
        pending["drill-minute"] = pool.submit(run, q.DRILL_MINUTE, minute_params)
        pending["drill-hour"] = pool.submit(run, q.DRILL_HOUR,
                                            {**drill_params, "start": week_start})  # fmt: skip
        pending["heatmap"] = pool.submit(run, q.HEATMAP, {"wiki": drill})
        got = {key: future.result() for key, future in pending.items()}
    return {
        "freshness": freshness_text(naive_utc(newest), naive_utc(last_insert), naive_utc(now)),
        "window": f"{scope} · {label} · {USER_LABELS[state.users]}",
        "per-minute": figures.series(got["per-minute"], "minute", "Events per minute"),
        "per-hour": figures.series(got["per-hour"], "hour",
                                   "Events per hour (at least the last 7 days)"),
        "top-wikis": figures.bars(top, "wiki", "Top wikis"),
        "user-kinds": figures.user_kinds(got["user-kinds"], "Bot / anonymous / registered"),
        "type-mix": figures.bars(got["type-mix"], "type", "Event types", horizontal=False),
        "bytes": figures.bytes_flow(got["bytes"], "Bytes added and removed per hour"),
        "drill-title": f"Drill-down: {drill}" if drill else "Drill-down",
        "drill-minute": figures.series(got["drill-minute"], "minute",
                                       f"{drill}: events per minute"
                                       + (" (the last 24 h)" if long else "")),
        "drill-hour": figures.series(got["drill-hour"], "hour", f"{drill}: events per hour"),
        "heatmap": figures.heatmap(got["heatmap"],
                                   f"{drill}: average events by weekday and hour"),
        "top-pages": _ranked(got["top-pages"]),
        "top-editors": _ranked(got["top-editors"]),
        "spikes": _records(got["spikes"]),
    }  # fmt: skip


class NoData(Exception):
    pass


USER_LABELS = {"all": "all editors", "humans": "humans only", "bots": "bots only"}


def freshness_text(newest: dt.datetime | None, last_insert: dt.datetime | None,
                   now: dt.datetime | None) -> str:  # fmt: skip
    if not (newest and now):
        return "no events yet"
    age = (now - newest).total_seconds()
    text = f"newest event {age_text(age)} ago ({_fmt(newest)} UTC)"
    if last_insert:
        text += f" · last insert {age_text((now - last_insert).total_seconds())} ago"
        text += f" · ingestion lag {age_text((last_insert - newest).total_seconds())}"
    return text


def _fmt(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M")


def _pick(state: ViewState, long: bool, exact: str, candidates: str, approx: str) -> str:
    """Top pages / editors: picked wikis, exact over their rows; all wikis, topK
    candidates with exact counts up to a day, the topK bounds past it."""
    if state.wikis:
        return exact
    return approx if long else candidates


def _ranked(table: Table) -> list[dict[str, Any]]:
    """Rows for a top-N table; an approximate count (topK: count is an upper bound,
    count - error a lower one) shows as its bounds."""
    rows = _records(table)
    for row in rows:
        error = row.pop("error", 0)
        if error:
            row["edits"] = f"{row['edits'] - error}–{row['edits']}"
    return rows


def _records(table: Table) -> list[dict[str, Any]]:
    return [
        {
            c: (round(v, 2) if isinstance(v, float) else v)
            for c, v in zip(table.columns, row, strict=True)
        }
        for row in table.rows
    ]


def _panel(graph_id: str, width: str = "49%") -> html.Div:
    return html.Div(dcc.Graph(id=graph_id, config={"displaylogo": False}),
                    className="panel", style={"width": width})  # fmt: skip


def _table(table_id: str, title: str, columns: list[str]) -> html.Div:
    return html.Div(
        [
            html.H4(title),
            dash_table.DataTable(  # type: ignore[attr-defined]
                id=table_id,
                columns=[{"name": c.replace("_", " "), "id": c} for c in columns],
                data=[],
                page_size=10,
                style_cell={"fontFamily": "inherit", "fontSize": 13, "textAlign": "left",
                            "maxWidth": 360, "overflow": "hidden", "textOverflow": "ellipsis"},
                style_header={"fontWeight": "bold"},
                style_table={"overflowX": "auto"},
            ),
        ],
        className="panel",
        style={"width": "32%"},
    )  # fmt: skip


def layout() -> html.Div:
    radio: dict[str, Any] = {"inline": True, "inputStyle": {"marginRight": 4, "marginLeft": 10}}
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            dcc.Interval(id="tick", interval=RETRY_MS, disabled=True),
            html.Div(
                [
                    html.H1("wiki-events"),
                    html.Div("Wikimedia recent changes, live", className="subtitle"),
                    html.Div(id="freshness", className="freshness"),
                ],
                className="header",
            ),
            html.Div(id="banner", className="banner", style={"display": "none"}),
            html.Div(
                [
                    dcc.Dropdown(id="wikis", multi=True, searchable=True, options=[],
                                 placeholder="All wikis (type to pick some)",
                                 style={"minWidth": 320, "flex": 2}),
                    dcc.RadioItems(id="range", options=[*RANGES, "custom"], value="6h", **radio),
                    dcc.Input(id="start", type="text", placeholder="from 2026-01-01T00:00",
                              debounce=True, style={"width": 150}),
                    dcc.Input(id="end", type="text", placeholder="to 2026-01-02T00:00",
                              debounce=True, style={"width": 150}),
                    dcc.RadioItems(id="users", value="all", **radio,
                                   options=[{"label": USER_LABELS[k], "value": k}
                                            for k in USER_FILTERS]),
                    html.Span("auto-refresh", style={"marginLeft": 16}),
                    dcc.RadioItems(id="refresh", options=list(REFRESH), value="off", **radio),
                ],
                className="controls",
            ),
            html.Div(id="window", className="window"),
            html.Div([_panel("per-minute"), _panel("per-hour")], className="row"),
            html.Div([_panel("top-wikis", "32%"), _panel("user-kinds", "32%"),
                      _panel("type-mix", "32%")], className="row"),
            html.Div([_panel("bytes", "99%")], className="row"),
            html.Div(
                [
                    _table("top-pages", "Top pages", ["wiki", "title", "edits", "byte_delta"]),
                    _table("top-editors", "Top editors",
                           ["wiki", "user", "kind", "edits", "bytes_added", "bytes_removed"]),
                    _table("spikes", "Spikes: last hour vs the wiki's usual for this hour",
                           ["wiki", "events", "baseline", "ratio"]),
                ],
                className="row",
            ),
            html.H2(id="drill-title", children="Drill-down"),
            html.Div([_panel("drill-minute", "32%"), _panel("drill-hour", "32%"),
                      _panel("heatmap", "32%")], className="row"),
        ],
        className="page",
    )  # fmt: skip


CONTROLS = ["wikis", "range", "users", "refresh", "start", "end"]


def sync_url(search: str | None, *values: Any) -> tuple[Any, ...]:
    """URL → controls on load (and on back/forward); controls → URL afterwards."""
    if ctx.triggered_id in (None, "url"):
        state = ViewState.from_search(search)
    else:
        state = ViewState.build(*values)
    out = (list(state.wikis), state.range, state.users, state.refresh, state.start, state.end)
    new_search = state.to_search()
    return (new_search if new_search != (search or "") else no_update, *out)


def wiki_options(gold: Gold, search: str | None) -> list[dict[str, str]]:
    """The picker's choices: the wikis in gold, busiest first, and always those picked
    (a dropdown drops a value that is not among its options)."""
    picked = list(ViewState.from_search(search).wikis)
    try:
        names = [w for w, _ in gold.run(q.WIKI_OPTIONS, ttl=60).rows]
    except Unavailable:
        names = []
    return [{"label": w, "value": w} for w in dict.fromkeys([*picked, *names])]


def create_app(gold: Gold | None = None) -> Dash:
    if gold is None:
        gold = Gold(_client_factory())
    app = Dash(__name__, title="wiki-events", update_title="")
    app.layout = layout
    _basic_auth(app)

    @app.callback(
        Output("url", "search"),
        *[Output(c, "value") for c in CONTROLS],
        Output("wikis", "options"),
        Input("url", "search"),
        *[Input(c, "value") for c in CONTROLS],
    )
    def sync(search: str | None, *values: Any) -> tuple[Any, ...]:
        synced = sync_url(search, *values)
        return (*synced, wiki_options(gold, synced[0] if synced[0] is not no_update else search))

    outputs = [Output(g, "figure") for g in GRAPHS] + [Output(t, "data") for t in TABLES]

    @app.callback(
        *outputs,
        Output("freshness", "children"),
        Output("window", "children"),
        Output("drill-title", "children"),
        Output("banner", "children"),
        Output("banner", "style"),
        Output("tick", "interval"),
        Output("tick", "disabled"),
        Input("url", "search"),
        Input("tick", "n_intervals"),
    )
    def render(search: str | None, _tick: int | None) -> tuple[Any, ...]:
        state = ViewState.from_search(search)
        every = REFRESH[state.refresh]
        try:
            view = build_view(gold, state)
        except (Unavailable, NoData) as exc:
            message = (
                "No events in gold yet. Is the loader running? `wiki-events status` shows "
                "each stage. This page checks again every few seconds."
                if isinstance(exc, NoData)
                else f"ClickHouse {exc}. Retrying every {RETRY_MS // 1000} s."
            )
            blank = [figures.series(Table(["minute", "events"], []), "minute", "")] * len(GRAPHS)
            return (*blank, *[[] for _ in TABLES], "", "", "Drill-down", message,
                    {"display": "block"}, RETRY_MS, False)  # fmt: skip
        return (
            *[view[g] for g in GRAPHS], *[view[t] for t in TABLES],
            view["freshness"], view["window"], view["drill-title"], "", {"display": "none"},
            (every or 60) * 1000, not every,
        )  # fmt: skip

    return app


def _client_factory() -> Any:
    from wiki_core.config import Settings, clickhouse_client

    url = Settings.from_env().dash_clickhouse_url
    return lambda: clickhouse_client(url, connect_timeout=3, send_receive_timeout=30)


def _basic_auth(app: Dash) -> None:
    """``DASH_BASIC_AUTH=user:password`` puts the whole app behind HTTP basic auth."""
    from flask import Response, request

    credentials = os.environ.get("DASH_BASIC_AUTH", "")
    if not credentials:
        return
    expected = "Basic " + base64.b64encode(credentials.encode()).decode()

    @app.server.before_request
    def check() -> Response | None:
        if hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            return None
        return Response("authentication required\n", 401,
                        {"WWW-Authenticate": 'Basic realm="wiki-events"'})  # fmt: skip


def __getattr__(name: str) -> Any:
    # `gunicorn dash_app.app:server`: the app is built on first use, not at import
    if name in ("app", "server"):
        built = globals().get("_app") or create_app()
        globals()["_app"] = built
        return built if name == "app" else built.server
    raise AttributeError(name)
