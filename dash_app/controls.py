"""The view controls (wikis, window, editors, auto-refresh) and their URL form.

The controls write the view into the URL; the URL drives the panels, so a view can be
shared by its address. A page puts ``controls(prefix)`` and ``location(prefix)`` in its
layout and calls ``register(app, gold, prefix)`` once: the ids are ``prefix`` + the
names below, so two pages' controls never share an id.
"""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, ctx, dcc, html, no_update

from . import guard
from . import queries as q
from .queries import Gold, Unavailable
from .state import RANGES, REFRESH, USER_FILTERS, WIKI_PATTERN, ViewState

NAMES = ["wikis", "range", "users", "refresh", "start", "end"]
USER_LABELS = {"all": "all editors", "humans": "humans only", "bots": "bots only"}


def location(prefix: str = "") -> dcc.Location:
    """The page's view state: its URL's query string."""
    return dcc.Location(id=f"{prefix}url", refresh=False)


def controls(prefix: str = "", users: bool = True) -> html.Div:
    """The controls; ``users=False`` hides the editors filter (a page whose panels do
    not split by editor keeps it in the layout, hidden, so the URL callback is whole)."""
    radio: dict[str, Any] = {"inline": True, "inputStyle": {"marginRight": 4, "marginLeft": 10}}
    return html.Div(
        [
            dcc.Dropdown(
                id=f"{prefix}wikis",
                multi=True,
                searchable=True,
                options=[],
                placeholder="All wikis (type to pick some)",
                style={"minWidth": 320, "flex": 2},
            ),
            dcc.RadioItems(id=f"{prefix}range", options=[*RANGES, "custom"], value="6h", **radio),
            _time_input(f"{prefix}start", "from 2026-01-01T00:00"),
            _time_input(f"{prefix}end", "to 2026-01-02T00:00"),
            dcc.RadioItems(
                id=f"{prefix}users",
                value="all",
                options=[{"label": USER_LABELS[k], "value": k} for k in USER_FILTERS],
                **radio,
                style=None if users else {"display": "none"},
            ),
            html.Span("auto-refresh", style={"marginLeft": 16}),
            dcc.RadioItems(id=f"{prefix}refresh", options=list(REFRESH), value="off", **radio),
        ],
        className="controls",
    )


def _time_input(component_id: str, placeholder: str) -> dcc.Input:
    """A custom range's bound, ISO form, UTC; read when the user is done typing."""
    return dcc.Input(
        id=component_id, type="text", placeholder=placeholder, debounce=True, style={"width": 150}
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
    }


def sync_url(search: str | None, *values: Any, prefix: str = "") -> dict[str, Any]:
    """URL → controls on load (and on back/forward); controls → URL afterwards."""
    if ctx.triggered_id in (None, f"{prefix}url"):
        state = ViewState.from_search(search)
    else:
        state = ViewState.build(*values)
    new_search = state.to_search()
    return {
        "search": new_search if new_search != (search or "") else no_update,
        "wikis": list(state.wikis),
        "range": state.range,
        "users": state.users,
        "refresh": state.refresh,
        "start": state.start,
        "end": state.end,
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


def register(app: Dash, gold: Gold, prefix: str = "", options: str = q.WIKI_OPTIONS) -> None:
    """The callback that keeps the controls and the URL in step; ``options`` lists the
    picker's wikis (name, weight; busiest first)."""

    @app.callback(
        output={
            "search": Output(f"{prefix}url", "search"),
            **{name: Output(f"{prefix}{name}", "value") for name in NAMES},
            "options": Output(f"{prefix}wikis", "options"),
        },
        inputs={
            "search": Input(f"{prefix}url", "search"),
            **{name: Input(f"{prefix}{name}", "value") for name in NAMES},
        },
    )
    def sync(search: str | None, **values: Any) -> dict[str, Any]:
        synced = sync_url(search, *(values[n] for n in NAMES), prefix=prefix)
        current = search if synced["search"] is no_update else synced["search"]
        return {**synced, "options": wiki_options(gold, current, options)}
