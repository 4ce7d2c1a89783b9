"""The readers page (``/readers``) against an embedded ClickHouse holding both halves:
live edits (the yearfunla recording, moved into the last loaded hour, plus a few edits
of a heavily read and a hardly read page) and dump files (three hours of pageviews and
two days of mediacounts made by ``tests/helpers/dumps_files.py``, served by the local dumps site,
loaded by the real loader), with the dbt models built with ``dumps: true``.

Every number checked is computed in Python from the same generated files and events.
The page without the models, and without files, is checked too: it says what to run;
so is what each panel does where its source holds less than the window asks for (the
retentions are read from the tables' TTLs; here they are set shorter in the view).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import pytest

from dash_app import panels, sites
from dash_app import queries as q
from dash_app.app import create_app
from dash_app.page_parts import ratio
from dash_app.pages import edits as edits_page
from dash_app.pages import readers
from dash_app.pages.readers import build_view, render
from dash_app.panels import Cell
from dash_app.queries import Gold, Unavailable
from dash_app.state import ViewState
from dumps import schema
from dumps.domains import BY_CODE, media_wiki
from dumps.load import MEDIACOUNTS, PAGEVIEWS, PROJECTVIEWS, Loader, Options
from wiki_core.config import clickhouse_client

from .helpers.browser import cells, dash_browser, number, open_page, traces
from .helpers.callbacks import outputs_of
from .helpers.clickhouse import READONLY_USER, ClickHouseProcess
from .helpers.dumps_files import MediaStats, write_mediacounts_day, write_pageviews_hour
from .helpers.dumps_site import DumpsSite, Faults, ServerThread
from .helpers.expected import Expected, event_time, shifted
from .helpers.paths import RAW, ROOT
from .helpers.ports import free_port
from .helpers.warehouse import Warehouse

ARTIFACTS = ROOT / "test-artifacts"
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)
UNLOADED_WIKI = "xhwiki"  # a wiki no generated file holds
# an enwiki page edited twice in the last loaded hour, whose title is markup
HOSTILE_TITLE = '<img src=x onerror="document.title=1">Talk:<script>alert(1)</script>'
KINDS = ["bot", "anonymous", "registered"]


@dataclass
class Readers:
    house: Warehouse
    hours: list[dt.datetime]  # the hours the views happened (naive UTC)
    views: dict[tuple[dt.datetime, str, str], int]  # (hour, wiki, access) -> views
    page_views: dict[tuple[dt.datetime, str, str], int]  # (hour, wiki, title with spaces)
    edits: Counter[tuple[dt.datetime, str]]  # (hour, wiki) -> edits and creations
    media: dict[dt.date, MediaStats]
    heavy: tuple[dt.datetime, str, str]  # a page heavily read, and edited 3 times
    quiet: tuple[dt.datetime, str, str]  # a page hardly read, and edited 3 times
    before_loading: dict[str, Any]  # the page with the models built, no file loaded
    drill_before_loading: edits_page.DrillViews  # the edits page's panel, then
    page_edits: Counter[tuple[str, str]]  # (wiki, title) -> edits, all in the last hour

    def gold(self) -> Gold:
        return Gold(lambda: clickhouse_client(self.house.clickhouse_url), cache_seconds=10)

    def views_per_hour(self) -> dict[dt.datetime, int]:
        out: Counter[dt.datetime] = Counter()
        for (hour, _, _), v in self.views.items():
            out[hour] += v
        return dict(out)


def _edit(n: int, wiki: str, title: str, when: dt.datetime) -> str:
    meta = {"id": f"readers-{n}", "dt": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "domain": "x.org"}
    return json.dumps(
        dict(
            meta=meta,
            type="edit",
            namespace=0,
            title=title,
            user=f"Reader{n % 2}",
            bot=False,
            minor=False,
            length={"old": 5, "new": 9},
            revision={"old": n, "new": n + 1},
            wiki=wiki,
        )
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Readers]:
    base = tmp_path_factory.mktemp("readers")
    house = Warehouse.start(base)
    client = clickhouse_client(house.clickhouse_url, send_receive_timeout=300)
    schema.migrate(client)
    # 1,000 top-page candidates: the small hours fit, the top pages are exact
    house.dbt(
        "build",
        "--vars",
        "{dumps: true, top_page_candidates: 1000}",
        "--exclude",
        "test_type:singular",
    )
    gold = Gold(lambda: clickhouse_client(house.clickhouse_url), cache_seconds=0)
    before = render(gold, "")
    drill_before = edits_page.drill_views(
        gold, "enwiki", dt.datetime.now(dt.UTC).replace(tzinfo=None), KINDS
    )

    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    file_hours = [now - 3 * H, now - 2 * H, now - H]  # views of the hour before each
    days = [(now - 3 * D).date(), (now - 2 * D).date()]
    root = base / "other"
    root.mkdir()
    files = {
        h: write_pageviews_hour(root, h, lines=3000, seed=70 + i) for i, h in enumerate(file_hours)
    }
    media = {d: write_mediacounts_day(root, d, files=300, seed=80 + i) for i, d in enumerate(days)}
    with ServerThread(DumpsSite(root, Faults()), free_port()) as site:
        loader = Loader(client, Options(base_url=site.url, backoff=0.05))
        got = loader.run([PAGEVIEWS, PROJECTVIEWS], file_hours[0], file_hours[-1] + H)
        assert got == {"loaded": 6}, got
        start = dt.datetime.combine(days[0], dt.time(), dt.UTC)
        assert loader.run([MEDIACOUNTS], start, start + 2 * D) == {"loaded": 2}

    views: dict[tuple[dt.datetime, str, str], int] = defaultdict(int)
    page_views: dict[tuple[dt.datetime, str, str], int] = defaultdict(int)
    for file_hour, stats in files.items():
        hour = (file_hour - H).replace(tzinfo=None)
        for code, v in stats.views_by_code.items():
            views[(hour, BY_CODE[code].wiki, BY_CODE[code].access)] += v
        for (code, title), v in stats.views_by_page.items():
            page_views[(hour, BY_CODE[code].wiki, title.replace("_", " "))] += v

    # the live edits: the recording moved to minutes 20-22 of the last loaded hour, and
    # three edits each of that hour's most and least viewed enwiki page
    last = (file_hours[-1] - H).replace(tzinfo=None)
    events = [json.loads(line) for line in RAW.read_bytes().splitlines() if line.strip()]
    newest = max(event_time(e["meta"]["dt"]) for e in events)
    moved = shifted(RAW, last.replace(minute=22, tzinfo=dt.UTC) - newest, "readers")
    in_last = {k: v for k, v in page_views.items() if k[0] == last and k[1] == "enwiki"}
    heavy = max(in_last, key=lambda k: (in_last[k], k))
    quiet = min(in_last, key=lambda k: (in_last[k], k))
    # ... and of a page of a wiki the files do not hold (as when loaded with --wiki)
    unloaded = (last, UNLOADED_WIKI, "Ikhaya")
    crafted = [
        _edit(n, page[1], page[2], last.replace(minute=5 + 6 * n, tzinfo=dt.UTC))
        for n, page in enumerate([heavy, quiet, unloaded] * 3)
    ] + [_edit(n, "enwiki", HOSTILE_TITLE, last.replace(minute=n, tzinfo=dt.UTC)) for n in (9, 10)]
    batch = moved + ("\n".join(crafted) + "\n").encode()
    house.load_bytes([batch])
    want = Expected()
    for line in batch.splitlines():
        want.add(json.loads(line))
    edits: Counter[tuple[dt.datetime, str]] = Counter()
    for (wiki, _), n in want.page_edits.items():
        edits[(last, wiki)] += n
    client.close()
    try:
        yield Readers(
            house,
            sorted({k[0] for k in views}),
            dict(views),
            dict(page_views),
            edits,
            media,
            heavy,
            quiet,
            before,
            drill_before,
            want.page_edits,
        )
    finally:
        if house.server.proc is not None:
            house.server.stop()


GRAPHS = [p.key for p in readers.PANELS if p.kind == "graph"]
TABLES = [p.key for p in readers.PANELS if p.kind == "table"]


def _text(cell: Any) -> Any:
    return cell.text if isinstance(cell, Cell) else cell


def _rows(result: panels.Result) -> list[list[Any]]:
    """A table's rows as values (links' text)."""
    return [[_text(c) for c in row] for row in result.rows or []]


def _figure(view: dict[str, Any], key: str) -> dict[str, Any]:
    figure = view[key].figure
    assert figure is not None, key
    return figure  # type: ignore[no-any-return]


# -- callbacks, called directly ---------------------------------------------------------


def test_every_panel_draws_and_the_totals_per_hour_match_the_files(data: Readers) -> None:
    view = build_view(data.gold(), ViewState())
    for key in GRAPHS:
        go.Figure(_figure(view, key))  # plotly's own validation
        assert any(t.get("y") or t.get("x") for t in _figure(view, key)["data"]), key
    for table in TABLES:
        assert view[table].rows, table
    assert view["banner"] == ""
    # the window (6 h) ends where the views end: the three hours, desktop and mobile
    by_access = {
        t["name"]: dict(zip(t["x"], t["y"], strict=True))
        for t in _figure(view, "views-hour")["data"]
    }
    other = "unknown access (Wikifunctions)"
    for hour, total in data.views_per_hour().items():
        desktop = sum(v for (h, _, a), v in data.views.items() if h == hour and a == "desktop")
        assert by_access["desktop"][hour] == desktop
        assert sum(by_access[a][hour] for a in ("desktop", "mobile", other)) == total
    assert max(by_access["desktop"]) == data.hours[-1]
    pills = [pill.children for pill in view["freshness"]]
    assert pills[0].startswith("views up to") and pills[1].startswith("media up to")
    assert pills[2].startswith("newest edit")
    # the window's hours before the first file: said, not drawn as zeros
    assert view["views-hour"].note.startswith("not loaded: ")


def test_edits_per_1000_views_match_the_files_and_the_events(data: Readers) -> None:
    view = build_view(data.gold(), ViewState())
    per_wiki: Counter[str] = Counter()
    for (_, wiki, _), v in data.views.items():
        per_wiki[wiki] += v
    rows = _rows(view["edits-views-wikis"])
    assert [r[0] for r in rows] == sorted(per_wiki, key=lambda w: (-per_wiki[w], w))[:15]
    for wiki, edits, views, per_1000 in rows:
        want = sum(n for (_, w), n in data.edits.items() if w == wiki)
        assert (edits, views) == (want, per_wiki[wiki]), wiki
        assert per_1000 == pytest.approx(want * 1000 / per_wiki[wiki])  # kept whole
    assert any(row[1] for row in rows)
    # the hourly charts: views per hour above, the edits of every wiki in that hour below
    traces_ = {
        t["name"]: dict(zip(t["x"], t["y"], strict=True))
        for t in _figure(view, "edits-views")["data"]
    }
    last = data.hours[-1]
    assert traces_["views"][last] == data.views_per_hour()[last]
    assert traces_["edits"][last] == sum(n for (h, _), n in data.edits.items() if h == last)


def test_the_joined_tables_name_the_read_and_edited_and_the_unread_pages(data: Readers) -> None:
    view = build_view(data.gold(), ViewState())
    hour, wiki, title = data.heavy
    both = [(r[1], r[2], r[3], r[4]) for r in _rows(view["read-and-edited"])]
    assert both == [(wiki, title, data.page_views[data.heavy], 3)]
    # (all wikis: the recording's most edited Wikidata items, not in the files, come first)
    enwiki = build_view(data.gold(), ViewState.build(["enwiki"]))
    unread = [(r[1], r[2], r[3]) for r in _rows(enwiki["edits-without-views"])]
    assert (data.quiet[1], data.quiet[2], 3) in unread
    # a wiki without loaded views (the files hold only some wikis, as with --wiki) has
    # unknown views, not none: neither the mart nor the page lists its edited pages
    mart = data.gold().run(
        "SELECT DISTINCT wiki FROM gold.page_attention_spikes_hour "
        "WHERE kind = 'edits_without_views' LIMIT {limit:UInt32}"
    )
    loaded = {w for _, w, _ in data.views}
    assert UNLOADED_WIKI not in loaded and UNLOADED_WIKI not in mart.column("wiki")
    assert "enwiki" in mart.column("wiki")
    drill = data.gold().run(
        "SELECT DISTINCT wiki, views_loaded FROM gold.edited_pages_views_hour "
        "WHERE wiki IN ('enwiki', {w:String}) LIMIT {limit:UInt32}",
        {"w": UNLOADED_WIKI},
    )
    assert set(drill.rows) == {("enwiki", True), (UNLOADED_WIKI, False)}
    both_wikis = build_view(data.gold(), ViewState.build([UNLOADED_WIKI, "enwiki"], "24h"))
    shown = [(r[1], r[2]) for r in _rows(both_wikis["edits-without-views"])]
    assert data.quiet[1:] in shown and all(w == "enwiki" for w, _ in shown)
    for row in _rows(view["views-without-edits"]):
        assert row[3] >= 500 and row[2] not in (data.heavy[2], data.quiet[2])


def _left_out(title: str) -> bool:
    return title.replace(" ", "_") in sites.MAIN_PAGES_DUMPS or bool(
        re.match(sites.SPECIAL_PATTERN, title.replace(" ", "_"))
    )


def test_top_pages_and_media_and_media_bytes_match_the_files(data: Readers) -> None:
    view = build_view(data.gold(), ViewState.build(["enwiki"], "24h"))
    day = data.hours[-1].date()
    assert view["top-pages"].title.startswith(f"Top pages on {day}")
    enwiki: Counter[str] = Counter()
    for (h, w, title), v in data.page_views.items():
        if w == "enwiki" and h.date() == day and not _left_out(title):
            enwiki[title] += v
    top = [(r[2], r[3]) for r in _rows(view["top-pages"])]
    want = sorted(enwiki.items(), key=lambda kv: (-kv[1], kv[0]))[: len(top)]
    assert top == [(sites.display_title(t), v) for t, v in want]
    assert len(top) == 10 and "exact counts" in view["top-pages"].note
    # media: the newest loaded day's most requested files (exact) of those the picked
    # wiki hosts, and the bytes per day
    newest = max(data.media)
    transfers = {
        sites.media_name(n): t
        for n, (_, t) in data.media[newest].files.items()
        if media_wiki(n) == "enwiki"
    }
    shown = _rows(view["top-media"])
    assert [r[2] for r in shown] == sorted(transfers.values(), reverse=True)[:15]
    assert all(transfers[r[1]] == r[2] for r in shown)
    every = build_view(data.gold(), ViewState())
    per_day: Counter[Any] = Counter()
    for trace in _figure(every, "media-types")["data"]:
        for x, y in zip(trace["x"], trace["y"], strict=True):
            per_day[x] += y
    for day_, stats in data.media.items():
        assert per_day[day_] == sum(b for b, _ in stats.files.values())


def test_a_picked_wiki_narrows_every_panel(data: Readers) -> None:
    view = build_view(data.gold(), ViewState.build(["dewiki"]))
    assert [r[0] for r in _rows(view["edits-views-wikis"])] == ["dewiki"]
    assert {t["name"] for t in _figure(view, "views-wikis")["data"]} == {"dewiki"}
    total = sum(sum(t["y"]) for t in _figure(view, "views-hour")["data"])
    assert total == sum(v for (_, w, _), v in data.views.items() if w == "dewiki")
    assert "dewiki" in view["window"]
    assert {r[0] for r in _rows(view["top-pages"])} == {"dewiki"}


def test_a_wiki_left_out_of_the_files_is_said_to_be(data: Readers) -> None:
    """Loaded with --wiki, a file holds some wikis: a picked wiki missing from the loaded
    hours is named, with the hours, not drawn as quiet."""
    view = build_view(data.gold(), ViewState.build([UNLOADED_WIKI, "enwiki"]))
    note = view["views-hour"].note
    assert f"{UNLOADED_WIKI}, enwiki not in the files of" not in note  # enwiki is there
    alone = build_view(data.gold(), ViewState.build([UNLOADED_WIKI]))
    assert "No page views of xhwiki are loaded" in alone["banner"]
    assert f"{UNLOADED_WIKI} not in the files of" in alone["views-hour"].note
    assert "loaded with --wiki or --project" in alone["views-hour"].note


def test_an_unknown_wiki_and_an_empty_window_say_so(data: Readers) -> None:
    unknown = render(data.gold(), "?wikis=nosuchwiki")
    assert "nosuchwiki" in unknown["banner"] and unknown["banner-style"] == {"display": "block"}
    view = build_view(data.gold(), ViewState.from_search("?wikis=nosuchwiki"))
    assert (
        "nosuchwiki not in the files of"
        in (_figure(view, "views-hour")["layout"]["annotations"][0]["text"])
    )
    old = build_view(
        data.gold(), ViewState.from_search("?range=custom&start=2026-01-01&end=2026-01-02")
    )
    note = old["views-hour"].note
    assert note.startswith("no file of this window's hours is loaded (page views are loaded for")
    assert old["read-and-edited"].rows == [] and old["read-and-edited"].note
    assert "page-level views are kept 7 days from loading" in old["edits-without-views"].note


def test_past_the_hourly_retention_the_daily_totals_show(data: Readers) -> None:
    """The coverage facts come from the tables' TTLs; a view whose hourly table keeps
    less than the window asks for falls back to the daily totals and says so."""
    gold = data.gold()
    view = build_view(gold, ViewState())["view"]
    assert view.facts["hourly_days"] == 1100 and view.facts["page_rows_days"] == 7
    short = dataclasses.replace(view, facts={**view.facts, "hourly_days": 0})
    got = readers.views_row(gold, short)
    assert got["views-hour"].title == "Page views per day"
    assert got["views-hour"].note.startswith("views per hour are kept 0 days")
    assert "days not loaded whole: " in got["views-hour"].note  # 3 of 24 hours
    figure = got["views-hour"].figure
    assert figure is not None
    daily = sum(sum(t["y"]) for t in figure["data"])
    assert daily == sum(data.views_per_hour().values())
    joined = readers.edits_views_row(gold, short)
    assert joined["edits-views-wikis"].rows == []
    assert joined["edits-views-wikis"].note.startswith("views per hour are kept 0 days")


def test_top_pages_past_the_page_rows_are_estimates_and_past_the_summaries_none(
    data: Readers,
) -> None:
    gold = data.gold()
    view = build_view(gold, ViewState.build(["enwiki"], "24h"))["view"]
    gone = dataclasses.replace(view, facts={**view.facts, "page_rows_days": None})
    estimated = readers.top_pages_row(gold, gone)["top-pages"]
    assert "≈ estimates from the day's top-k summaries" in estimated.note
    assert all(str(r[3]).startswith("≈") for r in estimated.rows or [])
    old = dataclasses.replace(
        view, now=view.now + dt.timedelta(days=500), facts={**view.facts, "page_rows_days": None}
    )
    none = readers.top_pages_row(gold, old)["top-pages"]
    assert none.rows == [] and "the days' top pages are kept 400 days" in none.note


def test_models_built_but_no_file_loaded_says_what_to_run(data: Readers) -> None:
    before = data.before_loading
    assert "No page-view or media files loaded yet" in before["banner"]
    assert "wiki-events pageviews --from " in before["banner"]
    assert "wiki-events mediacounts --from " in before["banner"]
    assert before["banner-style"] == {"display": "block"} and before["tick-disabled"] is False
    assert set(before) == set(panels.view_outputs("", ["x"]))


def test_models_not_built_says_what_to_run(clickhouse: ClickHouseProcess) -> None:
    """The session's ClickHouse has no dumps models; asked as the read-only dashboard
    user, as in production (the check reads system.tables)."""
    user, password = READONLY_USER
    url = f"http://{user}:{password}@127.0.0.1:{clickhouse.port}/default"
    gold = Gold(lambda: clickhouse_client(url))
    view = render(gold, "?wikis=enwiki")
    assert "models are not built" in view["banner"]
    assert "dbt build --vars '{dumps: true}'" in view["banner"]
    assert "wiki-events pageviews --from " in view["banner"]
    assert view["view"] is None and view["freshness"] == ""
    # the edits page's drill-down: no dumps is a quiet note, not an error
    drill = edits_page.drill_views(gold, "enwiki", dt.datetime(2026, 12, 1, 14, 23), KINDS)
    assert drill.rows == [] and drill.note == edits_page.NO_DUMPS
    assert drill.title == "views of the pages edited 2026-12-01 13:00–14:23 UTC"


def test_clickhouse_down_is_a_message_not_an_exception() -> None:
    def refuse() -> Any:
        raise ConnectionRefusedError("connection refused")

    view = render(Gold(refuse), "")
    assert view["banner"].startswith("ClickHouse is unreachable")
    with pytest.raises(Unavailable):
        build_view(Gold(refuse), ViewState())


# -- the page, in headless Chromium ------------------------------------------------------


@pytest.fixture(scope="module")
def browser(
    data: Readers, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    with dash_browser(request, create_app(data.gold()), tmp_path_factory.mktemp("dl")) as b:
        yield b


def test_the_page_draws_its_numbers_in_chromium(browser: Any, data: Readers) -> None:
    open_page(browser, "/readers")
    for graph in GRAPHS:
        assert any(t["y"] for t in traces(browser, f"readers-{graph}")), graph
    # the views per hour as drawn: desktop + mobile, hour by hour
    drawn: Counter[str] = Counter()
    for trace in traces(browser, "readers-views-hour"):
        for x, y in zip(trace["x"], trace["y"], strict=True):
            drawn[x[:13]] += y
    want = {h.strftime("%Y-%m-%dT%H"): v for h, v in data.views_per_hour().items()}
    assert {k.replace(" ", "T"): v for k, v in drawn.items() if v} == want
    # the edits-vs-views table's first row, as shown
    wiki, edits, views, per_1000 = cells(browser, "readers-edits-views-wikis")[0]
    want_views = sum(v for (_, w, _), v in data.views.items() if w == wiki)
    want_edits = sum(n for (_, w), n in data.edits.items() if w == wiki)
    assert (int(number(edits)), int(number(views))) == (want_edits, want_views)
    assert per_1000 == ratio(want_edits * 1000 / want_views)
    assert data.heavy[2] in browser.find_element("#readers-read-and-edited").text
    assert "Readers" in browser.find_element(".nav-link.active").text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.driver.save_screenshot(str(ARTIFACTS / "readers.png"))
    assert (ARTIFACTS / "readers.png").stat().st_size > 10_000
    assert browser.get_logs() == []


def test_the_door_checks_the_readers_callback(data: Readers) -> None:
    """A well-formed request for the page's view callback renders it; a crafted one is a
    400."""
    app = create_app(data.gold())
    client = app.server.test_client()
    spec = next(k for k in app.callback_map if "readers-view.data" in k)

    def post(search: object, tick: object = 0) -> Any:
        body = {
            "output": spec,
            "outputs": outputs_of(spec),
            "inputs": [
                {"id": "readers-url", "property": "search", "value": search},
                {"id": "readers-tick", "property": "n_intervals", "value": tick},
            ],
            "changedPropIds": ["readers-url.search"],
        }
        return client.post("/_dash-update-component", json=body)

    good = post("?wikis=enwiki&range=24h")
    assert good.status_code == 200, good.text
    assert "views up to" in good.text
    for search, tick in (({"x": 1}, 0), ("x" * 20_000, 0), ("", -1), ("", "1")):
        reply = post(search, tick)
        assert reply.status_code == 400 and "Traceback" not in reply.text, (search, tick)


def test_the_bounded_edits_views_queries_agree_with_the_mart(data: Readers) -> None:
    """The page filters each side before the join; the mart joins first (no filter can
    be pushed through its FULL JOIN). Same numbers, every wiki, every hour."""
    gold = data.gold()
    start, end = data.hours[0] - 2 * H, data.hours[-1] + 2 * H
    params = q.window_params(start, end, [], [])
    mart = gold.run(
        "SELECT hour, sum(edits), sum(views) FROM gold.edits_views_hour_wiki "
        "WHERE hour >= {start:DateTime} AND hour < {end:DateTime} GROUP BY hour ORDER BY hour",
        params,
    ).rows
    hourly = [r for r in gold.run(q.EDITS_VIEWS_HOUR, params).rows if r[1] or r[2]]
    assert hourly == mart and any(r[1] for r in mart)
    per_wiki = gold.run(
        "SELECT wiki, sum(edits) AS e, sum(views) AS v, e * 1000 / v "
        "FROM gold.edits_views_hour_wiki WHERE hour >= {start:DateTime} "
        "AND hour < {end:DateTime} AND views > 0 GROUP BY wiki ORDER BY v DESC, wiki LIMIT 15",
        params,
    ).rows
    assert gold.run(q.EDITS_VIEWS_WIKI, params).rows == per_wiki


def test_a_long_window_shows_views_per_day(data: Readers) -> None:
    end = data.hours[-1] + H
    state = ViewState.build([], "custom", "all", "off", (end - 10 * D).isoformat(), end.isoformat())
    view = build_view(data.gold(), state)
    drawn: Counter[Any] = Counter()
    for trace in _figure(view, "views-hour")["data"]:
        for x, y in zip(trace["x"], trace["y"], strict=True):
            drawn[x] += y
    assert view["views-hour"].title == "Page views per day"
    axis = _figure(view, "views-hour")["layout"]["xaxis"]
    assert axis["range"] == [str(end - 10 * D), str(end)] and axis["tickformat"] == "%b %-d"
    want: Counter[Any] = Counter()
    for hour, v in data.views_per_hour().items():
        want[hour.replace(hour=0)] += v
    assert {k: v for k, v in drawn.items() if v} == dict(want)
    assert {t["name"] for t in _figure(view, "views-wikis")["data"]} >= {"enwiki", "dewiki"}


def test_a_failing_page_level_table_leaves_the_rest_of_the_page(data: Readers) -> None:
    """A query of the page-level tables refused (here: its view is made to fail) shows in
    those tables' notes; the other rows still draw."""
    inner = clickhouse_client(data.house.clickhouse_url)

    class Refusing:
        def query(self, sql: str, parameters: Any = None) -> Any:
            if "page_attention_spikes_hour" in sql:
                sql = sql.replace("gold.page_attention_spikes_hour", "gold.no_such_view")
            return inner.query(sql, parameters=parameters)

    gold = Gold(lambda: Refusing())
    view = build_view(data.gold(), ViewState())["view"]
    row = readers.ROWS["attention"][0]
    out = panels.render_row(gold, row, readers.attention_row, view.to_store(), "attention")
    assert out["views-without-edits"]["main"] == "" and out["edits-without-views"]["main"] == ""
    assert out["views-without-edits"]["note"].startswith("not available: ClickHouse refused")
    views = panels.render_row(
        gold, readers.ROWS["views"][0], readers.views_row, view.to_store(), "v"
    )
    assert views["views-hour"]["main"].figure["data"]


# -- the edits page's drill-down: views of the pages edited in the last hour -------------


def _drill_expected(data: Readers) -> tuple[list[tuple[str, int, int]], int]:
    """The panel's rows from the generated files and the events: enwiki's pages edited in
    the last loaded hour (every edit of the fixture is in it), the most edited first,
    then by title, with their views in that hour (the newest loaded); and how many
    pages were edited."""
    edited = sorted(
        ((t, n) for (w, t), n in data.page_edits.items() if w == "enwiki"),
        key=lambda tn: (-tn[1], tn[0]),
    )
    last = data.hours[-1]
    rows = [(t, n, data.page_views.get((last, "enwiki", t), 0)) for t, n in edited]
    return rows[: q.DRILL_PAGES], len(edited)


def test_the_drill_down_shows_the_views_of_the_pages_edited_in_the_last_hour(
    data: Readers,
) -> None:
    view = edits_page.build_view(data.gold(), ViewState.build(["enwiki"]))
    want, pages = _drill_expected(data)
    got = [tuple(r) for r in _rows(view["drill-views"])]
    assert got == want
    # bounded: 20 of the recording's 64 enwiki pages and the 3 crafted ones
    assert len(got) == q.DRILL_PAGES < pages
    assert any(v for *_, v in got) and any(not v for *_, v in got)  # read, and not read
    assert data.heavy[2] in [t for t, *_ in got] and HOSTILE_TITLE in [t for t, *_ in got]
    last = data.hours[-1]
    note = view["drill-views"].note
    assert note.startswith(
        f"views in {last:%Y-%m-%d %H}:00–{last + H:%H}:00 UTC, the newest hour loaded for enwiki"
    )
    assert f"the {q.DRILL_PAGES} most edited of {pages} pages edited" in note
    assert view["drill-views"].title.startswith("enwiki: views of the pages edited ")


def test_the_drill_down_reads_silver_by_its_primary_key(data: Readers) -> None:
    """With the hour's domain codes (projectviews) the page rows are found by silver's
    whole key; without them (no projectviews loaded), by hour and title: same views."""
    gold = data.gold()
    where = {"hour": data.hours[-1], "wiki": "enwiki"}
    codes = gold.run(q.DRILL_CODES, where).column("domain_code")
    assert {"en", "en.m"} <= set(codes)
    pages = [t.replace(" ", "_") for t, *_ in _drill_expected(data)[0]]
    params = {**where, "codes": codes, "pages": pages}
    by_key = gold.run(q.DRILL_VIEWS, params).rows
    assert sorted(by_key) == sorted(gold.run(q.DRILL_VIEWS_ANY_CODE, params).rows) and by_key
    plan = gold.run("EXPLAIN indexes = 1 " + q.DRILL_VIEWS, params).column("explain")
    read = next(i for i, line in enumerate(plan) if "ReadFromMergeTree (silver.pageviews)" in line)
    index = next(i for i in range(read, len(plan)) if plan[i].endswith("PrimaryKey"))
    keys = [line.strip() for line in plan[index + 2 : index + 5]]
    assert keys == ["hour", "domain_code", "title"], "\n".join(plan)


def test_the_exact_top_pages_read_silver_by_its_primary_key(data: Readers) -> None:
    """The day's candidates' views are read by silver.pageviews' key (hour, code, title):
    the index's condition is the set of those keys, so it reads their granules, not the
    day's rows (~150M a day in the real files)."""
    gold = data.gold()
    day = data.hours[-1].date()
    params = {
        "day": day,
        "wikis": ["enwiki"],
        "special": False,
        "main_pages": sites.MAIN_PAGES_DUMPS,
        "special_pattern": sites.SPECIAL_PATTERN,
    }
    plan = gold.run("EXPLAIN indexes = 1 " + q.TOP_PAGES_EXACT, params).column("explain")
    read = next(i for i, line in enumerate(plan) if "ReadFromMergeTree (silver.pageviews)" in line)
    index = next(i for i in range(read, len(plan)) if plan[i].endswith("PrimaryKey"))
    keys = [line.strip() for line in plan[index + 2 : index + 5]]
    assert keys == ["hour", "domain_code", "title"], "\n".join(plan)
    condition = next(line for line in plan[index:] if "Condition:" in line)
    assert "((hour, domain_code, title) in " in condition, condition


def test_the_drill_down_without_views_says_so_quietly(data: Readers) -> None:
    # a wiki whose views are not in the files (as when loaded with --wiki)
    view = edits_page.build_view(data.gold(), ViewState.build([UNLOADED_WIKI]))
    assert view["drill-views"].rows == [] and "No wiki named" not in view["banner"]
    note = view["drill-views"].note
    assert note.startswith(f"no views: {UNLOADED_WIKI}'s page views are not loaded for any hour")
    assert f"page views are loaded up to {data.hours[-1] + H:%Y-%m-%d %H}:00 UTC" in note
    # the models built, no file loaded yet
    before = data.drill_before_loading
    assert before.rows == [] and before.note == edits_page.NO_DUMPS


def test_the_edits_page_drill_down_shows_the_views_in_chromium(browser: Any, data: Readers) -> None:
    open_page(browser, "/?wikis=enwiki")
    assert "newest hour loaded for enwiki" in browser.find_element("#drill-views-note").text
    shown = [tuple(r) for r in cells(browser, "drill-views")]
    want, _ = _drill_expected(data)
    assert shown == [(t, f"{e:,}", f"{v:,}") for t, e, v in want]
    # the hostile title is text: no element made of it, nothing of it ran
    assert HOSTILE_TITLE in [t for t, *_ in shown]
    injected = browser.driver.execute_script(
        "return document.querySelectorAll('#drill-views img, #drill-views script').length"
    )
    assert injected == 0 and browser.driver.title != "1"
    assert browser.find_element("#drill-views-title").text.startswith("enwiki: views")
    browser.find_element("#drill-views").location_once_scrolled_into_view  # noqa: B018
    ARTIFACTS.mkdir(exist_ok=True)
    browser.driver.save_screenshot(str(ARTIFACTS / "drill-views.png"))
    assert browser.get_logs() == []
