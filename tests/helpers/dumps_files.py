"""Realistic pageviews / projectviews / mediacounts files, deterministic by seed.

The files follow ``shared/data/dumps-format.md`` and are laid out as the dumps site lays
them out under ``other/``::

    pageviews/2026/2026-11/pageviews-20261101-010000.gz      (gzip, one hour)
    pageviews/2026/2026-11/projectviews-20261101-010000      (plain, the same hour's totals)
    mediacounts/daily/2026/mediacounts.2026-11-01.v00.tsv.bz2

What a generated hour holds:

- every domain-code form of :mod:`dumps.domains` (the empty code ``""``, mobile Commons
  ``commons.m.m``, ``www.wd`` / ``m.wd``, ``zh-min-nan``, sister projects...), each with a
  share of the lines; lines sorted by code, then title, as the real files are;
- Zipf-like views: a code's titles get views ~ 1/rank^1.1, ranks shuffled across the
  alphabet, plus ``Main_Page``, the ``-`` title (bad or overlong titles), titles in
  other scripts, titles with ``"`` written quoted (``"\\"Weird_Al\\"_Yankovic"``, the
  Spark-era quoting) and a percent escape kept as it is;
- optionally (``bad_lines``) malformed lines: too few or too many fields, a count that is
  not a number, invalid UTF-8;
- ``hive_era=True``: no quoting (quotes appear bare), the old ``xx.zero`` codes, no
  empty code.

The projectviews file of the hour sums the same lines per code (``code - views 0``);
whether it carries the ``""`` code is unconfirmed, so ``projectviews_empty_code`` picks.

A file of 6M lines takes a few seconds (titles are built from a sorted syllable table,
so each code's block comes out already sorted, and gzip runs at level 1 for big files).
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dumps.domains import CODES, HIVE_ERA_CODES, Code

_SYLLABLE_TEXT = (
    "ban bel cor dan del fon gar hel ion jar kel lam mar nor ost par qui ros sal tor "
    "ula ver wil xan yor zen alb ber cas dor eri fal gin hor ist kor"
)
SYLLABLES = sorted(_SYLLABLE_TEXT.split())
CAPITAL = [s.capitalize() for s in SYLLABLES]
SPECIAL_TITLES = [
    "-",
    "Main_Page",
    '"Weird_Al"_Yankovic',
    '"Hello,_World!"_(program)',
    "Köln",
    "東京都",
    "Tâi-oân",
    "100%_Pure",
    "Special:Search",
    "File:Example.jpg",
]


def pageviews_name(hour: dt.datetime) -> str:
    return f"pageviews-{hour:%Y%m%d-%H}0000.gz"


def projectviews_name(hour: dt.datetime) -> str:
    return f"projectviews-{hour:%Y%m%d-%H}0000"


def pageviews_dir(hour: dt.datetime) -> str:
    return f"pageviews/{hour:%Y}/{hour:%Y-%m}"


def mediacounts_name(day: dt.date) -> str:
    return f"mediacounts.{day:%Y-%m-%d}.v00.tsv.bz2"


def mediacounts_dir(day: dt.date) -> str:
    return f"mediacounts/daily/{day:%Y}"


def quote_field(value: str, hive_era: bool) -> str:
    """A field as the Spark-era files write it: quoted when it holds a ``"``."""
    if hive_era or '"' not in value:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _titles(n: int) -> Iterator[str]:
    """n distinct titles in byte order: fixed-width syllable tuples, counted upwards."""
    k = len(SYLLABLES)
    for i in range(n):
        a, b, c, d = (i // k**3) % k, (i // k**2) % k, (i // k) % k, i % k
        yield f"{CAPITAL[a]}{SYLLABLES[b]}_{CAPITAL[c]}{SYLLABLES[d]}"


@dataclass
class HourStats:
    """What a generated hour holds, for the tests' expected numbers."""

    lines: int = 0
    bad_lines: int = 0
    views_by_code: dict[str, int] = field(default_factory=dict)
    views_by_page: dict[tuple[str, str], int] = field(default_factory=dict)


def pageview_lines(
    lines: int,
    seed: int,
    *,
    hive_era: bool = False,
    bad_lines: int = 0,
    keep_pages: bool = False,
    stats: HourStats | None = None,
) -> Iterator[bytes]:
    """The lines of one hour, sorted by code then title; fills ``stats`` as it goes."""
    rng = random.Random(seed)
    stats = stats if stats is not None else HourStats()
    codes: list[Code] = list(CODES) + (list(HIVE_ERA_CODES) if hive_era else [])
    if hive_era:  # the empty code (Wikifunctions, a NULL in Spark's output) came later
        codes = [c for c in codes if c.code]
    codes.sort(key=lambda c: c.code if hive_era or c.code else '""')
    weight = sum(c.weight for c in codes)
    bad_at = {rng.randrange(max(lines, 1)) for _ in range(bad_lines)}
    written = 0
    for code in codes:
        n = max(len(SPECIAL_TITLES), round(lines * code.weight / weight))
        generated = n - len(SPECIAL_TITLES)
        ranks = np.arange(1, n + 1, dtype=np.float64)
        np.random.default_rng(rng.randrange(2**32)).shuffle(ranks)
        scale = rng.randint(50, 5000) * max(1, lines // 10000)
        views = np.maximum(1, (scale / ranks**1.1).astype(np.int64)).tolist()
        titles = [
            quote_field(t, hive_era)
            for t in heapq.merge(_titles(generated), sorted(SPECIAL_TITLES))
        ]
        code_field = '""' if not code.code and not hive_era else code.code
        stats.views_by_code[code.code] = stats.views_by_code.get(code.code, 0) + sum(views)
        stats.lines += n
        if keep_pages:
            for title, v in zip(
                heapq.merge(_titles(generated), sorted(SPECIAL_TITLES)), views, strict=True
            ):
                key = (code.code, title)
                stats.views_by_page[key] = stats.views_by_page.get(key, 0) + v
        for start in range(0, n, 65536):
            block = "".join(
                [
                    f"{code_field} {t} {v} 0\n"
                    for t, v in zip(
                        titles[start : start + 65536], views[start : start + 65536], strict=True
                    )
                ]
            ).encode()
            bad = [
                i for i in range(written + start, written + min(n, start + 65536)) if i in bad_at
            ]
            if bad:
                # a malformed line after the first line of this block (sort order aside)
                cut = block.index(b"\n") + 1
                extra = b"".join(_bad_line(rng) for _ in bad)
                stats.bad_lines += len(bad)
                block = block[:cut] + extra + block[cut:]
            yield block
        written += n


def _bad_line(rng: random.Random) -> bytes:
    return rng.choice(
        [
            b"en Only_three_fields 12\n",
            b"en Too many fields here 3 0\n",
            b"en Not_a_number many 0\n",
            b"en \xff\xfeBad_utf8 -4 0\n",
        ]
    )


def write_pageviews_hour(
    root: Path,
    hour: dt.datetime,
    lines: int = 2000,
    seed: int = 1,
    *,
    hive_era: bool = False,
    bad_lines: int = 0,
    projectviews_empty_code: bool = True,
    keep_pages: bool = True,
    compresslevel: int | None = None,
) -> HourStats:
    """Write the hour's pageviews (gzip) and projectviews files under ``root``."""
    folder = root / pageviews_dir(hour)
    folder.mkdir(parents=True, exist_ok=True)
    stats = HourStats()
    level = compresslevel if compresslevel is not None else (1 if lines > 500_000 else 6)
    path = folder / pageviews_name(hour)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=level) as out:
        for chunk in pageview_lines(
            lines, seed, hive_era=hive_era, bad_lines=bad_lines, keep_pages=keep_pages, stats=stats
        ):
            out.write(chunk)
    tmp.replace(path)
    rows = [
        f"{quote_field(c, hive_era) if c else ('' if hive_era else chr(34) * 2)} - {v} 0\n"
        for c, v in sorted(stats.views_by_code.items())
        if c or projectviews_empty_code
    ]
    (folder / projectviews_name(hour)).write_text("".join(rows))
    return stats


# -- mediacounts ---------------------------------------------------------------------------

MEDIA_PATHS = [
    "/wikipedia/commons/{h1}/{h2}/{name}.jpg",
    "/wikipedia/commons/{h1}/{h2}/{name}.png",
    "/wikipedia/commons/{h1}/{h2}/{name}.webm",
    "/wikipedia/commons/{h1}/{h2}/{name}.ogg",
    "/wikipedia/en/{h1}/{h2}/{name}.png",
    "/wikipedia/de/{h1}/{h2}/{name}.svg",
    "/wiktionary/fr/{h1}/{h2}/{name}.ogg",
    "/wikibooks/de/{h1}/{h2}/{name}.svg",
]
MEDIA_SPECIALS = [
    "/favicon.ico",
    "/math/8/2/6/826676a6a5ad24552f0d5af1593434cc.png",
    "/score/a/b/ab12cd34ef56ab12cd34ef56ab12cd34.png",
    "/wikipedia/commons/archive/1/1a/20240101120000!Old_map.png",
    "/wikipedia/commons/c/c3/K%C3%B6ln_Dom.jpg",
    "/wikipedia/commons/d/d4/Paris%2C_France.jpg",
    "/wikipedia/en/timeline/604de9c3f0eb443de2c21c8d6dfd570b.png",
]


@dataclass
class MediaStats:
    rows: int = 0
    bad_lines: int = 0
    # per base_name: (bytes, transfers) -- for the tests
    files: dict[str, tuple[int, int]] = field(default_factory=dict)


def media_row(name: str, rng: random.Random) -> tuple[str, int, int]:
    """One 25-column row whose counts add up as the fact sheet's identities say."""
    kind = name.rsplit(".", 1)[-1]
    original = rng.randint(0, 50)
    audio = rng.randint(0, 20) if kind == "ogg" else 0
    widths = (
        [rng.randint(0, 400) // (i + 1) for i in range(6)]
        if kind in ("jpg", "png", "svg")
        else [0] * 6
    )
    heights = [rng.randint(0, 60) // (i + 1) for i in range(3)] if kind == "webm" else [0] * 3
    image, movie = sum(widths), sum(heights)
    total = original + audio + image + movie
    internal = rng.randint(0, total)
    external = rng.randint(0, total - internal)
    unknown = total - internal - external
    size = total * rng.randint(1_000, 200_000)
    cols = [
        name,
        size,
        total,
        original,
        audio,
        "-",
        "-",
        image,
        *widths,
        "-",
        "-",
        movie,
        *heights,
        "-",
        "-",
        internal,
        external,
        unknown,
    ]
    return "\t".join(str(c) for c in cols), size, total


def write_mediacounts_day(
    root: Path, day: dt.date, files: int = 500, seed: int = 1, bad_lines: int = 0
) -> MediaStats:
    """Write one day's mediacounts file (bz2, TAB separated, sorted by base_name)."""
    rng = random.Random(seed)
    names = set(MEDIA_SPECIALS)
    while len(names) < files:
        h = f"{rng.randrange(256):02x}"
        names.add(
            rng.choice(MEDIA_PATHS).format(
                h1=h[0], h2=h, name=f"{rng.choice(CAPITAL)}{rng.choice(SYLLABLES)}_{len(names)}"
            )
        )
    stats = MediaStats()
    folder = root / mediacounts_dir(day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / mediacounts_name(day)
    tmp = path.with_suffix(".tmp")
    bad_at = {rng.randrange(files) for _ in range(bad_lines)}
    with bz2.open(tmp, "wb") as out:
        for i, name in enumerate(sorted(names)):
            line, size, total = media_row(name, rng)
            out.write(line.encode() + b"\n")
            stats.files[name] = (size, total)
            stats.rows += 1
            if i in bad_at:
                out.write(b"/wikipedia/commons/x/xx/Broken.jpg\t12\tnot-a-number\n")
                stats.bad_lines += 1
    tmp.replace(path)
    return stats
