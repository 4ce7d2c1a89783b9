"""One headless Chromium and one Dash app for a whole test module (``dash_duo`` starts
both for every test), and what the dashboard's browser tests read from the page: the
traces a chart draws, a table's cells, a panel's note and title.

Chromium is the one the suite's ``pytest_setup_options`` hook configures (headless,
no sandbox, no network); downloads land in ``download_path``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


def chromium_options(*extra: str, window: str = "1500,2200") -> Any:
    """The suite's Chromium (and the benchmark's): headless, no sandbox, no GPU, no
    background network; ``extra`` arguments beside (e.g. a host resolver rule)."""
    import os

    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--window-size={window}",
        *extra,
    ):
        options.add_argument(arg)
    return options


def stop_only_the_servers_thread() -> None:
    """dash.testing's ``ThreadedRunner`` stops its Flask server by raising SystemExit in
    every thread started since the server's (``KillerThread.kill``): the stack scenario's
    threads running beside the suite too (its upgrade watcher died of it in a full run).
    Patched to the one thread that serves; werkzeug's request threads end with their
    connections, as they do in a server that is shut down."""
    import ctypes

    from dash.testing.application_runners import KillerThread

    def kill(self: Any) -> None:
        if self.ident is not None and self.is_alive():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.ident), ctypes.py_object(SystemExit)
            )

    KillerThread.kill = kill  # type: ignore[method-assign]


@contextmanager
def dash_browser(request: pytest.FixtureRequest, app: Any, download: Path) -> Iterator[Any]:
    """``app`` served in a thread, and a browser on it (dash.testing's DashComposite)."""
    from dash.testing.application_runners import ThreadedRunner
    from dash.testing.composite import DashComposite

    config = request.config
    with (
        ThreadedRunner() as runner,
        DashComposite(
            server=runner,
            browser=config.getoption("webdriver"),
            remote=config.getoption("remote"),
            remote_url=config.getoption("remote_url"),
            headless=config.getoption("headless"),
            options=config.hook.pytest_setup_options(),
            download_path=str(download),
            percy_assets_root=config.getoption("percy_assets"),
            percy_finalize=config.getoption("nopercyfinalize"),
            pause=config.getoption("pause"),
        ) as browser,
    ):
        browser.driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_CALLBACKS}
        )
        browser.start_server(app)
        yield browser


# counts the callback requests in flight, and when the last one answered (ms since the
# navigation began): a page has settled when none is in flight for a while
COUNT_CALLBACKS = """
(function () {
  const fetch = window.fetch;
  window.__pending = 0; window.__done = 0; window.__last = 0;
  window.fetch = function (...args) {
    const url = String((args[0] && args[0].url) || args[0]);
    const callback = url.includes('_dash-update-component');
    if (callback) window.__pending++;
    return fetch.apply(this, args).finally(() => {
      if (callback) { window.__pending--; window.__done++; window.__last = performance.now(); }
    });
  };
  // when every panel first shows its answer (ms since the navigation began)
  window.__filled = 0;
  new MutationObserver(() => {
    const panels = document.querySelectorAll('.panel');
    if (!window.__filled && panels.length &&
        document.querySelectorAll('.panel.filled').length === panels.length) {
      window.__filled = performance.now();
    }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ['class']});
})();
"""


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """``check()``'s first truthy answer, polled; an AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.1)


def open_page(browser: Any, path: str, size: tuple[int, int] = (1440, 900)) -> None:
    """Load ``path`` (with its query) in a window of ``size`` and wait until every
    panel's callback has answered (no loading state left, every panel's rows stored)."""
    browser.driver.set_window_size(*size)
    browser.driver.get(browser.server_url + path)
    wait_for(lambda: settled(browser), 60, f"{path} to settle")


def settled(browser: Any, quiet_ms: int = 300) -> float:
    """When every panel shows the answer to the page's view and no callback is in
    flight, nor was for ``quiet_ms``: the last answer's time (ms since the navigation
    began); 0 before that. (A view that fails fills no panel: use ``wait_for``.)"""
    return float(
        browser.driver.execute_script(
            """
            const panels = document.querySelectorAll('.panel');
            if (!panels.length || window.__done === undefined) return 0;
            if (document.querySelectorAll('.panel.filled').length < panels.length) return 0;
            if (window.__pending > 0) return 0;
            if (document.querySelector('[data-dash-is-loading="true"]')) return 0;
            if (performance.now() - window.__last < arguments[0]) return 0;
            return window.__last;
            """,
            quiet_ms,
        )
    )


def traces(browser: Any, graph_id: str) -> list[dict[str, Any]]:
    """The traces a chart draws: name, x, y, labels, values, z (as plotly holds them)."""
    return browser.driver.execute_script(  # type: ignore[no-any-return]
        """
        const plot = document.querySelector('#' + CSS.escape(arguments[0]) + ' .js-plotly-plot');
        if (!plot || !plot.data) return null;
        return plot.data.map(t => ({name: t.name || '', x: t.x || [], y: t.y || [],
                                   labels: t.labels || [], values: t.values || [],
                                   z: t.z || [], customdata: t.customdata || [],
                                   orientation: t.orientation || 'v'}));
        """,
        graph_id,
    )


def cells(browser: Any, table_id: str) -> list[list[str]]:
    """A table's body, row by row, each cell's text as shown."""
    return browser.driver.execute_script(  # type: ignore[no-any-return]
        """
        const rows = document.querySelectorAll('#' + CSS.escape(arguments[0]) + ' tbody tr');
        return [...rows].map(r => [...r.querySelectorAll('td')].map(td => td.textContent));
        """,
        table_id,
    )


def links(browser: Any, table_id: str) -> list[list[str]]:
    """A table's links, row by row (each cell's link, or "")."""
    return browser.driver.execute_script(  # type: ignore[no-any-return]
        """
        const rows = document.querySelectorAll('#' + CSS.escape(arguments[0]) + ' tbody tr');
        return [...rows].map(r => [...r.querySelectorAll('td')].map(td => {
            const a = td.querySelector('a'); return a ? a.href : '';
        }));
        """,
        table_id,
    )


def cold_load(browser: Any, path: str, absolute: bool = False) -> float:
    """Ms from navigating to ``path`` (on the app's server, or an ``absolute`` URL) with
    the browser's cache emptied until every panel shows its answer (the caller empties
    the server's)."""
    browser.driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    browser.driver.get(path if absolute else browser.server_url + path)
    wait_for(lambda: settled(browser), 60, f"{path} to settle")
    return float(browser.driver.execute_script("return window.__filled"))


def text(browser: Any, element_id: str) -> str:
    return browser.driver.execute_script(  # type: ignore[no-any-return]
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
        element_id,
    )


def number(shown: str) -> float:
    """A number as a page writes it: "1,234", "+2,380", "12.3", "43.3%", "≈1,200"."""
    return float(shown.replace(",", "").replace("%", "").replace("≈", "").replace("+", ""))
