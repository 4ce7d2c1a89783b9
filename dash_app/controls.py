"""The view controls (wikis, window, editors, auto-refresh, and the readers' and lookup
pages' own) and their URL form.

The controls write the view into the URL; the URL drives the panels, so a view can be
shared by its address. A page puts ``controls(prefix, ...)`` and ``location(prefix)`` in
its layout and calls ``register(app, gold, prefix)`` once: the ids are ``prefix`` + the
names below, so two pages' controls never share an id. Every page has every control
(those it does not use hidden), so one callback serves them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash import Dash, Input, Output, ctx, dcc, html, no_update

from . import guard
from . import queries as q
from .queries import Gold, Unavailable
from .state import MAX_TITLES, RANGES, REFRESH, USER_FILTERS, WIKI_PATTERN, ViewState

NAMES = ["wikis", "range", "users", "refresh", "start", "end", "special", "titles", "log"]
USER_LABELS = {"all": "all editors", "humans": "humans only", "bots": "bots only"}
HIDE = {"display": "none"}


def location(prefix: str = "") -> dcc.Location:
    """The page's view state: its URL's query string."""
    return dcc.Location(id=f"{prefix}url", refresh=False)


def controls(
    prefix: str = "",
    users: bool = True,
    special: bool = False,
    lookup: bool = False,
) -> html.Div:
    """The controls. ``users`` shows the editors filter, ``special`` the top pages'
    toggle for the main page and Special: pages, ``lookup`` the lookup page's titles and
    log scale, with one wiki instead of several."""
    radio: dict[str, Any] = {"inline": True, "inputStyle": {"marginRight": 4, "marginLeft": 8}}
    return html.Div(
        [
            dcc.Dropdown(
                id=f"{prefix}wikis",
                multi=not lookup,
                searchable=True,
                options=[],
                placeholder="Pick a wiki" if lookup else "All wikis (type to pick some)",
                className="wikis",
            ),
            dcc.Input(
                id=f"{prefix}titles",
                type="text",
                debounce=True,
                placeholder=f"Page titles, | between (up to {MAX_TITLES}): Cat|Dog",
                className="titles",
                style=None if lookup else HIDE,
            ),
            dcc.RadioItems(id=f"{prefix}range", options=[*RANGES, "custom"], value="6h", **radio),
            _time_input(f"{prefix}start", "from 2026-01-01T00:00"),
            _time_input(f"{prefix}end", "to 2026-01-02T00:00"),
            dcc.RadioItems(
                id=f"{prefix}users",
                value="all",
                options=[{"label": USER_LABELS[k], "value": k} for k in USER_FILTERS],
                **radio,
                style=None if users else HIDE,
            ),
            dcc.Checklist(
                id=f"{prefix}special",
                options=[{"label": "keep the main page and Special: pages", "value": "1"}],
                value=[],
                style=None if special else HIDE,
            ),
            dcc.Checklist(
                id=f"{prefix}log",
                options=[{"label": "log scale", "value": "1"}],
                value=[],
                style=None if lookup else HIDE,
            ),
            html.Span(
                [
                    html.Span("auto-refresh"),
                    dcc.RadioItems(
                        id=f"{prefix}refresh", options=list(REFRESH), value="off", **radio
                    ),
                ],
                className="refresh",
            ),
        ],
        className="controls",
    )


def _time_input(component_id: str, placeholder: str) -> dcc.Input:
    """A custom range's bound, ISO form, UTC; read when the user is done typing."""
    return dcc.Input(
        id=component_id, type="text", placeholder=placeholder, debounce=True, className="time"
    )


def input_rules(prefix: str = "") -> dict[str, guard.Check]:
    """What a callback request may carry for these controls (see guard)."""
    return {
        f"{prefix}url.search": guard.text(10_000),
        f"{prefix}wikis.value": guard.texts(),
        f"{prefix}range.value": guard.choice(),
        f"{prefix}users.value": guard.choice(),
        f"{prefix}refresh.value": guard.choice(),
        f"{prefix}start.value": guard.choice(),
        f"{prefix}end.value": guard.choice(),
        f"{prefix}special.value": guard.texts(items=2, limit=2),
        f"{prefix}titles.value": guard.text(MAX_TITLES * 300),
        f"{prefix}log.value": guard.texts(items=2, limit=2),
    }


def sync_url(
    search: str | None,
    *values: Any,
    prefix: str = "",
    single: bool = False,
    from_url: bool = False,
) -> dict[str, Any]:
    """URL → controls on load (``from_url``) and on back/forward; controls → URL
    afterwards."""
    if from_url or ctx.triggered_id in (None, f"{prefix}url"):
        state = ViewState.from_search(search)
    else:
        given = dict(zip(NAMES, values, strict=True))
        if isinstance(given["wikis"], str):  # a single-wiki picker
            given["wikis"] = [given["wikis"]]
        state = ViewState.build(**given)
    new_search = state.to_search()
    return {
        "search": new_search if new_search != (search or "") else no_update,
        "wikis": (state.wikis[0] if state.wikis else None) if single else list(state.wikis),
        "range": state.range,
        "users": state.users,
        "refresh": state.refresh,
        "start": state.start,
        "end": state.end,
        "special": ["1"] if state.special else [],
        "titles": "|".join(state.titles),
        "log": ["1"] if state.log else [],
    }


def wiki_options(gold: Gold, search: str | None, sql: str = q.WIKI_OPTIONS) -> list[dict[str, str]]:
    """The picker's choices: the wikis in gold, busiest first, and always those picked
    (a dropdown drops a value that is not among its options). Only names a wiki can
    have are listed (WIKI_PATTERN), so bad data cannot make the picker unusable."""
    picked = list(ViewState.from_search(search).wikis)
    try:
        names = [w for w, _ in gold.run(sql, {"pattern": WIKI_PATTERN}, ttl=60).rows]
    except Unavailable:
        names = []
    return [{"label": w, "value": w} for w in dict.fromkeys([*picked, *names])]


def register(
    app: Dash, gold: Gold, prefix: str = "", options: str = q.WIKI_OPTIONS, single: bool = False
) -> tuple[dict[str, Any], Callable[[str], dict[str, Any]]]:
    """The callback that keeps the controls and the URL in step; ``options`` lists the
    picker's wikis (name, weight; busiest first); ``single``: one wiki, not several.
    Returns its outputs and its answer for a URL's query: the page is drawn with it
    (``panels.drawn``), so the callback runs on changes only."""
    outputs = {
        "search": Output(f"{prefix}url", "search"),
        **{name: Output(f"{prefix}{name}", "value") for name in NAMES},
        "options": Output(f"{prefix}wikis", "options"),
    }

    @app.callback(
        output=outputs,
        inputs={
            "search": Input(f"{prefix}url", "search"),
            **{name: Input(f"{prefix}{name}", "value") for name in NAMES},
        },
        prevent_initial_call=True,
    )
    def sync(search: str | None, **values: Any) -> dict[str, Any]:
        synced = sync_url(search, *(values[n] for n in NAMES), prefix=prefix, single=single)
        current = search if synced["search"] is no_update else synced["search"]
        return {**synced, "options": wiki_options(gold, current, options)}

    def first(search: str) -> dict[str, Any]:
        synced = sync_url(search, prefix=prefix, single=single, from_url=True)
        return {**synced, "search": no_update, "options": wiki_options(gold, search, options)}

    return outputs, first
