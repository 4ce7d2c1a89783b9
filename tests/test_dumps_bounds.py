"""The dumps loader against a hostile or broken site, and against mirrors (issue 24):
every byte it reads is bounded, and every common index page is read. Each case is
served by the local dumps site and loaded into the real ClickHouse engine (its own
process; no dbt needed: bronze, the ledger and its visible view are the loader's own
tables). A hostile file must fail fast with a message naming the limit, leave the
ledger ``failed`` with that message, nothing visible and no row left behind, while the
loader's and the server's memory stay bounded (sampled every 10 ms; bound: 200 MB of
growth each, a generous multiple of the few 1 MiB pieces in flight)."""

from __future__ import annotations

import bz2
import datetime as dt
import logging
import os
import re
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from dumps import schema
from dumps.load import (
    MEDIACOUNTS,
    PAGEVIEWS,
    PROJECTVIEWS,
    Dataset,
    Limits,
    Loader,
    LoadFailed,
    Options,
)
from wiki_core.config import clickhouse_client

from .helpers.clickhouse import ClickHouseProcess
from .helpers.dumps_files import (
    mediacounts_dir,
    mediacounts_name,
    pageviews_dir,
    pageviews_name,
    projectviews_name,
    write_pageviews_hour,
)
from .helpers.dumps_site import DumpsSite, Faults, ServerThread, Site, serve
from .helpers.ports import free_port
from .helpers.signals import sigterm_when

T0 = dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC)
DAY0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
MB = 1 << 20
RSS_BOUND = 200 * MB


@dataclass
class Place:
    server: ClickHouseProcess
    ch: Any


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    server = ClickHouseProcess(tmp_path_factory.mktemp("bounds") / "data").start()
    ch = clickhouse_client(f"http://default:@127.0.0.1:{server.port}/default")
    schema.migrate(ch)
    yield Place(server, ch)
    ch.close()
    server.stop()


@pytest.fixture(autouse=True)
def clean(place: Place) -> None:
    """Each test counts its own loads."""
    for (name,) in place.ch.query(
        "SELECT name FROM system.tables WHERE database = 'bronze' AND engine LIKE '%MergeTree'"
    ).result_rows:
        place.ch.command(f"TRUNCATE TABLE bronze.`{name}`")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with serve(tmp_path / "other") as found:
        yield found


class PeakRSS:
    """The most each process's resident memory grew while the block ran."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.base = {name: _rss(pid) for name, pid in pids.items()}
        self.peak = dict(self.base)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], _rss(pid))

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def growth(self) -> dict[str, int]:
        return {name: self.peak[name] - self.base[name] for name in self.pids}


def _rss(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", text)
    assert found
    return int(found.group(1)) * 1024


def load(
    place: Place,
    site: Site,
    dataset: Dataset,
    period: dt.datetime,
    hours: int = 1,
    **limits: Any,
) -> tuple[dict[str, int], float, dict[str, int]]:
    """One file loaded (or ``hours`` periods): (the outcome counts, seconds taken, RSS
    growth per process)."""
    opts = Options(base_url=site.url, backoff=0.05, limits=replace(Limits(), **limits))
    loader = Loader(place.ch, opts)
    assert place.server.proc is not None
    started = time.monotonic()
    with PeakRSS(loader=os.getpid(), clickhouse=place.server.proc.pid) as rss:
        counts = loader.run([dataset], period, period + hours * dataset.step)
    loader.close()
    growth = rss.growth()
    assert all(grew < RSS_BOUND for grew in growth.values()), growth
    return counts, time.monotonic() - started, growth


def failed_cleanly(place: Place, dataset: Dataset, name: str) -> str:
    """The file's one load is ``failed`` and nothing of it shows or stays; its message."""
    rows = place.ch.query(
        f"SELECT state, message, load_id FROM {schema.LEDGER} FINAL WHERE name = {{n:String}}",
        parameters={"n": name},
    ).result_rows
    assert [r[0] for r in rows] == ["failed"], rows
    visible = place.ch.command(
        f"SELECT count() FROM {schema.VISIBLE} WHERE name = {{n:String}}", parameters={"n": name}
    )
    left = place.ch.command(
        f"SELECT count() FROM bronze.{dataset.name} WHERE load_id = {int(rows[0][2])}"
    )
    assert (visible, left) == (0, 0)
    return str(rows[0][1])


def test_a_bz2_bomb_stops_at_the_ratio_to_its_listed_size(place: Place, site: Site) -> None:
    """3 KB of bz2 that would be 4 GiB of NULs: stopped after 50 x the listed size."""
    folder = site.root / mediacounts_dir(DAY0.date())
    folder.mkdir(parents=True)
    bomb = bz2.compress(bytes(64 * MB), 9) * 40
    assert len(bomb) < 4000
    (folder / mediacounts_name(DAY0.date())).write_bytes(bomb)
    counts, seconds, _ = load(place, site, MEDIACOUNTS, DAY0)
    assert counts == {"failed": 1} and seconds < 10
    message = failed_cleanly(place, MEDIACOUNTS, mediacounts_name(DAY0.date()))
    assert f"decompresses to more than {50 * len(bomb):,} bytes" in message
    assert "DUMPS_MAX_RATIO 50" in message and "DUMPS_MAX_DECODED_GB" in message


def test_a_bz2_bomb_of_lines_stops_at_the_ceiling(place: Place, site: Site) -> None:
    """Well-formed lines by the GiB (a ratio the operator allowed): the absolute ceiling
    stops it, with memory bounded in the loader and in ClickHouse."""
    folder = site.root / mediacounts_dir(DAY0.date())
    folder.mkdir(parents=True)
    line = b"/wikipedia/commons/a/a9/X.jpg" + b"\t0" * 24 + b"\n"
    bomb = bz2.compress(line * (8 * MB // len(line)), 9) * 500  # 4 GB of rows
    (folder / mediacounts_name(DAY0.date())).write_bytes(bomb)
    counts, seconds, growth = load(
        place, site, MEDIACOUNTS, DAY0, max_ratio=1e9, max_decoded=24 * MB
    )
    assert counts == {"failed": 1} and seconds < 30, (counts, seconds, growth)
    message = failed_cleanly(place, MEDIACOUNTS, mediacounts_name(DAY0.date()))
    assert f"decompresses to more than {24 * MB:,} bytes" in message


def test_a_gzip_of_one_endless_line_stops_at_the_line_limit(place: Place, site: Site) -> None:
    """250 KB of gzip holding one 256 MiB line: refused at the 64 KiB line limit, before
    ClickHouse is handed a line it would have to hold whole."""
    folder = site.root / pageviews_dir(T0)
    folder.mkdir(parents=True)
    pack = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"x" * MB
    bomb = pack.compress(b"en Main_Page 1 0\n") + b"".join(pack.compress(zeros) for _ in range(256))
    bomb += pack.flush()
    (folder / pageviews_name(T0)).write_bytes(bomb)
    counts, seconds, _ = load(place, site, PAGEVIEWS, T0, max_ratio=1e9)
    assert counts == {"failed": 1} and seconds < 10
    message = failed_cleanly(place, PAGEVIEWS, pageviews_name(T0))
    assert "line 2 is longer than 65,536 bytes (DUMPS_MAX_LINE_BYTES)" in message


def test_an_endless_body_stops_past_its_listed_size(place: Place, site: Site) -> None:
    """The index lists a projectviews file of a few KB; the body never ends (chunked, no
    Content-Length): cut at the listed size + 1 MiB."""
    write_pageviews_hour(site.root, T0, lines=300, seed=1)
    name = projectviews_name(T0)
    listed = (site.root / pageviews_dir(T0) / name).stat().st_size
    site.faults.endless = True
    counts, seconds, _ = load(place, site, PROJECTVIEWS, T0)
    assert counts == {"failed": 1} and seconds < 10
    message = failed_cleanly(place, PROJECTVIEWS, name)
    assert f"the body goes on past {listed + MB:,} bytes, more than the {listed:,}" in message


def test_a_body_longer_than_listed_is_refused_before_it_is_read(place: Place, site: Site) -> None:
    """The index said a few KB; the server then announces 3 MB (a file swapped between
    the listing and the download, or a site that lies): refused on the headers."""
    write_pageviews_hour(site.root, T0, lines=300, seed=1)
    name = projectviews_name(T0)
    loader = Loader(place.ch, Options(base_url=site.url, backoff=0.05))
    listed = loader.listing(pageviews_dir(T0) + "/")[name]
    (site.root / pageviews_dir(T0) / name).write_bytes(b"en - 1 0\n" * 333_333)
    assert loader.load_file(PROJECTVIEWS, T0, listed) == "failed"
    loader.close()
    message = failed_cleanly(place, PROJECTVIEWS, name)
    assert f"the server sends 2,999,997 bytes, more than the {listed.size:,}" in message


def test_a_huge_index_page_is_refused_unread(place: Place, site: Site) -> None:
    """An index page of 40 MiB: read up to 32 MiB, then the run ends with the reason."""
    write_pageviews_hour(site.root, T0, lines=300, seed=1)
    site.faults.listing = "huge"
    loader = Loader(place.ch, Options(base_url=site.url, backoff=0.05))
    started = time.monotonic()
    with pytest.raises(LoadFailed, match="the page is larger than 33,554,432 bytes"):
        loader.run([PAGEVIEWS], T0, T0 + PAGEVIEWS.step)
    loader.close()
    assert time.monotonic() - started < 10


def test_a_slow_site_stops_at_the_time_limit(place: Place, site: Site) -> None:
    """A site that trickles (a pause after every 64 KiB) is given the file's time and no
    more, though no single read ever times out."""
    write_pageviews_hour(site.root, T0, lines=30_000, seed=1, compresslevel=0)
    site.faults.slow = 0.4
    counts, seconds, _ = load(place, site, PAGEVIEWS, T0, file_seconds=1.0, min_rate=1e12)
    assert counts == {"failed": 1} and seconds < 5
    message = failed_cleanly(place, PAGEVIEWS, pageviews_name(T0))
    assert "took more than 1 s (DUMPS_FILE_SECONDS 1" in message


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("http://127.0.0.1:{port}/other/x", "not the dumps site (127.0.0.1;"),
        ("file:///etc/passwd", "not the dumps site's scheme (http)"),
        ("http://localhost:{port}/other/x", "not a public address"),
    ],
)
def test_a_redirect_off_the_site_is_refused_at_once(
    place: Place, site: Site, where: str, said: str
) -> None:
    """To another port of the same loopback, to ``file:``, to a listed mirror that is
    loopback: refused before it is asked, with no retry; the other server sees nothing."""
    write_pageviews_hour(site.root, T0, lines=300, seed=1)
    other_faults = Faults()
    with ServerThread(DumpsSite(site.root, other_faults), free_port()) as other:
        port = other.url.split(":")[2].split("/")[0]
        site.faults.redirect = where.format(port=port)
        counts, seconds, _ = load(
            place, site, PROJECTVIEWS, T0, redirect_hosts=frozenset({f"localhost:{port}"})
        )
    assert counts == {"failed": 1} and seconds < 5
    message = failed_cleanly(place, PROJECTVIEWS, projectviews_name(T0))
    assert message.startswith("refused a redirect to ") and said in message, message
    files = [path for path, _ in site.faults.requests if not path.endswith("/")]
    assert len(files) == 1 and other_faults.requests == []


def test_a_redirect_within_the_site_is_followed(place: Place, site: Site) -> None:
    write_pageviews_hour(site.root, T0, lines=300, seed=1)
    name = projectviews_name(T0)
    site.faults.redirect = f"/other/{pageviews_dir(T0)}/{name}?mirror=1"
    counts, _, _ = load(place, site, PROJECTVIEWS, T0)
    assert counts == {"loaded": 1}


def bronze_count(place: Place, dataset: Dataset) -> int:
    return int(
        place.ch.command(
            f"SELECT count() FROM bronze.{dataset.name} WHERE load_id IN "
            f"(SELECT load_id FROM {schema.VISIBLE})"
        )
    )


@pytest.mark.parametrize(
    ("listing", "head"),
    [("nginx", True), ("apache", True), ("python", True), ("plain", True), ("apache", False)],
)
def test_a_mirror_is_read_whatever_its_index_page(
    place: Place, site: Site, listing: str, head: bool
) -> None:
    """The hour present is loaded, the next one (absent) is "not published", and a rerun
    skips the file: its size and date, asked of the file where the index does not say
    them (HEAD, or GET's headers where HEAD is refused), match what the ledger kept."""
    stats = write_pageviews_hour(site.root, T0, lines=500, seed=1)
    site.faults.listing, site.faults.head = listing, head
    counts, _, _ = load(place, site, PAGEVIEWS, T0, hours=2)
    assert counts == {"loaded": 1, "missing": 1}
    assert bronze_count(place, PAGEVIEWS) == stats.lines
    asked = [path for path, _ in site.faults.requests if path.endswith(".gz")]
    again, _, _ = load(place, site, PAGEVIEWS, T0, hours=2)
    assert again == {"skipped": 1, "missing": 1}
    assert bronze_count(place, PAGEVIEWS) == stats.lines
    # nginx's index says size and date: the file's one request is its GET; others add a
    # HEAD per run (and a GET whose body is left unread where HEAD is refused)
    rerun = [path for path, _ in site.faults.requests if path.endswith(".gz")][len(asked) :]
    expected = (1, 0) if listing == "nginx" else (2, 1) if head else (3, 2)
    assert (len(asked), len(rerun)) == expected, (asked, rerun)


def test_an_unreachable_site_is_one_line_with_its_cause_and_remedy(
    place: Place, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `up --dumps` and the compose followers run, with no dumps site (a closed
    port): each follower says in one line what is wrong and what to do, no traceback,
    and stops when told."""
    from dumps import service

    monkeypatch.setenv("CLICKHOUSE_URL", f"http://default:@127.0.0.1:{place.server.port}/default")
    monkeypatch.delenv("DUMPS_CLICKHOUSE_URL", raising=False)
    site = f"http://127.0.0.1:{free_port()}/other/"
    monkeypatch.setenv("DUMPS_URL", site)
    stop = threading.Event()
    with caplog.at_level(logging.INFO, logger="dumps"):
        threads = service.start(stop, poll=60, backoff=0.01)
        deadline = time.monotonic() + 20
        while len([r for r in caplog.records if r.levelno >= logging.ERROR]) < 2:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.05)
        stopped = time.monotonic()
        stop.set()
        for thread in threads:
            thread.join(5)
        assert time.monotonic() - stopped < 3
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(r.exc_info is None for r in errors), caplog.text
    said = sorted(r.getMessage() for r in errors)
    for follower, line in zip(("mediacounts", "pageviews"), said, strict=True):
        assert line.startswith(
            f"dumps follower {follower}: the dumps site is not answering at {site}"
        ), line
        assert "(connection refused: nothing listens there): check DUMPS_URL" in line, line
        assert line.endswith("load them with --from/--to); again in 60 s"), line


@pytest.mark.parametrize("command", ["pageviews", "mediacounts"])
def test_a_follower_stops_on_sigterm_while_the_site_is_down(
    place: Place, tmp_path: Path, command: str
) -> None:
    """`wiki-events pageviews --follow` (and mediacounts) waiting to retry a site that
    refuses connections: SIGTERM ends it at once, status 0, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "DUMPS_"))}
    env |= {
        "CLICKHOUSE_URL": f"http://default:@127.0.0.1:{place.server.port}/default",
        "DUMPS_URL": f"http://127.0.0.1:{free_port()}/other/",
        "WIKI_EVENTS_DATA": str(tmp_path / "var"),
    }
    ended = sigterm_when([command, "--follow", "--quiet"], env, tmp_path / "log", "retry in")
    assert ended.returncode == 0 and ended.seconds < 3, ended
    text = ended.log
    assert "stopped while waiting to retry" in text and "Traceback" not in text, text


def test_a_stop_mid_file_fails_the_load_and_shows_nothing(place: Place, site: Site) -> None:
    """Asked to stop while a file trickles in: the load ends within a chunk, is
    ``failed`` ("stopped mid-file"), nothing of it is visible, and the run says
    ``stopped`` (not ``failed``)."""
    write_pageviews_hour(site.root, T0, lines=30_000, seed=1, compresslevel=0)
    site.faults.slow = 0.3
    stop = threading.Event()
    loader = Loader(place.ch, Options(base_url=site.url, backoff=0.05))
    counts: dict[str, int] = {}
    runner = threading.Thread(
        target=lambda: counts.update(
            loader.run([PAGEVIEWS], T0, T0 + PAGEVIEWS.step, stop=stop.is_set)
        )
    )
    runner.start()
    deadline = time.monotonic() + 10
    while not any(path.endswith(".gz") for path, _ in site.faults.requests):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.4)  # a chunk or two in
    stopped = time.monotonic()
    stop.set()
    runner.join(10)
    assert not runner.is_alive() and time.monotonic() - stopped < 3
    loader.close()
    assert counts == {"stopped": 1}
    message = failed_cleanly(place, PAGEVIEWS, pageviews_name(T0))
    assert message.startswith("stopped mid-file"), message
