"""The wiki-events dashboard: ``wiki-events dash`` locally, ``gunicorn dash_app.app:server``
in production.

A Dash Pages app: each module of ``dash_app/pages`` is a page (the edits page at ``/``),
registered here with ``dash.register_page`` and given its callbacks; the pages share
the header, navigation and freshness pills (``page_parts``), the panels and their
callbacks (``panels``) and the URL-driven controls (``controls``). Every callback
request passes ``guard`` first: malformed ones get a 4xx. Text answers are compressed
by the app (``compress``).
"""

from __future__ import annotations

import base64
import hmac
from typing import Any

import dash
from dash import Dash

from . import guard, pages
from .compress import Compressor
from .page_parts import DashConfig, Freshness
from .queries import Gold


def create_app(gold: Gold | None = None, config: DashConfig | None = None) -> Dash:
    """The app; ``gold`` and ``config`` from the environment (wiki_core.config) unless
    given."""
    if gold is None:
        gold = Gold(_client_factory())
    if config is None:
        config = _config()
    app = Dash(
        __name__,
        title="wiki-events",
        update_title="",
        use_pages=True,
        pages_folder="",
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    for page in pages.modules():
        drawn = page.register_callbacks(app, gold, config)
        dash.register_page(
            page.__name__,
            path=page.PATH,
            name=page.NAME,
            title=page.TITLE,
            order=page.ORDER,
            layout=drawn or page.layout,
        )
    app.layout = dash.page_container
    _preload(app)
    _basic_auth(app)
    guard.install(app, pages.input_rules())
    Compressor().install(app.server)
    return app


# Dash fetches a component's code (the chart's, the picker's) when one is first drawn: for
# a chart, when the first answer arrives. Asked for with the page, they are there then.
ASYNC_CHUNKS = ("dcc/async-graph.js", "dcc/async-dropdown.js")


def _preload(app: Dash) -> None:
    suites = app.get_relative_path("/_dash-component-suites/dash/")
    links = "".join(f'<link rel="preload" as="script" href="{suites}{c}">' for c in ASYNC_CHUNKS)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}" + links, 1)


def _client_factory() -> Any:
    from wiki_core.config import Settings, clickhouse_client

    url = Settings.from_env().dash_clickhouse_url
    return lambda: clickhouse_client(url, connect_timeout=3, send_receive_timeout=30)


def _config() -> DashConfig:
    from wiki_core.config import Settings

    settings = Settings.from_env()
    return DashConfig(
        edits=Freshness(*settings.dash_freshness_edits),
        views=Freshness(*settings.dash_freshness_views),
        media=Freshness(*settings.dash_freshness_media),
    )


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
