"""The dumps' parts on their own: the local dumps site (index pages, 404, Range, faults),
the index parser, the generator (determinism, the fact sheet's quirks), the domain table
and the --wiki filter's codes, the stream decoder."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dumps.domains import BY_CODE, CODES, codes_for_wiki, media_wiki
from dumps.load import MAX_INDEX_ENTRIES, PIECE, LoadFailed, _Decoder, _Lines, parse_index
from wiki_core.config import user_agent

from .helpers.cli import wiki_events
from .helpers.dumps_files import (
    pageview_lines,
    pageviews_dir,
    pageviews_name,
    projectviews_name,
    write_mediacounts_day,
    write_pageviews_hour,
)
from .helpers.dumps_site import DumpsSite, Faults, ServerThread
from .helpers.ports import free_port

HOUR = dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, Faults, str]]:
    root = tmp_path / "other"
    write_pageviews_hour(root, HOUR, lines=500, seed=1)
    faults = Faults()
    with ServerThread(DumpsSite(root, faults), free_port()) as server:
        yield root, faults, server.url


def test_index_pages_look_like_nginx_and_parse_back(served: tuple[Path, Faults, str]) -> None:
    root, _, url = served
    page = httpx.get(url + "pageviews/2026/2026-11/")
    assert page.status_code == 200
    text = page.text
    assert text.startswith("<html>\r\n<head><title>Index of /other/pageviews/2026/2026-11/</title>")
    assert text.endswith("</pre><hr></body>\r\n</html>\r\n")
    name = pageviews_name(HOUR)
    line = next(x for x in text.split("\r\n") if f'href="{name}"' in x)
    # name padded to column 50, a space, DD-Mon-YYYY HH:MM, a space, size right-aligned to 19
    size = (root / pageviews_dir(HOUR) / name).stat().st_size
    assert line.endswith(f"{size:>19}")
    assert line.index("</a>") + 4 + (50 - len(name)) + 1 == len(line) - 19 - 1 - 17
    listed = parse_index(text)
    assert set(listed) == {name, projectviews_name(HOUR)}
    assert listed[name].size == size
    folders = httpx.get(url + "pageviews/2026/").text
    assert '<a href="2026-11/">2026-11/</a>' in folders and parse_index(folders) == {}


def test_any_index_page_names_its_files_and_a_huge_one_is_refused() -> None:
    """Links other than nginx's rows: names only (size -1: asked of the file), folders,
    sorting links and anchors left out, single quotes and absolute paths understood."""
    page = (
        '<a href="?C=N;O=D">Name</a> <a href="../">up</a> <a href="#top">top</a>'
        "<li><a href='/other/x/pageviews-20261101-010000.gz'>a</a></li>"
        '<td><A HREF="projectviews-20261101-010000">b</A></td> <a href="sub/">sub/</a>'
        '<a class="x" href="my%20file.gz">c</a>'
    )
    listed = parse_index(page)
    assert set(listed) == {
        "pageviews-20261101-010000.gz",
        "projectviews-20261101-010000",
        "my file.gz",
    }
    assert all(not entry.known for entry in listed.values())
    many = "".join(f'<a href="f{i}">f</a>\n' for i in range(MAX_INDEX_ENTRIES + 1))
    with pytest.raises(LoadFailed, match="the index lists more than 200,000 files"):
        parse_index(many)


def test_missing_hour_is_404(served: tuple[Path, Faults, str]) -> None:
    _, _, url = served
    assert httpx.get(url + "pageviews/2026/2026-11/pageviews-20261101-020000.gz").status_code == 404
    assert httpx.get(url + "pageviews/2031/").status_code == 404


def test_range_etag_and_faults(served: tuple[Path, Faults, str]) -> None:
    root, faults, url = served
    path = root / pageviews_dir(HOUR) / pageviews_name(HOUR)
    data = path.read_bytes()
    target = url + pageviews_dir(HOUR) + "/" + pageviews_name(HOUR)
    whole = httpx.get(target)
    assert whole.content == data and whole.headers["accept-ranges"] == "bytes"
    etag, modified = whole.headers["etag"], whole.headers["last-modified"]
    assert modified.endswith("GMT")
    part = httpx.get(target, headers={"Range": "bytes=100-", "If-Range": etag})
    assert part.status_code == 206 and part.content == data[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    assert httpx.get(target, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    # a changed file: If-Range no longer matches, the whole file comes back
    stale = httpx.get(target, headers={"Range": "bytes=100-", "If-Range": '"0-0"'})
    assert stale.status_code == 200 and stale.content == data
    # no ranges at all
    faults.ranges = False
    assert httpx.get(target, headers={"Range": "bytes=100-"}).status_code == 200
    # cut mid-file: the connection drops short of Content-Length
    faults.cut_after, faults.cuts = 1000, 1
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(target)
    assert httpx.get(target).content == data  # only one response was cut


def test_generator_is_deterministic_and_has_the_quirks(tmp_path: Path) -> None:
    a = b"".join(pageview_lines(5000, seed=3))
    assert a == b"".join(pageview_lines(5000, seed=3))
    assert a != b"".join(pageview_lines(5000, seed=4))
    lines = a.decode().splitlines()
    assert lines == sorted(lines, key=lambda x: x.encode())  # sorted by code, then title
    codes = {line.split(" ")[0] for line in lines}
    assert {'""', "commons.m.m", "www.wd", "m.wd", "zh-min-nan", "en.m.d"} <= codes
    assert 'en "\\"Weird_Al\\"_Yankovic"' in "\n".join(lines)
    assert any(line.startswith("en - ") for line in lines)
    assert all(line.endswith(" 0") and len(line.split(" ")) == 4 for line in lines)
    hive = b"".join(pageview_lines(5000, seed=3, hive_era=True)).decode()
    assert 'en "Weird_Al"_Yankovic ' in hive and "\nen.zero " in hive and '"" ' not in hive
    bad = b"".join(pageview_lines(5000, seed=3, bad_lines=3)).decode(errors="replace").splitlines()
    assert len(bad) == len(lines) + 3
    # the projectviews file sums the hour per code; the empty code optional
    stats = write_pageviews_hour(tmp_path, HOUR, lines=800, seed=2, projectviews_empty_code=False)
    folder = tmp_path / pageviews_dir(HOUR)
    totals = {
        line.split(" ")[0]: int(line.split(" ")[2])
        for line in (folder / projectviews_name(HOUR)).read_text().splitlines()
    }
    assert totals == {c: v for c, v in stats.views_by_code.items() if c}
    pv = gzip.decompress((folder / pageviews_name(HOUR)).read_bytes()).decode().splitlines()
    assert sum(int(x.split(" ")[2]) for x in pv if x.startswith("de ")) == totals["de"]


def test_mediacounts_rows_add_up(tmp_path: Path) -> None:
    stats = write_mediacounts_day(tmp_path, dt.date(2026, 11, 1), files=200, seed=1)
    path = tmp_path / "mediacounts/daily/2026/mediacounts.2026-11-01.v00.tsv.bz2"
    rows = [line.split("\t") for line in bz2.decompress(path.read_bytes()).decode().splitlines()]
    assert len(rows) == stats.rows == 200 and all(len(r) == 25 for r in rows)
    for r in rows:
        total = int(r[2])
        assert total == int(r[3]) + int(r[4]) + int(r[7]) + int(r[16])
        assert total == int(r[22]) + int(r[23]) + int(r[24])
        assert r[5] == r[6] == r[14] == r[15] == r[20] == r[21] == "-"
    names = [r[0] for r in rows]
    assert names == sorted(names) and "/wikipedia/commons/d/d4/Paris%2C_France.jpg" in names
    assert media_wiki("/wikipedia/commons/a/a9/X.jpg") == "commonswiki"
    assert media_wiki("/wiktionary/fr/1/1a/X.ogg") == "frwiktionary"
    assert media_wiki("/math/8/2/6/x.png") == media_wiki("/favicon.ico") == ""


def test_wiki_filter_codes_cover_the_domain_table() -> None:
    for code in CODES:
        assert code.code in codes_for_wiki(code.wiki), code
    assert codes_for_wiki("enwiki") == ["en", "en.m", "en.zero"]
    assert codes_for_wiki("wikidatawiki") == ["m.wd", "www.wd"]
    assert codes_for_wiki("commonswiki") == ["commons.m", "commons.m.m"]
    assert BY_CODE[""].wiki == "wikifunctionswiki"


def decode(dec: _Decoder, data: bytes) -> bytes:
    return b"".join(dec.feed(data))


def test_decoder_tells_truncated_and_corrupt_from_good() -> None:
    data = b"en Main_Page 3 0\n" * 1000
    packed = gzip.compress(data)
    two_members = packed + gzip.compress(b"fr X 1 0\n")
    dec = _Decoder("gzip")
    out = b"".join(decode(dec, two_members[i : i + 100]) for i in range(0, len(two_members), 100))
    dec.finish()
    assert out == data + b"fr X 1 0\n"
    cut = _Decoder("gzip")
    decode(cut, packed[:-10])
    with pytest.raises(LoadFailed, match="truncated gzip"):
        cut.finish()
    broken = bytearray(packed)
    broken[-8] ^= 0xFF  # the CRC
    with pytest.raises(LoadFailed, match="corrupt gzip"):
        decode(_Decoder("gzip"), bytes(broken))
    b = _Decoder("bz2")
    assert decode(b, bz2.compress(data)) == data
    b.finish()


@pytest.mark.parametrize("compression", ["gzip", "bz2"])
def test_a_member_that_ends_where_a_chunk_ends_is_followed_by_the_next(
    compression: str,
) -> None:
    """Multi-member files (pbzip2, gzip -c a b): a member whose end falls exactly on a
    chunk's end leaves no unused data, and the next chunk starts the next member."""
    pack = gzip.compress if compression == "gzip" else bz2.compress
    first, second = b"en A 1 0\n" * 500, b"fr B 2 0\n" * 500
    dec = _Decoder(compression)
    out = decode(dec, pack(first)) + decode(dec, pack(second))
    dec.finish()
    assert out == first + second


@pytest.mark.parametrize("compression", ["gzip", "bz2"])
def test_a_bomb_is_decoded_in_bounded_pieces(compression: str) -> None:
    """One network chunk that expands to 4 GiB comes out a piece at a time (at most
    ``PIECE`` bytes each), so the caller can stop it after the first few; the pieces of a
    small member still join to the whole."""
    if compression == "bz2":
        member = bz2.compress(bytes(64 << 20), 9)  # 79 bytes
        chunk = member * 64  # 4 GiB in ~5 KB
    else:
        pack = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = bytes(1 << 20)
        chunk = b"".join(pack.compress(zeros) for _ in range(64)) + pack.flush()  # 64 MiB
    pieces = _Decoder(compression).feed(chunk)
    sizes = [len(next(pieces)) for _ in range(40)]
    assert max(sizes) <= PIECE and sum(sizes) >= 20 * PIECE
    pieces.close()
    data = b"en A 1 0\n" * 300_000  # 2.7 MB: several pieces, nothing lost between them
    pack_small = gzip.compress if compression == "gzip" else bz2.compress
    dec = _Decoder(compression)
    assert decode(dec, pack_small(data) * 2) == data * 2
    dec.finish()


@pytest.mark.parametrize("piece", [1, 7, 100, 4096, 1 << 20])
def test_line_lengths_are_measured_across_pieces(piece: int) -> None:
    """The longest line is found wherever it falls: inside a piece, across pieces, last
    without its newline; a line of exactly the limit passes."""
    limit = 1000
    good = b"".join(b"x" * n + b"\n" for n in (0, 5, 999, 1000, 3, 1000)) + b"y" * 1000
    counter = _Lines(limit)
    for at in range(0, len(good), piece):
        counter.feed(good[at : at + piece])
    counter.finish()
    assert counter.count == len(good.split(b"\n"))
    for bad, line in (
        (b"a\n" * 5 + b"x" * 1001 + b"\nb\n", 6),
        (b"x" * 1001, 1),
        (b"a\n" * 3000 + b"x" * 5000, 3001),
    ):
        counter = _Lines(limit)
        with pytest.raises(LoadFailed, match=f"line {line:,} is longer than 1,000 bytes"):
            for at in range(0, len(bad), piece):
                counter.feed(bad[at : at + piece])
            counter.finish()


def test_user_agent_names_the_tool_and_contact() -> None:
    agent = user_agent("ops@example.org", "dumps")
    assert agent.startswith("wiki-events/") and "ops@example.org" in agent and "httpx/" in agent
    assert "(dumps; ops@example.org)" in agent


@pytest.mark.parametrize(
    ("command", "args", "said"),
    [
        (
            "pageviews",
            ["--from", "1000-01-01T00", "--to", "9999-01-01T00"],
            "is before the first pageviews file (2015-05-01T00)",
        ),
        (
            "pageviews",
            ["--from", "2026-11-03T00", "--to", "2026-11-01T00"],
            "2026-11-01T00 is before --from 2026-11-03T00",
        ),
        ("pageviews", ["--from", "2026-11-01T00", "--to", "2999-01-01T00"], "is in the future"),
        ("mediacounts", ["--from", "2014-12-31"], "before the first mediacounts file"),
        ("pageviews", ["--from", "'; DROP TABLE x"], "expected YYYY-MM-DDTHH"),
    ],
)
def test_a_range_no_site_can_hold_is_refused_before_anything_is_asked(
    command: str, args: list[str], said: str
) -> None:
    """Said at once, with no ClickHouse or dumps site running: a ten-thousand-year range is
    neither listed nor walked."""
    done = wiki_events(
        command,
        *args,
        env={
            "CLICKHOUSE_URL": f"http://127.0.0.1:{free_port()}/",
            "DUMPS_URL": f"http://127.0.0.1:{free_port()}/other/",
        },
    )
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert isinstance(done.exception, SystemExit)  # no traceback


def test_clickhouse_down_is_one_line_with_its_cause_and_remedy() -> None:
    port = free_port()
    done = wiki_events(
        "mediacounts",
        "--from",
        "2026-11-01",
        env={
            "CLICKHOUSE_URL": f"http://default:secret@127.0.0.1:{port}/default",
            "DUMPS_URL": f"http://127.0.0.1:{free_port()}/other/",
        },
    )
    assert done.returncode == 1, done.stderr
    assert (
        "cannot prepare the dumps' tables: ClickHouse is not answering at "
        f"http://default:***@127.0.0.1:{port}/default (connection refused: nothing listens "
        "there): start it (`wiki-events clickhouse`, or `up`)"
    ) in done.stderr
    assert "secret" not in done.stderr and "Traceback" not in done.stderr
