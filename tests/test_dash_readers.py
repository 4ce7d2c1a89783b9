"""The readers page (``/readers``) against an embedded ClickHouse holding both halves:
live edits (the yearfunla recording, moved into the last loaded hour, plus a few edits
of a heavily read and a hardly read page) and dump files (three hours of pageviews and
two days of mediacounts made by ``dumps/generate.py``, served by the local dumps site,
loaded by the real loader), with the dbt models built with ``dumps: true``.

Every number checked is computed in Python from the same generated files and events.
The page without the models, and without files, is checked too: it says what to run.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import pytest

from dash_app import queries as q
from dash_app.app import create_app
from dash_app.pages import edits as edits_page
from dash_app.pages import readers
from dash_app.pages.readers import build_view, render
from dash_app.queries import Gold, Unavailable
from dash_app.state import ViewState
from dumps import schema
from dumps.domains import BY_CODE
from dumps.generate import MediaStats, write_mediacounts_day, write_pageviews_hour
from dumps.load import MEDIACOUNTS, PAGEVIEWS, PROJECTVIEWS, Loader, Options
from dumps.server import DumpsSite, Faults, ServerThread
from wiki_core.config import clickhouse_client

from .conftest import RAW, READONLY_USER, ROOT, ClickHouseProcess, free_port
from .helpers.callbacks import outputs_of
from .helpers.expected import Expected, event_time, shifted
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


# -- callbacks, called directly ---------------------------------------------------------


def test_every_panel_draws_and_the_totals_per_hour_match_the_files(data: Readers) -> None:
    view = build_view(data.gold(), ViewState())
    for key in readers.GRAPHS:
        go.Figure(view[key])  # plotly's own validation
        assert any(t.get("y") or t.get("x") for t in view[key]["data"]), key
    for table in readers.TABLES:
        assert view[table], table
    assert view["banner"] == ""
    # the window (6 h) ends where the views end: the three hours, desktop and mobile
    figure = view["views-hour"]["data"]
    by_access = {t["name"]: dict(zip(t["x"], t["y"], strict=True)) for t in figure}
    for hour, total in data.views_per_hour().items():
        desktop = sum(v for (h, _, a), v in data.views.items() if h == hour and a == "desktop")
        assert by_access["desktop"][hour] == desktop
        assert sum(by_access[a][hour] for a in ("desktop", "mobile", "other")) == total
    assert max(by_access["desktop"]) == data.hours[-1]
    assert "views up to" in view["freshness"] and "media counts up to" in view["freshness"]
    assert "newest edit" in view["freshness"]


def test_edits_per_1000_views_match_the_files_and_the_events(data: Readers) -> None:
    view = build_view(data.gold(), ViewState())
    per_wiki: Counter[str] = Counter()
    for (_, wiki, _), v in data.views.items():
        per_wiki[wiki] += v
    rows = view["edits-views-wikis"]
    assert [r["wiki"] for r in rows] == sorted(per_wiki, key=lambda w: (-per_wiki[w], w))[:15]
    for row in rows:
        edits = sum(n for (_, w), n in data.edits.items() if w == row["wiki"])
        assert (row["edits"], row["views"]) == (edits, per_wiki[row["wiki"]]), row
        # shown to 2 decimals
        assert abs(row["edits_per_1000_views"] - edits * 1000 / per_wiki[row["wiki"]]) < 0.006
    assert any(row["edits"] for row in rows)
    # the hourly chart: views per hour and the edits of every wiki in that hour
    traces = {
        t["name"]: dict(zip(t["x"], t["y"], strict=True)) for t in view["edits-views"]["data"]
    }
    last = data.hours[-1]
    assert traces["views"][last] == data.views_per_hour()[last]
    assert traces["edits"][last] == sum(n for (h, _), n in data.edits.items() if h == last)


def test_the_joined_tables_name_the_read_and_edited_and_the_unread_pages(data: Readers) -> None:
    view = build_view(data.gold(), ViewState())
    hour, wiki, title = data.heavy
    both = [(r["wiki"], r["title"], r["views"], r["edits"]) for r in view["read-and-edited"]]
    assert both == [(wiki, title, data.page_views[data.heavy], 3)]
    # (all wikis: the recording's most edited Wikidata items, not in the files, come first)
    enwiki = build_view(data.gold(), ViewState.build(["enwiki"]))
    unread = [(r["wiki"], r["title"], r["edits"]) for r in enwiki["edits-without-views"]]
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
    both = build_view(data.gold(), ViewState.build([UNLOADED_WIKI, "enwiki"], "24h"))
    shown = [(r["wiki"], r["title"]) for r in both["edits-without-views"]]
    assert data.quiet[1:] in shown and all(wiki == "enwiki" for wiki, _ in shown)
    for row in view["views-without-edits"]:
        assert row["views"] >= 500 and row["title"] not in (data.heavy[2], data.quiet[2])


def test_top_pages_and_media_and_media_bytes_match_the_files(data: Readers) -> None:
    view = build_view(data.gold(), ViewState.build(["enwiki"], "24h"))
    day = data.hours[-1].date()
    assert view["top-pages-title"] == f"Top pages on {day}"
    enwiki: Counter[str] = Counter()
    for (h, w, title), v in data.page_views.items():
        if w == "enwiki" and h.date() == day:
            enwiki[title] += v
    top = [(r["title"], r["views"]) for r in view["top-pages"]]
    assert top == sorted(enwiki.items(), key=lambda kv: (-kv[1], kv[0]))[: len(top)]
    assert len(top) == 10
    # media: the newest loaded day's most requested files, and the bytes per day
    newest = max(data.media)
    transfers = {name: t for name, (_, t) in data.media[newest].files.items()}
    shown = view["top-media"]
    assert [r["transfers"] for r in shown] == sorted(transfers.values(), reverse=True)[:15]
    assert all(transfers[r["file"]] == r["transfers"] for r in shown)
    every = build_view(data.gold(), ViewState())
    per_day: Counter[Any] = Counter()
    for trace in every["media-types"]["data"]:
        for x, y in zip(trace["x"], trace["y"], strict=True):
            per_day[x] += y
    for day_, stats in data.media.items():
        assert per_day[day_] == sum(b for b, _ in stats.files.values())


def test_a_picked_wiki_narrows_every_panel(data: Readers) -> None:
    view = build_view(data.gold(), ViewState.build(["dewiki"]))
    assert [r["wiki"] for r in view["edits-views-wikis"]] == ["dewiki"]
    assert {t["name"] for t in view["views-wikis"]["data"]} == {"dewiki"}
    total = sum(sum(t["y"]) for t in view["views-hour"]["data"])
    assert total == sum(v for (_, w, _), v in data.views.items() if w == "dewiki")
    assert "dewiki" in view["window"]


def test_an_unknown_wiki_and_an_empty_window_say_so(data: Readers) -> None:
    unknown = render(data.gold(), "?wikis=nosuchwiki")
    assert "nosuchwiki" in unknown["banner"] and unknown["banner-style"] == {"display": "block"}
    assert unknown["views-hour"]["layout"]["annotations"][0]["text"] == "no views in this window"
    old = render(data.gold(), "?range=custom&start=2026-01-01&end=2026-01-02")
    assert "No page views for this view" in old["banner"]
    assert old["read-and-edited"] == [] and old["read-and-edited-note"]


def test_models_built_but_no_file_loaded_says_what_to_run(data: Readers) -> None:
    before = data.before_loading
    assert "No page-view or media files loaded yet" in before["banner"]
    assert "wiki-events pageviews --from " in before["banner"]
    assert "wiki-events mediacounts --from " in before["banner"]
    assert before["banner-style"] == {"display": "block"} and before["tick-disabled"] is False
    assert set(before) == set(readers.OUTPUTS)


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
    assert set(view) == set(readers.OUTPUTS) and view["freshness"] == ""
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


def _plotted(dash_duo, graph_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return dash_duo.driver.execute_script(  # type: ignore[no-any-return]
        """
        const plot = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
        if (!plot || !plot.data) return [];
        return plot.data.map(t => ({name: t.name || '', x: t.x || [], y: t.y || []}));
        """,
        graph_id,
    )


def test_the_page_draws_its_numbers_in_chromium(dash_duo, data: Readers) -> None:  # type: ignore[no-untyped-def]
    import time

    dash_duo.start_server(create_app(data.gold()))
    dash_duo.driver.get(dash_duo.server_url + "/readers")
    dash_duo.wait_for_contains_text("#readers-freshness", "views up to", timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(
        any(t["y"] for t in _plotted(dash_duo, f"readers-{g}")) for g in readers.GRAPHS
    ):
        time.sleep(0.2)
    for graph in readers.GRAPHS:
        assert any(t["y"] for t in _plotted(dash_duo, f"readers-{graph}")), graph
    # the views per hour as drawn: desktop + mobile, hour by hour
    drawn: Counter[str] = Counter()
    for trace in _plotted(dash_duo, "readers-views-hour"):
        for x, y in zip(trace["x"], trace["y"], strict=True):
            drawn[x[:13]] += y
    want = {h.strftime("%Y-%m-%dT%H"): v for h, v in data.views_per_hour().items()}
    assert {k.replace(" ", "T"): v for k, v in drawn.items() if v} == want
    # the edits-vs-views table's first row, as shown
    cells = [c.text for c in dash_duo.find_elements("#readers-edits-views-wikis tbody tr td")]
    wiki = cells[0]
    views = sum(v for (_, w, _), v in data.views.items() if w == wiki)
    edits = sum(n for (_, w), n in data.edits.items() if w == wiki)
    assert cells[1:3] == [str(edits), str(views)]
    assert abs(float(cells[3]) - edits * 1000 / views) < 0.006
    assert data.heavy[2] in dash_duo.find_element("#readers-read-and-edited").text
    assert "Readers" in dash_duo.find_element(".nav-link.active").text
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "readers.png"))
    assert (ARTIFACTS / "readers.png").stat().st_size > 10_000
    assert dash_duo.get_logs() == []


def test_the_door_checks_the_readers_callback(data: Readers) -> None:
    """A well-formed request for the page's callback renders it; a crafted one is a 400."""
    app = create_app(data.gold())
    client = app.server.test_client()
    spec = next(k for k in app.callback_map if "readers-views-hour.figure" in k)

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
    from dash_app import queries as q

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
        "SELECT wiki, sum(edits) AS e, sum(views) AS v, round(e * 1000 / v, 3) "
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
    for trace in view["views-hour"]["data"]:
        for x, y in zip(trace["x"], trace["y"], strict=True):
            drawn[x] += y
    assert "per day" in view["views-hour"]["layout"]["title"]["text"]
    assert view["views-hour"]["layout"]["xaxis"]["range"] == [end - 10 * D, end]
    want: Counter[Any] = Counter()
    for hour, v in data.views_per_hour().items():
        want[hour.replace(hour=0)] += v
    assert {k: v for k, v in drawn.items() if v} == dict(want)
    assert {t["name"] for t in view["views-wikis"]["data"]} >= {"enwiki", "dewiki"}


def test_a_failing_page_level_table_leaves_the_rest_of_the_page(data: Readers) -> None:
    """A query of a page-level table refused (here: its view is made to fail) shows in
    that table's note; the other panels still draw."""
    inner = clickhouse_client(data.house.clickhouse_url)

    class Refusing:
        def query(self, sql: str, parameters: Any = None) -> Any:
            if "page_attention_spikes_hour" in sql:
                sql = sql.replace("gold.page_attention_spikes_hour", "gold.no_such_view")
            return inner.query(sql, parameters=parameters)

    view = render(Gold(lambda: Refusing()), "")
    assert view["views-without-edits"] == [] and view["edits-without-views"] == []
    assert view["views-without-edits-note"].startswith("not available: ClickHouse refused")
    assert view["read-and-edited"] and view["banner"] == ""
    assert any(t["y"] for t in view["views-hour"]["data"])


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
    got = [(r["title"], r["edits"], r["views"]) for r in view["drill-views"]]
    assert got == want
    # bounded: 20 of the recording's 64 enwiki pages and the 3 crafted ones
    assert len(got) == q.DRILL_PAGES < pages
    assert any(v for *_, v in got) and any(not v for *_, v in got)  # read, and not read
    assert data.heavy[2] in [t for t, *_ in got] and HOSTILE_TITLE in [t for t, *_ in got]
    last = data.hours[-1]
    note = view["drill-views-note"]
    assert note.startswith(
        f"views in {last:%Y-%m-%d %H}:00–{last + H:%H}:00 UTC, the newest hour loaded for enwiki"
    )
    assert f"the {q.DRILL_PAGES} most edited of {pages} pages edited" in note
    assert view["drill-views-title"].startswith("enwiki: views of the pages edited ")


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


def test_the_drill_down_without_views_says_so_quietly(data: Readers) -> None:
    # a wiki whose views are not in the files (as when loaded with --wiki)
    view = edits_page.build_view(data.gold(), ViewState.build([UNLOADED_WIKI]))
    assert view["drill-views"] == [] and view["banner"] == ""
    note = view["drill-views-note"]
    assert note.startswith(f"no views: {UNLOADED_WIKI}'s page views are not loaded for any hour")
    assert f"page views are loaded up to {data.hours[-1] + H:%Y-%m-%d %H}:00 UTC" in note
    # the models built, no file loaded yet
    before = data.drill_before_loading
    assert before.rows == [] and before.note == edits_page.NO_DUMPS


def test_the_edits_page_drill_down_shows_the_views_in_chromium(dash_duo, data: Readers) -> None:  # type: ignore[no-untyped-def]
    dash_duo.start_server(create_app(data.gold()))
    dash_duo.driver.get(dash_duo.server_url + "/?wikis=enwiki")
    dash_duo.wait_for_contains_text(
        "#drill-views-note", "newest hour loaded for enwiki", timeout=30
    )
    cells = [
        c.get_attribute("textContent") for c in dash_duo.find_elements("#drill-views tbody td")
    ]
    shown = [tuple(cells[i : i + 3]) for i in range(0, len(cells), 3)]
    want, _ = _drill_expected(data)
    assert shown == [(t, str(e), str(v)) for t, e, v in want]
    # the hostile title is text: no element made of it, nothing of it ran
    assert HOSTILE_TITLE in cells
    injected = dash_duo.driver.execute_script(
        "return document.querySelectorAll('#drill-views img, #drill-views script').length"
    )
    assert injected == 0 and dash_duo.driver.title != "1"
    assert "Drill-down: enwiki" in dash_duo.find_element("#drill-title").text
    dash_duo.find_element("#drill-views").location_once_scrolled_into_view  # noqa: B018
    ARTIFACTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(ARTIFACTS / "drill-views.png"))
    assert dash_duo.get_logs() == []
