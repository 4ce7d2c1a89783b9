"""Layout pieces every page uses: the header with the navigation and the freshness pills,
the message banner, the filter drawer, and the texts and numbers they show.

A page builds its layout from these functions (ids carry the page's prefix), so the
pages look and behave alike: ``header`` links every page module (``pages.modules()``), a
new page shows up in the navigation by being one.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from dash import dcc, html

from wiki_core.config import Settings
from wiki_core.timefmt import age_text

RETRY_MS = 5_000
# a table cell shows at most this much of a title or user name (titles are <= 255 bytes;
# longer is bad data, and must not stretch the page)
CELL_CHARS = 300
HIDDEN = {"display": "none"}
SHOWN = {"display": "block"}
# the URL's keys a link to another page keeps (the lookup page's own are its own)
SHARED_KEYS = ("wikis", "range", "start", "end", "users", "refresh", "special")


@dataclass(frozen=True)
class Freshness:
    """How old a dataset's newest data may be before its pill turns amber, then red
    (seconds; settings: DASH_FRESHNESS_EDITS / _VIEWS / _MEDIA)."""

    amber: float
    red: float

    def status(self, age: float) -> str:
        return "red" if age >= self.red else "amber" if age >= self.amber else "ok"


def _default(name: str) -> Freshness:
    """A threshold's default, as wiki_core.config.Settings has it."""
    return Freshness(*Settings.__dataclass_fields__[name].default)  # type: ignore[misc]


@dataclass(frozen=True)
class DashConfig:
    """The dashboard's settings (wiki_core.config.Settings, or a test's)."""

    edits: Freshness = field(default_factory=lambda: _default("dash_freshness_edits"))
    views: Freshness = field(default_factory=lambda: _default("dash_freshness_views"))
    media: Freshness = field(default_factory=lambda: _default("dash_freshness_media"))
    # newest event this much older than its ingestion: the data is a replay (or a
    # backfill), and the header says so
    replay_lag: float = 3600


def nav_ids(prefix: str) -> list[str]:
    from . import pages

    return [f"{prefix}nav-{module.__name__.rsplit('.', 1)[1]}" for module in _linked(pages)]


def _linked(pages: Any) -> list[Any]:
    return [m for m in pages.modules() if not m.__name__.endswith("not_found_404")]


def header(active: str, prefix: str, subtitle: str) -> html.Div:
    """The title, a link per page (``active``: the path of the page shown; the view
    callback carries the view's wikis and window into the links) and the page's
    freshness pills (filled by its view callback)."""
    from . import pages

    links = [
        dcc.Link(
            module.NAME,
            id=link_id,
            href=module.PATH,
            className="nav-link active" if active == module.PATH else "nav-link",
        )
        for module, link_id in zip(_linked(pages), nav_ids(prefix), strict=True)
    ]
    return html.Div(
        [
            html.Div([html.H1("wiki-events"), html.Nav(links, className="nav")], className="brand"),
            html.Div(subtitle, className="subtitle"),
            html.Div(id=f"{prefix}freshness", className="freshness"),
        ],
        className="header",
    )


def shared_query(search: str) -> str:
    """The part of a view's query string another page keeps (``SHARED_KEYS``)."""
    from urllib.parse import parse_qsl, urlencode

    kept = [(k, v) for k, v in parse_qsl(search.lstrip("?")) if k in SHARED_KEYS]
    return "?" + urlencode(kept) if kept else ""


def nav_hrefs(prefix: str, search: str) -> list[str]:
    """The navigation's links for a view: each page with the view's shared keys."""
    from . import pages

    return [module.PATH + shared_query(search) for module in _linked(pages)]


def pill(
    label: str, age: float | None, limits: Freshness, detail: str, when: str = ""
) -> html.Span:
    """A freshness pill: ``label`` and how old its newest data is, green, amber or red
    by that age; ``detail`` in its tooltip."""
    if age is None:
        return html.Span(f"{label}: none", className="pill none", title=detail)
    status = limits.status(age)
    words = {"ok": "current", "amber": "late", "red": "stale"}[status]
    text = f"{label} {age_text(age)} old" if not when else f"{label} {when}"
    return html.Span(
        text,
        className=f"pill {status}",
        title=f"{detail} ({words}: amber after {age_text(limits.amber)}, "
        f"red after {age_text(limits.red)})",
    )


def replay_badge(newest: dt.datetime, last_insert: dt.datetime, limit: float) -> html.Span | None:
    """When the newest event is much older than its arrival, the data is a replay of a
    recording (or a backfill): the header says so, with both times."""
    lag = (last_insert - newest).total_seconds()
    if lag < limit:
        return None
    return html.Span(
        "replay",
        className="pill replay",
        title=f"the newest event happened {when(newest)} UTC and arrived {when(last_insert)} "
        f"UTC, {age_text(lag)} later: these events are a replay of a recording (or a "
        "backfill), not the live stream",
    )


def banner(prefix: str) -> html.Div:
    """A message across the page (no data, ClickHouse down, a range cut); hidden when
    there is nothing to say."""
    return html.Div(id=f"{prefix}banner", className="banner", style=HIDDEN)


def drawer(prefix: str, controls: html.Div) -> html.Div:
    """The controls; on a phone behind a "Filters" toggle (a checkbox and CSS's
    ``:has``, no callback)."""
    toggle = dcc.Checklist(
        id=f"{prefix}drawer", options=[{"label": "Filters", "value": "open"}], value=[]
    )
    return html.Div([html.Div(toggle, className="drawer-toggle"), controls], className="drawer")


def age_text_of(delta: dt.timedelta) -> str:
    return age_text(delta.total_seconds())


def when(moment: dt.datetime | dt.date) -> str:
    if isinstance(moment, dt.datetime):
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.isoformat()


def span(first: dt.datetime, last: dt.datetime) -> str:
    """``2026-12-01 13:00–15:00`` (one day) or ``2026-12-01 13:00 – 2026-12-02 02:00``."""
    if first.date() == last.date():
        return f"{when(first)}–{last:%H:%M}"
    return f"{when(first)} – {when(last)}"


def count(value: Any) -> str:
    """A count for people: 1,234 (a float is rounded)."""
    if value is None:
        return ""
    return f"{round(value):,}"


def ratio(value: float | None) -> str:
    """A ratio to three significant figures, never in exponent form and never rounded
    to 0: 0.00184, 0.0312, 1.50, 12.3, 1,234."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def size(value: float) -> str:
    """Bytes with their unit: 812 B, 1.5 kB, 100 GB."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(value) < 1000 or unit == "PB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    return ""  # not reached


def hours(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The hours overlapping [start, end)."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(hour)
        hour += dt.timedelta(hours=1)
    return out


def hour_ranges(hours: list[dt.datetime]) -> str:
    """Hours as ranges: ``12:00–15:00, 2026-12-02 03:00–04:00`` (each range's end is the
    end of its last hour)."""
    ranges: list[list[dt.datetime]] = []
    for hour in sorted(hours):
        if ranges and hour - ranges[-1][1] == dt.timedelta(hours=1):
            ranges[-1][1] = hour
        else:
            ranges.append([hour, hour])
    shown = [span(first, last + dt.timedelta(hours=1)) for first, last in ranges[:4]]
    more = f" and {len(ranges) - 4} more" if len(ranges) > 4 else ""
    return ", ".join(shown) + more
