"""The edits page against an embedded ClickHouse filled with recorded real events.

The yearfunla capture (2,387 events in two minutes) is replayed as three weeks: two
weeks ago, one week ago, and ending a minute ago; frwiki's events are sent four times
more in the current hour, so frwiki spikes against its own baseline. Gold also holds one
wiki name of 10,000 characters (as bad data could put it there). Callback logic is
tested by calling it; the page is tested in headless Chromium, one browser and one app
for the module (``tests/helpers/browser.py``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import plotly.graph_objects as go
import pytest
from dash import no_update
from dash._callback_context import context_value
from dash._utils import AttributeDict
from selenium.webdriver.common.keys import Keys

from dash_app import figures, panels, sites
from dash_app.app import create_app
from dash_app.controls import NAMES, sync_url, wiki_options
from dash_app.page_parts import hours
from dash_app.pages import edits
from dash_app.pages.edits import build_view, render
from dash_app.panels import Cell
from dash_app.queries import Gold, Table, Unavailable
from dash_app.state import MAX_RANGE, RANGES, ViewState, resolution
from wiki_core.config import clickhouse_client
from wiki_core.timefmt import naive_utc

from .helpers.browser import dash_browser, open_page, traces, wait_for
from .helpers.callbacks import outputs_of
from .helpers.expected import expected_from
from .helpers.paths import RAW, ROOT
from .helpers.recorded import events_of
from .helpers.warehouse import LONG_NAME, Warehouse

ARTIFACTS = ROOT / "test-artifacts"
HOSTILE = "x' OR 1=1 --"


def _flat(values: object) -> list[float]:
    """Every number in a trace's values, however nested (heatmap z is rows of numbers)."""
    if isinstance(values, int | float):
        return [float(values)]
    if isinstance(values, list | tuple):
        return [x for v in values for x in _flat(v)]
    return []


@pytest.fixture
def gold(dash_warehouse: Warehouse) -> Gold:
    return Gold(lambda: clickhouse_client(dash_warehouse.clickhouse_url), cache_seconds=10)


GRAPHS = [p.key for p in edits.PANELS if p.kind == "graph"]
TABLES = [p.key for p in edits.PANELS if p.kind == "table"]


def _figure(view: dict[str, Any], key: str) -> dict[str, Any]:
    figure = view[key].figure
    assert figure is not None, key
    return figure  # type: ignore[no-any-return]


def _total(figure: dict[str, Any]) -> float:
    """Every number a figure draws (a horizontal bar's are its x)."""
    values = [
        t.get(k)
        for t in figure["data"]
        for k in ("values", "z", "x" if t.get("orientation") == "h" else "y")
    ]
    return sum(map(abs, _flat(values)))


# -- callbacks and query layer, called directly ------------------------------------------


def test_view_state_round_trips_through_the_url() -> None:
    state = ViewState.build(["enwiki", "dewiki"], "24h", "humans", "10s", special=True)
    assert ViewState.from_search(state.to_search()) == state
    custom = ViewState.build([], "custom", "all", "off", "2026-01-01T00:00", "2026-01-02")
    assert ViewState.from_search(custom.to_search()).window(None) == (
        dt.datetime(2026, 1, 1),
        dt.datetime(2026, 1, 2),
    )
    assert ViewState.from_search("") == ViewState()
    lookup = ViewState.from_search("?wikis=enwiki&titles=Main_Page|Cat||%3Cb%3E&log=1")
    assert lookup.titles == ("Main Page", "Cat", "<b>") and lookup.log
    assert ViewState.from_search(lookup.to_search()) == lookup


def test_hostile_url_values_fall_back_to_defaults() -> None:
    huge = "a" * 100_000
    state = ViewState.from_search(
        f"?wikis=enwiki,{HOSTILE},{huge},DROP%20TABLE&range=1h;DROP&users=<script>"
        f"&refresh=1e9&start={huge}&special=yes&log=2&titles={'x|' * 500}"
    )
    assert state == ViewState(wikis=("enwiki",))
    many = ViewState.from_search("?titles=" + "|".join(f"T{i}" for i in range(500)) + "|" + huge)
    assert many.titles == tuple(f"T{i}" for i in range(10))
    bad_custom = ViewState.from_search("?range=custom&start=2026-01-02&end=2026-01-01")
    assert bad_custom.range == "6h"  # an empty or reversed custom range is not a window


def test_sync_url_sets_controls_from_the_url_and_the_url_from_controls() -> None:
    def call(trigger: str, search: str, **values: Any) -> dict[str, Any]:
        given = {
            "wikis": [],
            "range": "6h",
            "users": "all",
            "refresh": "off",
            "start": "",
            "end": "",
            "special": [],
            "titles": "",
            "log": [],
            **values,
        }

        def run() -> dict[str, Any]:
            context_value.set(AttributeDict(triggered_inputs=[{"prop_id": trigger, "value": 1}]))
            return sync_url(search, *(given[n] for n in NAMES))

        return contextvars.copy_context().run(run)

    from_url = call("url.search", "?wikis=dewiki&range=24h")
    assert from_url == {
        "search": no_update,
        "wikis": ["dewiki"],
        "range": "24h",
        "users": "all",
        "refresh": "off",
        "start": "",
        "end": "",
        "special": [],
        "titles": "",
        "log": [],
    }
    from_controls = call("users.value", "?wikis=dewiki", wikis=["dewiki"], range="1h", users="bots")
    assert from_controls["search"] == "?wikis=dewiki&range=1h&users=bots"


def test_build_view_draws_every_panel_with_data(gold: Gold) -> None:
    view = build_view(gold, ViewState())
    for key in GRAPHS:
        go.Figure(_figure(view, key))  # plotly's own validation: every property is known
        assert _total(_figure(view, key)) > 0, key
    for key in ("top-pages", "top-editors", "notable"):
        assert view[key].rows, key
    assert view["spikes"].rows[0][0].text == "frwiki" and view["spikes"].rows[0][3] >= 3
    assert [t.label for t in view["now"].tiles] == [
        "Edits per minute",
        "Bots' share",
        "Active wikis",
        "Views, newest loaded hour",
    ]
    (pill,) = view["freshness"]
    assert pill.children.startswith("newest event") and "ingestion lag" in pill.title
    # the page-view dumps are opt-in, and not built here: the drill-down's views panel
    # says so quietly (no banner), the rest of the page is whole
    assert view["drill-views"].rows == [] and view["drill-views"].note == edits.NO_DUMPS
    assert view["drill-views"].title.startswith(
        f"{view['drill-activity'].title.split(':')[0]}: views"
    )
    assert view["banner"] == ""


def test_build_view_numbers_match_the_recording(gold: Gold) -> None:
    # the last 1h holds this week's copy of the recording plus frwiki four more times
    want = expected_from([RAW])
    view = build_view(gold, ViewState.build(range="1h"))
    assert _total(_figure(view, "activity")) == want.total + 4 * want.per_wiki["frwiki"]
    humans = build_view(gold, ViewState.build(["enwiki"], "1h", "humans"))
    enwiki = [e for e in events_of(RAW) if e.get("wiki") == "enwiki" and not e.get("bot")]
    assert _total(_figure(humans, "drill-activity")) == len(enwiki)
    assert humans["drill-activity"].title == "enwiki: events per minute"
    # an edit is an edit or a page creation, everywhere: the top editors' edits
    edits_by = Counter(
        (e["wiki"], e["user"]) for e in events_of(RAW) if e.get("type") in ("edit", "new")
    )
    actions_by = Counter((e["wiki"], e["user"]) for e in events_of(RAW) if e.get("type") == "log")
    week = build_view(gold, ViewState.build(range="1h"))
    for wiki, user, _, n, actions, *_ in week["top-editors"].rows:
        extra = 4 if wiki.text == "frwiki" else 0  # frwiki sent four times more
        assert n == edits_by[(wiki.text, user.text)] * (1 + extra), user
        assert actions == actions_by[(wiki.text, user.text)] * (1 + extra), user


def test_top_pages_and_editors_from_topk_candidates_equal_the_exact_ranking(gold: Gold) -> None:
    from dash_app import queries as q

    end = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=5)
    # a window of whole days and partial ones at both ends (the long form takes a whole
    # day's candidates from the daily states, the rest from the hourly ones), and an hour
    spans = [dt.timedelta(days=30), dt.timedelta(days=8, hours=3), dt.timedelta(hours=1)]
    for span, kinds in itertools.product(
        spans, (["bot", "anonymous", "registered"], ["anonymous", "registered"])
    ):
        params = q.window_params(end - span, end, [], kinds)
        exact = gold.run(q.TOP_PAGES, params).rows
        assert exact, span
        assert gold.run(q.TOP_PAGES_ALL, params).rows == exact, span
        assert gold.run(q.TOP_PAGES_ALL_LONG, params).rows == exact, span
        exact = gold.run(q.TOP_EDITORS, params).rows
        assert exact, span
        assert gold.run(q.TOP_EDITORS_ALL, params).rows == exact, span
        assert gold.run(q.TOP_EDITORS_ALL_LONG, params).rows == exact, span


def test_window_totals_from_whole_hours_and_ragged_minutes_equal_the_minutes(gold: Gold) -> None:
    """Up to a day, the window's totals take its whole hours from the hourly rows and its
    ends from the minute rows: the same numbers as the minutes alone, for windows inside
    one hour, on hour boundaries, and ragged at either end."""
    from dash_app import queries as q

    minutes = {
        "TOP_WIKIS": "wiki, sum(events) AS events {w} AND {k} GROUP BY wiki "
        "ORDER BY events DESC, wiki LIMIT 15",
        "USER_KINDS": "user_kind, sum(events) AS events {w} AND {wikis} AND {k} "
        "GROUP BY user_kind ORDER BY user_kind",
        "EVENTS_IN_VIEW": "sum(events) AS events {w} AND {wikis} AND {k}",
    }
    where = (
        "FROM gold.events_per_minute_wiki "
        "WHERE minute >= {start:DateTime} AND minute < {end:DateTime}"
    )
    ((first, last),) = gold.run(
        "SELECT min(minute), max(minute) FROM gold.events_per_minute_wiki "
        "WHERE minute > now() - INTERVAL 1 DAY"
    ).rows
    # the recording is a few minutes inside one hour (dashboard_warehouse)
    hour, h = first.replace(minute=0), dt.timedelta(hours=1)
    minute = dt.timedelta(minutes=1)
    windows = [
        (first, last + minute),  # inside one hour: minutes only
        (hour, hour + h),  # one whole hour, nothing ragged
        (hour - 37 * minute, hour + h + 5 * minute),  # ragged at both ends, a whole hour
        (first + minute, hour + 2 * h),  # ragged start inside the data, an empty hour
        (hour - h, first + 2 * minute),  # an empty whole hour, ragged end inside the data
        (hour - 24 * h + 13 * minute, hour + h),  # a day, ragged start
    ]
    checked = 0
    for (start, end), (name, body), (wikis, kinds) in itertools.product(
        windows,
        minutes.items(),
        [([], ["bot", "anonymous", "registered"]), (["enwiki", "frwiki"], ["registered"])],
    ):
        params = q.window_params(start, end, wikis, kinds)
        oracle = "SELECT " + body.format(w=where, wikis=q._WIKIS, k=q._KINDS)
        want = gold.run(oracle, params).rows
        assert gold.run(getattr(q, f"{name}_HOURS"), params).rows == want, (name, start, end)
        checked += bool(want and want[0][-1])
    assert checked > 20  # most windows hold events


PER_WIKI_QUERIES = [
    "PER_MINUTE_WIKIS",
    "TOP_WIKIS",
    "USER_KINDS",
    "DRILL_MINUTE",
    "SPIKES",
    "PER_HOUR_WIKIS",
    "PER_DAY_WIKIS",
    "TYPE_MIX",
    "BYTES",
    "BYTES_DAILY",
    "TOP_WIKIS_HOURLY",
    "USER_KINDS_HOURLY",
    "DRILL_HOUR",
    "DRILL_DAY",
    "HEATMAP",
    "EVENTS_IN_VIEW",
    "EVENTS_IN_VIEW_HOURS",
    "EVENTS_IN_VIEW_HOURLY",
    "TOP_WIKIS_HOURS",
    "USER_KINDS_HOURS",
    "NOW",
    "TOP_PAGES_ALL_LONG",
    "TOP_EDITORS_ALL_LONG",
    "LOOKUP_EDITS",
]
# the first column of each table's sorting key: the per-wiki tables by time, the tables
# sorted for lookups by what they look up
FIRST_KEY = {
    "events_per_minute_wiki": "minute",
    "edits_per_minute_wiki": "minute",
    "events_per_hour_wiki": "hour",
    "wiki_events_per_hour": "wiki",
    "page_edits_by_page": "title",
    "editor_edits_by_editor": "user",
}


@pytest.mark.parametrize("name", PER_WIKI_QUERIES)
def test_window_filters_narrow_the_per_wiki_tables_by_their_sort_keys(
    gold: Gold, name: str
) -> None:
    # the per-wiki tables are sorted by time first, so a panel's window reaches the primary
    # key (with toStartOfDay(hour) leading, the same filter read every granule of a month);
    # the tables sorted by wiki, page or editor are read by that key
    from dash_app import queries as q

    end = dt.datetime(2026, 1, 2)
    params = {
        **q.window_params(end - dt.timedelta(hours=6), end, [], ["bot"]),
        "wiki": "enwiki",
        "titles": ["Main Page"],
        "min_events": 1,
        "min_ratio": 1.0,
    }
    sql = getattr(q, name)
    plan = gold.run("EXPLAIN indexes = 1 " + sql, params).column("explain")
    tables = [t for t in FIRST_KEY if f"gold.{t}" in sql]
    assert tables, name
    for table in tables:  # each table the query reads (a union reads two)
        column = FIRST_KEY[table]
        read = next(i for i, line in enumerate(plan) if f"ReadFromMergeTree (gold.{table})" in line)
        index = next(i for i in range(read, len(plan)) if plan[i].endswith("PrimaryKey"))
        keys_at = next(i for i in range(index, len(plan)) if plan[i].endswith("Keys:"))
        condition = next(line for line in plan[index:] if "Condition:" in line)
        # the table is sorted by that column first, the index uses it, the query bounds it
        ((sorting_key,),) = gold.run(
            "SELECT sorting_key FROM system.tables WHERE database = 'gold' AND name = {t:String}",
            {"t": table},
        ).rows
        assert sorting_key.split(", ")[0] == column, sorting_key
        assert plan[keys_at + 1].split()[-1] == column, "\n".join(plan)
        assert re.search(rf"\({column}[ ,]|\(\({column}, ", condition), "\n".join(plan)


def test_the_package_ships_every_page_and_the_assets() -> None:
    """`pip install .` (the Docker image) installs only what pyproject lists: a page
    package or the assets left out is a dashboard that fails only in production."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "dash_app").rglob("__init__.py")
    }
    assert found == {"dash_app", "dash_app.pages"}
    assert found <= set(setuptools["packages"])
    shipped = {
        path
        for pattern in setuptools["package-data"]["dash_app"]
        for path in (ROOT / "dash_app").glob(pattern)
    }
    assert shipped == set((ROOT / "dash_app" / "assets").iterdir())


def test_topk_candidates_match_the_dbt_var() -> None:
    import yaml

    from dash_app.queries import TOP_CANDIDATES, TOP_LOAD_FACTOR

    project = yaml.safe_load((ROOT / "wiki_dbt" / "dbt_project.yml").read_text())
    assert project["vars"]["top_candidates"] == TOP_CANDIDATES
    assert project["vars"]["top_load_factor"] == TOP_LOAD_FACTOR


def test_every_wiki_of_the_recordings_links_to_its_own_host() -> None:
    """The links' host from the wiki's name equals the stream's server_name, for every
    wiki of every recording (meta.domain is no guide: auth.wikimedia.org for logins)."""
    pairs: set[tuple[str, str]] = set()
    for path in (ROOT.parent / "shared" / "data" / "recentchange").glob("*.ndjson"):
        for line in path.read_bytes().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("wiki") and event.get("server_name"):
                pairs.add((event["wiki"], event["server_name"]))
    pairs = {(w, h) for w, h in pairs if h != "auth.wikimedia.org"}
    assert len({w for w, _ in pairs}) > 80
    assert {w: sites.host(w) for w, _ in pairs} == dict(pairs)
    assert sites.page_url("enwiki", "Main_Page") == "https://en.wikipedia.org/wiki/Main_Page"
    assert sites.display_title("Caf%C3%A9_au_lait") == "Café au lait"
    assert sites.display_title("100%_Pure") == "100% Pure"
    assert sites.diff_url("enwiki", 1, 2) == "https://en.wikipedia.org/w/index.php?diff=2&oldid=1"
    assert sites.media_name("/wikipedia/commons/c/c3/K%C3%B6ln_Dom.jpg") == "Köln Dom.jpg"
    assert sites.media_url("/wikipedia/commons/c/c3/K%C3%B6ln_Dom.jpg") == (
        "https://commons.wikimedia.org/wiki/File:K%C3%B6ln_Dom.jpg"
    )
    assert sites.media_url("/math/8/2/6/826676a6a5ad24552f0d5af1593434cc.png") == ""


def test_numbers_are_written_for_people() -> None:
    from dash_app.page_parts import count, ratio, size

    # 15 edits in 8.15 M views: not "0" (issue 23)
    assert ratio(15 * 1000 / 8_150_000) == "0.00184"
    assert [ratio(x) for x in (0.0312, 1.5, 12.345, 1234.5, 0)] == [
        "0.0312",
        "1.50",
        "12.3",
        "1,234",
        "0",
    ]
    assert count(1234567) == "1,234,567"
    assert [size(x) for x in (812, 1500, 100e9)] == ["812 B", "1.5 kB", "100 GB"]
    axis = figures.bytes_axis()
    assert axis["ticksuffix"] == "B" and axis["tickformat"] == ".3~s"  # 100GB, not 100B


def test_freshness_leaves_out_events_dated_in_the_future(dash_warehouse: Warehouse) -> None:
    """A wiki whose last event is ahead of this clock (within the judge's tolerance) does
    not make the page say "0 s old" (issue 15 item 14)."""
    from dash_app import queries as q

    fresh = Gold(lambda: clickhouse_client(dash_warehouse.clickhouse_url), cache_seconds=0)
    newest = fresh.run(q.FRESHNESS).rows[0][0]
    dash_warehouse.query(
        "INSERT INTO gold.wiki_totals SELECT 'future_wiki', 1, t, t, t, uniqState(''), "
        "uniqState('') FROM (SELECT now64(3) + INTERVAL 5 MINUTE AS t) GROUP BY t"
    )
    try:
        with_future, _, now, _, _ = fresh.run(q.FRESHNESS).rows[0]
        assert naive_utc(with_future) == naive_utc(newest) < naive_utc(now)
    finally:
        dash_warehouse.query(
            "ALTER TABLE gold.wiki_totals DELETE WHERE wiki = 'future_wiki' "
            "SETTINGS mutations_sync = 2"
        )
    left = dash_warehouse.scalar("SELECT count() FROM gold.wiki_totals WHERE wiki = 'future_wiki'")
    assert left == "0"


def test_the_freshness_pill_turns_amber_then_red_and_a_replay_says_so(gold: Gold) -> None:
    from dash_app.page_parts import DashConfig, Freshness

    strict = DashConfig(edits=Freshness(1, 2), replay_lag=1)
    pills = build_view(gold, ViewState(), strict)["freshness"]
    assert pills[0].className == "pill red" and "red after 2 s" in pills[0].title
    assert pills[1].children == "replay"  # the events arrived more than 1 s after they happened
    lenient = DashConfig(edits=Freshness(86400, 2 * 86400))
    (pill,) = build_view(gold, ViewState(), lenient)["freshness"]  # no replay at 1 h
    assert pill.className == "pill ok"


def test_the_freshness_thresholds_are_settings() -> None:
    from dash_app.app import _config
    from wiki_core.config import SettingError, Settings

    settings = Settings.from_env(
        {"DASH_FRESHNESS_EDITS": "90s,2h", "DASH_FRESHNESS_MEDIA": "3d, 9d"}
    )
    assert settings.dash_freshness_edits == (90, 7200)
    assert settings.dash_freshness_media == (3 * 86400, 9 * 86400)
    assert Settings.from_env({}).dash_freshness_views == (4 * 3600, 12 * 3600)
    for bad in ("30m,5m", "5m", "soon,later", "5m,30m,1h", "-1,5"):
        with pytest.raises(SettingError, match="DASH_FRESHNESS_VIEWS"):
            Settings.from_env({"DASH_FRESHNESS_VIEWS": bad})
    assert _config().edits.red == Settings.from_env().dash_freshness_edits[1]


def test_results_are_cached_for_the_refresh_interval(gold: Gold) -> None:
    build_view(gold, ViewState())
    ran = gold.queries_run
    build_view(gold, ViewState())
    assert gold.queries_run == ran  # a second viewer costs no query


def test_the_same_query_asked_while_it_runs_runs_once(dash_warehouse: Warehouse) -> None:
    """Rows (and viewers) asking the same question at once share one run of it, with
    the cache off too; a failure reaches every asker."""
    from concurrent.futures import ThreadPoolExecutor

    gold = Gold(lambda: clickhouse_client(dash_warehouse.clickhouse_url), cache_seconds=0)
    slow = "SELECT sum(sleepEachRow(0.1)) + {n:UInt8} AS n FROM numbers(5) LIMIT {limit:UInt32}"
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: gold.run(slow, {"n": 7}), range(4)))
    assert [a.rows for a in answers] == [[(7,)]] * 4
    assert gold.queries_run == 1
    # one after another they run again (nothing is cached with the cache off)
    assert gold.run(slow, {"n": 7}).rows == [(7,)] and gold.queries_run == 2
    failing = "SELECT throwIf(sleepEachRow(0.1) = 0, 'refused here') FROM numbers(5) " + (
        "LIMIT {limit:UInt32}"
    )
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(gold.run, failing) for _ in range(3)]
        for future in futures:
            with pytest.raises(Unavailable, match="refused here"):
                future.result()
    assert gold.queries_run == 2


def test_hostile_values_are_bound_not_pasted(gold: Gold, dash_warehouse: Warehouse) -> None:
    before = dash_warehouse.scalar("SELECT sum(events) FROM gold.wiki_totals")
    from dash_app import queries as q

    start, end = dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1)
    params = q.window_params(
        start, end, [HOSTILE, "enwiki'); DROP TABLE gold.wiki_totals; --"], [HOSTILE]
    )
    assert not gold.run(q.TOP_PAGES, params)  # no wiki of that name: no rows, no error
    assert dash_warehouse.scalar("SELECT sum(events) FROM gold.wiki_totals") == before


def test_unreachable_clickhouse_is_reported_not_raised() -> None:
    from .helpers.ports import free_port

    dead = Gold(lambda: clickhouse_client(f"http://default:@127.0.0.1:{free_port()}/default"))
    with pytest.raises(Unavailable, match="unreachable"):
        build_view(dead, ViewState())


def test_a_row_whose_queries_fail_says_so_and_the_others_draw(gold: Gold) -> None:
    view = build_view(gold, ViewState())["view"]
    dead = Gold(lambda: clickhouse_client("http://default:@127.0.0.1:9/default"))
    out = panels.render_row(dead, edits.ROWS["top"][0], edits.top_row, view.to_store(), "top")
    assert out["top-pages"]["note"].startswith("not available: ClickHouse is unreachable")
    assert out["top-pages"]["main"] == ""
    fine = panels.render_row(gold, edits.ROWS["mix"][0], edits.mix_row, view.to_store(), "mix")
    assert fine["top-wikis"]["main"].figure["data"]
    assert fine["top-wikis"]["panel"].endswith("filled")


# -- empty views: every control's empty case ---------------------------------------------


def _wiki_without(kind: str) -> str:
    """The busiest wiki of the recording with no bot (kind="bot") or no human events."""
    counts: dict[str, Counter[bool]] = {}
    for event in events_of(RAW):
        counts.setdefault(event["wiki"], Counter())[bool(event.get("bot"))] += 1
    bots = kind == "bot"
    return max((c[not bots], w) for w, c in counts.items() if not c[bots])[1]


EMPTY_VIEWS = {
    "an unknown wiki": ("?wikis=nosuchwiki", "No wiki named nosuchwiki in gold"),
    "bots only, on a wiki without bots": ("?users=bots&wikis={no_bots}", "No events for this"),
    "humans only, on a wiki of bots": ("?users=humans&wikis={bots_only}", "No events for this"),
    **{
        f"the last {r} of an unknown wiki": (f"?range={r}&wikis=nosuchwiki", "No wiki named")
        for r in RANGES
    },
    "a custom range before any data": (
        "?range=custom&start=2001-01-01T00:00&end=2001-01-02T00:00",
        "the stream's events in gold begin",
    ),
    "a custom range in the future": (
        "?range=custom&start=2090-01-01T00:00&end=2090-01-02T00:00",
        "is in the future",
    ),
    "auto-refresh on an unknown wiki": ("?wikis=nosuchwiki&refresh=10s", "No wiki named"),
}


@pytest.mark.parametrize("search, message", EMPTY_VIEWS.values(), ids=EMPTY_VIEWS.keys())
def test_a_view_without_rows_shows_an_empty_state_on_every_panel(
    gold: Gold, search: str, message: str
) -> None:
    search = search.format(no_bots=_wiki_without("bot"), bots_only=_wiki_without("human"))
    out = render(gold, search)
    assert set(out) == set(panels.view_outputs("", ["x"]))  # every named output
    assert message in out["banner"] and out["banner-style"] == {"display": "block"}
    view = build_view(gold, ViewState.from_search(search))
    for key in ("activity", "type-mix", "bytes", "drill-activity"):
        figure = _figure(view, key)
        go.Figure(figure)
        assert figure["layout"]["annotations"][0]["text"] == figures.EMPTY, key
        assert not _total(figure), key
    for table in ("top-pages", "top-editors"):
        assert view[table].rows == [] and view[table].note == "no edits in this window"
    assert view["notable"].note == "no notable edit in this window"
    for key in GRAPHS:  # a chart either has events or says why it has none
        figure = _figure(view, key)
        if not _total(figure):
            assert figure["layout"]["annotations"][0]["text"].startswith("no events"), key


def test_a_view_with_rows_shows_no_banner(gold: Gold) -> None:
    out = build_view(gold, ViewState.from_search("?wikis=enwiki"))
    assert out["banner"] == "" and out["banner-style"] == {"display": "none"}
    assert all(out[t].note == "" for t in ("top-pages", "top-editors"))
    # the window line says which hours the stream delivered nothing in: 6 hours ending at
    # the newest event overlap 7 clock hours, or 6 when it fell on the hour
    view = out["view"]
    overlapped = len(hours(view.start, view.end))
    assert overlapped in (6, 7)
    assert f"the stream delivered events in 1 of the window's {overlapped} hours" in out["window"]


def test_clickhouse_down_fills_every_output_with_a_message() -> None:
    from .helpers.ports import free_port

    dead = Gold(lambda: clickhouse_client(f"http://default:@127.0.0.1:{free_port()}/default"))
    out = render(dead, "?wikis=enwiki")
    assert set(out) == set(panels.view_outputs("", ["x"]))
    assert out["view"] is None  # the rows show blank panels
    assert "ClickHouse is unreachable" in out["banner"] and out["tick-disabled"] is False
    blank = panels.render_row(dead, edits.ROWS["top"][0], edits.top_row, None, "top")
    assert blank["top-pages"]["main"] == "" and blank["top-pages"]["note"] == ""


# -- bounded work: ranges, buckets, rows, cache -------------------------------------------


def test_an_absurd_custom_range_is_clipped_and_says_so() -> None:
    state = ViewState.from_search("?range=custom&start=2000-01-01&end=2100-01-01")
    start, end, note = state.bounded_window(None)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert end - start == MAX_RANGE and now < end <= now + dt.timedelta(minutes=1)
    assert "longer than 31 days" in note and "up to now" in note
    assert state.bounded_window(None)[2] == note
    assert ViewState.from_search("?range=7d").bounded_window(None)[2] == ""
    assert resolution(dt.timedelta(hours=24)) == "minute"
    assert resolution(dt.timedelta(days=7)) == "hour"
    assert resolution(MAX_RANGE) == "day"


def test_every_query_limits_its_rows() -> None:
    import re

    from dash_app import queries as q

    sqls = {
        name: v
        for name, v in vars(q).items()
        if isinstance(v, str) and "SELECT" in v and not name.startswith("_")  # (fragments)
    }
    assert len(sqls) > 40
    for name, sql in sqls.items():
        assert re.search(r"LIMIT (\d+( BY wiki {limit:UInt32})?|\{limit:UInt32\})$", sql.strip()), (
            name
        )


def test_gold_cuts_an_answer_at_max_rows_and_marks_it(dash_warehouse: Warehouse) -> None:
    from dash_app import queries as q

    small = Gold(lambda: clickhouse_client(dash_warehouse.clickhouse_url), max_rows=10)
    end = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    hour = q.window_params(end - dt.timedelta(hours=1), end, [], ["bot"])
    table = small.run(q.PER_MINUTE, hour)  # 60 minutes
    assert len(table.rows) == 10 and table.truncated
    assert not small.run(q.USER_KINDS, hour).truncated  # one row


def test_a_ten_year_url_answers_a_bounded_view(gold: Gold) -> None:
    search = "?range=custom&start=2016-01-01T00:00&end=2026-12-31T00:00"
    assert "longer than 31 days" in render(gold, search)["banner"]
    view = build_view(gold, ViewState.from_search(search))
    size = len(json.dumps({k: getattr(v, "figure", None) for k, v in view.items()}, default=str))
    assert size < 500_000, size  # was 135 MB: 5.7M minute buckets
    for key in ("activity", "context", "bytes"):
        assert len(_figure(view, key)["data"][0]["x"]) <= MAX_RANGE.days + 1  # by day


HOURS_2 = dt.timedelta(hours=2)


def test_the_cache_is_bounded_in_bytes_over_many_distinct_views(dash_warehouse: Warehouse) -> None:
    budget = 400_000
    gold = Gold(lambda: clickhouse_client(dash_warehouse.clickhouse_url), cache_bytes=budget)
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0, tzinfo=None)

    def custom(start: dt.datetime) -> ViewState:
        return ViewState.from_search(
            f"?range=custom&start={start:%Y-%m-%dT%H:%M}&end={start + HOURS_2:%Y-%m-%dT%H:%M}"
        )

    for i in range(40):  # 40 views nobody shares: each its own 2 h window
        start = end - dt.timedelta(hours=2, minutes=7 * i)
        build_view(gold, custom(start))
        assert gold.cache_bytes <= budget
    assert gold.cache_bytes == sum(gold.cached_sizes()) > budget // 2  # the accounting holds
    assert len(gold.cached_sizes()) < gold.queries_run  # older answers were dropped
    ran = gold.queries_run
    build_view(gold, custom(start))
    assert gold.queries_run == ran  # the latest view is still cached


def test_every_callback_input_has_a_rule_at_the_door() -> None:
    from dash_app import guard, pages

    app = create_app(Gold(lambda: None))
    assert app.server.test_client().get("/").status_code == 200  # registers Pages' router
    assert any("_pages_content.children" in output for output in app.callback_map)
    assert guard.unchecked_inputs(app, pages.input_rules()) == []
    assert guard.unchecked_inputs(app, {}) != []  # the check sees the inputs


def test_a_chart_is_drawn_by_its_answer_and_its_code_is_asked_for_with_the_page() -> None:
    """No chart is drawn before its panel's answer (an empty one cost the browser plotly.js
    work on every cold load); the chart's code, fetched when a chart is first drawn, is
    preloaded with the page (a link that names a file this Dash does not serve fails)."""
    from dash import dcc, html

    panel = edits.ROWS["activity"][0][0]
    drawn = panels.layout("", panel)
    assert not [c for c in drawn._traverse() if isinstance(c, dcc.Graph)]
    box = next(c for c in drawn._traverse() if getattr(c, "id", None) == panel.key)
    assert isinstance(box, html.Div)
    answer = panels.output(panel, panels.Result(figure=figures.empty("x")), None, "activity")
    chart = answer["main"]
    assert isinstance(chart, dcc.Graph) and chart.config == figures.CONFIG
    assert chart.figure["layout"]["annotations"][0]["text"] == "x"

    client = create_app(Gold(lambda: None)).server.test_client()
    page = client.get("/").get_data(as_text=True)
    preloaded = re.findall(r'<link rel="preload" as="script" href="([^"]+)">', page)
    assert {h.rsplit("/", 1)[1] for h in preloaded} == {"async-graph.js", "async-dropdown.js"}
    for href in preloaded:
        reply = client.get(href)
        assert reply.status_code == 200 and reply.mimetype.endswith("javascript"), href
        assert len(reply.data) > 1000, href


def test_every_page_is_one_module_with_the_shared_header() -> None:
    """A page is a module with PATH, NAME, TITLE, ORDER, layout, register_callbacks and
    INPUT_RULES; the app routes to it and every page's header links every page."""
    from dash_app import pages

    assert [m.PATH for m in pages.modules()][:3] == ["/", "/readers", "/lookup"]
    client = create_app(Gold(lambda: None)).server.test_client()
    assert client.get("/readers").status_code == 200
    deps = client.get("/_dash-dependencies").get_json()
    router = next(d for d in deps if "_pages_content.children" in d["output"])

    def links(tree: object) -> set[tuple[str, str]]:
        if isinstance(tree, list):
            return {link for item in tree for link in links(item)}
        if not isinstance(tree, dict):
            return set()
        props = tree.get("props", {})
        found = {(props["children"], props["href"])} if tree.get("type") == "Link" else set()
        return found | {link for v in (tree | props).values() for link in links(v)}

    def route(path: str) -> object:
        body = {
            "output": router["output"],
            "outputs": outputs_of(router["output"]),
            "inputs": [
                {**i, "value": path if i["property"] == "pathname" else ""}
                for i in router["inputs"]
            ],
            "changedPropIds": ["_pages_location.pathname"],
        }
        reply = client.post("/_dash-update-component", json=body)
        assert reply.status_code == 200, reply.text
        return reply.get_json()

    page = route("/readers")
    assert "views" in json.dumps(page) and "readers-freshness" in json.dumps(page)
    missing = route("/nosuchpage")
    assert "No page here" in json.dumps(missing)
    nav = {("Edits", "/"), ("Readers", "/readers"), ("Page lookup", "/lookup")}
    assert links(page) == nav and links(route("/")) == nav and links(route("/lookup")) == nav
    assert links(missing) == nav | {("Back to the edits", "/")}  # not itself


HOSTILE_JSON: list[Any] = [
    None,
    True,
    -1,
    1.5,
    "",
    "x" * 20_000,
    [],
    {},
    [[]],
    [{}],
    {"id": 1},
    [1, "a"],
]


def test_the_door_judges_any_mutation_of_a_request_without_raising() -> None:
    from dash_app import guard, pages

    app = create_app(Gold(lambda: None))
    app.server.test_client().get("/")
    rules = {**guard.ROUTER_RULES, **pages.input_rules()}
    spec = next(k for k in app.callback_map if "..view.data..." in k)
    good = {
        "output": spec,
        "outputs": outputs_of(spec),
        "inputs": [
            {"id": "url", "property": "search", "value": "?wikis=enwiki"},
            {"id": "tick", "property": "n_intervals", "value": 3},
        ],
        "changedPropIds": ["url.search"],
        "state": [],
    }
    assert guard.problem_with(app, rules, json.dumps(good).encode()) is None
    refused = 0
    for field in good:
        for value in HOSTILE_JSON:
            verdict = guard.problem_with(app, rules, json.dumps({**good, field: value}).encode())
            refused += verdict is not None
    for i in range(len(good["inputs"])):
        for key in ("id", "property", "value"):
            for value in HOSTILE_JSON:
                inputs = [dict(x) for x in good["inputs"]]
                inputs[i][key] = value
                body = json.dumps({**good, "inputs": inputs}).encode()
                verdict = guard.problem_with(app, rules, body)
                refused += verdict is not None
                if verdict is None:  # accepted: only a value its rule allows
                    assert key == "value" and rules[("url.search", "tick.n_intervals")[i]](value)
    assert refused > 80
    # a row's callback takes the view store: a store that is no view is blank panels
    row = next(k for k in app.callback_map if "top-pages.children" in k)
    for store in (
        {"search": 1},
        {"start": "x"},
        {
            "search": "",
            "start": "2026-01-01",
            "end": "2025-01-01",
            "now": "2026-01-01",
            "facts": {},
        },
    ):
        fill: dict[str, Any] = {
            "output": row,
            "outputs": outputs_of(row),
            "inputs": [{"id": "view", "property": "data", "value": store}],
            "changedPropIds": ["view.data"],
        }
        assert guard.problem_with(app, rules, json.dumps(fill).encode()) is None
        assert panels.View.from_store(store) is None
    huge = {"search": "", "facts": {"x": "y" * 20_000}}
    fill["inputs"] = [{"id": "view", "property": "data", "value": huge}]
    assert guard.problem_with(app, rules, json.dumps(fill).encode()) is not None


# -- names no wiki has ---------------------------------------------------------------------


def test_the_wiki_picker_lists_only_names_a_wiki_can_have(gold: Gold) -> None:
    busiest = gold.run("SELECT wiki FROM gold.wiki_totals GROUP BY wiki ORDER BY sum(events) DESC")
    assert busiest.rows[0][0] == LONG_NAME  # the bad name is in gold, first by events
    options = [o["value"] for o in wiki_options(gold, "")]
    assert LONG_NAME not in options and "enwiki" in options
    assert all(len(w) <= 64 for w in options)


def test_long_text_is_cut_in_charts_and_tables() -> None:
    bars = figures.wiki_bars(Table(["wiki", "events"], [(LONG_NAME, 5)]))
    assert bars["layout"]["yaxis"]["ticktext"] == ["x" * (figures.LABEL_CHARS - 1) + "…"]
    table = panels.table(edits.TOP_PAGES.columns, [[Cell("enwiki"), Cell(LONG_NAME), 1, 2]])
    assert not isinstance(table, str)
    body = table.children[1]  # type: ignore[index]
    page = body.children[0].children[1].children  # the first row's page cell
    assert page == "x" * (panels.CELL_CHARS - 1) + "…"


# -- the page, in headless Chromium: one browser, one app ---------------------------------


@pytest.fixture(scope="module")
def browser(
    dash_warehouse: Warehouse,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    gold = Gold(lambda: clickhouse_client(dash_warehouse.clickhouse_url), cache_seconds=10)
    with dash_browser(request, create_app(gold), tmp_path_factory.mktemp("downloads")) as b:
        yield b


def _open_picker(browser: Any) -> Any:
    """Dash 4's dropdown: a button that opens a popover with a search box."""
    browser.find_element("#wikis").click()
    return browser.find_element(".dash-dropdown-search")


def test_a_page_is_drawn_for_its_url_and_its_rows_are_the_only_callbacks_then(
    browser: Any,
) -> None:
    """The router's answer holds the view and the controls for the URL (panels.drawn):
    the rows' callbacks are the only requests after it, not a controls callback, then a
    view callback, then the rows (two round trips more before any panel)."""
    search = "?wikis=enwiki&wikis=frwiki&range=24h&users=humans"
    open_page(browser, "/" + search)
    requests = browser.driver.execute_script("return window.__done")
    assert requests == 1 + len(edits.ROWS), requests
    assert browser.driver.current_url.endswith(search)
    assert [o.get_attribute("value") for o in browser.find_elements("#range input:checked")] == [
        "24h"
    ]
    assert browser.find_element("#users input:checked").get_attribute("value") == "humans"
    window = browser.find_element("#window").text
    assert window.startswith("enwiki, frwiki · ") and " · humans only" in window, window
    assert "newest event" in browser.find_element("#freshness").text
    links = [a.get_attribute("href") for a in browser.find_elements(".nav a")]
    assert any("/readers?" in h and "wikis=enwiki" in h for h in links), links
    # a control changed afterwards: the controls and view callbacks run, the URL follows
    browser.find_element("#range input[value='7d']").click()
    wait_for(lambda: "range=7d" in browser.driver.current_url, 20, "the URL to follow")
    wait_for(lambda: "humans only" in browser.find_element("#window").text, 20)
    assert browser.get_logs() == []


def test_page_draws_every_panel_and_saves_a_screenshot(browser: Any) -> None:
    open_page(browser, "/")
    for graph in GRAPHS:
        assert _total({"data": traces(browser, graph)}) > 0, graph
    for table in ("top-pages", "top-editors", "spikes", "notable"):
        assert browser.find_elements(f"#{table} td"), table
    assert "frwiki" in browser.find_element("#spikes").text
    assert browser.find_element("#drill-views-note").text == edits.NO_DUMPS
    assert "newest event" in browser.find_element("#freshness").text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.driver.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
    assert browser.get_logs() == []


def test_choosing_a_wiki_changes_the_drill_down_the_url_and_the_links(browser: Any) -> None:
    open_page(browser, "/")
    first = browser.find_element("#drill-activity-title").text
    pick = "dewiki" if not first.startswith("dewiki") else "enwiki"
    _open_picker(browser).send_keys(pick)
    wait_for(lambda: any(o.text == pick for o in browser.find_elements(".dash-dropdown-option")))
    next(o for o in browser.find_elements(".dash-dropdown-option") if o.text == pick).click()
    browser.wait_for_text_to_equal(
        "#drill-activity-title", f"{pick}: events per minute", timeout=30
    )
    wait_for(lambda: f"wikis={pick}" in browser.driver.current_url)
    # the wiki stays picked on the other pages: the navigation carries it
    wait_for(lambda: f"wikis={pick}" in browser.find_element("#nav-readers").get_attribute("href"))
    browser.find_element("#nav-readers").click()
    wait_for(lambda: "/readers?" in browser.driver.current_url)
    assert f"wikis={pick}" in browser.driver.current_url
    assert browser.get_logs() == []


def test_the_url_restores_the_view(browser: Any) -> None:
    open_page(browser, "/?wikis=enwiki&range=24h&users=humans&refresh=60s")
    assert browser.find_element("#drill-activity-title").text == "enwiki: events per minute"
    checked = {
        name: browser.driver.execute_script(
            f"return document.querySelector('#{name} input:checked').value"
        )
        for name in ("range", "users", "refresh")
    }
    assert checked == {"range": "24h", "users": "humans", "refresh": "60s"}
    assert "humans only" in browser.find_element("#window").text
    assert browser.get_logs() == []


def test_hostile_url_and_picker_input_do_no_harm(browser: Any, dash_warehouse: Warehouse) -> None:
    before = dash_warehouse.scalar("SELECT sum(events) FROM gold.wiki_totals")
    hostile = (
        "?wikis=enwiki%27%29%3B+DROP+TABLE+gold.wiki_totals%3B--"
        "&range=%3Cscript%3Ealert(1)%3C/script%3E&users=%27%20OR%201=1"
    )
    open_page(browser, "/" + hostile)
    assert _total({"data": traces(browser, "activity")}) > 0
    assert "6h" in browser.driver.execute_script(
        "return document.querySelector('#range input:checked').value"
    )
    search = _open_picker(browser)
    # the 5,000 characters pasted at once (typed one by one they took a minute), the
    # last one typed
    typed = "' OR 1=1; DROP TABLE gold.wiki_totals; --" + "x" * 5000
    browser.driver.execute_script(
        "const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;"
        "set.call(arguments[0], arguments[1]);"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        search,
        typed[:-1],
    )
    search.send_keys("x")
    assert search.get_attribute("value") == typed
    search.send_keys(Keys.ENTER)
    time.sleep(1)
    assert _total({"data": traces(browser, "activity")}) > 0
    assert dash_warehouse.scalar("SELECT sum(events) FROM gold.wiki_totals") == before
    assert browser.get_logs() == []


def test_an_unknown_wiki_shows_a_message_and_empty_panels_not_a_blank_page(browser: Any) -> None:
    open_page(browser, "/?wikis=nosuchwiki")
    browser.wait_for_contains_text("#banner", "No wiki named nosuchwiki in gold", timeout=30)
    assert browser.find_element("#banner").is_displayed()
    assert "nosuchwiki" in browser.find_element("#window").text
    for graph in ("activity", "type-mix", "bytes", "drill-activity"):
        annotation = browser.driver.execute_script(
            "const a = document.querySelector('#' + arguments[0] + ' .annotation-text');"
            "return a ? a.textContent : '';",
            graph,
        )
        assert figures.EMPTY in annotation, graph
    assert browser.find_element("#top-pages-note").text == "no edits in this window"
    assert browser.find_element("#drill-activity-title").text.startswith("nosuchwiki:")
    # the header's navigation: the edits page, marked as the one shown
    link = browser.find_element(".nav-link.active")
    assert link.text == "Edits" and link.get_attribute("href").endswith("/?wikis=nosuchwiki")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.driver.save_screenshot(str(ARTIFACTS / "dashboard-empty.png"))
    assert browser.get_logs() == []


def test_the_picker_stays_usable_with_a_huge_name_in_gold(browser: Any) -> None:
    open_page(browser, "/")
    _open_picker(browser).send_keys("x")
    started = time.monotonic()
    wait_for(lambda: browser.find_elements(".dash-dropdown-option"), timeout=10)
    options = [o.text for o in browser.find_elements(".dash-dropdown-option")]
    assert options and all(len(o) <= 64 for o in options), [o[:80] for o in options]
    assert time.monotonic() - started < 10  # the tab answers: it is not frozen
    assert browser.get_logs() == []


def test_clickhouse_down_shows_a_message_and_the_page_recovers(
    dash_duo: Any, dash_warehouse: Warehouse
) -> None:
    gold = Gold(lambda: clickhouse_client(dash_warehouse.clickhouse_url), cache_seconds=0.5)
    dash_duo.start_server(create_app(gold))
    dash_duo.wait_for_contains_text("#freshness", "newest event", timeout=30)
    dash_warehouse.server.stop()
    try:
        time.sleep(1)  # past the cache: the page asks ClickHouse again
        dash_duo.driver.refresh()
        dash_duo.wait_for_contains_text("#banner", "ClickHouse is unreachable", timeout=30)
    finally:
        dash_warehouse.server.start()
    wait_for(lambda: not dash_duo.find_element("#banner").is_displayed(), timeout=60)
    dash_duo.wait_for_contains_text("#freshness", "newest event", timeout=30)
    wait_for(lambda: _total({"data": traces(dash_duo, "activity") or []}) > 0)


def test_gunicorn_entry_point_and_basic_auth(
    dash_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64
    import importlib

    monkeypatch.setenv("DASH_CLICKHOUSE_URL", dash_warehouse.clickhouse_url)
    monkeypatch.setenv("DASH_BASIC_AUTH", "viewer:s3cret")
    module = importlib.reload(importlib.import_module("dash_app.app"))
    server = module.server  # what `gunicorn dash_app.app:server` loads
    client = server.test_client()
    assert client.get("/").status_code == 401
    assert client.get("/", headers={"Authorization": "Basic d3Jvbmc6d3Jvbmc="}).status_code == 401
    good = "Basic " + base64.b64encode(b"viewer:s3cret").decode()
    assert client.get("/", headers={"Authorization": good}).status_code == 200
