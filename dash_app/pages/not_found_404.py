"""The page for a path no page has (Dash Pages shows the page registered from a module
named ``not_found_404``); it is left out of the navigation."""

from __future__ import annotations

from typing import Any

from dash import Dash, dcc, html

from .. import guard
from .. import page_parts as parts
from ..page_parts import DashConfig
from ..queries import Gold

PATH = "/404"
NAME = "Not found"
TITLE = "wiki-events · not found"
ORDER = 99
INPUT_RULES: dict[str, guard.Check] = {}


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            parts.header(PATH, "not-found-", ""),
            html.P(["No page here. ", dcc.Link("Back to the edits", href="/"), "."]),
        ],
        className="page",
    )


def register_callbacks(app: Dash, gold: Gold, config: DashConfig) -> None:
    """No callbacks: the page is static."""
