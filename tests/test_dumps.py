"""The dumps loader end to end: the local dumps site, the real ClickHouse engine (the
embedded server as its own process), the dbt models built with ``--vars 'dumps: true'``.

Every test generates its own small files, loads them, and checks gold (through the
read-back views that keep only published loads) against numbers computed in Python from
the same files: exactly once under kill -9, cut downloads, corrupt and truncated files,
republished files, a late hour in follow mode, reconciliation with projectviews, the
mediacounts, and the edits-vs-views marts.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dumps import schema
from dumps.domains import BY_CODE, media_wiki
from dumps.load import MEDIACOUNTS, PAGEVIEWS, PROJECTVIEWS, Loader, Options
from loader import bronze
from loader.bronze import Bronze
from transform.project import run_dbt
from wiki_core.config import clickhouse_client
from wiki_core.event import Reject, Valid, judge

from .helpers.clickhouse import ClickHouseProcess
from .helpers.dumps_expected import QUERY_TIME_SPIKES, expected_hours
from .helpers.dumps_files import (
    MediaStats,
    pageviews_dir,
    pageviews_name,
    write_mediacounts_day,
    write_pageviews_hour,
)
from .helpers.dumps_site import Site, serve
from .helpers.paths import ROOT

H = dt.timedelta(hours=1)
T0 = dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC)  # file hour 01 = views of 00:00-01:00


@dataclass
class House:
    server: ClickHouseProcess
    url: str
    ch: Any
    work: Path

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return list(self.ch.query(sql, parameters=params).result_rows)

    def scalar(self, sql: str, **params: Any) -> Any:
        return self.rows(sql, **params)[0][0]

    def dbt(self, *args: str) -> str:
        done = run_dbt(list(args), self.url, work_dir=self.work, timeout=600)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out
        return out


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> Iterator[House]:
    base = tmp_path_factory.mktemp("dumps")
    server = ClickHouseProcess(base / "data").start()
    url = f"http://default:@127.0.0.1:{server.port}/default"
    ch = clickhouse_client(url, send_receive_timeout=300)
    bronze.migrate(ch)
    schema.migrate(ch)
    found = House(server, url, ch, base)
    # 1,000 candidates: the small test hours then fit, and the top pages are exact
    found.dbt("run", "--vars", "{dumps: true, top_page_candidates: 1000}")
    yield found
    ch.close()
    server.stop()


@pytest.fixture
def clean(house: House) -> House:
    """Every dumps table empty (and the edit tables), so each test counts its own."""
    tables = house.rows(
        "SELECT database, name FROM system.tables WHERE engine LIKE '%MergeTree' AND ("
        "(database = 'bronze' AND name != 'schema_migrations') OR database IN ('silver', 'gold'))"
    )
    for db, name in tables:
        house.ch.command(f"TRUNCATE TABLE `{db}`.`{name}`")
    return house


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with serve(tmp_path / "other") as found:
        yield found


def loader(house: House, site: Site, **kwargs: Any) -> Loader:
    return Loader(house.ch, Options(base_url=site.url, backoff=0.05, **kwargs))


def gold_hours(house: House) -> dict[tuple[dt.datetime, str, str], int]:
    rows = house.rows("SELECT hour, wiki, access, views FROM gold.pageviews_hour_wiki")
    return {(h, w, a): int(v) for h, w, a, v in rows if v}


def bronze_rows(house: House, file_hour: dt.datetime) -> int:
    return int(
        house.scalar(
            "SELECT count() FROM bronze.pageviews WHERE file_hour = {h:DateTime}",
            h=file_hour.replace(tzinfo=None),
        )
    )


def ledger_states(house: House, name: str) -> list[str]:
    return [
        r[0]
        for r in house.rows(
            f"SELECT state FROM {schema.LEDGER} FINAL WHERE name = {{n:String}} "
            "ORDER BY started_at",
            n=name,
        )
    ]


# -- the straight path ---------------------------------------------------------------------


def test_hours_load_once_reconcile_and_decode_every_code(clean: House, site: Site) -> None:
    house = clean
    files = {
        T0: write_pageviews_hour(site.root, T0, lines=3000, seed=1, bad_lines=4),
        T0 + H: write_pageviews_hour(site.root, T0 + H, lines=3000, seed=2),
    }
    run = loader(house, site)
    assert run.run([PAGEVIEWS, PROJECTVIEWS], T0, T0 + 2 * H) == {"loaded": 4}

    assert gold_hours(house) == expected_hours(files)
    # every code of the fact sheet decoded as dumps/domains.py says
    decoded = set(
        house.rows("SELECT DISTINCT domain_code, wiki, family, access FROM silver.pageviews")
    )
    assert decoded == {
        (c.code, c.wiki, c.family, c.access) for c in BY_CODE.values() if c.code != "en.zero"
    }
    # quoted titles come out unquoted; the empty code is its own row
    titles = {
        r[0]
        for r in house.rows("SELECT DISTINCT title FROM silver.pageviews WHERE domain_code = 'en'")
    }
    assert {'"Weird_Al"_Yankovic', '"Hello,_World!"_(program)', "-", "東京都"} <= titles
    # rejects: the bad lines, with reasons and counts
    rejected = house.rows("SELECT reason, sum(lines) FROM bronze.dumps_rejects GROUP BY reason")
    assert sum(n for _, n in rejected) == files[T0].bad_lines == 4
    assert {r for r, _ in rejected} <= {"fields", "views not a number"}
    # bronze holds every line once (the bad ones flagged)
    assert bronze_rows(house, T0) == files[T0].lines + files[T0].bad_lines
    # per day per wiki, top pages: gold against Python
    per_day: dict[str, int] = defaultdict(int)
    for stats in files.values():
        for code, views in stats.views_by_code.items():
            per_day[BY_CODE[code].wiki] += views
    day = dict(house.rows("SELECT wiki, views FROM gold.pageviews_day_wiki"))
    assert {w: int(v) for w, v in day.items()} == dict(per_day)
    top: dict[str, int] = defaultdict(int)
    for stats in files.values():
        for (code, title), views in stats.views_by_page.items():
            if BY_CODE[code].wiki == "enwiki":
                top[title] += views
    best = max(top.items(), key=lambda kv: (kv[1], kv[0]))
    got = house.rows(
        "SELECT title, views, error FROM gold.top_pages_day WHERE wiki = 'enwiki' AND rank = 1"
    )
    assert got == [(best[0], best[1], 0)]

    # a rerun skips every file and changes nothing
    again = loader(house, site)
    assert again.run([PAGEVIEWS, PROJECTVIEWS], T0, T0 + 2 * H) == {"skipped": 4}
    assert gold_hours(house) == expected_hours(files)
    # dbt's reconciliation (pageviews = projectviews per code and hour), gold = silver,
    # and the unit tests of the decoding
    out = house.dbt("test", "--vars", "{dumps: true, top_page_candidates: 1000}", "-s", "tag:dumps")
    passed = re.search(r"PASS=(\d+) WARN=0 ERROR=0", out)
    assert passed and int(passed.group(1)) >= 20, out


def test_projectviews_reconciliation_catches_a_difference(clean: House, site: Site) -> None:
    """The dbt test is not a tautology: a projectviews total that disagrees fails it."""
    house = clean
    stats = write_pageviews_hour(site.root, T0, lines=800, seed=5, projectviews_empty_code=False)
    folder = site.root / pageviews_dir(T0)
    path = folder / f"projectviews-{T0:%Y%m%d-%H}0000"
    lines = path.read_text().splitlines()
    lines = [
        line.replace(f" {stats.views_by_code['de']} ", f" {stats.views_by_code['de'] + 7} ")
        if line.startswith("de ")
        else line
        for line in lines
    ]
    path.write_text("\n".join(lines) + "\n")
    assert loader(house, site).run([PAGEVIEWS, PROJECTVIEWS], T0, T0 + H) == {"loaded": 2}
    done = run_dbt(
        ["test", "--vars", "{dumps: true}", "-s", "assert_pageviews_match_projectviews"],
        house.url,
        work_dir=house.work,
        timeout=600,
    )
    assert done.returncode != 0
    assert "Got 1 result" in done.stdout, done.stdout


# -- failures ------------------------------------------------------------------------------


def test_cut_download_resumes_with_range(clean: House, site: Site) -> None:
    house = clean
    stats = write_pageviews_hour(site.root, T0, lines=40000, seed=3, compresslevel=0)
    size = (site.root / pageviews_dir(T0) / pageviews_name(T0)).stat().st_size
    site.faults.cut_after, site.faults.cuts = size // 3, 1
    assert loader(house, site).run([PAGEVIEWS], T0, T0 + H) == {"loaded": 1}
    ranges = [r for p, r in site.faults.requests if p.endswith(pageviews_name(T0)) and r]
    assert len(ranges) == 1 and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"
    assert gold_hours(house) == expected_hours({T0: stats})
    assert bronze_rows(house, T0) == stats.lines


def test_cut_download_resumes_without_an_etag(clean: House, site: Site) -> None:
    """A server that sends no ETag: the resume carries the Last-Modified date as If-Range
    (never an empty one), and the range is taken."""
    house = clean
    stats = write_pageviews_hour(site.root, T0, lines=40000, seed=3, compresslevel=0)
    path = site.root / pageviews_dir(T0) / pageviews_name(T0)
    published = time.time() - 3600  # a date a second or more before the response's
    os.utime(path, (published, published))
    site.faults.cut_after, site.faults.cuts, site.faults.etag = path.stat().st_size // 3, 1, False
    assert loader(house, site).run([PAGEVIEWS], T0, T0 + H) == {"loaded": 1}
    assert site.faults.if_ranges == [email.utils.formatdate(published, usegmt=True)]
    ranges = [r for p, r in site.faults.requests if p.endswith(pageviews_name(T0)) and r]
    assert len(ranges) == 1 and ranges[0] != "bytes=0-"
    assert ledger_states(house, pageviews_name(T0)) == ["done"]  # resumed, not restarted
    assert gold_hours(house) == expected_hours({T0: stats})
    assert bronze_rows(house, T0) == stats.lines


def test_cut_download_without_ranges_starts_again(clean: House, site: Site) -> None:
    house = clean
    stats = write_pageviews_hour(site.root, T0, lines=40000, seed=3, compresslevel=0)
    site.faults.cut_after, site.faults.cuts, site.faults.ranges = 100_000, 1, False
    assert loader(house, site).run([PAGEVIEWS], T0, T0 + H) == {"loaded": 1}
    assert ledger_states(house, pageviews_name(T0)) == ["failed", "done"]
    assert gold_hours(house) == expected_hours({T0: stats})
    assert bronze_rows(house, T0) == stats.lines  # the first attempt's rows are gone


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_bad_file_fails_clearly_and_shows_nothing(clean: House, site: Site, damage: str) -> None:
    house = clean
    write_pageviews_hour(site.root, T0, lines=40000, seed=4, compresslevel=1)
    path = site.root / pageviews_dir(T0) / pageviews_name(T0)
    data = bytearray(path.read_bytes())
    if damage == "corrupt":
        middle = len(data) // 2
        data[middle : middle + 64] = bytes(64)
    else:
        del data[len(data) * 2 // 3 :]
    path.write_bytes(bytes(data))
    counts = loader(house, site).run([PAGEVIEWS], T0, T0 + H)
    assert counts == {"failed": 1}
    message = house.scalar(
        f"SELECT message FROM {schema.LEDGER} FINAL WHERE state = 'failed' AND name = {{n:String}}",
        n=path.name,
    )
    assert ("corrupt gzip" if damage == "corrupt" else "truncated gzip") in message
    assert gold_hours(house) == {}
    assert bronze_rows(house, T0) == 0  # its rows were removed, not just hidden
    assert int(house.scalar("SELECT count() FROM silver.pageviews")) == 0


def test_republished_file_replaces_its_rows(clean: House, site: Site) -> None:
    house = clean
    write_pageviews_hour(site.root, T0, lines=2000, seed=6)
    assert loader(house, site).run([PAGEVIEWS], T0, T0 + H) == {"loaded": 1}
    path = site.root / pageviews_dir(T0) / pageviews_name(T0)
    before = path.stat()
    newer = write_pageviews_hour(site.root, T0, lines=2600, seed=7)
    os.utime(path, (before.st_mtime + 120, before.st_mtime + 120))  # published later
    assert loader(house, site).run([PAGEVIEWS], T0, T0 + H) == {"replaced": 1}
    assert gold_hours(house) == expected_hours({T0: newer})
    assert ledger_states(house, path.name) == ["superseded", "done"]
    assert bronze_rows(house, T0) == newer.lines
    assert int(house.scalar("SELECT uniqExact(load_id) FROM gold.pageviews_hour_wiki_loads")) == 1


def test_kill_9_mid_file_leaves_nothing_then_loads_once(clean: House, site: Site) -> None:
    house = clean
    stats = write_pageviews_hour(site.root, T0, lines=120_000, seed=8, compresslevel=0)
    site.faults.slow = 0.15  # per 64 KiB: the file takes ~20 s to arrive
    env = {**os.environ, "CLICKHOUSE_URL": house.url, "DUMPS_URL": site.url}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wiki_events",
            "pageviews",
            "--from",
            "2026-11-01T01",
            "--to",
            "2026-11-01T02",
            "--quiet",
            "--insert-block-rows",
            "5000",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    partial = 0
    while time.monotonic() < deadline and partial < 10_000:
        partial = bronze_rows(house, T0)
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert 10_000 <= partial < stats.lines, "the kill did not land mid-file"
    assert ledger_states(house, pageviews_name(T0)) == ["loading"]
    # rows reached bronze, silver and gold, yet nothing of the file is visible
    assert int(house.scalar("SELECT count() FROM silver.pageviews")) > 0
    assert gold_hours(house) == {}

    site.faults.slow = 0
    assert loader(house, site).run([PAGEVIEWS], T0, T0 + H) == {"loaded": 1}
    assert ledger_states(house, pageviews_name(T0)) == ["failed", "done"]
    assert gold_hours(house) == expected_hours({T0: stats})
    assert bronze_rows(house, T0) == stats.lines
    assert int(house.scalar("SELECT count() FROM silver.pageviews")) == stats.lines
    assert int(house.scalar("SELECT sum(views) FROM gold.pageviews_hour_wiki_loads")) == sum(
        stats.views_by_code.values()
    )


def test_follow_waits_for_a_missing_hour(clean: House, site: Site) -> None:
    house = clean
    first = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - 3 * H
    files = {first: write_pageviews_hour(site.root, first, lines=500, seed=9)}
    run = loader(house, site, poll=0.2)
    stop = threading.Event()
    thread = threading.Thread(
        target=run.run, args=([PAGEVIEWS, PROJECTVIEWS], first, None, True, stop.is_set)
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and gold_hours(house) != expected_hours(files):
            time.sleep(0.2)
        assert gold_hours(house) == expected_hours(files)
        later = first + H
        looks = len(site.faults.requests)
        while time.monotonic() < deadline and len(site.faults.requests) < looks + 4:
            time.sleep(0.1)  # it keeps looking for the next hour: not published yet
        assert not ledger_states(house, pageviews_name(later))
        files[later] = write_pageviews_hour(site.root, later, lines=500, seed=10)
        while time.monotonic() < deadline and gold_hours(house) != expected_hours(files):
            time.sleep(0.2)
        assert gold_hours(house) == expected_hours(files)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


# -- filters, mediacounts, status ------------------------------------------------------------


def test_wiki_and_project_filters(clean: House, site: Site) -> None:
    house = clean
    stats = write_pageviews_hour(site.root, T0, lines=3000, seed=11, bad_lines=2)
    wanted_wikis = {"dewiki", "wikidatawiki"}
    assert loader(house, site, wikis=frozenset(wanted_wikis)).run([PAGEVIEWS], T0, T0 + H) == {
        "loaded": 1
    }
    wanted = {k: v for k, v in expected_hours({T0: stats}).items() if k[1] in wanted_wikis}
    assert gold_hours(house) == wanted
    assert int(house.scalar("SELECT sum(lines) FROM bronze.dumps_rejects")) == 2
    # the ledger counts the rows kept (the two wikis' lines and the bad lines), and they
    # were checked against the lines sent: kept + left out by the filter
    kept = sum(1 for code, _ in stats.views_by_page if BY_CODE[code].wiki in wanted_wikis) + 2
    assert house.rows(f"SELECT rows, rejected FROM {schema.LEDGER} FINAL WHERE state = 'done'") == [
        (kept, 2)
    ]
    assert bronze_rows(house, T0) == kept
    left_out = int(house.scalar(f"SELECT sum(lines) FROM {schema.LEFT_OUT}"))
    assert kept + left_out == stats.lines + stats.bad_lines


class LosingLoader(Loader):
    """Reports one line more than it sent: as if ClickHouse had lost a line."""

    def _stream_into(self, *args: Any) -> tuple[int, dict[str, Any]]:
        lines, meta = super()._stream_into(*args)
        return lines + 1, meta


def test_a_filtered_load_is_checked_against_the_lines_sent(clean: House, site: Site) -> None:
    house = clean
    write_pageviews_hour(site.root, T0, lines=1000, seed=12)
    run = LosingLoader(
        house.ch, Options(base_url=site.url, backoff=0.05, projects=frozenset({"de"}))
    )
    assert run.run([PAGEVIEWS], T0, T0 + H) == {"failed": 1}
    message = house.scalar(f"SELECT message FROM {schema.LEDGER} FINAL WHERE state = 'failed'")
    assert "rows and left out" in message and "lines sent" in message, message
    assert gold_hours(house) == {}


def test_mediacounts_by_day_project_and_type(clean: House, site: Site) -> None:
    house = clean
    days = [dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 2, tzinfo=dt.UTC)]
    made: dict[dt.date, MediaStats] = {
        d.date(): write_mediacounts_day(site.root, d.date(), files=300, seed=i, bad_lines=2)
        for i, d in enumerate(days)
    }
    assert loader(house, site).run([MEDIACOUNTS], days[0], days[1] + dt.timedelta(days=1)) == {
        "loaded": 2
    }
    expected: dict[tuple[dt.date, str], tuple[int, int]] = {}
    for day, stats in made.items():
        for name, (size, total) in stats.files.items():
            key = (day, media_wiki(name))
            b, t = expected.get(key, (0, 0))
            expected[key] = (b + size, t + total)
    got = {
        (d, w): (int(b), int(t))
        for d, w, b, t in house.rows(
            "SELECT day, wiki, sum(bytes), sum(transfers) FROM gold.media_day GROUP BY day, wiki"
        )
    }
    assert got == expected
    assert int(house.scalar("SELECT sum(lines) FROM bronze.dumps_rejects")) == 4
    top = made[days[0].date()]
    best = max(top.files.items(), key=lambda kv: (kv[1][1], kv[0]))
    assert house.rows(
        "SELECT base_name, transfers FROM gold.top_media_day WHERE rank = 1 AND day = {d:Date}",
        d=days[0].date(),
    ) == [(best[0], best[1][1])]
    # the 'type' split: every transfer of a .webm is video, of an .ogg audio
    types = dict(
        house.rows("SELECT media_type, sum(transfers) FROM gold.media_day GROUP BY media_type")
    )
    ogg = sum(t for s in made.values() for n, (_, t) in s.files.items() if n.endswith(".ogg"))
    assert int(types["audio"]) == ogg


def test_status_lines(clean: House, site: Site) -> None:
    from dumps.status import checks

    house = clean
    write_pageviews_hour(site.root, T0, lines=300, seed=12)
    write_pageviews_hour(site.root, T0 + H, lines=300, seed=13)
    bad = site.root / pageviews_dir(T0 + H) / pageviews_name(T0 + H)
    bad.write_bytes(gzip.compress(b"en A 1 0\n")[:-6])
    loader(house, site).run([PAGEVIEWS], T0, T0 + 2 * H)
    lines = {stage: (state, text) for stage, state, text in checks(house.ch, now=T0 + 3 * H)}
    state, text = lines["pageviews"]
    assert state == "warn"
    assert "views up to 2026-11-01 01:00 UTC, 3.0 h behind; 1 file(s) loaded" in text
    assert "1 failed: pageviews-20261101-020000.gz" in text
    # the same for the dashboard, from gold: views up to 01:00 (the file's hour is its end)
    fresh = house.rows("SELECT dataset, files, data_until FROM gold.dumps_freshness")
    assert fresh == [("pageviews", 1, dt.datetime(2026, 11, 1, 1))]


# -- edits against views ---------------------------------------------------------------------


def edit_event(n: int, wiki: str, title: str, when: dt.datetime) -> bytes:
    event = {
        "meta": {"id": f"e{n}", "dt": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "domain": "x.org"},
        "type": "edit",
        "namespace": 0,
        "title": title,
        "user": f"U{n % 3}",
        "bot": False,
        "minor": False,
        "length": {"old": 10, "new": 12},
        "revision": {"old": n, "new": n + 1},
        "wiki": wiki,
    }
    return json.dumps(event).encode()


def test_edits_against_views(clean: House, site: Site) -> None:
    house = clean
    hours = [T0, T0 + H, T0 + 2 * H]
    files = {
        h: write_pageviews_hour(site.root, h, lines=4000, seed=20 + i) for i, h in enumerate(hours)
    }
    assert loader(house, site).run([PAGEVIEWS], T0, T0 + 3 * H) == {"loaded": 3}
    views: dict[tuple[dt.datetime, str, str], int] = defaultdict(int)  # (hour, wiki, title)
    for file_hour, stats in files.items():
        for (code, title), v in stats.views_by_page.items():
            views[
                ((file_hour - H).replace(tzinfo=None), BY_CODE[code].wiki, title.replace("_", " "))
            ] += v
    last = (hours[-1] - H).replace(tzinfo=None)
    in_last = {k: v for k, v in views.items() if k[0] == last and k[1] == "enwiki"}
    heavy = max(in_last, key=lambda k: in_last[k])
    quiet = min(in_last, key=lambda k: in_last[k])
    assert in_last[heavy] >= 1000 and in_last[quiet] < 10
    edits: dict[tuple[dt.datetime, str, str], int] = defaultdict(int)
    lines, n = [], 0
    for key in (heavy, quiet):
        for minute in (5, 20, 40):
            n += 1
            lines.append(
                edit_event(n, key[1], key[2], key[0].replace(minute=minute, tzinfo=dt.UTC))
            )
            edits[key] += 1
    n += 1
    lines.append(edit_event(n, "dewiki", "Berlin", last.replace(minute=1, tzinfo=dt.UTC)))
    edits[(last, "dewiki", "Berlin")] += 1
    verdicts = [judge(line) for line in lines]
    rows = [v for v in verdicts if isinstance(v, Valid)]
    assert len(rows) == len(lines), [v for v in verdicts if isinstance(v, Reject)]
    Bronze(house.ch).write(rows, [])

    # per wiki and hour: edits, views, edits per 1,000 views
    side = {
        (h, w): (int(e), int(v), r)
        for h, w, e, v, r in house.rows(
            "SELECT hour, wiki, edits, views, edits_per_1000_views FROM gold.edits_views_hour_wiki"
        )
    }
    enwiki_views = sum(v for k, v in views.items() if k[0] == last and k[1] == "enwiki")
    assert side[(last, "enwiki")] == (6, enwiki_views, round(6 * 1000 / enwiki_views, 3))
    dewiki_views = sum(v for k, v in views.items() if k[0] == last and k[1] == "dewiki")
    assert side[(last, "dewiki")][:2] == (1, dewiki_views)
    # the drill-down: views of the pages edited in that hour
    drill = house.rows(
        "SELECT wiki, title, edits, views, views_loaded FROM gold.edited_pages_views_hour"
    )
    assert sorted(drill) == sorted((k[1], k[2], e, views.get(k, 0), 1) for k, e in edits.items())
    # heavily read and heavily edited in the same hour (>= 1000 views, >= 3 edits)
    both = house.rows("SELECT hour, wiki, title, views, edits FROM gold.pages_read_and_edited_hour")
    assert both == [(*heavy, in_last[heavy], 3)]
    # attention without the other half
    spikes = house.rows("SELECT hour, wiki, title, kind FROM gold.page_attention_spikes_hour")
    assert (*quiet, "edits_without_views") in spikes
    expected_spikes = set()
    for (hour, wiki, title), v in views.items():
        base = sum(views.get((hour - k * H, wiki, title), 0) for k in range(1, 25)) / 24
        if v >= 500 and v >= 5 * base and edits.get((hour, wiki, title), 0) == 0:
            expected_spikes.add((hour, wiki, title, "views_without_edits"))
    got_spikes = {s for s in spikes if s[3] == "views_without_edits"}
    assert got_spikes == expected_spikes and expected_spikes


def test_hive_era_file_unquoted_with_zero_codes(clean: House, site: Site) -> None:
    """Files before the Spark port: bare quotes in titles, ``xx.zero`` codes, no ``""``."""
    house = clean
    stats = write_pageviews_hour(site.root, T0, lines=2000, seed=30, hive_era=True)
    assert loader(house, site).run([PAGEVIEWS], T0, T0 + H) == {"loaded": 1}
    assert gold_hours(house) == expected_hours({T0: stats})
    titles = {
        r[0] for r in house.rows("SELECT title FROM silver.pageviews WHERE domain_code = 'en'")
    }
    assert '"Weird_Al"_Yankovic' in titles
    zero = house.rows(
        "SELECT DISTINCT wiki, access FROM silver.pageviews WHERE domain_code = 'en.zero'"
    )
    assert zero == [("enwiki", "mobile")]


def test_one_dataset_leaves_the_others_loads_alone(clean: House, site: Site) -> None:
    """The pageviews and mediacounts followers run side by side: starting one must not
    take the other's load in progress for an abandoned one."""
    house = clean
    run = loader(house, site)
    now = dt.datetime.now(dt.UTC)
    ident = {
        "dataset": "pageviews",
        "name": pageviews_name(T0),
        "load_id": 7,
        "period": T0,
        "url": "x",
        "started_at": now,
    }
    run._ledger(**ident, size=1, last_modified=now, state="loading")
    day = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert loader(house, site).run([MEDIACOUNTS], day, day + dt.timedelta(days=1)) == {"missing": 1}
    assert ledger_states(house, pageviews_name(T0)) == ["loading"]
    loader(house, site).run([PAGEVIEWS], T0, T0 + H)
    assert ledger_states(house, pageviews_name(T0)) == ["failed"]


def test_service_follows_both_datasets_until_stopped(
    clean: House, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `wiki-events up --dumps` runs: dumps.service.start, stopped by an Event."""
    from dumps import service

    house = clean
    monkeypatch.setenv("CLICKHOUSE_URL", house.url)
    monkeypatch.setenv("DUMPS_URL", site.url)
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - 2 * H
    files = {hour: write_pageviews_hour(site.root, hour, lines=400, seed=40)}
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).date()  # where the follower starts
    write_mediacounts_day(site.root, day, files=50, seed=41)
    service.prepare(house.ch)
    stop = threading.Event()
    threads = service.start(stop, poll=0.2)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            gold_hours(house) != expected_hours(files)
            or not house.rows("SELECT 1 FROM gold.media_day LIMIT 1")
        ):
            time.sleep(0.2)
        assert gold_hours(house) == expected_hours(files)
        assert house.rows("SELECT DISTINCT day FROM gold.media_day") == [(day,)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not any(thread.is_alive() for thread in threads)


def test_stored_attention_spikes_equal_the_query_time_definition(clean: House, site: Site) -> None:
    """Spikes computed once per loaded hour, with hours loaded out of order (a missing
    hour that appears later changes the baselines after it), a republished hour, a
    failed load, and edits that arrive after the views: the same rows as the window over
    silver at query time and as Python computes them from the files."""
    house = clean
    hours = [T0 + i * H for i in range(5)]
    files = {
        h: write_pageviews_hour(site.root, h, lines=3000, seed=50 + i) for i, h in enumerate(hours)
    }
    assert loader(house, site).run([PAGEVIEWS], hours[1], hours[-1] + H) == {"loaded": 4}
    assert loader(house, site).run([PAGEVIEWS], hours[0], hours[1]) == {"loaded": 1}  # late
    # republished: hour 2 again, with other views (its own spikes and hours 3-4's change)
    path = site.root / pageviews_dir(hours[2]) / pageviews_name(hours[2])
    published = path.stat().st_mtime
    files[hours[2]] = write_pageviews_hour(site.root, hours[2], lines=3200, seed=60)
    os.utime(path, (published + 120, published + 120))
    assert loader(house, site).run([PAGEVIEWS], hours[2], hours[3]) == {"replaced": 1}
    # republished once more, but cut short: it fails, and hour 2 stays as it was
    good = path.read_bytes()
    write_pageviews_hour(site.root, hours[2], lines=3400, seed=61)
    path.write_bytes(path.read_bytes()[:-40])
    os.utime(path, (published + 240, published + 240))
    assert loader(house, site).run([PAGEVIEWS], hours[2], hours[3]) == {"failed": 1}
    path.write_bytes(good)

    views: dict[tuple[dt.datetime, str, str], int] = defaultdict(int)  # (hour, wiki, title)
    for file_hour, stats in files.items():
        for (code, title), v in stats.views_by_page.items():
            hour = (file_hour - H).replace(tzinfo=None)
            views[(hour, BY_CODE[code].wiki, title.replace("_", " "))] += v
    last = (hours[-1] - H).replace(tzinfo=None)

    def baseline(key: tuple[dt.datetime, str, str]) -> float:
        return sum(views.get((key[0] - k * H, key[1], key[2]), 0) for k in range(1, 25)) / 24

    # live edits, after the views were loaded: a spiking page edited (no longer a views
    # spike), a hardly read page edited heavily, a heavily read one too
    spiking = sorted(
        k for k, v in views.items() if k[0] == last and v >= 500 and v >= 5 * baseline(k)
    )
    in_last = {k: v for k, v in views.items() if k[0] == last and k[1] == "enwiki"}
    quiet = min(in_last, key=lambda k: (in_last[k], k))
    read = max(in_last, key=lambda k: (in_last[k], k))
    unseen = (last, "dewiki", "Not viewed anywhere")
    edited = {spiking[0]: 1, quiet: 3, read: 4, unseen: 3}
    events, n = [], 0
    for (hour, wiki, title), count in edited.items():
        for minute in range(count):
            n += 1
            events.append(edit_event(n, wiki, title, hour.replace(minute=minute, tzinfo=dt.UTC)))
    verdicts = [judge(line) for line in events]
    Bronze(house.ch).write([v for v in verdicts if isinstance(v, Valid)], [])

    expected = set()
    for key, v in views.items():
        e = edited.get(key, 0)
        if v >= 500 and v >= 5 * baseline(key) and e == 0:
            expected.add((*key, v, 0, round(baseline(key), 6), "views_without_edits"))
    for key, e in edited.items():
        if e >= 3 and views.get(key, 0) < 10:
            expected.add(
                (*key, views.get(key, 0), e, round(baseline(key), 6), "edits_without_views")
            )
    assert (*unseen, 0, 3, 0.0, "edits_without_views") in expected

    def rows(sql: str) -> set[tuple[Any, ...]]:
        return {
            (h, w, t, int(v), int(e), round(b, 6), k) for h, w, t, v, e, b, k in house.rows(sql)
        }

    stored = rows(
        "SELECT hour, wiki, title, views, edits, baseline_views, kind "
        "FROM gold.page_attention_spikes_hour"
    )
    assert stored == expected
    assert rows(QUERY_TIME_SPIKES) == expected
    # every hour has spikes of its own, and the stored rows are few: not silver again
    assert {k[0] for k in expected if k[-1] == "views_without_edits"} == {
        (h - H).replace(tzinfo=None) for h in hours
    }
    assert spiking[0] not in {row[:3] for row in stored}  # edited after its views were loaded
    assert (*quiet, in_last[quiet], 3, round(baseline(quiet), 6), "edits_without_views") in stored
    # the loads that failed or were replaced left no computation behind
    runs = house.rows(
        "SELECT DISTINCT load_id FROM gold.page_attention_hours_loads "
        "WHERE load_id NOT IN (SELECT load_id FROM bronze.dumps_visible)"
    )
    assert runs == []


def test_a_failed_spikes_computation_costs_the_spikes_not_the_load(
    clean: House, site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The spikes are computed once the hour's views are published: when that fails, the
    load stays done (its views in gold), the failure is logged, and the next catch-up
    (a start, or --follow waiting for the next hour) computes the hour."""
    from dumps import spikes

    house = clean
    write_pageviews_hour(site.root, T0, lines=2000, seed=70)
    computed = spikes.for_load

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Code: 241. DB::Exception: Memory limit exceeded")

    monkeypatch.setattr(spikes, "for_load", broken)
    with caplog.at_level("WARNING", logger="dumps"):
        assert loader(house, site).run([PAGEVIEWS], T0, T0 + H) == {"loaded": 1}
    assert "attention spikes were not computed (Code: 241" in caplog.text
    assert house.rows("SELECT count() FROM gold.pageviews_hour_wiki") != [(0,)]
    hours = "SELECT count() FROM gold.page_attention_hours_loads"
    assert house.rows(hours) == [(0,)]
    monkeypatch.setattr(spikes, "for_load", computed)
    assert loader(house, site).run([PAGEVIEWS], T0, T0 + H) == {"skipped": 1}  # caught up
    assert house.rows(hours) == [(1,)]
    assert (
        house.rows(
            "SELECT load_id FROM gold.page_attention_hours_loads "
            "WHERE load_id NOT IN (SELECT load_id FROM bronze.dumps_visible)"
        )
        == []
    )
