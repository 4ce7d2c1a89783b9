"""The dashboard as an attacker meets it: real HTTP to the production entry point
(``gunicorn dash_app.app:server``) over gold filled like test_dash_app's.

Crafted callback requests get a 4xx and leave no traceback in the log; a ten-year range
gets a bounded answer; many distinct views do not grow the worker without bound; the
answers are compressed by the app.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from dash_app.pages import edits

from .helpers.paths import ROOT
from .helpers.ports import free_port
from .helpers.warehouse import Warehouse


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    render: dict[str, Any]  # the edits page's view callback, as /_dash-dependencies lists it
    rows: list[dict[str, Any]]  # the edits page's row callbacks (the view store in)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def worker_rss(self) -> int:
        (worker,) = psutil.Process(self.proc.pid).children()
        return int(worker.memory_info().rss)

    def body(self, search: str | None) -> dict[str, Any]:
        """The request the browser sends to resolve the view in ``search``."""
        values = {"url.search": search, "tick.n_intervals": None}
        return _request(self.render, values, "url.search")

    def page(self, search: str, **kwargs: Any) -> list[httpx.Response]:
        """The page's callbacks as the browser asks them: the view, then every row with
        the view it answered."""
        reply = self.post(self.body(search), **kwargs)
        assert reply.status_code == 200, reply.text[:300]
        store = reply.json()["response"]["view"]["data"]
        rows = [
            self.post(_request(r, {"view.data": store}, "view.data"), **kwargs) for r in self.rows
        ]
        return [reply, *rows]

    def post(self, body: Any, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/_dash-update-component", json=body, timeout=60, **kwargs)


def _request(spec: dict[str, Any], values: dict[str, Any], changed: str) -> dict[str, Any]:
    names = spec["output"][2:-2].split("...")
    return {
        "output": spec["output"],
        "outputs": [dict(zip(("id", "property"), n.rsplit(".", 1), strict=True)) for n in names],
        "inputs": [{**i, "value": values[f"{i['id']}.{i['property']}"]} for i in spec["inputs"]],
        "changedPropIds": [changed],
        "state": [],
    }


@pytest.fixture(scope="module")
def served(dash_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "dash.log"
    env = {k: v for k, v in os.environ.items() if k != "DASH_BASIC_AUTH"}
    env["DASH_CLICKHOUSE_URL"] = dash_warehouse.clickhouse_url
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        "1",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        "--error-logfile",
        "-",
        "--access-logfile",
        "-",
        "dash_app.app:server",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        deps = httpx.get(url + "/_dash-dependencies", timeout=10).json()
        render = next(d for d in deps if "..view.data..." in d["output"])
        rows = [d for d in deps if [i["id"] for i in d["inputs"]] == ["view"]]
        assert len(rows) == len(edits.ROWS), [d["output"][:60] for d in rows]
        yield Served(url, proc, log, render, rows)
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_well_formed_request_renders_the_view(served: Served) -> None:
    view, *rows = served.page("?wikis=enwiki")
    assert "enwiki ·" in view.text
    assert all(r.status_code == 200 for r in rows)
    assert any("enwiki: events per minute" in r.text for r in rows)


def test_answers_are_compressed_by_the_app(served: Served) -> None:
    """plotly.js (its cartesian bundle, 1.5 MB: the full one, 4.8 MB, is not loaded),
    the other scripts and the callbacks' answers are sent compressed (brotli, else
    gzip) when the browser asks, by the app itself."""
    index = httpx.get(served.url + "/", timeout=10).text
    scripts = re.findall(r'<script src="([^"]+)"', index)
    plotly = next(s for s in scripts if "plotly-cartesian" in s)
    assert not any("package_data/plotly.min.js" in s for s in scripts)
    sizes = {}
    for path in scripts:
        plain = httpx.get(served.url + path, headers={"Accept-Encoding": "identity"}, timeout=30)
        packed = httpx.get(served.url + path, headers={"Accept-Encoding": "br, gzip"}, timeout=30)
        assert plain.status_code == packed.status_code == 200, path
        assert packed.content == plain.content  # httpx decodes: the same bytes
        encoding = packed.headers.get("Content-Encoding")
        if len(plain.content) > 4096:
            assert encoding == "br", path
            sizes[path] = (len(plain.content), int(packed.headers["Content-Length"]))
    plain, packed = sizes[plotly]
    assert plain > 1_000_000 and packed < plain / 3, sizes[plotly]
    answers = served.page("?wikis=enwiki", headers={"Accept-Encoding": "gzip"})
    big = [r for r in answers if len(r.content) > 4096]
    assert big and all(r.headers.get("Content-Encoding") == "gzip" for r in big)


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, **changes}


def _input(body: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    inputs = [
        {**i, "value": value} if f"{i['id']}.{i['property']}" == name else i for i in body["inputs"]
    ]
    return {**body, "inputs": inputs}


# name -> a function of a well-formed body giving the request's (content, content type)
CRAFTED = {
    "not JSON": lambda b: (b"{not json", "application/json"),
    "a JSON array": lambda b: (b"[1, 2, 3]", "application/json"),
    "no field at all": lambda b: (b"{}", "application/json"),
    "an unknown output": lambda b: _with(b, output="banner.children"),
    "an output that is a number": lambda b: _with(b, output=12),
    "a clientside callback's output": lambda b: _with(b, output="_pages_dummy.children"),
    "no inputs": lambda b: {k: v for k, v in b.items() if k != "inputs"},
    "inputs that are a string": lambda b: _with(b, inputs="url.search"),
    "an input of another component": lambda b: _with(
        b, inputs=[{"id": "range", "property": "value", "value": "1h"}, b["inputs"][1]]
    ),
    "a search that is a number": lambda b: _input(b, "url.search", 12345),
    "a search that is an object": lambda b: _input(b, "url.search", {"$ne": 1}),
    "a search of 100,000 characters": lambda b: _input(b, "url.search", "?" + "a" * 100_000),
    "a tick that is text": lambda b: _input(b, "tick.n_intervals", "lots"),
    "a negative tick": lambda b: _input(b, "tick.n_intervals", -1),
    "no outputs": lambda b: {k: v for k, v in b.items() if k != "outputs"},
    "outputs of another callback": lambda b: _with(
        b, outputs=[{"id": "wikis", "property": "options"}]
    ),
    "changed inputs that are not inputs": lambda b: _with(b, changedPropIds=["x.y", 3]),
    "changed inputs that are lists": lambda b: _with(b, changedPropIds=[["url.search"]]),
    "JSON nested 100,000 deep": lambda b: (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "a 2 MB body": lambda b: _input(b, "url.search", "a" * 2_000_000),
    "JSON sent as text": lambda b: (json.dumps(b).encode(), "text/plain"),
}


@pytest.mark.parametrize("crafted", CRAFTED.values(), ids=CRAFTED.keys())
def test_a_crafted_callback_request_gets_a_4xx_and_no_traceback(
    served: Served, crafted: Any
) -> None:
    made = crafted(served.body("?wikis=enwiki"))
    content, kind = (
        made if isinstance(made, tuple) else (json.dumps(made).encode(), "application/json")
    )
    before = len(served.log_text())
    reply = httpx.post(
        f"{served.url}/_dash-update-component",
        content=content,
        headers={"Content-Type": kind},
        timeout=60,
    )
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:500])
    time.sleep(0.2)  # gunicorn writes its access line after the answer
    logged = served.log_text()[before:]
    assert "Traceback" not in logged and " 500 " not in logged, logged


def test_the_router_refuses_a_pathname_that_is_not_text(served: Served) -> None:
    deps = httpx.get(f"{served.url}/_dash-dependencies", timeout=10).json()
    router = next(d for d in deps if "_pages_content.children" in d["output"])
    names = router["output"][2:-2].split("...")
    body = {
        "output": router["output"],
        "outputs": [dict(zip(("id", "property"), n.rsplit(".", 1), strict=True)) for n in names],
        "inputs": [{**i, "value": ["/"]} for i in router["inputs"]],
        "changedPropIds": ["_pages_location.pathname"],
    }
    before = len(served.log_text())
    assert served.post(body).status_code == 400
    body["inputs"] = [
        {**i, "value": "/" if "pathname" in i["property"] else ""} for i in router["inputs"]
    ]
    assert served.post(body).status_code == 200  # the same, well formed: the page
    assert "Traceback" not in served.log_text()[before:]


def test_a_ten_year_range_answers_a_bounded_view(served: Served) -> None:
    view, *rows = served.page("?range=custom&start=2016-01-01T00:00&end=2026-12-31T00:00")
    assert "longer than 31 days" in view.text
    total = sum(len(r.content) for r in [view, *rows])
    assert total < 1_000_000, total  # was 135 MB


def test_many_distinct_views_do_not_grow_the_worker_without_bound(served: Served) -> None:
    """Each view a ten-year custom range ending an hour apart: clipped to 31 days, each
    distinct. Before the bounds, one such URL kept ~650 MB in the process."""

    now = dt.datetime.now(dt.UTC)

    def view(i: int) -> list[httpx.Response]:
        end = now - dt.timedelta(hours=i)
        return served.page(f"?range=custom&start=2016-01-01T00:00&end={end:%Y-%m-%dT%H:%M}")

    for i in range(5):  # warm up: imports, the connection, the first cache entries
        view(i)
    before = served.worker_rss()
    sizes = []
    # 25 views (60 took a minute): one unbounded view kept ~650 MB; bounded, the 25
    # grew the worker by 1.6 MB when this was written
    for i in range(5, 30):
        replies = view(i)
        assert "longer than 31 days" in replies[0].text
        sizes.append(sum(len(r.content) for r in replies))
    grown = served.worker_rss() - before
    print(f"25 distinct views: worker RSS +{grown / 2**20:.1f} MB, answers <= {max(sizes)} B")
    assert max(sizes) < 1_000_000
    assert grown < 100 * 2**20, grown


def test_the_page_html_escapes_a_hostile_url(served: Served) -> None:
    # Dash Pages writes the request URL into the page's meta tags
    reply = httpx.get(f"{served.url}/?x=%22%3E%3Cscript%3Ealert(1)%3C/script%3E", timeout=10)
    assert reply.status_code == 200
    assert "<script>alert(1)" not in reply.text and "&lt;script&gt;alert(1)" in reply.text
