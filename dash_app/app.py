"""The wiki-events dashboard: ``wiki-events dash`` locally, ``gunicorn dash_app.app:server``
in production.

A Dash Pages app: each module of ``dash_app/pages`` is a page (the edits page at ``/``),
registered here with ``dash.register_page`` and given its callbacks; the pages share
the header, navigation and freshness line (``page_parts``) and the URL-driven controls
(``controls``). Every callback request passes ``guard`` first: malformed ones get a 4xx.
"""

from __future__ import annotations

import base64
import hmac
from typing import Any

import dash
from dash import Dash

from . import guard, pages
from .queries import Gold


def create_app(gold: Gold | None = None) -> Dash:
    if gold is None:
        gold = Gold(_client_factory())
    app = Dash(__name__, title="wiki-events", update_title="", use_pages=True, pages_folder="")
    for page in pages.modules():
        dash.register_page(
            page.__name__,
            path=page.PATH,
            name=page.NAME,
            title=page.TITLE,
            order=page.ORDER,
            layout=page.layout,
        )
        page.register_callbacks(app, gold)
    app.layout = dash.page_container
    _basic_auth(app)
    guard.install(app, pages.input_rules())
    return app


def _client_factory() -> Any:
    from wiki_core.config import Settings, clickhouse_client

    url = Settings.from_env().dash_clickhouse_url
    return lambda: clickhouse_client(url, connect_timeout=3, send_receive_timeout=30)


def _basic_auth(app: Dash) -> None:
    """``DASH_BASIC_AUTH=user:password`` puts the whole app behind HTTP basic auth."""
    from flask import Response, request

    from wiki_core.config import Settings

    credentials = Settings.from_env().dash_basic_auth
    if not credentials:
        return
    expected = "Basic " + base64.b64encode(credentials.encode()).decode()

    @app.server.before_request
    def check() -> Response | None:
        if hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            return None
        return Response(
            "authentication required\n", 401, {"WWW-Authenticate": 'Basic realm="wiki-events"'}
        )


def __getattr__(name: str) -> Any:
    # `gunicorn dash_app.app:server`: the app is built on first use, not at import
    if name in ("app", "server"):
        built = globals().get("_app") or create_app()
        globals()["_app"] = built
        return built if name == "app" else built.server
    raise AttributeError(name)
