"""The suite's own harness for Dash's test runner (tests/helpers/browser.py)."""

from __future__ import annotations

import threading

import httpx
import pytest


def test_stopping_a_dash_server_stops_its_thread_and_no_other() -> None:
    """A thread of the suite started while a Dash app is served (the stack scenario's,
    beside the suite) outlives the app's server, which stops."""
    from dash import Dash, html
    from dash.testing.application_runners import ThreadedRunner

    app = Dash(__name__)
    app.layout = html.Div("served")
    done = threading.Event()
    bystander = threading.Thread(target=done.wait, name="bystander", daemon=True)
    try:
        with ThreadedRunner() as runner:
            runner.start(app)
            bystander.start()
            url, server = runner.url, runner.thread
            assert httpx.get(url, timeout=10).status_code == 200
        assert server is not None and not server.is_alive()
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=10)
        assert bystander.is_alive()
    finally:
        done.set()
